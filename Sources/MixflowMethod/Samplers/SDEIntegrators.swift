import MixflowCore

/// SiT's SDE sampler (`integrators.py::sde`, docs/exactness.md §4.3) and REPA's `euler_maruyama_sampler` (§4.3).
///
/// Noise ξ of step k for sample i is `Gaussian(RandomStream(seed, step: k, sample: firstSample + i, .sampler))`,
/// so a sample's path does not depend on the batch it is in or on the thread count.
/// SiT evaluates the network twice per drift (once for v, once inside the score) with identical inputs;
/// here the score is derived from the same evaluation, which gives the same result for a deterministic model.
enum SDEIntegrators {
    static func noise(_ base: UnsafeMutablePointer<Float>, seed: UInt64, step: Int, firstSample: UInt64, batch: Int, dim: Int) {
        // Rows are independent streams, so splitting them across threads cannot change a single bit.
        Parallel.forRanges(batch, threads: Parallel.threads(0), grain: max(1, 65536 / max(dim, 1))) { range in
            for i in range {
                let stream = RandomStream(seed: seed, step: UInt64(step), sample: UInt32(truncatingIfNeeded: firstSample &+ UInt64(i)),
                                          tag: .sampler)
                Gaussian.fill(UnsafeMutableBufferPointer(start: base + i * dim, count: dim), stream: stream, start: 0)
            }
        }
    }

    /// `count` floats of scratch for batch × dim (ScratchBuffer: sized by the caller's batch).
    static func scratch(_ field: GuidedField, _ count: Int) throws -> ScratchBuffer<Float> {
        try ScratchBuffer(count, repeating: 0, "SDE scratch for batch \(field.batch) x dim \(field.dim)")
    }

    /// SiT's sde_drift = v + w(s)·score(v) and, separately, v, at SiT time s.
    static func sdeDrift(_ field: GuidedField, _ x: UnsafePointer<Float>, _ s: Double, v: UnsafeMutablePointer<Float>,
                         out o: UnsafeMutablePointer<Float>) throws {
        try field.velocity(x, tau: s, out: v)
        let c = field.config
        let w = diffusionWeight(c.diffusionForm, norm: c.diffusionNorm, path: c.path, sitTime: s)
        let (sa, sb) = scoreFromVelocity(path: c.path, sitTime: s)
        let a = Float(w * sa), b = Float(1 + w * sb), n = field.batch * field.dim
        for j in 0..<n { o[j] = a * x[j] + b * v[j] }
    }

    static func sit(_ field: GuidedField, grid: [Double], x: UnsafeMutablePointer<Float>, trajectory: UnsafeMutablePointer<Float>?,
                    firstSample: UInt64) throws {
        let c = field.config, n = field.batch * field.dim
        let heun = c.method != .sdeEuler
        let buffers = [try scratch(field, n), try scratch(field, n), try scratch(field, heun ? n : 0), try scratch(field, n),
                       try scratch(field, heun ? n : 0)]
        try withExtendedLifetime(buffers) {
            try sit(field, grid: grid, x: x, trajectory: trajectory, firstSample: firstSample,
                    v: buffers[0].base, k1: buffers[1].base, k2: buffers[2].base, xi: buffers[3].base, xp: buffers[4].base)
        }
    }

