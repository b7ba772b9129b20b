import CBLAS
import MixflowCore

/// The Gaussian fit of a feature set: mean and unbiased covariance (divisor n - 1), in float64.
public struct FeatureStats {
    public var dim: Int
    /// Number of samples the statistics came from (kept so a cached reference says what it was fit on).
    public var count: Int
    public var mean: [Double]
    /// [dim, dim], row-major, symmetric.
    public var covariance: [Double]

    public init(dim: Int, count: Int, mean: [Double], covariance: [Double]) {
        self.dim = dim; self.count = count; self.mean = mean; self.covariance = covariance
    }

    /// Mean and covariance of `features` [n, dim] (float32, finite, n >= 2), accumulated in float64 as
    /// numpy's `mean(0)` and `cov(rowvar=False)`: `cov = (X - mean)^T (X - mean) / (n - 1)`.
    public init(features: UnsafePointer<Float>, count n: Int, dim d: Int) {
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<n {
            let row = features + r * d
            for j in 0..<d { mean[j] += Double(row[j]) }
        }
        for j in 0..<d { mean[j] /= Double(n) }
        var cov = [Double](repeating: 0, count: d * d)
        BLAS.useOpenBLAS()
        // Centre a block of rows in float64, then accumulate its Gram matrix (upper triangle) with dsyrk.
        let block = 2048
        var centred = [Double](repeating: 0, count: min(n, block) * d)
        var start = 0
        while start < n {
            let rows = min(block, n - start)
            for r in 0..<rows {
                let row = features + (start + r) * d
                for j in 0..<d { centred[r * d + j] = Double(row[j]) - mean[j] }
            }
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(d), Int32(rows), 1 / Double(n - 1),
                        centred, Int32(d), 1, &cov, Int32(d))
            start += rows
        }
        for i in 0..<d { for j in 0..<i { cov[i * d + j] = cov[j * d + i] } }
        self.init(dim: d, count: n, mean: mean, covariance: cov)
    }
}

public enum FrechetDistance {
    /// The Fréchet distance between the Gaussians N(m1, S1) and N(m2, S2):
    /// `|m1 - m2|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2`.
    ///
    /// Computed in the symmetric eigen form (docs/exactness.md §7.2), never with a general sqrtm: S1^1/2 = V diag(√w) V^T
    /// from the eigendecomposition of S1 (dsyev), then the trace term is the sum of the square roots of the
    /// eigenvalues of the symmetric matrix S1^1/2 S2 S1^1/2. Eigenvalues below the round-off floor
    /// `d · ε · λ_max` of their matrix (including negative ones) count as 0.
    ///
    /// Both covariances are symmetrised first ((S + S^T) / 2), so tiny asymmetries from the caller's
    /// arithmetic do not matter. Inputs must be finite (checked by the caller).
    /// - Throws: `MixflowError.internal` if LAPACK fails to converge.
    public static func distance(_ a: FeatureStats, _ b: FeatureStats) throws -> Double {
        let d = a.dim
        precondition(b.dim == d && a.mean.count == d && a.covariance.count == d * d && b.covariance.count == d * d)
        BLAS.useOpenBLAS()
        var meanTerm = 0.0
        for j in 0..<d { let t = a.mean[j] - b.mean[j]; meanTerm += t * t }
        var s1 = symmetrised(a.covariance, d)
        let s2 = symmetrised(b.covariance, d)
        var traces = 0.0
        for i in 0..<d { traces += s1[i * d + i] + s2[i * d + i] }

        // S1 = V diag(w) V^T. dsyev works on column-major data; a symmetric matrix is its own transpose,
        // and on return row j of the array (read row-major) is eigenvector j.
        let w = try eigen(&s1, d, vectors: true)
        let floor1 = roundOffFloor(w, d)
        var scaled = s1
        for j in 0..<d {
            let s = w[j] > floor1 ? w[j].squareRoot() : 0
            for k in 0..<d { scaled[j * d + k] *= s }
        }
        // R = Σ_j √w_j v_j v_j^T = E^T diag(√w) E, where E (the array s1 now) has the eigenvectors as rows.
        var root = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, s1, Int32(d),
                    scaled, Int32(d), 0, &root, Int32(d))
        var t = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, root, Int32(d),
                    s2, Int32(d), 0, &t, Int32(d))
        var m = [Double](repeating: 0, count: d * d)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(d), Int32(d), 1, t, Int32(d),
                    root, Int32(d), 0, &m, Int32(d))
        m = symmetrised(m, d)
        let lambdas = try eigen(&m, d, vectors: false)
        let floor2 = roundOffFloor(lambdas, d)
        var trace = 0.0
        for l in lambdas where l > floor2 { trace += l.squareRoot() }
        return meanTerm + traces - 2 * trace
    }

    /// Eigenvalues below `d · ε · λ_max` are round-off of exact zeros (dead ReLU features make feature
    /// covariances singular). Taken as they come, their square roots (√1e-13 ≈ 3e-7 each) would add a few 1e-5
    /// per distance; treated as 0, a set with dead features gives the distance of its live features.
    static func roundOffFloor(_ eigenvalues: [Double], _ d: Int) -> Double {
        Double(d) * Double.ulpOfOne * max(eigenvalues.max() ?? 0, 0)
    }

    static func symmetrised(_ s: [Double], _ d: Int) -> [Double] {
        var out = s
        for i in 0..<d { for j in i..<d {
            let v = 0.5 * (s[i * d + j] + s[j * d + i])
            out[i * d + j] = v; out[j * d + i] = v
        } }
        return out
    }

    /// Eigenvalues (ascending) of the symmetric matrix `a` [d, d]; with `vectors`, `a` is overwritten by
    /// the eigenvectors (row j = eigenvector j when read row-major).
    static func eigen(_ a: inout [Double], _ d: Int, vectors: Bool) throws -> [Double] {
        var n = Int32(d), lda = Int32(d), info: Int32 = 0, lwork: Int32 = -1
        var w = [Double](repeating: 0, count: d)
        var query = 0.0
        let jobz: CChar = vectors ? 86 : 78   // "V" or "N"
        var job = jobz, uplo: CChar = 85     // "U"
        dsyev_(&job, &uplo, &n, &a, &lda, &w, &query, &lwork, &info, 1, 1)
        guard info == 0 else { throw MixflowError.internal("dsyev workspace query failed with info \(info)") }
        lwork = Int32(query)
        var work = [Double](repeating: 0, count: max(1, Int(lwork)))
        dsyev_(&job, &uplo, &n, &a, &lda, &w, &work, &lwork, &info, 1, 1)
        guard info == 0 else {
            throw MixflowError.internal("dsyev failed with info \(info) (the eigenvalue iteration did not converge)")
        }
        return w
    }
}

