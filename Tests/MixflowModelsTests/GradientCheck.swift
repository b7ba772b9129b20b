import MixflowCore
@testable import MixflowModels

/// Deterministic test data: uniform in [-scale, scale) from a Philox stream (not from the code under test).
func randomArray(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var out = [Float](repeating: 0, count: n)
    let s = RandomStream(seed: seed, step: 0, sample: 0, tag: .sampler)
    for j in 0..<n {
        let (u0, u1) = s.uniformPair(UInt32(j / 2))
        out[j] = Float((2 * (j % 2 == 0 ? u0 : u1) - 1)) * scale
    }
    return out
}

/// Σ r_i·o_i in double: the scalar loss whose gradient wrt the outputs is r.
func weightedSum(_ o: [Float], _ r: [Float]) -> Double {
    var s = 0.0
    for i in 0..<o.count { s += Double(o[i]) * Double(r[i]) }
    return s
}

struct GradientMismatch: CustomStringConvertible {
    var name: String, index: Int, analytic: Double, numeric: Double, scale: Double
    var description: String { "\(name)[\(index)]: analytic \(analytic), finite difference \(numeric) (scale \(scale))" }
}

/// Central finite differences on `samples` evenly spread elements of `values` (all if fewer), compared to
/// `analytic`. Tolerance: |fd − analytic| ≤ tol·max(max|analytic|, 1e-3). With float32 kernels, eps 1e-2
/// and O(1) data, truncation error is O(eps²) ≈ 1e-4 and round-off ≈ 1e-7·|L|/eps, so tol 2e-2 leaves a
/// wide margin for correct code while any wrong term (a missing factor, a wrong index) is O(1) off.
func checkGradient(_ name: String, _ values: inout [Float], analytic: [Float], eps: Float = 1e-2, tol: Double = 2e-2,
                   samples: Int = 40, loss: (inout [Float]) -> Double) -> [GradientMismatch] {
    precondition(values.count == analytic.count, "\(name): analytic gradient has the wrong size")
    let scale = max(analytic.map { Double(abs($0)) }.max() ?? 0, 1e-3)
    let step = max(1, values.count / samples)
    var bad: [GradientMismatch] = []
    var i = 0
    while i < values.count {
        let v = values[i]
        values[i] = v + eps; let lp = loss(&values)
        values[i] = v - eps; let lm = loss(&values)
        values[i] = v
        let fd = (lp - lm) / Double(2 * eps)
        if abs(fd - Double(analytic[i])) > tol * scale {
            bad.append(GradientMismatch(name: name, index: i, analytic: Double(analytic[i]), numeric: fd, scale: scale))
        }
        i += step
    }
    return bad
}

/// Max |a − b| / max |b|: the error relative to the tensor's own scale (elementwise relative error is
/// meaningless for entries near zero).
func relativeError(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<b.count {
        num = max(num, Double(abs(a[i] - b[i])))
        den = max(den, Double(abs(b[i])))
    }
    return den == 0 ? num : num / den
}
