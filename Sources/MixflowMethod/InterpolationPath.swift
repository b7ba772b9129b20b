#if canImport(Glibc)
import Glibc
#endif

/// An interpolant path `x_t = α_t·x1 + σ_t·x0` (x1 data, x0 noise), written in the SiT convention
/// (t = 0 noise, t = 1 data). SiT's `transport/path.py`: `ICPlan` (Linear), `GVPCPlan`, `VPCPlan`.
///
/// A path supplies (α, α̇) and (σ, σ̇); everything else (targets, drift, score ↔ velocity conversions,
/// loss weights) is written once on top of them.
public enum InterpolationPath: Int32, Sendable, CaseIterable {
    case linear = 0
    case gvp = 1
    case vp = 2

    /// VP constants of SiT's `VPCPlan` (its constructor calls them sigma_min / sigma_max).
    public static let vpBetaMin = 0.1
    public static let vpBetaMax = 20.0

    public struct Coefficients: Equatable, Sendable {
        public var alpha: Double, dAlpha: Double, sigma: Double, dSigma: Double
        public init(alpha: Double, dAlpha: Double, sigma: Double, dSigma: Double) {
            self.alpha = alpha; self.dAlpha = dAlpha; self.sigma = sigma; self.dSigma = dSigma
        }
    }

    /// (α, α̇, σ, σ̇) at SiT time `s` (0 noise, 1 data).
    ///
    /// Edge cases: VP's σ̇ is infinite at s = 1 (σ = 0); the official training interval stops at 1 − ε there.
    public func coefficients(sitTime s: Double) -> Coefficients {
        switch self {
        case .linear:
            return Coefficients(alpha: s, dAlpha: 1, sigma: 1 - s, dSigma: -1)
        case .gvp:
            let h = Double.pi / 2
            return Coefficients(alpha: sin(h * s), dAlpha: h * cos(h * s), sigma: cos(h * s), dSigma: -h * sin(h * s))
        case .vp:
            let (l, dl) = Self.vpLogMeanCoefficient(s)
            let alpha = exp(l)
            let e2 = exp(2 * l)
            let sigma = (1 - e2).squareRoot()
            return Coefficients(alpha: alpha, dAlpha: alpha * dl, sigma: sigma, dSigma: -e2 * dl / sigma)
        }
    }

    /// VP's L(t) = −¼(1−t)²(β_max − β_min) − ½(1−t)β_min and L'(t).
    static func vpLogMeanCoefficient(_ t: Double) -> (Double, Double) {
        let u = 1 - t, d = vpBetaMax - vpBetaMin
        return (-0.25 * u * u * d - 0.5 * u * vpBetaMin, 0.5 * u * d + 0.5 * vpBetaMin)
    }

    /// SiT's `compute_drift` variance term: (α̇/α)·σ² − σ·σ̇ at SiT time `s`.
    public func driftVariance(sitTime s: Double) -> Double {
        let c = coefficients(sitTime: s)
        return c.dAlpha / c.alpha * c.sigma * c.sigma - c.sigma * c.dSigma
    }
}
