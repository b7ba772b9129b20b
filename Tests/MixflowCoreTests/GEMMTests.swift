import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowCore

/// libmixflow's GEMM (BLAS.sgemm over Sources/CGemm): each element of C must be the sequential FMA chain
/// `acc = beta·C (or bias[j]); acc = fma(alpha·A[i,p], B[p,j], acc) for p = 0..<K`, whatever the instruction-set path,
/// thread count, position of the row in the call or shape of the call; and close to a float64 product.
/// The chain reference below is written independently with Swift's `addingProduct` (IEEE fusedMultiplyAdd).
@Suite struct GEMMTests {
    struct Problem {
        var transA, transB: Bool
        var m, n, k: Int
        var alpha, beta: Float
        var a, b, c: [Float]
        /// The chains' start row (n floats), replacing beta·C, or nil.
        var bias: [Float]?
        var lda: Int { transA ? m : k }
        var ldb: Int { transB ? k : n }

        init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0, seed: UInt64 = 1) {
            self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k
            self.alpha = alpha; self.beta = beta
            var g = SplitMix(seed)
            a = (0..<(m * k)).map { _ in g.uniform() }
            b = (0..<(k * n)).map { _ in g.uniform() }
            c = (0..<(m * n)).map { _ in g.uniform() }
        }

        /// The same product with every chain starting from a bias row instead of beta·C.
        func withBias(seed: UInt64) -> Problem {
            var p = self, g = SplitMix(seed)
            p.bias = (0..<n).map { _ in g.uniform() }
            return p
        }

        func opA(_ i: Int, _ p: Int) -> Float { transA ? a[p * lda + i] : a[i * lda + p] }
        func opB(_ p: Int, _ j: Int) -> Float { transB ? b[j * ldb + p] : b[p * ldb + j] }

        /// The promised bits: one FMA chain per element.
        func chain() -> [Float] {
            var out = c
            for i in 0..<m { for j in 0..<n {
                var acc: Float = bias?[j] ?? (beta == 0 ? 0 : beta == 1 ? c[i * n + j] : beta * c[i * n + j])
                for p in 0..<k { acc = acc.addingProduct(alpha == 1 ? opA(i, p) : alpha * opA(i, p), opB(p, j)) }
                out[i * n + j] = acc
            } }
            return out
        }

        /// The product in float64, and Σ|terms| per element for the tolerance.
        func float64() -> (value: [Double], magnitude: [Double]) {
            var v = [Double](repeating: 0, count: m * n), mag = v
            for i in 0..<m { for j in 0..<n {
                var s = bias.map { Double($0[j]) } ?? Double(beta) * Double(c[i * n + j]), t = abs(s)
                for p in 0..<k { let x = Double(alpha) * Double(opA(i, p)) * Double(opB(p, j)); s += x; t += abs(x) }
                v[i * n + j] = s; mag[i * n + j] = t
            } }
            return (v, mag)
        }

