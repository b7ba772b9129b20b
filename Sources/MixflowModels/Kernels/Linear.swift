internal import CKernels
import MixflowCore

// MARK: - Linear layer (PyTorch nn.Linear: weight [out, in], y = x·Wᵀ + b)

/// inp: [N, C], w: [OC, C], b: [OC] (may be nil) → out: [N, OC] (overwritten), then `then` (if any) applied
/// to `out` by the GEMM while each block of it is still in cache.
///
/// The bias is the start value of every output's FMA chain (as addmm accumulates onto it), so it costs
/// no pass over `out`; nor does `then`.
public func linearForward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, n: Int, c: Int, oc: Int, threads: Int, then: LinearEpilogue? = nil
) {
    func gemm(_ epilogue: BLAS.Epilogue?) {
        BLAS.sgemm(transA: false, transB: true, m: n, n: oc, k: c, a: inp, lda: c, b: weight, ldb: c,
                   beta: 0, bias: bias, c: out, ldc: oc, threads: threads, epilogue: epilogue)
    }
    switch then {
    case nil:
        gemm(nil)
    case let .gelu(act):
        var ctx = mfx_gelu_epilogue_ctx(isa: kernelISA, out: act, ldo: oc)
        withUnsafePointer(to: &ctx) { gemm(BLAS.Epilogue(apply: mfx_gelu_epilogue, context: $0)) }
    case let .gatedResidual(res, x, gate):
        var ctx = mfx_gated_residual_epilogue_ctx(isa: kernelISA, out: res, x: x, ld: oc, gate: gate.mod + gate.column,
                                                  gate_stride: gate.stride, tokens: gate.tokens)
        withUnsafePointer(to: &ctx) { gemm(BLAS.Epilogue(apply: mfx_gated_residual_epilogue, context: $0)) }
    }
}

/// Element-wise work on a linear layer's output `out` that `linearForward` hands to the GEMM (which does it on
/// each finished block while the block is in cache), with the bits of the kernel it replaces.
public enum LinearEpilogue {
    /// act = GELU(out), [N, OC] (what `geluForward(out: act, inp: out)` computes).
    case gelu(act: UnsafeMutablePointer<Float>)
    /// res = x + gate ⊙ out, [N, OC], res may alias x (what `gatedResidualForward(out: res, x: x, y: out)` computes).
    case gatedResidual(res: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, gate: Gate)

    /// Where a gated residual's gate lives: row `row / tokens` of `mod` (row stride `stride`) at `column`.
    public struct Gate {
        public var mod: UnsafePointer<Float>
        public var stride: Int, column: Int, tokens: Int
        public init(mod: UnsafePointer<Float>, stride: Int, column: Int, tokens: Int) {
            self.mod = mod; self.stride = stride; self.column = column; self.tokens = tokens
        }
    }
}

/// dout: [N, OC] → dinp: [N, C] (+=, or overwritten with `overwriteInputGradient`; may be nil),
/// dweight: [OC, C] (+=), dbias: [OC] (+=, may be nil). Overwriting saves the caller zeroing dinp first.
///
/// The bias gradient sums dout over rows in row order for every column, whichever thread owns the
/// column, so the result does not depend on the thread count.
public func linearBackward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    n: Int, c: Int, oc: Int, threads: Int, overwriteInputGradient: Bool = false
) {
    if let dinp {
        BLAS.sgemm(transA: false, transB: false, m: n, n: c, k: oc, a: dout, lda: oc, b: weight, ldb: c,
                   beta: overwriteInputGradient ? 0 : 1, c: dinp, ldc: c, threads: threads)
    }
    BLAS.sgemm(transA: true, transB: false, m: oc, n: c, k: n, a: dout, lda: oc, b: inp, ldb: c,
               beta: 1, c: dweight, ldc: c, threads: threads)
    guard let dbias else { return }
    columnSumAccumulate(dbias, dout, rows: n, cols: oc, threads: threads)
}

/// out[j] += Σ_r m[r, j] for m: [rows, cols]; columns are split into blocks of 64 across threads and
/// each column is summed in row order.
func columnSumAccumulate(_ out: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, rows: Int, cols: Int,
                         threads: Int) {
    let block = 64
    let blocks = (cols + block - 1) / block
    let t = rows * cols < elementGrain ? 1 : threads
    parallelFor(blocks, threads: t) { range in
        let lo = range.lowerBound * block, hi = min(cols, range.upperBound * block)
        mfx_column_sums(kernelISA, out + lo, m + lo, rows, cols, hi - lo)
    }
}
