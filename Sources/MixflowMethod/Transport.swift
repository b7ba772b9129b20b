import MixflowCore

/// The MixFlow training transport: draws (t, m, x0), builds the slowed input x_m and the target, and
/// computes the loss and its gradient with respect to the model output. Stateless apart from its config,
/// so one instance can serve any number of batches and threads.
///
/// Per sample (global index `firstSample + i`), with s(·) the SiT time of the convention:
/// ```
/// (u1, u2)  = uniforms of RandomStream(seed, step, sample, .scalars), block 0
/// t         = shift(timeDistribution(u1))           the label fed to the network
/// m         = slowedTime(t, u2, γ)                   the time at which the input is built
///             (mixture .uniform: m = shift(t0 + u2·(t1 − t0)), independent of t)
/// x0        = Gaussian(RandomStream(seed, step, sample, .noise))
/// x_in      = α(s(m))·x1 + σ(s(m))·(x0 + λ·ξ)        ξ only with Input Perturbation (λ > 0)
/// target    = velocity: sign·(α̇(s*)·x1 + σ̇(s*)·x0);  noise: x0;  score: −x0/σ(s*)
/// loss_i    = c_i · mean_j (pred − target)²           c = 1 (velocity), w(s*) (noise), w(s*)·σ(s*)² (score)
/// ```
/// where s* = s(t) or s(m) by `targetTime`, and w is SiT's loss weight. t and m are rounded to float32
/// before any coefficient is computed, so outputs are consistent with the times the caller sees.
public final class Transport: @unchecked Sendable {
    public let config: TransportConfig
    public let interval: ClosedRange<Double>

    public init(_ config: TransportConfig) throws {
        let config = config.canonical
        try config.validate()
        self.config = config
        self.interval = config.trainingInterval
    }

    // MARK: - Times

    /// The label t and slowed time m of one sample, as float32 (what the network and the caller see).
    public func times(seed: UInt64, step: UInt64, sample: UInt32) -> (t: Float, m: Float) {
        let (u1, u2) = RandomStream(seed: seed, step: step, sample: sample, tag: .scalars).uniformPair(0)
        let c = config.convention
        var t = config.timeDistribution.draw(u1, interval: interval, convention: c)
        if config.timeShift != 1 {
            t = c.time(noiseLevel: TimeShift.apply(c.noiseLevel(t), shift: config.timeShift))
        }
        let tf = Float(t)
        if config.mixture == .uniform {
            var m = interval.lowerBound + u2 * (interval.upperBound - interval.lowerBound)
            if config.timeShift != 1 {
                m = c.time(noiseLevel: TimeShift.apply(c.noiseLevel(m), shift: config.timeShift))
            }
            return (tf, Float(m))
        }
        // The mixture is applied to the float32 label, as the official code does with its float32 tensor.
        let m = slowedTime(Double(tf), uniform: u2, gamma: config.gamma, convention: c)
        return (tf, config.gamma == 0 ? tf : Float(m))
    }

    // MARK: - Per-sample coefficients

    /// Coefficients of the element-wise maps for one sample (all in float32 for the kernels).
    public struct SampleCoefficients: Equatable, Sendable, BitwiseCopyable {
        /// x_in = inX1·x1 + inX0·(x0 + λξ)
        public var inX1: Float, inX0: Float
        /// target = tgX1·x1 + tgX0·x0
        public var tgX1: Float, tgX0: Float
        /// loss_i = lossScale · mean (pred − target)²
        public var lossScale: Double
    }

    public func coefficients(t: Float, m: Float) -> SampleCoefficients {
        let c = config.convention, path = config.path
        let input = path.coefficients(sitTime: c.sitTime(Double(m)))
        let sTarget = c.sitTime(Double(config.targetTime == .t ? t : m))
        let target = path.coefficients(sitTime: sTarget)
        var out = SampleCoefficients(inX1: Float(input.alpha), inX0: Float(input.sigma), tgX1: 0, tgX0: 0, lossScale: 1)
        switch config.prediction {
        case .velocity:
            out.tgX1 = Float(c.velocitySign * target.dAlpha)
            out.tgX0 = Float(c.velocitySign * target.dSigma)
        case .noise:
            out.tgX0 = 1
            out.lossScale = weight(sitTime: sTarget)
        case .score:
            out.tgX0 = Float(-1 / target.sigma)
            out.lossScale = weight(sitTime: sTarget) * target.sigma * target.sigma
        }
        return out
    }

    /// SiT's loss weight at SiT time `s`: 1, (drift_var/σ)² or drift_var/σ².
    public func weight(sitTime s: Double) -> Double {
        switch config.lossWeight {
        case .none: return 1
        case .velocity:
            let r = config.path.driftVariance(sitTime: s) / config.path.coefficients(sitTime: s).sigma
            return r * r
        case .likelihood:
            let sigma = config.path.coefficients(sitTime: s).sigma
            return config.path.driftVariance(sitTime: s) / (sigma * sigma)
        }
    }

    /// Whether `loss` needs the times (only weighted noise/score losses do).
    public var lossNeedsTimes: Bool {
        config.prediction != .velocity && config.lossWeight != .none || config.prediction == .score
    }
}
