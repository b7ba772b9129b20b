import MixflowCore
#if canImport(Glibc)
import Glibc
#endif

/// Adaptive Dormand–Prince 5(4) with torchdiffeq's semantics (`dopri5.py`, `rk_common.py`, `misc.py`,
/// `interp.py`): one step size for the whole batch (the state is one tensor), RMS error norm over all
/// elements, error tolerance atol + rtol·max(|y0|, |y1|), step control safety 0.9, ifactor 10, dfactor 0.2
/// with exponent 1/5, Hairer's automatic first step (order 4 ⇒ exponent 1/5), steps that run past an output
/// time and are interpolated back with the 4th-order polynomial through y0, y1, y_mid, f0, f1.
/// Time is float64; a decreasing grid is integrated in negated time u = −τ, as torchdiffeq does.
enum Dopri5 {
    static let alpha: [Double] = [1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1]
    static let beta: [[Double]] = [
        [1.0 / 5],
        [3.0 / 40, 9.0 / 40],
        [44.0 / 45, -56.0 / 15, 32.0 / 9],
        [19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729],
        [9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656],
        [35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84],
    ]
    static let cError: [Double] = [35.0 / 384 - 1951.0 / 21600, 0, 500.0 / 1113 - 22642.0 / 50085,
                                   125.0 / 192 - 451.0 / 720, -2187.0 / 6784 - -12231.0 / 42400,
                                   11.0 / 84 - 649.0 / 6300, -1.0 / 60]
    static let cMid: [Double] = [6025192743.0 / 30085553152 / 2, 0, 51252292925.0 / 65400821598 / 2,
                                 -2691868925.0 / 45128329728 / 2, 187940372067.0 / 1594534317056 / 2,
                                 -1776094331.0 / 19743644256 / 2, 11237099.0 / 235043384 / 2]
    static let safety = 0.9, ifactor = 10.0, dfactor = 0.2
    /// torchdiffeq's max_num_steps is 2^31 − 1; a stuck solve is reported long before that.
    static let maxSteps = 1_000_000

    static func integrate(_ field: GuidedField, grid: [Double], x: UnsafeMutablePointer<Float>,
                          trajectory: UnsafeMutablePointer<Float>?, atol: Double, rtol: Double) throws {
        let n = field.batch * field.dim
        trajectory?.update(from: x, count: n)
        let dir: Double = grid.count > 1 && grid[1] < grid[0] ? -1 : 1
        let u = grid.map { dir * $0 }
        let fdir = Float(dir)
        var tmp = [Float](repeating: 0, count: n)
        // f_u(u, y) = dir·f(dir·u, y)
        func f(_ uu: Double, _ y: UnsafePointer<Float>, _ out: inout [Float]) throws {
            try field.velocity(y, tau: dir * uu, out: &out)
            if dir < 0 { for j in 0..<n { out[j] *= fdir } }
        }
        var y0 = Array(UnsafeBufferPointer(start: x, count: n))
        var k = [[Float]](repeating: [Float](repeating: 0, count: n), count: 7)
        try y0.withUnsafeBufferPointer { try f(u[0], $0.baseAddress!, &k[0]) }
        var f0 = k[0]
        var dt = try initialStep(u[0], y0, f0, atol: atol, rtol: rtol, tmp: &tmp, f: f)
        var t0 = u[0], tPrev = u[0]
        var coeff = [[Float]](repeating: y0, count: 5)
        var steps = 0
        for j in 1..<u.count {
            while u[j] > t0 {
                steps += 1
                field.step = steps
                guard steps <= maxSteps else {
                    throw MixflowError.unsupported("dopri5 took more than \(maxSteps) steps before t = \(dir * u[j]); loosen atol/rtol")
                }
                let t1 = t0 + dt
                guard t1 > t0 else { throw MixflowError.unsupported("dopri5: step size underflow (dt = \(dt)) at t = \(dir * t0)") }
                k[0] = f0
                let dtF = Float(dt)
                for i in 0..<6 {
                    let ti = alpha[i] == 1 ? t1 : t0 + alpha[i] * dt
                    stage(&tmp, y0, k, beta[i].map { Float($0) * dtF }, n)
                    try tmp.withUnsafeBufferPointer { try f(ti, $0.baseAddress!, &k[i + 1]) }
                }
                // y1 is the last stage (c_sol = beta[5], FSAL); f1 = k7.
                let y1 = tmp
                stage(&tmp, [Float](repeating: 0, count: n), k, cError.map { Float($0) * dtF }, n)
                var acc = 0.0
                for e in 0..<n {
                    let tol = atol + rtol * Double(max(abs(y0[e]), abs(y1[e])))
                    let r = Double(tmp[e]) / tol
                    acc += r * r
                }
                let ratio = (acc / Double(n)).squareRoot()
                if ratio <= 1 {
                    stage(&tmp, y0, k, cMid.map { Float($0) * dtF }, n)
                    coeff = fit(y0, y1, tmp, k[0], k[6], dtF, n)
                    tPrev = t0; t0 = t1; y0 = y1; f0 = k[6]
                }
                dt = optimalStep(dt, ratio)
            }
            if let trajectory {
                evaluate(coeff, (u[j] - tPrev) / (t0 - tPrev), trajectory + j * n, n)
            } else if j == u.count - 1 {
                evaluate(coeff, (u[j] - tPrev) / (t0 - tPrev), x, n)
            }
        }
        if let trajectory { x.update(from: trajectory + (u.count - 1) * n, count: n) }
    }

