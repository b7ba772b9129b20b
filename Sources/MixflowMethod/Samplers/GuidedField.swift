import MixflowCore

/// The drift the integrators see: dx/dτ in the model's convention at grid time τ, built from one or two
/// model evaluations (guidance), the optional exposure-bias baselines, and the path's conversions.
///
/// Owns its scratch buffers, counts function evaluations (one per drift evaluation, whatever the guidance;
/// CFG doubles the batch, not the count), rejects non-finite model output, and turns model failures into
/// `MixflowError.callback` naming the step and the time.
public final class GuidedField {
    public let config: SamplerConfig
    let model: SamplerModel
    let guide: SamplerModel?
    let labels: UnsafePointer<Int32>?
    public let batch: Int, dim: Int
    /// Drift evaluations so far.
    public internal(set) var evaluations = 0
    /// Integration step currently being taken (for messages).
    var step = 0
    /// When set, the guidance-interval test uses this time instead of the evaluation time (REPA's Heun
    /// corrector at τ_next is guided or not by the test on τ_cur).
    var guidanceTestTime: Double? = nil

    // Scratch sized by the caller's batch (ScratchBuffer, allocated here, before any model call): doubled input,
    // times, labels and outputs (CFG), and the guided prediction.
    let xx: ScratchBuffer<Float>, tt: ScratchBuffer<Float>, yy: ScratchBuffer<Int32>, out2: ScratchBuffer<Float>
    let guided: ScratchBuffer<Float>
    let guidedPerSample: Int

    /// The last (guided) prediction, [batch, dim]; valid while the field lives.
    public var prediction: UnsafeBufferPointer<Float> { UnsafeBufferPointer(guided.buffer) }

    public init(config: SamplerConfig, model: SamplerModel, guide: SamplerModel? = nil,
                labels: UnsafePointer<Int32>?, batch: Int, dim: Int) throws {
        try config.validate()
        self.config = config; self.model = model; self.guide = guide; self.labels = labels
        self.batch = batch; self.dim = dim
        switch config.guidance {
        case .none: break
        case .classifierFree:
            guard labels != nil else { throw MixflowError.invalidArgument("y must not be NULL with classifier-free guidance") }
        case .autoguidance:
            guard guide != nil else { throw MixflowError.invalidArgument("guide_model must not be NULL with autoguidance") }
        }
        if config.guidedChannels > 0 {
            guard dim % config.channels == 0 else {
                throw MixflowError.invalidArgument("dim (\(dim)) must be a multiple of channels (\(config.channels)) when guided_channels > 0")
            }
            guidedPerSample = config.guidedChannels * (dim / config.channels)
        } else {
            guidedPerSample = dim
        }
        let doubled = config.guidance == .none ? 0 : 2 * batch, cfg = config.guidance == .classifierFree
        xx = try ScratchBuffer(cfg ? doubled * dim : 0, repeating: 0, "the doubled input of batch \(batch)")
        tt = try ScratchBuffer(max(doubled, batch), repeating: 0, "the times of batch \(batch)")
        yy = try ScratchBuffer(cfg ? doubled : 0, repeating: 0, "the doubled labels of batch \(batch)")
        out2 = try ScratchBuffer(doubled * dim, repeating: 0, "the doubled output of batch \(batch)")
        guided = try ScratchBuffer(batch * dim, repeating: 0, "the prediction of batch \(batch)")
    }

    /// The time the network is given at grid time τ: τ itself, or the time-shifted query
    /// n' = clamp(n + c + p·n, 0, 1) at noise level n (a shift toward noise for c, p > 0).
    public func networkTime(_ tau: Double) -> Float {
        guard config.usesQueryShift else { return Float(tau) }
        let c = config.convention
        let n = c.noiseLevel(tau)
        let shifted = min(1, max(0, n + config.queryShiftConstant + config.queryShiftProportional * n))
        return Float(c.time(noiseLevel: shifted))
    }

    /// λ(n) of Epsilon Scaling at grid time τ.
    public func epsScale(_ tau: Double) -> Double {
        config.epsScaleBase + config.epsScaleSlope * config.convention.noiseLevel(tau)
    }

