import CMixflow
import MixflowCore
import MixflowMethod

// MARK: - Params

/// Fills `out` with the default sampler: Heun (torchdiffeq heun2), Linear path, SiT convention, velocity
/// prediction, 50 grid points, no guidance, no exposure-bias baseline; SDE fields at SiT's CLI defaults
/// (sigma diffusion, norm 1, Mean last step of size 0.04); dopri5 atol 1e-6, rtol 1e-3.
///
/// - Parameters:
///   - out: the struct to fill (its first `struct_size` bytes are written).
///   - struct_size: `sizeof(mixflow_sampler_params)` as the caller sees it.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size too small) or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_sampler_default_params(
    _ out: UnsafeMutablePointer<mixflow_sampler_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_sampler_default_params") {
        try writeParams(SamplerConfig().c, to: out, "out", structSize: struct_size, minimumSize: samplerParamsMinimumSize)
    }
}

// MARK: - Handle

/// Creates a sampler (its grid is built once). Free it with `mixflow_sampler_free`.
///
/// - Parameters:
///   - params: filled by `mixflow_sampler_default_params`, then edited; copied.
///   - out: receives the new handle; set to NULL on failure.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, unknown enum, value out of range),
///   `MIXFLOW_ERR_UNSUPPORTED` (RAE with an SDE method; REPA with SDE Heun or a non-Linear SDE) or
///   `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_sampler_create(
    _ params: UnsafePointer<mixflow_sampler_params>?,
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_sampler>?>?
) -> mixflow_status {
    capi("mixflow_sampler_create") {
        let out = try require(out, "out")
        out.pointee = nil
        let p = try readParams(params, "params", defaults: SamplerConfig().c, minimumSize: samplerParamsMinimumSize)
        let sampler = try Sampler(try SamplerConfig(c: p))
        out.pointee = Handle.make(sampler, kind: .sampler, as: mixflow_sampler.self)
    }
}

/// Frees a sampler. NULL is a no-op.
@c public func mixflow_sampler_free(_ sampler: UnsafeMutablePointer<mixflow_sampler>?) {
    Handle.free(sampler, kind: .sampler)
}

/// Copies the sampler's parameters into `out` (its first `struct_size` bytes).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT`, `MIXFLOW_ERR_INVALID_HANDLE` or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_sampler_get_params(
    _ sampler: UnsafeMutablePointer<mixflow_sampler>?,
    _ out: UnsafeMutablePointer<mixflow_sampler_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_sampler_get_params") {
        let s = try Handle.get(sampler, kind: .sampler, "sampler", as: Sampler.self)
        try writeParams(s.config.c, to: out, "out", structSize: struct_size, minimumSize: samplerParamsMinimumSize)
    }
}

/// The model-convention times of the trajectory points, K of them: the codebase's grid (SiT/RAE: num_steps
/// points; REPA: num_steps + 1), plus the end of SiT's last SDE step when one is taken. Point 0 is the noise.
/// Step i of `mixflow_sampler_step` evaluates the model at time i and moves to point i + 1.
///
/// - Parameters:
///   - out_t: [capacity] doubles, or NULL to query the count only.
///   - capacity: size of out_t; must be >= K when out_t is not NULL.
///   - out_count: receives K.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL out_count, capacity too small) or
///   `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_sampler_timesteps(
    _ sampler: UnsafeMutablePointer<mixflow_sampler>?,
    _ out_t: UnsafeMutablePointer<Double>?, _ capacity: Int64, _ out_count: UnsafeMutablePointer<Int64>?
) -> mixflow_status {
    capi("mixflow_sampler_timesteps") {
        let s = try Handle.get(sampler, kind: .sampler, "sampler", as: Sampler.self)
        let count = try require(out_count, "out_count")
        let times = s.outputTimes
        count.pointee = Int64(times.count)
        guard let out_t else { return }
        guard capacity >= Int64(times.count) else {
            throw MixflowError.invalidArgument("capacity must be >= \(times.count) (the number of timesteps), got \(capacity)")
        }
        for (i, t) in times.enumerated() { out_t[i] = t }
    }
}

// MARK: - Sampling