    /// out = y + Σ c_i·k_i
    static func stage(_ out: inout [Float], _ y: [Float], _ k: [[Float]], _ c: [Float], _ n: Int) {
        for j in 0..<n { out[j] = y[j] }
        for (i, ci) in c.enumerated() where ci != 0 {
            k[i].withUnsafeBufferPointer { ki in for j in 0..<n { out[j] += ci * ki[j] } }
        }
    }

    static func optimalStep(_ dt: Double, _ ratio: Double) -> Double {
        if ratio == 0 { return dt * ifactor }
        let lower = ratio < 1 ? 1 : dfactor
        return dt * min(ifactor, max(safety / pow(ratio, 1.0 / 5), lower))
    }

    static func rms(_ n: Int, _ value: (Int) -> Double) -> Double {
        var s = 0.0
        for j in 0..<n { let v = value(j); s += v * v }
        return (s / Double(n)).squareRoot()
    }

    /// Hairer, Nørsett & Wanner, Sec. II.4, as in torchdiffeq's `_select_initial_step` (order 4).
    static func initialStep(_ t0: Double, _ y0: [Float], _ f0: [Float], atol: Double, rtol: Double,
                            tmp: inout [Float], f: (Double, UnsafePointer<Float>, inout [Float]) throws -> Void) throws -> Double {
        let n = y0.count
        let scale = y0.map { atol + Double(abs($0)) * rtol }
        let d0 = rms(n) { Double(y0[$0]) / scale[$0] }
        let d1 = rms(n) { Double(f0[$0]) / scale[$0] }
        let h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : abs(0.01 * d0 / d1)
        let y1 = (0..<n).map { y0[$0] + Float(h0) * f0[$0] }
        try y1.withUnsafeBufferPointer { try f(t0 + h0, $0.baseAddress!, &tmp) }
        let d2 = abs(rms(n) { Double(tmp[$0] - f0[$0]) / scale[$0] } / h0)
        let h1 = (d1 <= 1e-15 && d2 <= 1e-15) ? max(1e-6, h0 * 1e-3) : pow(0.01 / max(d1, d2), 1.0 / 5)
        return min(100 * h0, abs(h1))
    }

    /// torchdiffeq `_interp_fit`: coefficients [e, d, c, b, a] of a x⁴ + b x³ + c x² + d x + e on x ∈ [0, 1].
    static func fit(_ y0: [Float], _ y1: [Float], _ ym: [Float], _ f0: [Float], _ f1: [Float], _ dt: Float, _ n: Int) -> [[Float]] {
        var a = y0, b = y0, c = y0, d = y0
        for j in 0..<n {
            a[j] = 2 * dt * (f1[j] - f0[j]) - 8 * (y1[j] + y0[j]) + 16 * ym[j]
            b[j] = dt * (5 * f0[j] - 3 * f1[j]) + 18 * y0[j] + 14 * y1[j] - 32 * ym[j]
            c[j] = dt * (f1[j] - 4 * f0[j]) - 11 * y0[j] - 5 * y1[j] + 16 * ym[j]
            d[j] = dt * f0[j]
        }
        return [y0, d, c, b, a]
    }

    static func evaluate(_ coeff: [[Float]], _ xDouble: Double, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        let x = Float(xDouble), x2 = x * x, x3 = x2 * x, x4 = x3 * x
        for j in 0..<n {
            out[j] = coeff[0][j] + x * coeff[1][j] + x2 * coeff[2][j] + x3 * coeff[3][j] + x4 * coeff[4][j]
        }
    }
}
