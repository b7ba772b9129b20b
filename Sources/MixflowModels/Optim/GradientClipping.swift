import MixflowCore

/// `torch.nn.utils.clip_grad_norm_` over one flat gradient buffer: the global L2 norm of all gradients;
/// if a maximum is set, every gradient is multiplied by min(1, max_norm / (norm + 1e-6)).
public enum GradientClipping {
    /// The global L2 norm, summed over fixed 64k-element blocks in a fixed order (deterministic for any
    /// thread count), in double precision.
    public static func norm(_ grads: UnsafePointer<Float>, count: Int, threads: Int = 0) -> Double {
        let block = 1 << 16
        let blocks = (count + block - 1) / block
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { part in
            Parallel.forRanges(blocks, threads: Parallel.threads(threads)) { r in
                for b in r {
                    let lo = b * block, hi = min(count, lo + block)
                    // float32 squares summed in SIMD lanes inside the block (as torch's float32 norm does),
                    // blocks summed in double.
                    var acc = SIMD16<Float>(repeating: 0)
                    let raw = UnsafeRawPointer(grads)
                    var i = lo
                    while i + 16 <= hi {
                        let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                        acc += x * x
                        i += 16
                    }
                    var s = 0.0
                    for l in 0..<16 { s += Double(acc[l]) }
                    while i < hi { s += Double(grads[i]) * Double(grads[i]); i += 1 }
                    part[b] = s
                }
            }
        }
        return partial.reduce(0, +).squareRoot()
    }

    /// Clips in place and returns the norm before clipping.
    @discardableResult
    public static func clip(_ grads: UnsafeMutablePointer<Float>, count: Int, maxNorm: Double, threads: Int = 0) -> Double {
        let total = norm(grads, count: count, threads: threads)
        let coefficient = min(1, maxNorm / (total + 1e-6))
        if coefficient < 1 {
            let c = Float(coefficient)
            Parallel.forRanges(count, threads: Parallel.threads(threads), grain: 1 << 16) { r in
                for i in r { grads[i] *= c }
            }
        }
        return total
    }
}