/// Samples from noise with the model as a callback (the whole trajectory; SiT's `sample_ode`/`sample_sde`).
///
/// - Parameters:
///   - model: the network (see `mixflow_model_fn`); called synchronously on this thread, never after return.
///   - guide_model: the weaker model of autoguidance (MIXFLOW_GUIDANCE_AUTO); otherwise may be NULL.
///   - noise: [batch, dim], finite: the starting state (x at the noise end).
///   - y: [batch] labels; required for CFG, otherwise may be NULL (passed to the model as is).
///   - first_sample: global index of row 0, so that SDE noise does not depend on the batch split.
///   - out_x: [batch, dim] the sample; may alias noise.
///   - out_trajectory: [K, batch, dim] every trajectory point (K from `mixflow_sampler_timesteps`); may be NULL.
///   - out_nfe: receives the number of drift evaluations (CFG counts once per doubled batch); may be NULL.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf in noise, missing y or
///   guide), `MIXFLOW_ERR_INVALID_HANDLE`, `MIXFLOW_ERR_CALLBACK` (a model returned non-zero or produced
///   NaN/Inf; the message names the code, the step and the time; outputs are then unspecified) or
///   `MIXFLOW_ERR_UNSUPPORTED` (dopri5 step-size underflow or more than 10^6 steps).
@c public func mixflow_sample(
    _ sampler: UnsafeMutablePointer<mixflow_sampler>?,
    _ model: mixflow_model_fn?, _ user_data: UnsafeMutableRawPointer?,
    _ guide_model: mixflow_model_fn?, _ guide_user_data: UnsafeMutableRawPointer?,
    _ noise: UnsafePointer<Float>?, _ batch: Int64, _ dim: Int64, _ y: UnsafePointer<Int32>?, _ first_sample: UInt64,
    _ out_x: UnsafeMutablePointer<Float>?, _ out_trajectory: UnsafeMutablePointer<Float>?,
    _ out_nfe: UnsafeMutablePointer<Int64>?
) -> mixflow_status {
    capi("mixflow_sample") {
        let s = try Handle.get(sampler, kind: .sampler, "sampler", as: Sampler.self)
        guard let model else { throw MixflowError.invalidArgument("model must not be NULL") }
        let noise = try require(noise, "noise")
        let (b, d, n) = try matrixShape(batch, dim)
        let out = try require(out_x, "out_x")
        if s.config.guidance == .autoguidance, guide_model == nil {
            throw MixflowError.invalidArgument("guide_model must not be NULL with MIXFLOW_GUIDANCE_AUTO")
        }
        if s.config.guidance == .classifierFree, y == nil {
            throw MixflowError.invalidArgument("y must not be NULL with MIXFLOW_GUIDANCE_CFG")
        }
        try RandomStream.checkSampleRange(firstSample: first_sample, batch: b)
        if out_trajectory != nil {
            _ = try checkedCount([Int64(s.outputTimes.count), batch, dim], "out_trajectory")
        }
        try requireFinite(UnsafeBufferPointer(start: noise, count: n), "noise")
        if UnsafePointer(out) != noise { out.update(from: noise, count: n) }
        let guide = guide_model.map { CallbackModel($0, guide_user_data) }
        let nfe = try s.sample(model: CallbackModel(model, user_data), guide: guide, labels: y, x: out, batch: b, dim: d,
                               firstSample: first_sample, trajectory: out_trajectory)
        out_nfe?.pointee = Int64(nfe)
    }
}

/// Advances one step for callers that keep the model loop (diffusers' `step`): from state x at time
/// `timesteps[index]` and `model_output` = model(x, t, y) (after any guidance the caller applies) to the
/// state at `timesteps[index + 1]`. Only one-evaluation methods: MIXFLOW_SAMPLER_EULER and
/// MIXFLOW_SAMPLER_SDE_EULER (the SiT last step is step K − 2). Epsilon Scaling applies; the time-shifted
/// query does not (shift the model's time yourself). The same loop gives the same bits as `mixflow_sample`.
///
/// - Parameters:
///   - model_output: [batch, dim], finite. x: [batch, dim], finite.
///   - index: in [0, K − 2]. first_sample: global index of row 0 (SDE noise).
///   - out_next: [batch, dim]; may alias x.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size or index, NaN/Inf),
///   `MIXFLOW_ERR_INVALID_HANDLE` or `MIXFLOW_ERR_UNSUPPORTED` (another method, or a time-shifted query).
@c public func mixflow_sampler_step(
    _ sampler: UnsafeMutablePointer<mixflow_sampler>?,
    _ model_output: UnsafePointer<Float>?, _ index: Int64,
    _ x: UnsafePointer<Float>?, _ batch: Int64, _ dim: Int64, _ first_sample: UInt64,
    _ out_next: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_sampler_step") {
        let s = try Handle.get(sampler, kind: .sampler, "sampler", as: Sampler.self)
        let output = try require(model_output, "model_output")
        let x = try require(x, "x")
        let (b, d, n) = try matrixShape(batch, dim)
        let out = try require(out_next, "out_next")
        guard index >= 0, index < Int64(s.numSteps) else {
            throw MixflowError.invalidArgument("index must be in [0, \(s.numSteps - 1)], got \(index)")
        }
        try RandomStream.checkSampleRange(firstSample: first_sample, batch: b)
        _ = n
        try s.step(modelOutput: output, index: Int(index), x: x, out: out, batch: b, dim: d, firstSample: first_sample)
    }
}

// MARK: - Labels

/// RAE's "equal" label sampling (`--label-sampling equal`): `n` class labels with ⌊n / num_classes⌋ of every
/// class, the remaining n mod num_classes drawn uniformly from [0, num_classes), all n then shuffled with a
/// seeded Fisher–Yates permutation (libmixflow's Philox streams; the same seed gives the same labels on every
/// machine and thread count). For an FID-50K set: n = 50000, num_classes = 1000 gives 50 of each class.
/// Stateless; safe from any thread.
///
/// - Parameters:
///   - n: number of labels, in [1, 2^31 − 1].
///   - num_classes: in [1, 2^24].
///   - seed: any value.
///   - out_labels: [n] receives the labels in [0, num_classes).
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL out_labels, n or num_classes out of range).
@c public func mixflow_equal_labels(
    _ n: Int64, _ num_classes: Int32, _ seed: UInt64, _ out_labels: UnsafeMutablePointer<Int32>?
) -> mixflow_status {
    capi("mixflow_equal_labels") {
        guard n >= 1, n <= Int64(EqualLabels.maxCount) else {
            throw MixflowError.invalidArgument("n must be in [1, \(EqualLabels.maxCount)], got \(n)")
        }
        guard num_classes >= 1, Int(num_classes) <= EqualLabels.maxClasses else {
            throw MixflowError.invalidArgument("num_classes must be in [1, \(EqualLabels.maxClasses)], got \(num_classes)")
        }
        let out = try require(out_labels, "out_labels")
        try EqualLabels.fill(UnsafeMutableBufferPointer(start: out, count: Int(n)), numClasses: Int(num_classes), seed: seed)
    }
}
