internal import CKernels
import MixflowCore

// MARK: - SwiGLU gate (SwiGLUFFN of DiT^DH, docs/exactness.md §6.3)
// The w12 output row of a token is [a (H) | b (H)] (chunk(2) order: a first); hidden = SiLU(a) ⊙ b.
// The maths is in the C kernels (Sources/CKernels); rows are shared among threads.

/// inp: [N, 2H] → out: [N, H] (overwritten).
public func swigluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int, hidden h: Int,
                          threads: Int) {
    parallelFor(n, threads: threads, grain: max(1, elementGrain / (4 * h))) { rows in
        mfx_swiglu_forward(kernelISA, out + rows.lowerBound * h, inp + rows.lowerBound * 2 * h, rows.count, h)
    }
}

/// dout: [N, H], inp: [N, 2H] (the w12 output) → dinp: [N, 2H] (+=).
///
/// `da = dout ⊙ b ⊙ σ(a)·(1 + a·(1 − σ(a)))`, `db = dout ⊙ SiLU(a)`.
public func swigluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                           n: Int, hidden h: Int, threads: Int) {
    parallelFor(n, threads: threads, grain: max(1, elementGrain / (4 * h))) { rows in
        let lo = rows.lowerBound
        mfx_swiglu_backward(kernelISA, dinp + lo * 2 * h, dout + lo * h, inp + lo * 2 * h, rows.count, h)
    }
}
