/// The slowed interpolation mixture of MixFlow: the input is built at a noisier time m than the label t.
///
/// SiT convention (1 = data): `m = t·(1 − γ·u)`, so m ~ U[(1−γ)t, t].
/// Noise-at-1 conventions: `m = τ + u·γ·(1 − τ)`, so m ~ U[τ, τ + γ(1−τ)] (MixFlow-RAE's line).
/// Both are the same statement on the noise level n: `n_m = n + u·γ·(1 − n)`.
/// Edge cases: γ = 0 returns t itself (standard training, bit for bit); u = 0 returns t.
@inlinable
public func slowedTime(_ t: Double, uniform u: Double, gamma: Double, convention: TimeConvention) -> Double {
    if gamma == 0 { return t }
    return convention.noiseAtOne ? t + u * gamma * (1 - t) : t * (1 - gamma * u)
}

/// The interval [lo, hi] (in the convention's own time) from which `slowedTime` draws m for label t.
public func mixtureInterval(_ t: Double, gamma: Double, convention: TimeConvention) -> ClosedRange<Double> {
    convention.noiseAtOne ? t...(t + gamma * (1 - t)) : ((1 - gamma) * t)...t
}
