internal import CBLAS
internal import CGemm
#if canImport(Glibc)
import Glibc
#endif

/// The one door to matrix products. Row-major single-precision GEMM:
/// `C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C`, op = identity or transpose.
///
/// Why libmixflow's own GEMM (Sources/CGemm) and not OpenBLAS: every element of C is one sequential FMA
/// chain over k, so its bits depend only on its row of A, its column of B and K. OpenBLAS's kernels make a
/// row's bits depend on its position in the call (Haswell, Zen) or on the call's shape (the small-matrix and
/// edge kernels of Prescott and SkylakeX), and on which kernel the library picked for the CPU; a sample's
/// output would then depend on the batch around it, and differ between machines. Ours gives the same bits
/// for any batch split, thread count, and on the AVX-512, AVX2 and portable paths alike.
///
/// Threading: a product with enough work is cut along its longer side (rows of C, or columns) into one
/// contiguous run of whole register tiles per worker, as equal as whole tiles allow; each run is one
/// single-threaded kernel call (so a worker packs its B, or its A, once). K is never split. The split
/// changes no bit, only the speed.
public enum BLAS {
    /// Multiply-adds a product must have per worker before it is split (a hand-off to a worker costs
    /// microseconds; 2²¹ multiply-adds take ~15 µs at the AVX-512 path's speed).
    public static let workPerThread = 1 << 21

    /// The GEMM's instruction-set paths (bit-identical; only the speed differs).
    public typealias Path = ISALevel

    /// True when this CPU and OS can run the GEMM's `path`.
    public static func supports(_ path: Path) -> Bool { mfx_gemm_supported(path.rawValue) != 0 }

    /// The micro-kernel's register tile of `path`: rows × columns of C computed at once.
    public static func tile(_ path: Path) -> (rows: Int, cols: Int) {
        var rows: Int32 = 0, cols: Int32 = 0
        mfx_gemm_tile(path.rawValue, &rows, &cols)
        return (Int(rows), Int(cols))
    }

    /// The path `sgemm` uses: the best the CPU supports and the environment allows (`ISALevel.allowed`).
    public static let path: Path = ISALevel.best(supports)

    /// Work the GEMM does on finished blocks of C while they are in cache, instead of a second pass over C
    /// (see `mfx_epilogue_fn` in Sources/CGemm/include/mixflow_gemm.h): `apply(context, block, ldc, i0, j0,
    /// rows, cols)` is called once for every element of C, a block at a time, with the block's position in the
    /// whole product; it reads the block and writes elsewhere. The context must outlive the `sgemm` call.
    public struct Epilogue {
        public typealias Apply = @convention(c) (UnsafeRawPointer?, UnsafePointer<Float>?, Int, Int, Int, Int, Int) -> Void
        public var apply: Apply
        public var context: UnsafeRawPointer
        public init(apply: Apply, context: UnsafeRawPointer) { self.apply = apply; self.context = context }
    }

    /// - Parameters:
    ///   - transA/transB: use Aᵀ / Bᵀ. A is stored [m, k] (or [k, m] when transposed) with row stride lda.
    ///   - beta: 0 overwrites C (C may hold garbage), 1 accumulates.
    ///   - bias: n floats or nil; when given, every row's chains start from it (as if it had been copied into
    ///     each row of C and accumulated onto with beta 1, without that pass) and beta is not used.
    ///   - threads: workers sharing the product (1 = the calling thread only).
    ///   - epilogue: work on the finished blocks of C (nil: none).
    ///   - path: the instruction set (tests compare paths; it must be supported).
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, bias: UnsafePointer<Float>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = 1,
        epilogue: Epilogue? = nil, path: Path = BLAS.path
    ) {
        guard m > 0, n > 0 else { return }
        precondition(supports(path), "BLAS.sgemm: path \(path.name) is not supported by this CPU")
        let splitRows = m >= n
        let (side, unit) = splitRows ? (m, tile(path).rows) : (n, tile(path).cols)
        let units = (side + unit - 1) / unit
        // Double: m·n·k of valid sizes may exceed Int's range.
        let enough = Int(min(Double(m) * Double(n) * Double(max(k, 1)) / Double(workPerThread), Double(units)))
        let parts = max(1, min(threads, enough))
        if parts == 1 {
            call(path, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, bias, c, ldc, epilogue, 0, 0)
            return
        }
        let chunk = (units + parts - 1) / parts * unit
        Parallel.forRanges(parts, threads: parts) { range in
            for part in range {
                let lo = part * chunk, len = min(chunk, side - lo)
                guard len > 0 else { continue }
                if splitRows {
                    call(path, transA, transB, len, n, k, alpha, transA ? a + lo : a + lo * lda, lda, b, ldb,
                         beta, bias, c + lo * ldc, ldc, epilogue, lo, 0)
                } else {
                    call(path, transA, transB, m, len, k, alpha, a, lda, transB ? b + lo * ldb : b + lo, ldb,
                         beta, bias.map { $0 + lo }, c + lo, ldc, epilogue, 0, lo)
                }
            }
        }
    }

    static func call(_ path: Path, _ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                     _ beta: Float, _ bias: UnsafePointer<Float>?, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                     _ epilogue: Epilogue?, _ row0: Int, _ col0: Int) {
        let status = mfx_sgemm(path.rawValue, ta ? 1 : 0, tb ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, bias, c, ldc,
                               epilogue?.apply, epilogue?.context, row0, col0)
        // The packing buffers are at most ~1.7 MiB; failing to get them is out of memory, as a Swift allocation.
        precondition(status == 0, "BLAS.sgemm: out of memory for the packing buffers")
    }

    // MARK: - OpenBLAS (float64 evaluation metrics and LAPACK only)

    /// Pins OpenBLAS to one thread, once, before its first use (libmixflow parallelises itself; OpenBLAS's
    /// own pool would spin against ours). Call before any direct OpenBLAS call.
    public static func useOpenBLAS() { _ = pinned }

    /// Swift runs a static initializer exactly once, thread-safely.
    static let pinned: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// The kernel set OpenBLAS picked for this CPU ("SkylakeX", "Haswell", "Prescott", ...).
    public static var openBLASCore: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
}