// MARK: - Reference statistics file

extension FeatureStats {
    public static let magic: [UInt8] = Array("MXFSTAT1".utf8)

    /// Reads a statistics file (written by scripts/train-featnet.py), little-endian:
    /// ```
    /// offset 0   8 bytes  magic "MXFSTAT1"
    /// offset 8   uint32   dim (1...65536)
    /// offset 12  uint32   0 (reserved)
    /// offset 16  uint64   count, the number of samples the statistics were fit on (>= 2)
    /// offset 24  float64 × dim        mean
    ///            float64 × dim × dim  covariance, row-major
    /// ```
    /// - Throws: `MixflowError.io` or `.format` (bad magic, sizes, non-finite values) with the byte offset.
    public init(path: String) throws {
        let bytes = try readWholeFile(path)
        func u32(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24 }
        guard bytes.count >= 24 else { throw MixflowError.format("\(path): truncated at byte offset \(bytes.count): the header needs 24 bytes") }
        guard Array(bytes[0..<8]) == Self.magic else {
            throw MixflowError.format("\(path): bad magic at byte offset 0: expected \"MXFSTAT1\" (libmixflow feature statistics)")
        }
        let d = u32(8)
        guard (1...65536).contains(d) else { throw MixflowError.format("\(path): dim at byte offset 8 must be in 1...65536, got \(d)") }
        guard u32(12) == 0 else { throw MixflowError.format("\(path): reserved field at byte offset 12 must be 0, got \(u32(12))") }
        let count = u32(16) | u32(20) << 32
        guard count >= 2 && count < 1 << 48 else { throw MixflowError.format("\(path): count at byte offset 16 must be >= 2, got \(count)") }
        let expected = 24 + 8 * (d + d * d)
        guard bytes.count == expected else {
            throw MixflowError.format("\(path): dim \(d) needs \(expected) bytes but the file has \(bytes.count)")
        }
        var values = [Double](repeating: 0, count: d + d * d)
        bytes.withUnsafeBytes { raw in
            for i in 0..<values.count {
                values[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 24 + 8 * i, as: UInt64.self)))
            }
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw MixflowError.format("\(path): value \(bad) at byte offset \(24 + 8 * bad) is \(values[bad]); statistics must be finite")
        }
        self.init(dim: d, count: count, mean: Array(values[0..<d]), covariance: Array(values[d...]))
    }
}
