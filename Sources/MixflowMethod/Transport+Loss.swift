import MixflowCore

extension Transport {
    /// Per-sample losses, their mean, and the gradient of the mean with respect to `pred`.
    ///
    /// `loss_i = c_i · mean_j (pred_ij − target_ij)²`, `mean = Σ loss_i / batch`,
    /// `grad_ij = 2·c_i·(pred_ij − target_ij) / (batch·dim)`, with c_i from `coefficients(t:m:)`.
    /// Summation runs over fixed 8192-element blocks in a fixed order, so the result is identical for
    /// every thread count.
    ///
    /// - Parameters:
    ///   - t, m: the times `prepare` returned; needed only when `lossNeedsTimes` (m only for target time m).
    ///   - perSample: [batch] or nil; grad: [batch, dim] or nil (may alias `pred`).
    /// - Returns: the mean loss.
    /// - Throws: `invalidArgument` when pred, target, t or m hold NaN/Inf or a loss overflows; the outputs are then
    ///   untouched (the sums are checked before perSample and grad are written).
    public func loss(pred: UnsafePointer<Float>, target: UnsafePointer<Float>, t: UnsafePointer<Float>?,
                     m: UnsafePointer<Float>?, batch: Int, dim: Int,
                     perSample: UnsafeMutablePointer<Float>?, grad: UnsafeMutablePointer<Float>?) throws -> Double {
        // Scratch first: a batch whose scratch cannot exist is refused before the caller's buffers are read.
        let blocks = (dim + elementBlock - 1) / elementBlock
        let scale = try ScratchBuffer(batch, repeating: 1.0, "the loss weights of batch \(batch)")
        let partial = try ScratchBuffer(batch * blocks, repeating: 0.0, "the partial sums of batch \(batch)")
        let losses = try ScratchBuffer(batch, repeating: Float(0), "the losses of batch \(batch)")
        // Times given are checked whether or not this loss reads them (the header lists NaN/Inf t or m as invalid).
        if let t { try requireFinite(UnsafeBufferPointer(start: t, count: batch), "t") }
        if let m { try requireFinite(UnsafeBufferPointer(start: m, count: batch), "m") }
        if lossNeedsTimes {
            guard let t else { throw MixflowError.invalidArgument("t must not be NULL for a weighted noise/score loss") }
            if config.targetTime == .m && m == nil {
                throw MixflowError.invalidArgument("m must not be NULL when the target is evaluated at m")
            }
            for i in 0..<batch { scale[i] = coefficients(t: t[i], m: m?[i] ?? t[i]).lossScale }
        }
        let invCount = 2.0 / (Double(batch) * Double(dim))
        // Two passes: the sums first (nothing written), the gradient only once every sum is known to be finite,
        // so a failed call leaves grad untouched (it may alias pred, which the error message then still reads).
        func pass(writing grad: UnsafeMutablePointer<Float>?) {
            let part = partial.base, sc = scale.base
            Parallel.forDynamicRanges(batch * blocks, threads: Parallel.threads(config.threads),
                                      grain: workGrain(dim: dim, blocks: blocks)) { items in
                for item in items {
                    let i = item / blocks, b = item % blocks
                    let j0 = b * elementBlock, n = min(elementBlock, dim - j0)
                    let row = i * dim + j0
                    part[item] = lossSpan(pred: pred + row, target: target + row, grad: grad.map { $0 + row },
                                          count: n, gradScale: Float(sc[i] * invCount))
                }
            }
        }
        pass(writing: nil)
        var total = 0.0
        for i in 0..<batch {
            var s = 0.0
            for b in 0..<blocks { s += partial[i * blocks + b] }
            guard s.isFinite else {
                let rowP = UnsafeBufferPointer(start: pred + i * dim, count: dim)
                let rowT = UnsafeBufferPointer(start: target + i * dim, count: dim)
                if let j = rowP.firstIndex(where: { !$0.isFinite }) {
                    throw MixflowError.invalidArgument("pred[\(i), \(j)] is \(rowP[j]); every element must be finite")
                }
                if let j = rowT.firstIndex(where: { !$0.isFinite }) {
                    throw MixflowError.invalidArgument("target[\(i), \(j)] is \(rowT[j]); every element must be finite")
                }
                throw MixflowError.invalidArgument("the loss of sample \(i) overflows float range")
            }
            let li = scale[i] * s / Double(dim)
            losses[i] = Float(li)
            total += li
        }
        if let grad { pass(writing: grad) }
        perSample?.update(from: losses.base, count: batch)
        return total / Double(batch)
    }
}

/// Σ (pred − target)² over one span (float32 SIMD accumulation, returned as Double), writing
/// grad = gradScale·(pred − target) when grad is non-nil. NaN/Inf in the inputs make the sum non-finite.
@inline(__always)
func lossSpan(pred: UnsafePointer<Float>, target: UnsafePointer<Float>, grad: UnsafeMutablePointer<Float>?,
              count: Int, gradScale: Float) -> Double {
    let p = UnsafeRawPointer(pred), q = UnsafeRawPointer(target)
    let g = grad.map { UnsafeMutableRawPointer($0) }
    let gs = SIMD16<Float>(repeating: gradScale)
    var acc = SIMD16<Float>(repeating: 0)
    var j = 0
    while j + 16 <= count {
        let o = j * 4
        let d = p.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self) - q.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
        acc += d * d
        g?.storeBytes(of: gs * d, toByteOffset: o, as: SIMD16<Float>.self)
        j += 16
    }
    var tail: Float = 0
    while j < count {
        let d = pred[j] - target[j]
        tail += d * d
        grad?[j] = gradScale * d
        j += 1
    }
    // Sum the lanes in Double in a fixed order.
    var s = Double(tail)
    for lane in 0..<16 { s += Double(acc[lane]) }
    return s
}
