import MixflowCore

/// Fixed-grid ODE integrators with torchdiffeq's semantics (`fixed_grid.py`, `rk_common.py`, docs/exactness.md §4.2),
/// and REPA's Euler/Heun loop (`samplers.py::euler_sampler`).
///
/// torchdiffeq steps between consecutive grid values with h = t_{k+1} − t_k computed in the grid's dtype
/// (float32 for SiT and RAE: `linspace` gives a float32 tensor), so intermediate stage times are float32
/// sums too. A decreasing grid is integrated by negating time, which is the same arithmetic with negative h.
enum FixedGridODE {
    /// Integrates over `grid`, writing the state at every grid point into `trajectory` ([K, n], may be nil).
    static func integrate(_ field: GuidedField, method: SamplerMethod, grid: [Double],
                          x: UnsafeMutablePointer<Float>, trajectory: UnsafeMutablePointer<Float>?) throws {
        let n = field.batch * field.dim
        // Stages and the stage input, as many as the method uses (ScratchBuffer: sized by the caller's batch).
        func stage(_ used: Bool) throws -> ScratchBuffer<Float> {
            try ScratchBuffer(used ? n : 0, repeating: 0, "a stage of \(method) for batch \(field.batch) x dim \(field.dim)")
        }
        let stages = [try stage(true), try stage(method != .euler), try stage(method == .rk4), try stage(method == .rk4),
                      try stage(method != .euler)]
        try withExtendedLifetime(stages) {
            try integrate(field, method: method, grid: grid, x: x, trajectory: trajectory,
                          k1: stages[0].base, k2: stages[1].base, k3: stages[2].base, k4: stages[3].base, tmp: stages[4].base)
        }
    }

    private static func integrate(_ field: GuidedField, method: SamplerMethod, grid: [Double],
                                  x: UnsafeMutablePointer<Float>, trajectory: UnsafeMutablePointer<Float>?,
                                  k1: UnsafeMutablePointer<Float>, k2: UnsafeMutablePointer<Float>, k3: UnsafeMutablePointer<Float>,
                                  k4: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>) throws {
        let n = field.batch * field.dim
        trajectory?.update(from: x, count: n)
        let float32Time = field.config.convention != .repa
        for i in 0..<(grid.count - 1) {
            field.step = i
            let t0 = grid[i], t1 = grid[i + 1]
            let h = float32Time ? Float(t1) - Float(t0) : Float(t1 - t0)
            // Stage times as torch computes them: t0 + h·c in float32 for a float32 grid.
            func at(_ c: Double) -> Double { float32Time ? Double(Float(t0) + h * Float(c)) : t0 + (t1 - t0) * c }
            let repaHeun = field.config.convention == .repa && method == .heun
            switch method {
            case .euler:
                try field.velocity(x, tau: t0, out: k1)
                axpy(x, h, k1, n)
            case .midpoint:
                try field.velocity(x, tau: t0, out: k1)
                combine(tmp, x, [(h * 0.5, k1)], n)
                try field.velocity(tmp, tau: at(0.5), out: k2)
                axpy(x, h, k2, n)
            case .heun where repaHeun:
                // REPA: Euler predictor; the trapezoidal corrector on every step except the last.
                try field.velocity(x, tau: t0, out: k1)
                if i < grid.count - 2 {
                    combine(tmp, x, [(h, k1)], n)
                    field.guidanceTestTime = t0   // REPA tests the guidance interval on τ_cur for d' too
                    defer { field.guidanceTestTime = nil }
                    try field.velocity(tmp, tau: t1, out: k2)
                    combine2(x, h * 0.5, k1, h * 0.5, k2, n)
                } else {
                    axpy(x, h, k1, n)
                }
            case .heun:
                // torchdiffeq heun2: k2 at the end point, also on the last step.
                try field.velocity(x, tau: t0, out: k1)
                combine(tmp, x, [(h, k1)], n)
                try field.velocity(tmp, tau: at(1), out: k2)
                combine2(x, h * 0.5, k1, h * 0.5, k2, n)
            case .rk4:
                // torchdiffeq's 'rk4' is rk4_alt_step_func: Kutta's 3/8 rule.
                let third = Float(1.0 / 3.0)
                try field.velocity(x, tau: t0, out: k1)
                combine(tmp, x, [(h * third, k1)], n)
                try field.velocity(tmp, tau: at(1.0 / 3.0), out: k2)
                combine(tmp, x, [(h, k2), (-h * third, k1)], n)
                try field.velocity(tmp, tau: at(2.0 / 3.0), out: k3)
                combine(tmp, x, [(h, k1), (-h, k2), (h, k3)], n)
                try field.velocity(tmp, tau: t1, out: k4)
                let e = h * 0.125
                for j in 0..<n { x[j] += (k1[j] + 3 * (k2[j] + k3[j]) + k4[j]) * e }
            case .dopri5, .sdeEuler, .sdeHeun:
                preconditionFailure("FixedGridODE does not integrate \(method)")
            }
            trajectory.map { ($0 + (i + 1) * n).update(from: x, count: n) }
        }
    }

    // MARK: - Element-wise helpers (vectorised plain loops)

    /// x += a·v
    @inline(__always) static func axpy(_ x: UnsafeMutablePointer<Float>, _ a: Float, _ v: UnsafePointer<Float>, _ n: Int) {
        for j in 0..<n { x[j] += a * v[j] }
    }

    /// x += a·u + b·v
    @inline(__always) static func combine2(_ x: UnsafeMutablePointer<Float>, _ a: Float, _ u: UnsafePointer<Float>, _ b: Float,
                                           _ v: UnsafePointer<Float>, _ n: Int) {
        for j in 0..<n { x[j] += a * u[j] + b * v[j] }
    }

    /// out = x + Σ c_i·v_i (fused for one and two terms, the common cases)
    static func combine(_ o: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ terms: [(Float, UnsafeMutablePointer<Float>)],
                        _ n: Int) {
        switch terms.count {
        case 1:
            let (c, v) = terms[0]
            for j in 0..<n { o[j] = x[j] + c * v[j] }
        case 2:
            let (c0, v0) = terms[0], (c1, v1) = terms[1]
            for j in 0..<n { o[j] = x[j] + c0 * v0[j] + c1 * v1[j] }
        default:
            for j in 0..<n { o[j] = x[j] }
            for (c, v) in terms { for j in 0..<n { o[j] += c * v[j] } }
        }
    }
}

extension GuidedField {
    /// Convenience: velocity into a Swift array.
    func velocity(_ x: UnsafePointer<Float>, tau: Double, out: inout [Float]) throws {
        try out.withUnsafeMutableBufferPointer { try velocity(x, tau: tau, out: $0.baseAddress!) }
    }
}
