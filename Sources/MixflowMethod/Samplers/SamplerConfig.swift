import MixflowCore

/// Which integrator advances the state (docs/exactness.md §4.2–§4.3). Fixed-grid ODE solvers follow torchdiffeq's semantics;
/// in the REPA convention, `euler`/`heun` are REPA's own loop (Heun on all but the last step) and
/// `sdeEuler` is REPA's `euler_maruyama_sampler`.
public enum SamplerMethod: Int32, Sendable, CaseIterable {
    case euler = 0, heun = 1, midpoint = 2, rk4 = 3, dopri5 = 4, sdeEuler = 5, sdeHeun = 6

    public var isSDE: Bool { self == .sdeEuler || self == .sdeHeun }
}

/// SiT's `compute_diffusion` forms w(s) at SiT time s (docs/exactness.md §2.2). SiT's `constant` form is broken in the
/// official code and not offered; `increasingDecreasing` is the form behind SiT's misspelt key.
public enum DiffusionForm: Int32, Sendable, CaseIterable {
    case sigma = 0, linear = 1, sbdm = 2, decreasing = 3, increasingDecreasing = 4
}

/// SiT's last SDE step, applied once at t1 after the loop (docs/exactness.md §4.3).
public enum LastStep: Int32, Sendable, CaseIterable {
    case none = 0, mean = 1, euler = 2, tweedie = 3
}

/// How two model evaluations are combined.
public enum GuidanceMode: Int32, Sendable, CaseIterable {
    /// One evaluation on the caller's labels.
    case none = 0
    /// Classifier-free guidance: the batch is doubled with the null class; g = u + w (c − u).
    case classifierFree = 1
    /// Autoguidance (RAE): a second, weaker model G on the same labels; g = G + w (main − G).
    case autoguidance = 2
}

/// Everything that defines a sampler. Validated by `validate()`; the messages use the C field names.
public struct SamplerConfig: Equatable, Sendable {
    public var method: SamplerMethod = .heun
    public var path: InterpolationPath = .linear
    public var convention: TimeConvention = .sit
    public var prediction: Prediction = .velocity
    /// Grid points (SiT, RAE) or steps (REPA), as each codebase counts them (docs/exactness.md §4.1).
    public var numSteps: Int = 50
    /// nil = SiT's rule (VP or non-velocity 1e-3, Linear/GVP velocity 0).
    public var sampleEps: Double? = nil
    /// RAE's dimension shift s ≥ 1 of the sampling grid (1 = none).
    public var timeShift: Double = 1
    public var atol: Double = 1e-6
    public var rtol: Double = 1e-3
    public var diffusionForm: DiffusionForm = .sigma
    public var diffusionNorm: Double = 1
    public var lastStep: LastStep = .mean
    public var lastStepSize: Double = 0.04
    public var guidance: GuidanceMode = .none
    public var guidanceScale: Double = 1
    public var nullClass: Int32 = 1000
    /// Channels guided per sample laid out as [channels, H, W]; 0 = all (RAE, REPA); 3 = SiT's rule.
    public var guidedChannels: Int = 0
    /// Channels C of one sample (needed only when `guidedChannels` > 0).
    public var channels: Int = 0
    /// Guidance is applied when the model-convention time lies in [min, max].
    public var guidanceInterval: ClosedRange<Double> = 0...1
    /// Epsilon Scaling λ(n) = epsScaleBase + epsScaleSlope·n at noise level n (1, 0 = off).
    public var epsScaleBase: Double = 1
    public var epsScaleSlope: Double = 0
    /// Time-shifted queries: the network sees noise level n' = clamp(n + shiftConstant + shiftProportional·n).
    public var queryShiftConstant: Double = 0
    public var queryShiftProportional: Double = 0
    public var seed: UInt64 = 0
    public var threads: Int = 0

    public init() {}

    public var effectiveSampleEps: Double {
        if let e = sampleEps { return e }
        if path == .vp || prediction != .velocity { return 1e-3 }
        return 0
    }

    public var usesEpsilonScaling: Bool { epsScaleBase != 1 || epsScaleSlope != 0 }
    public var usesQueryShift: Bool { queryShiftConstant != 0 || queryShiftProportional != 0 }

    public func validate() throws {
        func bad(_ s: String) -> MixflowError { .invalidArgument(s) }
        func finite(_ v: Double, _ name: String) throws {
            guard v.isFinite else { throw bad("\(name) must be finite, got \(v)") }
        }
        let minSteps = convention == .repa ? 1 : 2
        guard numSteps >= minSteps, numSteps <= 1_000_000 else {
            throw bad("num_steps must be in [\(minSteps), 1000000], got \(numSteps)")
        }
        if let e = sampleEps { guard e.isFinite, e >= 0, e < 0.5 else { throw bad("sample_eps must be -1 (official rule) or in [0, 0.5), got \(e)") } }
        guard timeShift.isFinite, timeShift >= 1 else { throw bad("time_shift must be >= 1 (1 = no shift), got \(timeShift)") }
        guard atol.isFinite, atol > 0 else { throw bad("atol must be > 0, got \(atol)") }
        guard rtol.isFinite, rtol >= 0 else { throw bad("rtol must be >= 0, got \(rtol)") }
        guard diffusionNorm.isFinite, diffusionNorm >= 0 else { throw bad("diffusion_norm must be >= 0, got \(diffusionNorm)") }
        guard lastStepSize.isFinite, lastStepSize >= 0, lastStepSize < 1 else {
            throw bad("last_step_size must be in [0, 1), got \(lastStepSize)")
        }
        try finite(guidanceScale, "guidance_scale")
        guard guidedChannels >= 0 else { throw bad("guided_channels must be >= 0 (0 = all), got \(guidedChannels)") }
        if guidedChannels > 0 {
            guard channels > 0 else { throw bad("channels must be > 0 when guided_channels > 0, got \(channels)") }
            guard guidedChannels <= channels else {
                throw bad("guided_channels must be <= channels (\(channels)), got \(guidedChannels)")
            }
        }
        guard guidanceInterval.lowerBound.isFinite, guidanceInterval.upperBound.isFinite else {
            throw bad("guidance_t_min and guidance_t_max must be finite")
        }
        try finite(epsScaleBase, "eps_scale_base"); try finite(epsScaleSlope, "eps_scale_slope")
        // λ must stay positive over the whole noise range [0, 1] (it divides the predicted noise).
        guard min(epsScaleBase, epsScaleBase + epsScaleSlope) > 0 else {
            throw bad("eps_scale_base + eps_scale_slope * n must be > 0 for n in [0, 1], got base \(epsScaleBase), slope \(epsScaleSlope)")
        }
        try finite(queryShiftConstant, "query_shift_constant"); try finite(queryShiftProportional, "query_shift_proportional")
        guard threads >= 0 else { throw bad("num_threads must be >= 0 (0 = all cores), got \(threads)") }
        if method.isSDE {
            if convention == .rae {
                throw MixflowError.unsupported("method: RAE's SDE sampler is unused and buggy in the official code "
                                               + "(docs/exactness.md §2.3); use an ODE method with the RAE convention")
            }
            if convention == .repa {
                guard method == .sdeEuler else {
                    throw MixflowError.unsupported("method: the REPA convention has only Euler–Maruyama (REPA's euler_maruyama_sampler)")
                }
                guard path == .linear else {
                    throw MixflowError.unsupported("path: REPA's SDE sampler is written for the Linear path only")
                }
            }
        }
    }
}
