internal import CKernels
import MixflowCore
#if canImport(Glibc)
import Glibc
#endif

/// AdamW hyper-parameters. Defaults are the SiT recipe (betas (0.9, 0.999), eps 1e-8, no decay). The learning
/// rate is not here: it comes from a `LearningRateSchedule` at every step, its single source of truth.
public struct AdamWConfig: Equatable, Sendable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public var weightDecay: Double = 0

    public init() {}

    public func validate() throws {
        func bad(_ s: String) -> MixflowError { .invalidArgument(s) }
        guard beta1.isFinite, (0..<1).contains(beta1) else { throw bad("beta1 must be in [0, 1), got \(describe(beta1))") }
        guard beta2.isFinite, (0..<1).contains(beta2) else { throw bad("beta2 must be in [0, 1), got \(describe(beta2))") }
        guard eps.isFinite, eps > 0 else { throw bad("eps must be > 0, got \(describe(eps))") }
        guard weightDecay.isFinite, weightDecay >= 0 else { throw bad("weight_decay must be >= 0, got \(describe(weightDecay))") }
    }
}

/// AdamW over one flat parameter buffer, with PyTorch's `torch.optim.AdamW` semantics (non-fused,
/// non-amsgrad): for each trainable element, at step k (1-based),
/// ```
/// p ← p·(1 − lr·wd)
/// m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
/// p ← p − (lr / (1 − β1^k)) · m / (√v / √(1 − β2^k) + eps)
/// ```
/// Elements outside `trainable` ranges (e.g. SiT's fixed pos_embed) are never touched, as PyTorch never
/// sees them. The state (m, v, k) is public so checkpoints can save and restore it bit for bit.
public final class AdamW {
    public var config: AdamWConfig
    public var m: [Float]
    public var v: [Float]
    /// Number of updates applied so far.
    public var step: Int = 0
    public let trainable: [Range<Int>]
    public var threads: Int

    public init(count: Int, trainable: [Range<Int>], config: AdamWConfig, threads: Int = 0) throws {
        try config.validate()
        for r in trainable where r.lowerBound < 0 || r.upperBound > count {
            throw MixflowError.invalidArgument("trainable range \(r) is outside 0..<\(count)")
        }
        self.config = config
        self.trainable = trainable
        self.threads = threads
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
    }

    /// Applies one update with learning rate `lr` (from the schedule) to `params` using `grads`.
    public func update(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, lr: Double) {
        step += 1
        let k = Double(step)
        let c = config
        let decay = Float(1 - lr * c.weightDecay)
        let b1 = Float(c.beta1), b2 = Float(c.beta2)
        // PyTorch computes the bias corrections and the step size in Python floats (double), then the
        // element-wise maths in float32: keep that split so results match to the last bits as far as possible.
        let stepSize = Float(lr / (1 - pow(c.beta1, k)))
        let bias2Sqrt = Float((1 - pow(c.beta2, k)).squareRoot())
        let eps = Float(c.eps)
        m.withUnsafeMutableBufferPointer { mb in
            v.withUnsafeMutableBufferPointer { vb in
                let mp = mb.baseAddress!, vp = vb.baseAddress!
                for range in trainable {
                    Parallel.forRanges(range.count, threads: Parallel.threads(threads), grain: 1 << 15) { sub in
                        let lo = range.lowerBound + sub.lowerBound
                        mfx_adamw(kernelISA, params + lo, grads + lo, mp + lo, vp + lo, sub.count, decay, b1, b2,
                                  stepSize, bias2Sqrt, eps)
                    }
                }
            }
        }
    }
}