        /// `rowGap` > 0 (row-major A only) stores A's rows `rowGap` floats apart beyond K, the gap filled with NaN.
        func run(path: BLAS.Path, threads: Int = 1, garbageC: Bool = false, rowGap: Int = 0) -> [Float] {
            precondition(rowGap == 0 || !transA)
            var out = garbageC ? [Float](repeating: .nan, count: m * n) : c
            let biasRow = bias ?? []
            let ldaUsed = lda + rowGap
            var aUsed = a
            if rowGap > 0 {
                aUsed = [Float](repeating: .nan, count: m * ldaUsed)
                for i in 0..<m { for p in 0..<k { aUsed[i * ldaUsed + p] = a[i * k + p] } }
            }
            aUsed.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { cp in
                biasRow.withUnsafeBufferPointer { bias in
                    BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: ldaUsed,
                               b: bp.baseAddress!, ldb: ldb, beta: beta, bias: self.bias == nil ? nil : bias.baseAddress,
                               c: cp.baseAddress!, ldc: n, threads: threads, path: path)
                }
            } } }
            return out
        }
    }

    static let paths = BLAS.Path.allCases.filter(BLAS.supports)
    static let edgeSizes = [1, 2, 15, 17, 31, 33, 63, 65]

    @Test func activePathIsTheBestSupported() {
        // On this project's CI machines (AVX-512 Xeons) the AVX-512 path must be active unless disabled.
        let expected = Self.paths.last!
        if getenvString("MIXFLOW_DISABLE_AVX2") != "1" && getenvString("MIXFLOW_DISABLE_AVX512") != "1" {
            #expect(BLAS.path == expected)
        }
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func everyPathIsTheFMAChainAndCloseToFloat64(transposes: (Bool, Bool)) {
        for m in Self.edgeSizes { for n in [1, 17, 33, 65] { for k in [1, 7, 300] {
            for (alpha, beta, bias) in [(Float(1), Float(0), false), (1, 1, false), (0.125, 0.5, false), (1, 0, true),
                                        (0.125, 1, true)] {
                let plain = Problem(transA: transposes.0, transB: transposes.1, m: m, n: n, k: k, alpha: alpha, beta: beta,
                                    seed: UInt64(m * 1000 + n * 10 + k))
                let pr = bias ? plain.withBias(seed: UInt64(n)) : plain
                let expected = pr.chain()
                for path in Self.paths {
                    let got = pr.run(path: path)
                    #expect(got == expected, "path \(path.name) m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta) bias=\(bias) \(transposes)")
                }
                let (ref, mag) = pr.float64()
                let got = pr.run(path: BLAS.path)
                for i in 0..<(m * n) {
                    // One rounding per FMA: |error| <= K·u·Σ|terms| (u = 2^-24), with room for alpha·A's rounding.
                    let tol = Double(k + 2) * 0x1p-24 * mag[i] + 1e-30
                    #expect(abs(Double(got[i]) - ref[i]) <= tol, "element \(i) m=\(m) n=\(n) k=\(k)")
                }
            }
        } } }
    }

    @Test func betaZeroOverwritesGarbage() {
        for path in Self.paths {
            let pr = Problem(transA: false, transB: true, m: 17, n: 33, k: 65, beta: 0)
            #expect(pr.run(path: path, garbageC: true) == pr.chain())
            let biased = pr.withBias(seed: 5)
            #expect(biased.run(path: path, garbageC: true) == biased.chain())
        }
    }

    @Test func emptyKScalesC() {
        for path in Self.paths {
            var pr = Problem(transA: false, transB: false, m: 5, n: 7, k: 0, beta: 0.5)
            #expect(pr.run(path: path) == pr.c.map { 0.5 * $0 })
            pr.beta = 0
            #expect(pr.run(path: path, garbageC: true) == [Float](repeating: 0, count: 35))
            let biased = pr.withBias(seed: 9)
            #expect(biased.run(path: path, garbageC: true) == (0..<5).flatMap { _ in biased.bias! })
        }
    }

    /// Large enough for several cache blocks of K (256) and N (1024, cut into equal blocks), and for the thread
    /// splits: rows (m >= n) or columns cut into runs of whole register tiles, the last one shorter (at 3 threads
    /// 530 rows → 180, 180, 170 on the 12×32 tile; 140 columns → 64, 64, 12), products below 512 rows and columns
    /// included.
    @Test(arguments: [(530, 24, 520), (20, 1100, 300), (150, 140, 300), (140, 150, 300)])
    func blockedAndThreadedProductsAreTheChain(shape: (Int, Int, Int)) {
        for (ta, tb) in [(false, true), (true, false)] {
            let plain = Problem(transA: ta, transB: tb, m: shape.0, n: shape.1, k: shape.2, alpha: 1, beta: 1, seed: 7)
            for pr in [plain, plain.withBias(seed: 11)] {
                let expected = pr.chain()
                for path in Self.paths where path != .portable {
                    for threads in [1, 2, 3] {
                        #expect(pr.run(path: path, threads: threads) == expected, "\(path.name) \(threads) bias \(pr.bias != nil)")
                    }
                }
            }
        }
    }

    /// Row-major A with alpha 1 is read in place by the AVX2 path (only a last partial row panel is packed): with
    /// rows longer than K (lda > k, as for a slice of a wider activation) and NaN in the gap, the result is still
    /// the chain, so only A's own elements are read, each at its row's stride, in every K block and row block.
    @Test(arguments: [(6, 16, 5), (7, 33, 300), (13, 17, 257), (200, 40, 520)])
    func rowMajorAWithAWideStrideIsTheChain(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        for pr in [Problem(transA: false, transB: true, m: m, n: n, k: k, alpha: 1, beta: 1, seed: 5),
                   Problem(transA: false, transB: false, m: m, n: n, k: k, seed: 6).withBias(seed: 8)] {
            let expected = pr.chain()
            for path in Self.paths { for threads in [1, 2] {
                #expect(pr.run(path: path, threads: threads, rowGap: 3) == expected,
                        "\(path.name) m=\(m) n=\(n) k=\(k) threads \(threads) bias \(pr.bias != nil)")
            } }
        }
    }

    /// A row's bits do not depend on where it sits in the call or on how many rows the call has (the property
    /// OpenBLAS lacks): rows [o, o + len) of a product of A equal the product of A[o ..< o + len].
    @Test func rowsDoNotDependOnPositionOrBatchSplit() {
        let full = Problem(transA: false, transB: true, m: 77, n: 384, k: 384, seed: 3)
        for path in Self.paths {
            let whole = full.run(path: path)
            for (o, len) in [(1, 76), (5, 3), (13, 64), (31, 1), (40, 37)] {
                var part = full
                part.m = len
                part.a = Array(full.a[(o * full.k)..<((o + len) * full.k)])
                part.c = Array(full.c[(o * full.n)..<((o + len) * full.n)])
                #expect(part.run(path: path) == Array(whole[(o * full.n)..<((o + len) * full.n)]), "\(path.name) offset \(o)")
            }
        }
    }
}

