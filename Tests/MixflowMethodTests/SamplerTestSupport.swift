#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowMethod
import MixflowCore

/// Data N(μ, s²I) with the Linear path in the SiT convention (t = 0 noise, t = 1 data), derived by hand:
/// x_t = t·x1 + (1−t)·x0 ~ N(tμ, V(t)), V(t) = t²s² + (1−t)².
/// Cov(x1, x_t) = t s², Cov(x0, x_t) = 1 − t, so E[x1 − x0 | x_t = x] = μ + (t s² − (1 − t))/V·(x − tμ).
/// The flow of that field from x(0) = z is x(t) = tμ + √V(t)·z (differentiate: V'/2 = t s² − (1 − t)),
/// hence the exact sample at t = 1 is μ + s·z. Noise E[x0|x] = (1 − t)/V·(x − tμ); score −(x − tμ)/V.
struct GaussianFlow {
    var mu: Double, s: Double
    func variance(_ t: Double) -> Double { t * t * s * s + (1 - t) * (1 - t) }
    func velocity(_ x: Double, _ t: Double) -> Double { mu + (t * s * s - (1 - t)) / variance(t) * (x - t * mu) }
    func noise(_ x: Double, _ t: Double) -> Double { (1 - t) / variance(t) * (x - t * mu) }
    func score(_ x: Double, _ t: Double) -> Double { -(x - t * mu) / variance(t) }
    /// The exact state at SiT time t of the trajectory that starts at noise z.
    func exact(_ z: Double, at t: Double) -> Double { t * mu + variance(t).squareRoot() * z }

    /// A closure model in the given convention and prediction.
    func model(_ convention: TimeConvention, _ prediction: Prediction = .velocity, calls: UnsafeMutablePointer<Int>? = nil) -> ClosureModel {
        ClosureModel { x, t, _, out in
            calls?.pointee += 1
            let dim = x.count / t.count
            for i in 0..<x.count {
                let tau = Double(t[i / dim]), s = convention.sitTime(tau), xv = Double(x[i])
                switch prediction {
                case .velocity: out[i] = Float(convention.velocitySign * velocity(xv, s))
                case .noise: out[i] = Float(noise(xv, s))
                case .score: out[i] = Float(score(xv, s))
                }
            }
        }
    }
}

func normals(_ n: Int, seed: UInt64) -> [Float] {
    var z = [Float](repeating: 0, count: n)
    z.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: RandomStream(seed: seed, step: 0, sample: 0, tag: .noise), start: 0) }
    return z
}

func runSampler(_ config: SamplerConfig, _ model: SamplerModel, _ x0: [Float], batch: Int, labels: [Int32]? = nil,
                guide: SamplerModel? = nil, trajectory: Bool = false) throws -> (x: [Float], nfe: Int, traj: [Float]) {
    let sampler = try Sampler(config)
    var x = x0
    var traj = [Float](repeating: 0, count: trajectory ? sampler.outputTimes.count * x0.count : 0)
    let dim = x0.count / batch
    let nfe = try x.withUnsafeMutableBufferPointer { xp in
        try traj.withUnsafeMutableBufferPointer { tp in
            if let labels {
                return try labels.withUnsafeBufferPointer { lp in
                    try sampler.sample(model: model, guide: guide, labels: lp.baseAddress, x: xp.baseAddress!, batch: batch, dim: dim,
                                       trajectory: trajectory ? tp.baseAddress : nil)
                }
            }
            return try sampler.sample(model: model, guide: guide, labels: nil, x: xp.baseAddress!, batch: batch, dim: dim,
                                      trajectory: trajectory ? tp.baseAddress : nil)
        }
    }
    return (x, nfe, traj)
}

func maxAbsError(_ a: [Float], _ b: [Double]) -> Double {
    zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
}
