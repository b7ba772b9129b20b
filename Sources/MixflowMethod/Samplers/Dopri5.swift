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
        // The 7 stages, the stage input, y0, y1, f0 and the 5 interpolation coefficients: ScratchBuffer (sized by
        // the caller's batch), allocated once for the whole solve.
        let buffers = try (0..<16).map { _ in
            try ScratchBuffer(n, repeating: Float(0), "dopri5 state for batch \(field.batch) x dim \(field.dim)")
        }
        try withExtendedLifetime(buffers) {
            let p = buffers.map { $0.base }
            try integrate(field, grid: grid, x: x, trajectory: trajectory, atol: atol, rtol: rtol,
                          k: Array(p[0..<7]), tmp: p[7], y0: p[8], y1: p[9], f0: p[10], coeff: Array(p[11..<16]))
        }
    }

    private static func integrate(_ field: GuidedField, grid: [Double], x: UnsafeMutablePointer<Float>,
                                  trajectory: UnsafeMutablePointer<Float>?, atol: Double, rtol: Double,
                                  k: [UnsafeMutablePointer<Float>], tmp: UnsafeMutablePointer<Float>,
                                  y0: UnsafeMutablePointer<Float>, y1: UnsafeMutablePointer<Float>,
                                  f0: UnsafeMutablePointer<Float>, coeff: [UnsafeMutablePointer<Float>]) throws {
        let n = field.batch * field.dim
        trajectory?.update(from: x, count: n)
        let dir: Double = grid.count > 1 && grid[1] < grid[0] ? -1 : 1
        let u = grid.map { dir * $0 }
        let fdir = Float(dir)
        // f_u(u, y) = dir·f(dir·u, y)
        func f(_ uu: Double, _ y: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) throws {
            try field.velocity(y, tau: dir * uu, out: out)
            if dir < 0 { for j in 0..<n { out[j] *= fdir } }
        }
        y0.update(from: x, count: n)
        try f(u[0], y0, k[0])
        f0.update(from: k[0], count: n)
        var dt = try initialStep(u[0], y0, f0, n, atol: atol, rtol: rtol, y1: y1, tmp: tmp, f: f)
        var t0 = u[0], tPrev = u[0]
        for c in coeff { c.update(from: y0, count: n) }
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
                k[0].update(from: f0, count: n)
                let dtF = Float(dt)
                for i in 0..<6 {
                    let ti = alpha[i] == 1 ? t1 : t0 + alpha[i] * dt
                    stage(tmp, y0, k, beta[i].map { Float($0) * dtF }, n)
                    try f(ti, tmp, k[i + 1])
                }
                // y1 is the last stage (c_sol = beta[5], FSAL); f1 = k7.
                y1.update(from: tmp, count: n)
                stage(tmp, nil, k, cError.map { Float($0) * dtF }, n)
                var acc = 0.0
                for e in 0..<n {
                    let tol = atol + rtol * Double(max(abs(y0[e]), abs(y1[e])))
                    let r = Double(tmp[e]) / tol
                    acc += r * r
                }
                let ratio = (acc / Double(n)).squareRoot()
                if ratio <= 1 {
                    stage(tmp, y0, k, cMid.map { Float($0) * dtF }, n)
                    fit(y0, y1, tmp, k[0], k[6], dtF, n, into: coeff)
                    tPrev = t0; t0 = t1
                    y0.update(from: y1, count: n); f0.update(from: k[6], count: n)
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

    /// out = y + Σ c_i·k_i (y nil: 0 + Σ c_i·k_i)
    static func stage(_ out: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>?, _ k: [UnsafeMutablePointer<Float>],
                      _ c: [Float], _ n: Int) {
        if let y { for j in 0..<n { out[j] = y[j] } } else { for j in 0..<n { out[j] = 0 } }
        for (i, ci) in c.enumerated() where ci != 0 {
            let ki = k[i]
            for j in 0..<n { out[j] += ci * ki[j] }
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

    /// Hairer, Nørsett & Wanner, Sec. II.4, as in torchdiffeq's `_select_initial_step` (order 4). `y1` and `tmp`
    /// are scratch of n floats.
    static func initialStep(_ t0: Double, _ y0: UnsafePointer<Float>, _ f0: UnsafePointer<Float>, _ n: Int,
                            atol: Double, rtol: Double, y1: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>,
                            f: (Double, UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Void) throws -> Double {
        // scale = atol + |y0|·rtol, recomputed where used (the same double arithmetic, no n-double buffer).
        @inline(__always) func scale(_ j: Int) -> Double { atol + Double(abs(y0[j])) * rtol }
        let d0 = rms(n) { Double(y0[$0]) / scale($0) }
        let d1 = rms(n) { Double(f0[$0]) / scale($0) }
        let h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : abs(0.01 * d0 / d1)
        for j in 0..<n { y1[j] = y0[j] + Float(h0) * f0[j] }
        try f(t0 + h0, y1, tmp)
        let d2 = abs(rms(n) { Double(tmp[$0] - f0[$0]) / scale($0) } / h0)
        let h1 = (d1 <= 1e-15 && d2 <= 1e-15) ? max(1e-6, h0 * 1e-3) : pow(0.01 / max(d1, d2), 1.0 / 5)
        return min(100 * h0, abs(h1))
    }

    /// torchdiffeq `_interp_fit`: coefficients [e, d, c, b, a] of a x⁴ + b x³ + c x² + d x + e on x ∈ [0, 1],
    /// written into `coeff` (5 buffers of n).
    static func fit(_ y0: UnsafePointer<Float>, _ y1: UnsafePointer<Float>, _ ym: UnsafePointer<Float>, _ f0: UnsafePointer<Float>,
                    _ f1: UnsafePointer<Float>, _ dt: Float, _ n: Int, into coeff: [UnsafeMutablePointer<Float>]) {
        let e = coeff[0], d = coeff[1], c = coeff[2], b = coeff[3], a = coeff[4]
        for j in 0..<n {
            a[j] = 2 * dt * (f1[j] - f0[j]) - 8 * (y1[j] + y0[j]) + 16 * ym[j]
            b[j] = dt * (5 * f0[j] - 3 * f1[j]) + 18 * y0[j] + 14 * y1[j] - 32 * ym[j]
            c[j] = dt * (f1[j] - 4 * f0[j]) - 11 * y0[j] - 5 * y1[j] + 16 * ym[j]
            d[j] = dt * f0[j]
            e[j] = y0[j]
        }
    }

    static func evaluate(_ coeff: [UnsafeMutablePointer<Float>], _ xDouble: Double, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        let x = Float(xDouble), x2 = x * x, x3 = x2 * x, x4 = x3 * x
        let c0 = coeff[0], c1 = coeff[1], c2 = coeff[2], c3 = coeff[3], c4 = coeff[4]
        for j in 0..<n {
            out[j] = c0[j] + x * c1[j] + x2 * c2[j] + x3 * c3[j] + x4 * c4[j]
        }
    }
}
