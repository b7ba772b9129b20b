import CBLAS
import MixflowCore

/// Kernel Inception Distance in our own features ("KID (Fashion-MNIST classifier features)"): the unbiased
/// estimator of MMD² with the cubic polynomial kernel `k(x, y) = (x·y / d + 1)^3`, averaged over random
/// subsets (Bińkowski et al. 2018), which is unbiased at small n and gives a standard error.
public enum KID {
    public struct Result {
        public var mean: Double
        /// Sample standard deviation of the subset values (divisor S - 1) over √S; NaN when S = 1.
        public var standardError: Double
        public var subsetValues: [Double]
    }

    /// For each subset s = 0..<numSubsets, draws `subsetSize` rows of `a` and of `b` without replacement and
    /// computes
    /// `MMD²_u = (ΣK_xx - tr K_xx + ΣK_yy - tr K_yy) / (m (m - 1)) - 2 ΣK_xy / m²`, in float64.
    ///
    /// The draw is a partial Fisher–Yates shuffle of 0..<n: for i in 0..<m, `j = i + ⌊u_i (n - i)⌋`
    /// (clamped to n - 1), swap(idx[i], idx[j]); the first m entries are the subset. u_i is the 53-bit
    /// uniform of Philox4x32-10 with key = seed (low word first) and counter (i / 2, s, which, 0x4B4944),
    /// words 0-1 for even i and 2-3 for odd i, `u = ((w0 << 21) ^ (w1 >> 11)) mod 2^53 / 2^53`;
    /// which = 0 for `a`, 1 for `b`. So results are a pure function of (inputs, seed).
    ///
    /// Inputs are finite and sizes valid (checked by the caller): 2 <= subsetSize <= min(na, nb).
    public static func compute(a: UnsafePointer<Float>, countA na: Int, b: UnsafePointer<Float>, countB nb: Int,
                               dim d: Int, numSubsets: Int, subsetSize m: Int, seed: UInt64) -> Result {
        var values = [Double](repeating: 0, count: numSubsets)
        var x = [Double](repeating: 0, count: m * d), y = [Double](repeating: 0, count: m * d)
        var k = [Double](repeating: 0, count: min(m, block) * m)
        let scale = 1 / Double(d)
        for s in 0..<numSubsets {
            gather(a, na, d, subset(n: na, m: m, seed: seed, subset: s, which: 0), into: &x)
            gather(b, nb, d, subset(n: nb, m: m, seed: seed, subset: s, which: 1), into: &y)
            let xx = kernelSum(x, x, m, d, scale, &k, excludeDiagonal: true)
            let yy = kernelSum(y, y, m, d, scale, &k, excludeDiagonal: true)
            let xy = kernelSum(x, y, m, d, scale, &k, excludeDiagonal: false)
            let mm = Double(m)
            values[s] = (xx + yy) / (mm * (mm - 1)) - 2 * xy / (mm * mm)
        }
        let mean = values.reduce(0, +) / Double(numSubsets)
        var se = Double.nan
        if numSubsets > 1 {
            var ss = 0.0
            for v in values { ss += (v - mean) * (v - mean) }
            se = (ss / Double(numSubsets - 1)).squareRoot() / Double(numSubsets).squareRoot()
        }
        return Result(mean: mean, standardError: se, subsetValues: values)
    }

    /// The subset indices of one draw (see `compute`); public so tests and callers can reproduce a subset.
    public static func subset(n: Int, m: Int, seed: UInt64, subset s: Int, which: UInt32) -> [Int] {
        var idx = Array(0..<n)
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        var words = (UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        for i in 0..<m {
            if i % 2 == 0 { words = Philox.block((UInt32(i / 2), UInt32(truncatingIfNeeded: s), which, 0x4B4944), key: key) }
            let (w0, w1) = i % 2 == 0 ? (words.0, words.1) : (words.2, words.3)
            let bits = ((UInt64(w0) << 21) ^ UInt64(w1 >> 11)) & ((1 << 53) - 1)
            let u = Double(bits) * 0x1p-53
            let j = min(i + Int(u * Double(n - i)), n - 1)
            idx.swapAt(i, j)
        }
        return Array(idx[0..<m])
    }

    static func gather(_ f: UnsafePointer<Float>, _ n: Int, _ d: Int, _ rows: [Int], into out: inout [Double]) {
        for (r, i) in rows.enumerated() {
            let src = f + i * d
            for j in 0..<d { out[r * d + j] = Double(src[j]) }
        }
    }

    /// Rows of the kernel matrix computed per dgemm: bounds the scratch to `block × m` doubles for any m.
    static let block = 256

    /// Σ_ij (p_i·q_j / d + 1)^3 over the m × m kernel matrix, leaving out i == j when asked.
    static func kernelSum(_ p: [Double], _ q: [Double], _ m: Int, _ d: Int, _ scale: Double,
                          _ k: inout [Double], excludeDiagonal: Bool) -> Double {
        BLAS.useOpenBLAS()
        var total = 0.0
        var start = 0
        while start < m {
            let rows = min(block, m - start)
            // K[rows, m] = scale · P[start..<start+rows] Q^T + 1, then cubed and summed in a fixed order
            // (deterministic for any number of BLAS threads).
            for i in 0..<(rows * m) { k[i] = 1 }
            p.withUnsafeBufferPointer { pp in
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(m), Int32(d), scale,
                            pp.baseAddress! + start * d, Int32(d), q, Int32(d), 1, &k, Int32(m))
            }
            for r in 0..<rows {
                var row = 0.0
                for j in 0..<m where !(excludeDiagonal && start + r == j) {
                    let v = k[r * m + j]
                    row += v * v * v
                }
                total += row
            }
            start += rows
        }
        return total
    }
}

// MARK: - Conditional accuracy

extension FeatureNet {
    /// Fraction of images whose predicted class equals their label: the classifier's agreement with the
    /// classes generated samples were conditioned on. Labels must be in 0..<numClasses (checked by the caller).
    public func accuracy(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, count n: Int) -> Double {
        let classes = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer { classes.deallocate() }
        classify(images: images, count: n, logits: nil, classes: classes)
        var hits = 0
        for i in 0..<n where classes[i] == labels[i] { hits += 1 }
        return Double(hits) / Double(n)
    }
}
