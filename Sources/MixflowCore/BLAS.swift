internal import CBLAS

/// The one door to OpenBLAS. Row-major single-precision GEMM:
/// `C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C`, op = identity or transpose.
///
/// Level-3 OpenBLAS splits M and N across its own threads, never K, so each element of C is the same
/// dot product in the same order whatever OPENBLAS_NUM_THREADS is: results do not depend on threads.
public enum BLAS {
    /// - Parameters:
    ///   - transA/transB: use Aᵀ / Bᵀ. A is stored [m, k] (or [k, m] when transposed) with row stride lda.
    ///   - beta: 0 overwrites C (C may hold garbage), 1 accumulates.
    @inlinable
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // OpenBLAS would still scale C by beta; do that ourselves and skip the call.
            if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } } }
            return
        }
        sgemmRaw(transA, transB, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    @usableFromInline
    static func sgemmRaw(_ ta: Bool, _ tb: Bool, _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: Float,
                         _ a: UnsafePointer<Float>, _ lda: Int32, _ b: UnsafePointer<Float>, _ ldb: Int32,
                         _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int32) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
}
