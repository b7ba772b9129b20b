import MixflowCore

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
        guard firstSample + UInt64(batch) <= UInt64(UInt32.max) + 1 else {
            throw MixflowError.invalidArgument("first_sample + batch must be <= 2^32, got \(firstSample) + \(batch)")
        }
        // Per-sample scalars first (cheap, serial): times and coefficients.
        var coeffs = [SampleCoefficients]()
        coeffs.reserveCapacity(batch)
        for i in 0..<batch {
            let (t, m) = times(seed: seed, step: step, sample: UInt32(firstSample + UInt64(i)))
            out.t[i] = t
            out.m?[i] = m
            coeffs.append(coefficients(t: t, m: m))
        }
        let blocks = (dim + elementBlock - 1) / elementBlock
        let lambda = Float(config.inputPerturbation)
        let badRow = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { badRow.deallocate() }
        badRow.initialize(to: -1)
        let outCopy = out
        coeffs.withUnsafeBufferPointer { co in
            Parallel.forRanges(batch * blocks, threads: Parallel.threads(config.threads)) { items in
                for item in items {
                    let i = item / blocks, b = item % blocks
                    let j0 = b * elementBlock, n = min(elementBlock, dim - j0)
                    let sample = UInt32(firstSample + UInt64(i))
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

/// The fused element-wise kernel of `prepare` on elements [start, start + count) of one sample.
/// Returns false if x1 holds a NaN or Inf in the span. `start` is a multiple of 32.
@inline(__always)
func prepareSpan(x1: UnsafePointer<Float>, xIn: UnsafeMutablePointer<Float>, noise: UnsafeMutablePointer<Float>?,
                 target: UnsafeMutablePointer<Float>, start: Int, count: Int, c: Transport.SampleCoefficients,
                 lambda: Float, noiseStream: RandomStream, perturbationStream: RandomStream) -> Bool {
    let a = SIMD8<Float>(repeating: c.inX1), s = SIMD8<Float>(repeating: c.inX0)
    let p = SIMD8<Float>(repeating: c.tgX1), q = SIMD8<Float>(repeating: c.tgX0)
    let l = SIMD8<Float>(repeating: lambda)
    let perturb = lambda != 0
    var check = SIMD8<Float>(repeating: 0)
    let src = UnsafeRawPointer(x1)
    let dIn = UnsafeMutableRawPointer(xIn), dTg = UnsafeMutableRawPointer(target)
    let dNz = noise.map { UnsafeMutableRawPointer($0) }
    var k = UInt32(start / Gaussian.chunk)
    var j = 0
    // Full chunks: 32 elements as four SIMD8 lanes groups, matching Gaussian's element layout.
    while j + Gaussian.chunk <= count {
        let z = Gaussian.chunk32(noiseStream, k)
        var zin = z
        if perturb {
            let e = Gaussian.chunk32(perturbationStream, k)
            zin = (z.0 + l * e.0, z.1 + l * e.1, z.2 + l * e.2, z.3 + l * e.3)
        }
        @inline(__always) func lane(_ off: Int, _ zq: SIMD8<Float>, _ ziq: SIMD8<Float>) {
            let o = (j + off) * 4
            let x = src.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            check += x - x
            dIn.storeBytes(of: a * x + s * ziq, toByteOffset: o, as: SIMD8<Float>.self)
            dTg.storeBytes(of: p * x + q * zq, toByteOffset: o, as: SIMD8<Float>.self)
            dNz?.storeBytes(of: zq, toByteOffset: o, as: SIMD8<Float>.self)
        }
        lane(0, z.0, zin.0); lane(8, z.1, zin.1); lane(16, z.2, zin.2); lane(24, z.3, zin.3)
        j += Gaussian.chunk
        k &+= 1
    }
    var finite = !(check.sum().isNaN)
    // Tail: one partial chunk, element by element, with the same numbers.
    if j < count {
        var z = [Float](repeating: 0, count: Gaussian.chunk)
        var e = [Float](repeating: 0, count: Gaussian.chunk)
        z.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: noiseStream, start: start + j) }
        if perturb { e.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: perturbationStream, start: start + j) } }
        for r in 0..<(count - j) {
            let x = x1[j + r]
            if !x.isFinite { finite = false }
            let zi = perturb ? z[r] + lambda * e[r] : z[r]
            xIn[j + r] = c.inX1 * x + c.inX0 * zi
            target[j + r] = c.tgX1 * x + c.tgX0 * z[r]
            noise?[j + r] = z[r]
        }
    }
    return finite
}
