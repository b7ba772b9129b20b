#if canImport(Glibc)
import Glibc
#endif

/// The law of the training time t, drawn from a uniform u ~ U[t0, t1) on the training interval.
public enum TimeDistribution: Equatable, Sendable {
    /// t = u (SiT, REPA, RAE's `uniform`).
    case uniform
    /// MixFlow's Beta(2,1): density 2t at the data end. t = √u (SiT convention), t = 1 − √u (RAE/REPA,
    /// exactly MixFlow-RAE's `t = 1 - sqrt(t)`). With p(m|t) = 1/(γt), it makes (m, t) uniform on the triangle.
    case beta21
    /// RAE's truncated logit-normal on [t0, t1] by inverse CDF: U ~ U[Φ(a), Φ(b)], Z = μ + σΦ⁻¹(U),
    /// t = sigmoid(Z) clamped to [t0, t1], with a = (logit t0 − μ)/σ, b = (logit t1 − μ)/σ.
    case logitNormal(mean: Double, std: Double)

    /// Maps the uniform `u01` in [0, 1) to a time in `convention` on `interval`.
    public func draw(_ u01: Double, interval: ClosedRange<Double>, convention: TimeConvention) -> Double {
        let (t0, t1) = (interval.lowerBound, interval.upperBound)
        switch self {
        case .uniform:
            return u01 * (t1 - t0) + t0
        case .beta21:
            let u = u01 * (t1 - t0) + t0
            return convention.noiseAtOne ? 1 - u.squareRoot() : u.squareRoot()
        case .logitNormal(let mean, let std):
            let a = (Self.logit(t0) - mean) / std, b = (Self.logit(t1) - mean) / std
            let (pa, pb) = (Self.normalCDF(a), Self.normalCDF(b))
            let p = pa + u01 * (pb - pa)
            let z = mean + std * Self.normalQuantile(p)
            let t = 1 / (1 + exp(-z))
            return min(max(t, t0), t1)
        }
    }

    static func logit(_ t: Double) -> Double {
        // logit(0) = −∞ and logit(1) = +∞ are meaningful bounds here (Φ(±∞) = 0 or 1).
        log(t) - log1p(-t)
    }

    static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// Φ⁻¹(p): Acklam's rational approximation refined by two Newton steps on erfc (≈ 1e-15 relative).
    static func normalQuantile(_ p: Double) -> Double {
        if p <= 0 { return -.infinity }
        if p >= 1 { return .infinity }
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let lowTail = 0.02425
        var x: Double
        if p < lowTail {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q+c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q+1)
        } else if p <= 1 - lowTail {
            let q = p - 0.5, r = q * q
            x = (((((a[0]*r+a[1])*r+a[2])*r+a[3])*r+a[4])*r+a[5])*q / (((((b[0]*r+b[1])*r+b[2])*r+b[3])*r+b[4])*r+1)
        } else {
            let q = (-2 * log1p(-p)).squareRoot()
            x = -(((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q+c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q+1)
        }
        for _ in 0..<2 {   // Newton on Φ(x) − p; the density cannot vanish in the representable range used
            let e = normalCDF(x) - p
            let density = exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
            if density > 0 { x -= e / density }
        }
        return x
    }
}

/// RAE's dimension-dependent time shift, applied to the noise level n (0 = data, 1 = noise):
/// `n ← s·n / (1 + (s − 1)·n)`, s = √(C·H·W / 4096). In RAE's convention n is its t, so this is its line.
public enum TimeShift {
    @inlinable
    public static func apply(_ n: Double, shift s: Double) -> Double {
        s == 1 ? n : s * n / (1 + (s - 1) * n)
    }

    /// RAE's s = √(dim / baseDim) with baseDim 4096.
    public static func forDimension(_ dim: Int, baseDim: Int = 4096) -> Double {
        (Double(dim) / Double(baseDim)).squareRoot()
    }
}
