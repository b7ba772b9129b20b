internal import CKernels
import MixflowCore

// MARK: - GELU, tanh approximation (timm Mlp with approximate="tanh"), and SiLU
// g(x) = ½·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³); s(x) = x·σ(x). The maths is in the C kernels
// (Sources/CKernels); these wrappers split the work among threads. Every element is computed from its own
// input only, so the split never changes a result.

/// Elements per work item of the GELU loops (a multiple of the kernels' 16 lanes).
private let geluGrain = elementGrain

/// inp: [N] → out: [N] (may alias inp).
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int, threads: Int) {
    parallelFor(n, threads: threads, grain: geluGrain) { r in
        mfx_gelu_forward(kernelISA, out + r.lowerBound, inp + r.lowerBound, r.count)
    }
}

/// inp (the pre-activation): [N] → act = g(inp), slope = g'(inp): [N] (both overwritten). Backward uses it
/// to get the activation and the derivative from one tanh per element.
public func geluForwardSlope(act: UnsafeMutablePointer<Float>, slope: UnsafeMutablePointer<Float>,
                             inp: UnsafePointer<Float>, count n: Int, threads: Int) {
    parallelFor(n, threads: threads, grain: geluGrain) { r in
        mfx_gelu_forward_slope(kernelISA, act + r.lowerBound, slope + r.lowerBound, inp + r.lowerBound, r.count)
    }
}

/// dout, inp (the pre-activation): [N] → dinp: [N] (+=).
public func geluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         count n: Int, threads: Int) {
    parallelFor(n, threads: threads, grain: geluGrain) { r in
        mfx_gelu_backward(kernelISA, dinp + r.lowerBound, dout + r.lowerBound, inp + r.lowerBound, r.count)
    }
}

/// y ← y ⊙ x over N floats.
public func multiply(_ y: UnsafeMutablePointer<Float>, by x: UnsafePointer<Float>, count n: Int, threads: Int) {
    parallelFor(n, threads: threads, grain: 2 * elementGrain) { r in
        mfx_multiply(kernelISA, y + r.lowerBound, x + r.lowerBound, r.count)
    }
}

/// inp: [N] → out: [N] (may alias inp). Used on the conditioning vectors only ([B, D]), so serial.
public func siluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int) {
    mfx_silu_forward(kernelISA, out, inp, n)
}

/// dout, inp: [N] → dinp: [N] (+=). s'(x) = σ(x)·(1 + x·(1 − σ(x))).
public func siluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         count n: Int) {
    mfx_silu_backward(kernelISA, dinp, dout, inp, n)
}
