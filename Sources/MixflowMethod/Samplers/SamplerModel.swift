import MixflowCore
#if canImport(Glibc)
import Glibc
#endif

/// A network the samplers can query: `out = model(x, t, y)`.
///
/// - x: [batch, dim], t: [batch] in the model's own convention, y: [batch] class labels or nil,
///   out: [batch, dim] in the model's prediction type (velocity, noise or score).
/// The native models conform directly; C and Python callbacks arrive through `ClosureModel`.
/// Calls are synchronous, on the sampling thread, never concurrent.
public protocol SamplerModel: AnyObject {
    func evaluate(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?,
                  batch: Int, dim: Int, out: UnsafeMutablePointer<Float>) throws
}

/// Thrown by a model to report a caller's non-zero status; the sampler adds the step and the time.
public struct ModelCallbackFailure: Error, Equatable {
    public let code: Int32
    public init(code: Int32) { self.code = code }
}

/// A Swift closure `(x, t, y, out) throws -> Void` as a model.
public final class ClosureModel: SamplerModel {
    public typealias Function = (_ x: UnsafeBufferPointer<Float>, _ t: UnsafeBufferPointer<Float>,
                                 _ y: UnsafeBufferPointer<Int32>?, _ out: UnsafeMutableBufferPointer<Float>) throws -> Void
    let function: Function

    public init(_ function: @escaping Function) { self.function = function }

    public func evaluate(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?,
                         batch: Int, dim: Int, out: UnsafeMutablePointer<Float>) throws {
        try function(UnsafeBufferPointer(start: x, count: batch * dim), UnsafeBufferPointer(start: t, count: batch),
                     y.map { UnsafeBufferPointer(start: $0, count: batch) },
                     UnsafeMutableBufferPointer(start: out, count: batch * dim))
    }
}

// MARK: - Prediction → velocity conversions (docs/exactness.md §2.2), as affine maps of (x, prediction)

/// `velocity = a·x + b·prediction` in the model's convention at model time τ.
///
/// Written at SiT time s (s = τ for SiT, 1 − τ otherwise) and multiplied by the convention's sign:
/// score model `v = (α̇/α)·x + drift_var·ŝ` (SiT's `get_drift`); noise model ŝ = −ε̂/σ.
/// With Epsilon Scaling (λ ≠ 1) the predicted noise ε̂ = (r·v − x)/(r·σ̇ − σ), r = α/α̇ (SiT's
/// `get_noise_from_velocity`) is divided by λ inside `v = (α̇/α)·x + (σ̇ − α̇σ/α)·ε̂`, the x-prediction being
/// re-derived from the scaled noise exactly as in DDIM with ε/λ (Ning et al. 2024). It is skipped where
/// α = 0 or α̇ = 0 (the pure-noise end, where ε̂ is x itself up to σ).
public struct VelocityMap: Equatable {
    public var a: Double, b: Double

    public static func make(path: InterpolationPath, convention: TimeConvention, prediction: Prediction,
                            modelTime tau: Double, epsScale lambda: Double = 1) -> VelocityMap {
        let s = convention.sitTime(tau)
        let c = path.coefficients(sitTime: s)
        let sign = convention.velocitySign
        // SiT-frame map v_sit = a·x + b·pred.
        var a: Double, b: Double
        switch prediction {
        case .velocity: a = 0; b = sign
        case .score: a = c.dAlpha / c.alpha; b = path.driftVariance(sitTime: s)
        case .noise: a = c.dAlpha / c.alpha; b = -path.driftVariance(sitTime: s) / c.sigma
        }
        if lambda != 1, c.alpha > 0, c.dAlpha != 0 {
            let r = c.alpha / c.dAlpha
            let den = r * c.dSigma - c.sigma
            if den != 0 {
                let kappa = (c.dSigma - c.dAlpha * c.sigma / c.alpha) * (1 / lambda - 1)
                // v' = v + κ ε̂ = v (1 + κ r/den) − (κ/den) x
                let g = 1 + kappa * r / den
                a = a * g - kappa / den
                b = b * g
            }
        }
        return VelocityMap(a: sign * a, b: sign * b)
    }
}

/// The score from a velocity at SiT time s (SiT's `get_score_from_velocity`), as `score = a·x + b·v_sit`:
/// r = α/α̇, var = σ² − r·σ̇·σ, score = (r·v − x)/var.
public func scoreFromVelocity(path: InterpolationPath, sitTime s: Double) -> (a: Double, b: Double) {
    let c = path.coefficients(sitTime: s)
    let r = c.alpha / c.dAlpha
    let variance = c.sigma * c.sigma - r * c.dSigma * c.sigma
    return (-1 / variance, r / variance)
}

/// SiT's diffusion weight w at SiT time s (`compute_diffusion`, docs/exactness.md §2.2).
public func diffusionWeight(_ form: DiffusionForm, norm: Double, path: InterpolationPath, sitTime s: Double) -> Double {
    switch form {
    case .sigma: return norm * path.coefficients(sitTime: s).sigma
    case .linear: return norm * (1 - s)
    case .sbdm: return norm * path.driftVariance(sitTime: s)
    case .decreasing:
        let h = norm * cospi(s) + 1
        return 0.25 * h * h
    case .increasingDecreasing:
        let v = sinpi(s)
        return norm * v * v
    }
}

@inline(__always) func cospi(_ x: Double) -> Double { cos(Double.pi * x) }
@inline(__always) func sinpi(_ x: Double) -> Double { sin(Double.pi * x) }
