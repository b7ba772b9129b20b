import MixflowCore
import MixflowCoreAVX2

/// Caller-owned output buffers of `Transport.prepare`, each [batch, dim] or [batch].
public struct PreparedBatchBuffers {
    public var xIn: UnsafeMutablePointer<Float>
    public var t: UnsafeMutablePointer<Float>
    public var m: UnsafeMutablePointer<Float>?
    public var noise: UnsafeMutablePointer<Float>?
    public var target: UnsafeMutablePointer<Float>
    public init(xIn: UnsafeMutablePointer<Float>, t: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>?,
                noise: UnsafeMutablePointer<Float>?, target: UnsafeMutablePointer<Float>) {
        self.xIn = xIn; self.t = t; self.m = m; self.noise = noise; self.target = target
    }
}

/// Work is cut into (sample, block) items of this many elements: a multiple of the Gaussian chunk, large
/// enough to amortise scheduling, small enough to balance B = 1 jobs over cores.
let elementBlock = 8192

/// Work items handed to a thread at a time by prepare and loss: about 32K elements, so that the shared
/// counter is touched rarely while a thread slowed down by another process leaves its share to the others.
func workGrain(dim: Int, blocks: Int) -> Int {
    max(1, 32_768 / max(1, min(dim, elementBlock)))
}

extension Transport {
    /// Fills a MixFlow training batch from data `x1` [batch, dim].
    ///
    /// - Parameters:
    ///   - firstSample: global index of row 0, so that workers that split one batch draw exactly the
    ///     numbers a single worker would (the randomness of a row depends on (seed, step, firstSample + i)).
    /// - Throws: `invalidArgument` when x1 holds NaN/Inf (outputs are then unspecified) or indices overflow.
    public func prepare(x1: UnsafePointer<Float>, batch: Int, dim: Int, seed: UInt64, step: UInt64,
                        firstSample: UInt64, out: PreparedBatchBuffers) throws {
        guard step <= RandomStream.maxStep else {
            throw MixflowError.invalidArgument("step must be < 2^60, got \(step)")
        }
        try RandomStream.checkSampleRange(firstSample: firstSample, batch: batch)
        // Per-sample scalars first (cheap, serial): times and coefficients.
        let coeffs = try ScratchBuffer(batch, repeating: coefficients(t: 0, m: 0), "the coefficients of batch \(batch)")
        for i in 0..<batch {
            let (t, m) = times(seed: seed, step: step, sample: UInt32(truncatingIfNeeded: firstSample &+ UInt64(i)))
            out.t[i] = t
            out.m?[i] = m
            coeffs[i] = coefficients(t: t, m: m)
        }
        let blocks = (dim + elementBlock - 1) / elementBlock
        let lambda = Float(config.inputPerturbation)
        let badRow = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { badRow.deallocate() }
        badRow.initialize(to: -1)
        let outCopy = out
        withExtendedLifetime(coeffs) {
            let co = coeffs.base
            Parallel.forDynamicRanges(batch * blocks, threads: Parallel.threads(config.threads),
                                          grain: workGrain(dim: dim, blocks: blocks)) { items in
                for item in items {
                    let i = item / blocks, b = item % blocks
                    let j0 = b * elementBlock, n = min(elementBlock, dim - j0)
                    let sample = UInt32(truncatingIfNeeded: firstSample &+ UInt64(i))
                    let row = i * dim + j0
                    let finite = prepareSpan(
                        x1: x1 + row, xIn: outCopy.xIn + row, noise: outCopy.noise.map { $0 + row },
                        target: outCopy.target + row, start: j0, count: n, c: co[i], lambda: lambda,
                        noiseStream: RandomStream(seed: seed, step: step, sample: sample, tag: .noise),
                        perturbationStream: RandomStream(seed: seed, step: step, sample: sample, tag: .perturbation))
                    if !finite { badRow.pointee = i }   // any bad row will do for the message
                }
            }
        }
        if badRow.pointee >= 0 {
            let i = badRow.pointee
            let rowValues = UnsafeBufferPointer(start: x1 + i * dim, count: dim)
            let j = rowValues.firstIndex(where: { !$0.isFinite }) ?? 0
            throw MixflowError.invalidArgument("x1[\(i), \(j)] is \(rowValues[j]); every element must be finite")
        }
    }
}

/// The fused element-wise kernel of `prepare` on elements [start, start + count) of one sample
/// (`GaussianKernel.affineSpan`: noise, input and target in one pass over the span), on the AVX2 build of
/// the kernel when the CPU has it. Both builds give the same bits. Returns false if x1 holds a NaN or Inf
/// in the span. `start` is a multiple of 32.
@inline(__always)
func prepareSpan(x1: UnsafePointer<Float>, xIn: UnsafeMutablePointer<Float>, noise: UnsafeMutablePointer<Float>?,
                 target: UnsafeMutablePointer<Float>, start: Int, count: Int, c: Transport.SampleCoefficients,
                 lambda: Float, noiseStream: RandomStream, perturbationStream: RandomStream) -> Bool {
    let k = AffineNoiseCoefficients(inX1: c.inX1, inX0: c.inX0, tgX1: c.tgX1, tgX0: c.tgX0, lambda: lambda)
    if AVX2Kernels.isAvailable {
        return AVX2Kernels.affineSpan(x1: x1, xIn: xIn, target: target, noise: noise, start: start, count: count, c: k,
                                      noiseStream: noiseStream, perturbationStream: perturbationStream)
    }
    return Gaussian.affineSpan(x1: x1, xIn: xIn, target: target, noise: noise, start: start, count: count, c: k,
                               noiseStream: noiseStream, perturbationStream: perturbationStream)
}