    private static func sit(_ field: GuidedField, grid: [Double], x: UnsafeMutablePointer<Float>,
                            trajectory: UnsafeMutablePointer<Float>?, firstSample: UInt64,
                            v: UnsafeMutablePointer<Float>, k1: UnsafeMutablePointer<Float>, k2: UnsafeMutablePointer<Float>,
                            xi: UnsafeMutablePointer<Float>, xp: UnsafeMutablePointer<Float>) throws {
        let c = field.config, n = field.batch * field.dim
        trajectory?.update(from: x, count: n)
        // SiT: dt = t[1] − t[0] (float32), the loop over t[:-1]; each step's time is the grid value.
        let dt = Float(grid[1]) - Float(grid[0])
        let sqrtDt = dt.squareRoot()
        for i in 0..<(grid.count - 1) {
            field.step = i
            let t = grid[i]
            noise(xi, seed: c.seed, step: i, firstSample: firstSample, batch: field.batch, dim: field.dim)
            let w = diffusionWeight(c.diffusionForm, norm: c.diffusionNorm, path: c.path, sitTime: t)
            let g = Float((2 * w).squareRoot()) * sqrtDt
            switch c.method {
            case .sdeEuler:
                try sdeDrift(field, x, t, v: v, out: k1)
                for j in 0..<n { x[j] = x[j] + k1[j] * dt + g * xi[j] }
            default:
                // Heun: noise first, then the trapezoidal drift from the perturbed point.
                for j in 0..<n { x[j] += g * xi[j] }
                try sdeDrift(field, x, t, v: v, out: k1)
                for j in 0..<n { xp[j] = x[j] + dt * k1[j] }
                try sdeDrift(field, xp, Double(Float(t) + dt), v: v, out: k2)
                for j in 0..<n { x[j] += 0.5 * dt * (k1[j] + k2[j]) }
            }
            trajectory.map { ($0 + (i + 1) * n).update(from: x, count: n) }
        }
        // The last step at t1, applied once after the loop.
        let t1 = grid[grid.count - 1], size = Float(c.lastStepSize)
        field.step = grid.count - 1
        switch c.lastStep {
        case .none: return
        case .mean:
            try sdeDrift(field, x, t1, v: v, out: k1)
            for j in 0..<n { x[j] += k1[j] * size }
        case .euler:
            try field.velocity(x, tau: t1, out: v)
            for j in 0..<n { x[j] += v[j] * size }
        case .tweedie:
            // E[x1 | x] = x/α + σ²/α·score
            try field.velocity(x, tau: t1, out: v)
            let co = c.path.coefficients(sitTime: t1)
            let (sa, sb) = scoreFromVelocity(path: c.path, sitTime: t1)
            let q = co.sigma * co.sigma / co.alpha
            let a = Float(1 / co.alpha + q * sa), b = Float(q * sb)
            for j in 0..<n { x[j] = a * x[j] + b * v[j] }
        }
        trajectory.map { ($0 + grid.count * n).update(from: x, count: n) }
    }

    /// REPA: w(τ) = 2τ, drift d = v − ½·w·score, x ← x + d·Δ + √w·√|Δ|·ξ on all but the last interval,
    /// which is the mean step x + Δ·d (Δ = τ_next − τ_cur < 0).
    static func repa(_ field: GuidedField, grid: [Double], x: UnsafeMutablePointer<Float>, trajectory: UnsafeMutablePointer<Float>?,
                     firstSample: UInt64) throws {
        let buffers = [try scratch(field, field.batch * field.dim), try scratch(field, field.batch * field.dim)]
        try withExtendedLifetime(buffers) {
            try repa(field, grid: grid, x: x, trajectory: trajectory, firstSample: firstSample, v: buffers[0].base, xi: buffers[1].base)
        }
    }

    private static func repa(_ field: GuidedField, grid: [Double], x: UnsafeMutablePointer<Float>,
                             trajectory: UnsafeMutablePointer<Float>?, firstSample: UInt64,
                             v: UnsafeMutablePointer<Float>, xi: UnsafeMutablePointer<Float>) throws {
        let c = field.config, n = field.batch * field.dim
        trajectory?.update(from: x, count: n)
        for i in 0..<(grid.count - 1) {
            field.step = i
            let tc = grid[i], delta = grid[i + 1] - grid[i]
            try field.velocity(x, tau: tc, out: v)
            let w = 2 * tc
            // score from the REPA velocity: v_sit = −v at SiT time 1 − τ.
            let (sa, sb) = scoreFromVelocity(path: c.path, sitTime: 1 - tc)
            let a = Float(-0.5 * w * sa), b = Float(1 + 0.5 * w * sb)   // d = a·x + b·v
            let h = Float(delta)
            if i < grid.count - 2 {
                noise(xi, seed: c.seed, step: i, firstSample: firstSample, batch: field.batch, dim: field.dim)
                let g = Float(w.squareRoot() * abs(delta).squareRoot())
                for j in 0..<n { x[j] = x[j] + (a * x[j] + b * v[j]) * h + g * xi[j] }
            } else {
                for j in 0..<n { x[j] = x[j] + (a * x[j] + b * v[j]) * h }
            }
            trajectory.map { ($0 + (i + 1) * n).update(from: x, count: n) }
        }
    }
}
