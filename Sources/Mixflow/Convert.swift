import CMixflow
import MixflowCore
import MixflowMethod

// C structs and enums <-> validated Swift configurations. Unknown enum values are errors here, before the
// core ever sees them.

func convertEnum<E: RawRepresentable>(_ raw: UInt32, _ name: String, _ type: E.Type) throws -> E where E.RawValue == Int32 {
    guard raw <= UInt32(Int32.max), let value = E(rawValue: Int32(raw)) else {
        throw MixflowError.invalidArgument("\(name) has unknown value \(Int32(bitPattern: raw))")
    }
    return value
}

/// The first released size of mixflow_transport_params (ABI 1).
let transportParamsMinimumSize = 56

extension TransportConfig {
    init(c p: mixflow_transport_params) throws {
        self.init()
        path = try convertEnum(p.path.rawValue, "params->path", InterpolationPath.self)
        convention = try convertEnum(p.convention.rawValue, "params->convention", TimeConvention.self)
        prediction = try convertEnum(p.prediction.rawValue, "params->prediction", Prediction.self)
        lossWeight = try convertEnum(p.loss_weight.rawValue, "params->loss_weight", LossWeight.self)
        targetTime = try convertEnum(p.target_time.rawValue, "params->target_time", TargetTime.self)
        switch p.time_dist.rawValue {
        case MIXFLOW_TIME_DIST_UNIFORM.rawValue: timeDistribution = .uniform
        case MIXFLOW_TIME_DIST_BETA21.rawValue: timeDistribution = .beta21
        case MIXFLOW_TIME_DIST_LOGIT_NORMAL.rawValue:
            timeDistribution = .logitNormal(mean: Double(p.logit_normal_mean), std: Double(p.logit_normal_std))
        default:
            throw MixflowError.invalidArgument("params->time_dist has unknown value \(Int32(bitPattern: p.time_dist.rawValue))")
        }
        gamma = Double(p.gamma)
        if p.train_eps == -1 {
            trainEps = nil
        } else {
            trainEps = Double(p.train_eps)
        }
        timeShift = Double(p.time_shift)
        inputPerturbation = Double(p.input_perturbation)
        threads = Int(p.num_threads)
        mixture = try convertEnum(p.mixture.rawValue, "params->mixture", Mixture.self)
        // Validate the fields the Swift enum for logit-normal does not carry when another law is chosen.
        guard p.logit_normal_mean.isFinite else {
            throw MixflowError.invalidArgument("params->logit_normal_mean must be finite, got \(p.logit_normal_mean)")
        }
        guard p.logit_normal_std.isFinite, p.logit_normal_std > 0 else {
            throw MixflowError.invalidArgument("params->logit_normal_std must be > 0, got \(p.logit_normal_std)")
        }
        // The values are validated once, by the Transport that receives them (reported under "params->").
    }


    var c: mixflow_transport_params {
        var p = mixflow_transport_params()
        p.struct_size = UInt32(MemoryLayout<mixflow_transport_params>.size)
        p.path = mixflow_path(UInt32(path.rawValue))
        p.convention = mixflow_convention(UInt32(convention.rawValue))
        p.prediction = mixflow_prediction(UInt32(prediction.rawValue))
        p.loss_weight = mixflow_loss_weight(UInt32(lossWeight.rawValue))
        p.target_time = mixflow_target_time(UInt32(targetTime.rawValue))
        p.logit_normal_mean = 0
        p.logit_normal_std = 1
        switch timeDistribution {
        case .uniform: p.time_dist = MIXFLOW_TIME_DIST_UNIFORM
        case .beta21: p.time_dist = MIXFLOW_TIME_DIST_BETA21
        case .logitNormal(let mean, let std):
            p.time_dist = MIXFLOW_TIME_DIST_LOGIT_NORMAL
            p.logit_normal_mean = Float(mean)
            p.logit_normal_std = Float(std)
        }
        p.gamma = Float(gamma)
        p.train_eps = trainEps.map(Float.init) ?? -1
        p.time_shift = Float(timeShift)
        p.input_perturbation = Float(inputPerturbation)
        p.num_threads = Int32(clamping: threads)
        p.mixture = mixflow_mixture(UInt32(mixture.rawValue))
        return p
    }
}

/// Runs `body`, reporting an invalid value as a field of the caller's params struct ("params->gamma …").
func asParams<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let MixflowError.invalidArgument(m) where !m.hasPrefix("params->") {
        throw MixflowError.invalidArgument("params->" + m)
    }
}
