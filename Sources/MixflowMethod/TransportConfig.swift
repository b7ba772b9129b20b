import MixflowCore

/// What the network predicts (SiT's `ModelType`).
public enum Prediction: Int32, Sendable, CaseIterable {
    case velocity = 0, noise = 1, score = 2
}

/// SiT's loss weights (`loss_type`); ignored for velocity prediction, as in the official code.
public enum LossWeight: Int32, Sendable, CaseIterable {
    case none = 0, velocity = 1, likelihood = 2
}

/// When the regression target is evaluated: at the training time t (official MixFlow code: the target
/// comes from `plan(t, x0, x1)`), or at the slowed time m (the paper's u*(x_m, m)).
public enum TargetTime: Int32, Sendable, CaseIterable {
    case t = 0, m = 1
}

/// How the input time m is drawn for a label t.
/// `slowed`: MixFlow's slowed interpolation mixture, m ~ U[(1−γ)t, t] (mirrored for noise-at-1 conventions).
/// `uniform`: the paper's ablation "m ~ U[0, 1]": m is drawn uniformly on the training interval, independent
/// of t (so also at lower noise than t), then shifted like t; γ is not used.
public enum Mixture: Int32, Sendable, CaseIterable {
    case slowed = 0, uniform = 1
}

/// Everything that defines a MixFlow training objective. Validated on construction.
public struct TransportConfig: Equatable, Sendable {
    public var path: InterpolationPath = .linear
    public var convention: TimeConvention = .sit
    public var prediction: Prediction = .velocity
    public var lossWeight: LossWeight = .none
    public var timeDistribution: TimeDistribution = .beta21
    public var targetTime: TargetTime = .t
    /// Width of the slowed interpolation mixture: m ~ U[(1−γ)t, t]; 0 is standard flow matching.
    public var gamma: Double = 0.8
    /// nil = the official rule (`create_transport`).
    public var trainEps: Double? = nil
    /// RAE's dimension shift s ≥ 1 (1 = none).
    public var timeShift: Double = 1
    /// Input Perturbation strength λ (0 = off).
    public var inputPerturbation: Double = 0
    /// How m is drawn (the slowed mixture, or the uniform ablation).
    public var mixture: Mixture = .slowed
    /// 0 = all cores.
    public var threads: Int = 0

    public init() {}

    /// This config with every real parameter as the C API carries it: rounded to float32 and read back as the
    /// shortest decimal that rounds to that float (γ 0.8 from the CLI and 0.8f from C or Python are both 0.8, not
    /// 0.800000011920929). `Transport` applies it, so every entry point draws the same m from the same bits.
    public var canonical: TransportConfig {
        func decimal(_ x: Double) -> Double { Double(Float(x).description) ?? x }
        var c = self
        c.gamma = decimal(gamma)
        c.trainEps = trainEps.map(decimal)
        c.timeShift = decimal(timeShift)
        c.inputPerturbation = decimal(inputPerturbation)
        if case .logitNormal(let mean, let std) = timeDistribution {
            c.timeDistribution = .logitNormal(mean: decimal(mean), std: decimal(std))
        }
        return c
    }

    /// Checks ranges; the messages are the C API's (argument names as in `mixflow_transport_params`).
    public func validate() throws {
        func bad(_ s: String) -> MixflowError { .invalidArgument(s) }
        guard gamma.isFinite, (0...1).contains(gamma) else { throw bad("gamma must be in [0, 1], got \(describe(gamma))") }
        if let e = trainEps {
            guard e.isFinite, e >= 0, e < 0.5 else { throw bad("train_eps must be -1 (official rule) or in [0, 0.5), got \(describe(e))") }
        }
        guard timeShift.isFinite, timeShift >= 1 else { throw bad("time_shift must be >= 1 (1 = no shift), got \(describe(timeShift))") }
        guard inputPerturbation.isFinite, inputPerturbation >= 0 else {
            throw bad("input_perturbation must be >= 0 (0 = off), got \(describe(inputPerturbation))")
        }
        if case .logitNormal(let mean, let std) = timeDistribution {
            guard mean.isFinite else { throw bad("logit_normal_mean must be finite, got \(describe(mean))") }
            guard std.isFinite, std > 0 else { throw bad("logit_normal_std must be > 0, got \(describe(std))") }
        }
        guard threads >= 0 else { throw bad("num_threads must be >= 0 (0 = all cores), got \(threads)") }
    }

    /// The ε of SiT's `create_transport`: VP 1e-5; Linear/GVP non-velocity 1e-3; Linear/GVP velocity 0.
    public var effectiveTrainEps: Double {
        if let e = trainEps { return e }
        switch (path, prediction) {
        case (.vp, _): return 1e-5
        case (_, .velocity): return 0
        default: return 1e-3
        }
    }

    /// The training interval [t0, t1] of `check_interval(train_eps, sample_eps)` in this convention:
    /// VP: [0, 1 − ε]; Linear/GVP non-velocity: [ε, 1 − ε]; Linear/GVP velocity: [0, base end]
    /// (base end 1, or 0.999 for RAE).
    public var trainingInterval: ClosedRange<Double> {
        let eps = effectiveTrainEps
        let end = convention.baseIntervalEnd
        switch (path, prediction) {
        case (.vp, _): return 0...(1 - eps)
        case (_, .velocity): return 0...end
        default: return eps...(1 - eps)
        }
    }

    // MARK: - Presets

    /// The official recipes. `sit`: Linear, velocity, SiT convention, Beta(2,1), γ = 0.8.
    /// `rae`: RAE convention (interval [0, 0.999]), Beta(2,1) before the shift s = √(dim/4096), γ = 0.4.
    /// `repa`: REPA convention, Beta(2,1), γ = 0.8 (REPA's γ is not published; 0.8 follows SiT).
    /// `dim` is C·H·W of one sample (only `rae` uses it; 0 = no shift).
    public static func preset(_ name: String, dim: Int = 0) throws -> TransportConfig {
        var c = TransportConfig()
        switch name.lowercased() {
        case "sit":
            c.convention = .sit; c.gamma = 0.8
        case "rae":
            c.convention = .rae; c.gamma = 0.4
            guard dim >= 0 else { throw MixflowError.invalidArgument("dim must be >= 0 (0 = no shift), got \(dim)") }
            c.timeShift = dim == 0 ? 1 : max(1, TimeShift.forDimension(dim))
        case "repa":
            c.convention = .repa; c.gamma = 0.8
        default:
            throw MixflowError.invalidArgument("preset must be \"sit\", \"rae\" or \"repa\", got \"\(name)\"")
        }
        return c
    }
}
