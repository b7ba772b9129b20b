/// Which end of [0, 1] is noise, and each codebase's training-interval rule.
///
/// SiT (and the MixFlow paper) put noise at t = 0 and data at t = 1; RAE and REPA put data at 0 and noise
/// at 1. The network always receives its own convention's t. Internally every formula is evaluated at the
/// SiT time `s` (`s = t` for SiT, `s = 1 − t` otherwise) and velocities change sign with the direction.
public enum TimeConvention: Int32, Sendable, CaseIterable {
    case sit = 0
    case rae = 1
    case repa = 2

    public var noiseAtOne: Bool { self != .sit }

    /// SiT time of a time in this convention.
    @inlinable public func sitTime(_ t: Double) -> Double { noiseAtOne ? 1 - t : t }

    /// Noise level n (0 = data, 1 = noise) of a time in this convention.
    @inlinable public func noiseLevel(_ t: Double) -> Double { noiseAtOne ? t : 1 - t }

    /// The time in this convention with noise level `n`.
    @inlinable public func time(noiseLevel n: Double) -> Double { noiseAtOne ? n : 1 - n }

    /// d(SiT time)/d(this time): the factor that turns SiT-convention velocities into this convention's.
    @inlinable public var velocitySign: Double { noiseAtOne ? -1 : 1 }

    /// The upper end of the un-trimmed interval: RAE's `check_interval` starts from t1 = 1 − 1/1000.
    public var baseIntervalEnd: Double { self == .rae ? 1 - 1.0 / 1000 : 1 }
}
