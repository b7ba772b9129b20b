internal import CBLAS

/// The one door to OpenBLAS. Row-major single-precision GEMM:
/// `C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C`, op = identity or transpose.
///
/// Threading and determinism: OpenBLAS is pinned to one thread (`openblas_set_num_threads(1)`, process
/// wide, on first use) and libmixflow parallelises GEMMs itself. A large product is cut into tiles of
/// `tile` rows (or columns) whose boundaries depend only on the shape, never on the thread count, and
/// the tiles are shared among `threads` workers; K is never split. Every element of C therefore comes
/// from the same single-threaded OpenBLAS call whatever `threads` is, so results are bit-identical for
/// any thread count. (It also avoids OpenBLAS's own pool spinning against ours on small products.)
public enum BLAS {
    /// Rows (or columns) per tile of a split product.
    public static let tile = 256

    /// Pins OpenBLAS to one thread once; Swift runs a static initializer exactly once, thread-safely.
    static let pinned: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// - Parameters:
    ///   - transA/transB: use Aᵀ / Bᵀ. A is stored [m, k] (or [k, m] when transposed) with row stride lda.
    ///   - beta: 0 overwrites C (C may hold garbage), 1 accumulates.
    ///   - threads: workers sharing the tiles (1 = the calling thread only).
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = 1
    ) {
        guard m > 0, n > 0 else { return }
        _ = pinned
        guard k > 0 else {
            // OpenBLAS would still scale C by beta; do that ourselves and skip the call.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        // The tiling is a function of (m, n) only.
        if m >= 2 * tile {
            Parallel.forRanges((m + tile - 1) / tile, threads: threads) { tiles in
                for t in tiles {
                    let r0 = t * tile, rows = min(tile, m - r0)
                    call(transA, transB, rows, n, k, alpha, transA ? a + r0 : a + r0 * lda, lda, b, ldb,
                         beta, c + r0 * ldc, ldc)
                }
            }
        } else if n >= 2 * tile {
            Parallel.forRanges((n + tile - 1) / tile, threads: threads) { tiles in
                for t in tiles {
                    let c0 = t * tile, cols = min(tile, n - c0)
                    call(transA, transB, m, cols, k, alpha, a, lda, transB ? b + c0 * ldb : b + c0, ldb,
                         beta, c + c0, ldc)
                }
            }
        } else {
            call(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
    }

    static func call(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                     _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
