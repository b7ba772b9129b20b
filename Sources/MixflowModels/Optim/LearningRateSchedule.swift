import MixflowCore

/// Learning rate as a function of the (0-based) optimiser step.
public enum LearningRateSchedule: Equatable, Sendable {
    /// SiT: the same rate at every step.
    case constant(Double)
    /// RAE's "linear" schedule: `base` until `decayStart`, then linear to `final` at `decayEnd`, constant after.
    /// Optional linear warm-up from 0 over the first `warmup` steps (RAE: warmup_from_zero false → 0).
    case linearDecay(base: Double, final: Double, decayStart: Int, decayEnd: Int, warmup: Int)

    public func rate(at step: Int) -> Double {
        switch self {
        case .constant(let lr):
            return lr
        case .linearDecay(let base, let final, let start, let end, let warmup):
            if warmup > 0 && step < warmup { return base * Double(step + 1) / Double(warmup) }
            if step <= start { return base }
            if step >= end { return final }
            let f = Double(step - start) / Double(end - start)
            return base + f * (final - base)
        }
    }

    public func validate() throws {
        switch self {
        case .constant(let lr):
            guard lr.isFinite, lr >= 0 else { throw MixflowError.invalidArgument("lr must be >= 0, got \(describe(lr))") }
        case .linearDecay(let base, let final, let start, let end, let warmup):
            guard base.isFinite, base >= 0, final.isFinite, final >= 0 else {
                throw MixflowError.invalidArgument("lr and final lr must be >= 0, got \(describe(base)) and \(describe(final))")
            }
            guard start >= 0, end > start, warmup >= 0 else {
                throw MixflowError.invalidArgument("decay steps must satisfy 0 <= decay_start < decay_end and warmup >= 0, got \(start), \(end), \(warmup)")
            }
        }
    }
}
