import CMixflow
import MixflowCore
import MixflowMethod

/// The first released size of mixflow_sampler_params (ABI 1).
let samplerParamsMinimumSize = 112

extension SamplerConfig {
    init(c p: mixflow_sampler_params) throws {
        self.init()
        method = try convertEnum(p.method.rawValue, "params->method", SamplerMethod.self)
        path = try convertEnum(p.path.rawValue, "params->path", InterpolationPath.self)
        convention = try convertEnum(p.convention.rawValue, "params->convention", TimeConvention.self)
        prediction = try convertEnum(p.prediction.rawValue, "params->prediction", Prediction.self)
        diffusionForm = try convertEnum(p.diffusion_form.rawValue, "params->diffusion_form", DiffusionForm.self)
        lastStep = try convertEnum(p.last_step.rawValue, "params->last_step", LastStep.self)
        guidance = try convertEnum(p.guidance.rawValue, "params->guidance", GuidanceMode.self)
        numSteps = Int(p.num_steps)
        seed = p.seed
        sampleEps = p.sample_eps == -1 ? nil : Double(p.sample_eps)
        timeShift = Double(p.time_shift)
        atol = Double(p.atol); rtol = Double(p.rtol)
        diffusionNorm = Double(p.diffusion_norm)
        lastStepSize = Double(p.last_step_size)
        guidanceScale = Double(p.guidance_scale)
        nullClass = p.null_class
        guard p.channels >= 0 else { throw MixflowError.invalidArgument("params->channels must be >= 0, got \(p.channels)") }
        channels = Int(p.channels)
        guidedChannels = Int(p.guided_channels)
        guard p.guidance_t_min.isFinite, p.guidance_t_max.isFinite, p.guidance_t_min <= p.guidance_t_max else {
            throw MixflowError.invalidArgument("params->guidance_t_min must be <= guidance_t_max (both finite), got "
                                               + "\(p.guidance_t_min) and \(p.guidance_t_max)")
        }
        guidanceInterval = Double(p.guidance_t_min)...Double(p.guidance_t_max)
        epsScaleBase = Double(p.eps_scale_base); epsScaleSlope = Double(p.eps_scale_slope)
        queryShiftConstant = Double(p.query_shift_constant); queryShiftProportional = Double(p.query_shift_proportional)
        do { try validate() } catch let MixflowError.invalidArgument(m) {
            throw MixflowError.invalidArgument("params->" + m)
        }
    }

    var c: mixflow_sampler_params {
        var p = mixflow_sampler_params()
        p.struct_size = UInt32(MemoryLayout<mixflow_sampler_params>.size)
        p.method = mixflow_sampler_method(UInt32(method.rawValue))
        p.path = mixflow_path(UInt32(path.rawValue))
        p.convention = mixflow_convention(UInt32(convention.rawValue))
        p.prediction = mixflow_prediction(UInt32(prediction.rawValue))
        p.num_steps = Int32(numSteps)
        p.seed = seed
        p.sample_eps = sampleEps.map(Float.init) ?? -1
        p.time_shift = Float(timeShift)
        p.atol = Float(atol); p.rtol = Float(rtol)
        p.diffusion_form = mixflow_diffusion_form(UInt32(diffusionForm.rawValue))
        p.diffusion_norm = Float(diffusionNorm)
        p.last_step = mixflow_last_step(UInt32(lastStep.rawValue))
        p.last_step_size = Float(lastStepSize)
        p.guidance = mixflow_guidance(UInt32(guidance.rawValue))
        p.guidance_scale = Float(guidanceScale)
        p.null_class = nullClass
        p.channels = Int32(channels); p.guided_channels = Int32(guidedChannels)
        p.guidance_t_min = Float(guidanceInterval.lowerBound); p.guidance_t_max = Float(guidanceInterval.upperBound)
        p.eps_scale_base = Float(epsScaleBase); p.eps_scale_slope = Float(epsScaleSlope)
        p.query_shift_constant = Float(queryShiftConstant); p.query_shift_proportional = Float(queryShiftProportional)
        return p
    }
}

/// A C model callback as a `SamplerModel`: a non-zero status becomes `ModelCallbackFailure`.
final class CallbackModel: SamplerModel {
    let fn: mixflow_model_fn
    let user: UnsafeMutableRawPointer?
    init(_ fn: mixflow_model_fn, _ user: UnsafeMutableRawPointer?) { self.fn = fn; self.user = user }

    func evaluate(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int, dim: Int,
                  out: UnsafeMutablePointer<Float>) throws {
        let status = fn(user, Int64(batch), Int64(dim), x, t, y, out)
        if status != 0 { throw ModelCallbackFailure(code: status) }
    }
}
