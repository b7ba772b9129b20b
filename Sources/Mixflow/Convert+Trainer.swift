import CMixflow
import MixflowCore
import MixflowModels

/// The first released size of mixflow_trainer_params (ABI 1); proj_coeff was appended after it.
let trainerParamsMinimumSize = 80

extension TrainerConfig {
    /// Converts the C struct (finite numbers, the schedule's shape); the values are validated once, by the
    /// Trainer that receives them (`Trainer.init`, `Trainer.update`), and reported under "params->".
    init(c p: mixflow_trainer_params) throws {
        self.init()
        func finite(_ v: Float, _ name: String) throws -> Double {
            guard v.isFinite else { throw MixflowError.invalidArgument("params->\(name) must be finite, got \(v)") }
            return Double(v)
        }
        let lr = try finite(p.lr, "lr"), finalLr = try finite(p.final_lr, "final_lr")
        if p.decay_end == 0 && p.warmup == 0 {
            schedule = .constant(lr)
        } else {
            guard p.decay_end > p.decay_start, p.decay_start >= 0, p.warmup >= 0 else {
                throw MixflowError.invalidArgument("params->decay_start/decay_end/warmup must satisfy 0 <= decay_start < decay_end "
                                                   + "and warmup >= 0, got \(p.decay_start), \(p.decay_end), \(p.warmup)")
            }
            schedule = .linearDecay(base: lr, final: finalLr, decayStart: Int(p.decay_start), decayEnd: Int(p.decay_end),
                                    warmup: Int(p.warmup))
        }
        optimizer.beta1 = try finite(p.beta1, "beta1")
        optimizer.beta2 = try finite(p.beta2, "beta2")
        optimizer.eps = try finite(p.eps, "eps")
        optimizer.weightDecay = try finite(p.weight_decay, "weight_decay")
        emaDecay = try finite(p.ema_decay, "ema_decay")
        let clip = try finite(p.max_grad_norm, "max_grad_norm")
        guard clip >= 0 else { throw MixflowError.invalidArgument("params->max_grad_norm must be >= 0 (0 = no clipping), got \(p.max_grad_norm)") }
        maxGradNorm = clip == 0 ? nil : clip
        guard p.proj_coeff.isFinite else { throw MixflowError.invalidArgument("params->proj_coeff must be finite, got \(p.proj_coeff)") }
        alignmentWeight = p.proj_coeff
        seed = p.seed
        threads = Int(p.num_threads)
    }

    var c: mixflow_trainer_params {
        var p = mixflow_trainer_params()
        p.struct_size = UInt32(MemoryLayout<mixflow_trainer_params>.size)
        switch schedule {
        case .constant(let lr):
            p.lr = Float(lr); p.final_lr = Float(lr)
        case .linearDecay(let base, let final, let start, let end, let warmup):
            p.lr = Float(base); p.final_lr = Float(final)
            p.decay_start = Int64(start); p.decay_end = Int64(end); p.warmup = Int64(warmup)
        }
        p.beta1 = Float(optimizer.beta1); p.beta2 = Float(optimizer.beta2); p.eps = Float(optimizer.eps)
        p.weight_decay = Float(optimizer.weightDecay); p.ema_decay = Float(emaDecay)
        p.max_grad_norm = Float(maxGradNorm ?? 0); p.seed = seed; p.num_threads = Int32(clamping: threads)
        p.proj_coeff = alignmentWeight
        return p
    }
}