/// The epilogue contract (BLAS.Epilogue): with an epilogue, C is the same chain, and the epilogue is handed every
/// element of C exactly once, already complete, with its position in the whole product (row and column splits,
/// several K and N blocks, partial tiles, an empty K).
@Suite struct GEMMEpilogueTests {
    /// What the epilogue saw: the value handed for each element of C and how many times it was handed.
    final class Record {
        let m: Int, n: Int
        let seen: UnsafeMutablePointer<Float>, visits: UnsafeMutablePointer<Int32>
        /// Set when a block's pointer does not lie at (i0, j0) of the product's C.
        let misplaced: UnsafeMutablePointer<Int32>
        let c: UnsafePointer<Float>
        init(m: Int, n: Int, c: UnsafePointer<Float>) {
            self.m = m; self.n = n; self.c = c
            seen = .allocate(capacity: m * n); seen.initialize(repeating: .nan, count: m * n)
            visits = .allocate(capacity: m * n); visits.initialize(repeating: 0, count: m * n)
            misplaced = .allocate(capacity: 1); misplaced.initialize(to: 0)
        }
        deinit { seen.deallocate(); visits.deallocate(); misplaced.deallocate() }
    }

    /// Copies each handed block into the record (blocks of different workers are disjoint).
    static let record: BLAS.Epilogue.Apply = { context, block, ldc, i0, j0, rows, cols in
        let r = Unmanaged<Record>.fromOpaque(context!).takeUnretainedValue()
        if block! != r.c + i0 * ldc + j0 { r.misplaced.pointee = 1 }
        for i in 0..<rows { for j in 0..<cols {
            r.seen[(i0 + i) * r.n + j0 + j] = block![i * ldc + j]
            r.visits[(i0 + i) * r.n + j0 + j] += 1
        } }
    }

    static func check(_ pr: GEMMTests.Problem, path: BLAS.Path, threads: Int) {
        var out = pr.c
        let expected = pr.chain()
        out.withUnsafeMutableBufferPointer { cp in
            let rec = Record(m: pr.m, n: pr.n, c: cp.baseAddress!)
            let ctx = Unmanaged.passUnretained(rec).toOpaque()
            pr.a.withUnsafeBufferPointer { ap in pr.b.withUnsafeBufferPointer { bp in
                BLAS.sgemm(transA: pr.transA, transB: pr.transB, m: pr.m, n: pr.n, k: pr.k, alpha: pr.alpha,
                           a: ap.baseAddress!, lda: pr.lda, b: bp.baseAddress!, ldb: pr.ldb, beta: pr.beta,
                           c: cp.baseAddress!, ldc: pr.n, threads: threads,
                           epilogue: BLAS.Epilogue(apply: record, context: ctx), path: path)
            } }
            let label = "\(path.name) \(pr.m)x\(pr.n)x\(pr.k) threads \(threads)"
            #expect((0..<(pr.m * pr.n)).allSatisfy { rec.visits[$0] == 1 }, "\(label): not every element handed once")
            #expect((0..<(pr.m * pr.n)).allSatisfy { rec.seen[$0].bitPattern == expected[$0].bitPattern },
                    "\(label): an element was handed before its chain was complete")
            #expect(rec.misplaced.pointee == 0, "\(label): a block's position is not where it lies in C")
            withExtendedLifetime(rec) {}
        }
        #expect(out == expected, "C itself is the chain")
    }

    @Test(arguments: [(530, 24, 520), (20, 1700, 300), (150, 140, 300), (37, 45, 0), (13, 33, 7)])
    func epilogueSeesEveryFinishedElementOnce(shape: (Int, Int, Int)) {
        for (ta, tb) in [(false, true), (true, false)] {
            let pr = GEMMTests.Problem(transA: ta, transB: tb, m: shape.0, n: shape.1, k: shape.2, beta: 1, seed: 13)
            for path in GEMMTests.paths where path != .portable || shape.0 * shape.1 * shape.2 < 1 << 20 {
                for threads in [1, 2, 3] { Self.check(pr, path: path, threads: threads) }
            }
        }
    }
}

/// A deterministic uniform generator in [-1, 1) for test matrices (splitmix64).
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func uniform() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) * 0x1p-23 - 1
    }
}

func getenvString(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