    /// Evaluates the (guided) model prediction at (x, τ) into `prediction`.
    public func predict(_ x: UnsafePointer<Float>, tau: Double) throws {
        let tNet = networkTime(tau)
        evaluations += 1
        let n = batch * dim
        let inInterval = config.guidanceInterval.contains(guidanceTestTime ?? tau)
        let scale = Float(config.guidanceScale)
        switch config.guidance {
        case .classifierFree where inInterval:
            xx.base.update(from: x, count: n)
            (xx.base + n).update(from: x, count: n)
            for i in 0..<(2 * batch) { tt[i] = tNet; yy[i] = i < batch ? labels![i] : config.nullClass }
            try call(model, xx.base, yy.base, 2 * batch, out2.base, tau)
            // g = u + w (c − u) on the guided elements of every sample; the rest keeps the conditional output.
            let per = guidedPerSample, d = dim, o = out2.base, p = guided.base
            for i in 0..<batch {
                let c = o + i * d, u = o + (batch + i) * d, g = p + i * d
                for j in 0..<per { g[j] = u[j] + scale * (c[j] - u[j]) }
                for j in per..<d { g[j] = c[j] }
            }
        case .autoguidance where inInterval:
            for i in 0..<batch { tt[i] = tNet }
            try call(model, x, labels, batch, guided.base, tau)
            try call(guide!, x, labels, batch, out2.base, tau, name: "guide model")
            let o = out2.base, p = guided.base
            for j in 0..<n { p[j] = o[j] + scale * (p[j] - o[j]) }
        default:
            for i in 0..<batch { tt[i] = tNet }
            try call(model, x, labels, batch, guided.base, tau)
        }
    }

    /// dx/dτ at (x, τ) into `out` (may not alias x). `out = a·x + b·prediction`.
    public func velocity(_ x: UnsafePointer<Float>, tau: Double, out: UnsafeMutablePointer<Float>) throws {
        let map = velocityMap(tau)
        let a = Float(map.a), b = Float(map.b), n = batch * dim
        if config.guidance == .none {
            // One model call straight into `out`, then the affine map in place (identity for a velocity model
            // in its own convention): no extra pass over the state.
            evaluations += 1
            let tNet = networkTime(tau)
            for i in 0..<batch { tt[i] = tNet }
            try call(model, x, labels, batch, out, tau)
            if a == 0 && b == 1 { return }
            if a == 0 { for j in 0..<n { out[j] *= b } } else { for j in 0..<n { out[j] = a * x[j] + b * out[j] } }
            return
        }
        try predict(x, tau: tau)
        let p = guided.base
        if a == 0 {
            for j in 0..<n { out[j] = b * p[j] }
        } else {
            for j in 0..<n { out[j] = a * x[j] + b * p[j] }
        }
    }

    public func velocityMap(_ tau: Double) -> VelocityMap {
        VelocityMap.make(path: config.path, convention: config.convention, prediction: config.prediction,
                         modelTime: tau, epsScale: config.usesEpsilonScaling ? epsScale(tau) : 1)
    }

    // MARK: - Calls with error context

    /// Calls `m` on `b` rows of x with the times in `tt` and labels y.
    private func call(_ m: SamplerModel, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Int32>?, _ b: Int,
                      _ out: UnsafeMutablePointer<Float>, _ tau: Double, name: String = "model") throws {
        let where_ = "at step \(step) (t = \(Float(tau)))"
        do {
            try m.evaluate(x: x, t: tt.base, y: y, batch: b, dim: dim, out: out)
        } catch let failure as ModelCallbackFailure {
            throw MixflowError.callback("\(name) returned \(failure.code) \(where_)")
        } catch let error as MixflowError {
            // A native model's own error keeps its status (e.g. out of memory), with the step and time added.
            throw error.withMessage("\(name) failed \(where_): \(error.message)")
        } catch {
            throw MixflowError.callback("\(name) failed \(where_): \(error)")
        }
        do {
            try requireFinite(UnsafeBufferPointer(start: out, count: b * dim), "output")
        } catch let error as MixflowError {
            throw MixflowError.callback("\(name) produced a non-finite value \(where_): \(error.message)")
        }
    }
}

extension MixflowError {
    /// The same case with another message.
    func withMessage(_ m: String) -> MixflowError {
        switch self {
        case .invalidArgument: return .invalidArgument(m)
        case .invalidHandle: return .invalidHandle(m)
        case .outOfMemory: return .outOfMemory(m)
        case .io: return .io(m)
        case .format: return .format(m)
        case .unsupported: return .unsupported(m)
        case .callback: return .callback(m)
        case .cancelled: return .cancelled(m)
        case .abiMismatch: return .abiMismatch(m)
        case .internal: return .internal(m)
        }
    }
}
