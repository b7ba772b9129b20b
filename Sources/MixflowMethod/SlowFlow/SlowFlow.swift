import MixflowCore

/// Which "ground truth" the Slow Flow diagnostic compares a generated state with (the paper leaves it open;
/// the answer changes the result, so all three are offered).
public enum SlowFlowReference: Int32, Sendable, CaseIterable {
    /// x0 = the starting noise, x1 = the trajectory's own final sample.
    case endpoint = 0
    /// x0 = the starting noise, x1 = the data point that, with its best m, comes nearest (joint minimisation).
    case nearestData = 1
    /// m whose marginal second moment α_m²·E|x1|²/D + σ_m² matches the state's |x̂|²/D (the time-shift
    /// samplers' criterion), with E|x1|²/D from the data set; the root nearest to t when there are two.
    case noiseLevel = 2
}

/// The Slow Flow diagnostic: for each generated state x̂_k at grid time t_k, the time m of the ground-truth
/// interpolation x_m = α_m·x1 + σ_m·x0 nearest to it. All times are reported in the paper's (SiT) convention,
/// 0 = noise, 1 = data, whatever the model's convention, so that m ≤ t means "slowed" everywhere.
///
/// Distances need only inner products: |x̂ − x_m|² = P − 2α·A − 2σ·C + α²·Q + 2ασ·S + σ²·R with
/// P = |x̂|², A = ⟨x̂,x1⟩, C = ⟨x̂,x0⟩, Q = |x1|², S = ⟨x1,x0⟩, R = |x0|². For the Linear path (α = m,
/// σ = 1 − m) the minimiser is the projection m* = ⟨x̂ − x0, x1 − x0⟩/|x1 − x0|² clamped to [0, 1]; for GVP/VP a
/// 65-point scan of [0, 1] is refined by golden-section search around the best point (robust to the
/// non-convexity of the trigonometric/exponential coefficients). Nearest data batches ⟨x̂, x1_j⟩ for all j as one
/// `BLAS.sgemm` per grid time.
public enum SlowFlow {
    /// - Parameters:
    ///   - times: [K] model-convention grid times of the trajectory points.
    ///   - trajectory: [K, batch, dim]. noise: [batch, dim] (x0). data: [numData, dim] (nearest data, noise level).
    /// - Returns: (t [K], m [batch × K]) in the SiT convention, m row-major per sample.
    public static func measure(reference: SlowFlowReference, path: InterpolationPath, convention: TimeConvention,
                               times: some Collection<Double>, trajectory: UnsafePointer<Float>, noise: UnsafePointer<Float>,
                               batch: Int, dim: Int, data: UnsafePointer<Float>?, numData: Int,
                               threads: Int = 0) throws -> (t: [Double], m: [Double]) {
        let k = times.count
        guard k >= 1 else { throw MixflowError.invalidArgument("num_times must be >= 1, got \(k)") }
        if reference != .endpoint {
            guard data != nil, numData > 0 else {
                throw MixflowError.invalidArgument("data must not be NULL and num_data must be > 0 for reference \(reference)")
            }
        }
        let tSit = times.map { convention.sitTime($0) }
        var m = [Double](repeating: 0, count: batch * k)
        let x0Norm = (0..<batch).map { dot(noise + $0 * dim, noise + $0 * dim, dim) }
        switch reference {
        case .endpoint:
            let last = trajectory + (k - 1) * batch * dim
            for b in 0..<batch {
                let x0 = noise + b * dim, x1 = last + b * dim
                let q = dot(x1, x1, dim), s = dot(x1, x0, dim)
                for g in 0..<k {
                    let xh = trajectory + (g * batch + b) * dim
                    let pair = Pair(p: dot(xh, xh, dim), a: dot(xh, x1, dim), c: dot(xh, x0, dim), q: q, s: s, r: x0Norm[b])
                    m[b * k + g] = minimize(pair, path).m
                }
            }
        case .nearestData:
            nearestData(path: path, trajectory: trajectory, noise: noise, batch: batch, dim: dim, k: k,
                            data: data!, numData: numData, x0Norm: x0Norm, threads: threads, m: &m)
        case .noiseLevel:
            var mu2 = 0.0
            for j in 0..<numData { mu2 += dot(data! + j * dim, data! + j * dim, dim) }
            mu2 /= Double(numData * dim)
            for b in 0..<batch {
                for g in 0..<k {
                    let xh = trajectory + (g * batch + b) * dim
                    m[b * k + g] = matchSecondMoment(dot(xh, xh, dim) / Double(dim), dataSecondMoment: mu2, path: path, near: tSit[g])
                }
            }
        }
        return (tSit, m)
    }

    // MARK: - One pair

    struct Pair { var p, a, c, q, s, r: Double }

    static func distance(_ x: Pair, _ alpha: Double, _ sigma: Double) -> Double {
        x.p - 2 * alpha * x.a - 2 * sigma * x.c + alpha * alpha * x.q + 2 * alpha * sigma * x.s + sigma * sigma * x.r
    }

    static func distance(_ x: Pair, _ path: InterpolationPath, _ m: Double) -> Double {
        let co = path.coefficients(sitTime: m)
        return distance(x, co.alpha, co.sigma)
    }

    /// The m ∈ [0, 1] minimising |x̂ − x_m|², and that squared distance.
    static func minimize(_ x: Pair, _ path: InterpolationPath) -> (m: Double, d: Double) {
        if path == .linear {
            let num = x.a - x.c - x.s + x.r          // ⟨x̂ − x0, x1 − x0⟩
            let den = x.q - 2 * x.s + x.r            // |x1 − x0|²
            let m = den > 0 ? min(1, max(0, num / den)) : 0
            return (m, distance(x, m, 1 - m))
        }
        let n = 64
        var best = 0, bestD = Double.infinity
        for i in 0...n {
            let d = distance(x, path, Double(i) / Double(n))
            if d < bestD { bestD = d; best = i }
        }
        return golden(lo: Double(max(0, best - 1)) / Double(n), hi: Double(min(n, best + 1)) / Double(n)) { distance(x, path, $0) }
    }

    /// Golden-section search for the minimum of f on [lo, hi] (f unimodal there after the scan).
    static func golden(lo: Double, hi: Double, _ f: (Double) -> Double) -> (m: Double, d: Double) {
        let r = (5.0.squareRoot() - 1) / 2
        var a = lo, b = hi
        var c = b - r * (b - a), d = a + r * (b - a)
        var fc = f(c), fd = f(d)
        for _ in 0..<60 where b - a > 1e-12 {
            if fc < fd { b = d; d = c; fd = fc; c = b - r * (b - a); fc = f(c) } else { a = c; c = d; fc = fd; d = a + r * (b - a); fd = f(d) }
        }
        // Keep an end point when it is better (the minimum can sit on the boundary of [0, 1]).
        let candidates = [(lo, f(lo)), (hi, f(hi)), ((a + b) / 2, f((a + b) / 2))]
        let best = candidates.min { $0.1 < $1.1 }!
        return (best.0, best.1)
    }

    /// Solves α_m²·μ2 + σ_m² = target for m ∈ [0, 1], picking the root nearest `t` (the curve is not monotone:
    /// Linear has its minimum at m = 1/(1 + μ2)); without a root (a target below the curve's minimum), the m with
    /// the closest second moment, i.e. the curve's minimum point.
    static func matchSecondMoment(_ target: Double, dataSecondMoment mu2: Double, path: InterpolationPath, near t: Double) -> Double {
        func g(_ m: Double) -> Double { let c = path.coefficients(sitTime: m); return c.alpha * c.alpha * mu2 + c.sigma * c.sigma - target }
        let n = 1000
        var roots: [Double] = []
        var prev = g(0), bestM = 0.0, bestAbs = abs(prev)
        if prev == 0 { roots.append(0) }
        for i in 1...n {
            let m = Double(i) / Double(n), v = g(m)
            if abs(v) < bestAbs { bestAbs = abs(v); bestM = m }
            if v == 0 { roots.append(m) } else if (prev < 0) != (v < 0), prev != 0 {
                var lo = Double(i - 1) / Double(n), hi = m, flo = prev
                for _ in 0..<60 {
                    let mid = (lo + hi) / 2, fm = g(mid)
                    if (fm < 0) == (flo < 0) { lo = mid; flo = fm } else { hi = mid }
                }
                roots.append((lo + hi) / 2)
            }
            prev = v
        }
        return roots.min { abs($0 - t) < abs($1 - t) } ?? bestM
    }

    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        // Four double accumulators: exact enough for any dim and independent of threads.
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = 0
        while i + 4 <= n {
            s0 += Double(a[i]) * Double(b[i]); s1 += Double(a[i + 1]) * Double(b[i + 1])
            s2 += Double(a[i + 2]) * Double(b[i + 2]); s3 += Double(a[i + 3]) * Double(b[i + 3])
            i += 4
        }
        while i < n { s0 += Double(a[i]) * Double(b[i]); i += 1 }
        return (s0 + s1) + (s2 + s3)
    }

    // MARK: - Nearest data (batched)

    static func nearestData(path: InterpolationPath, trajectory: UnsafePointer<Float>, noise: UnsafePointer<Float>, batch: Int, dim: Int,
                            k: Int, data: UnsafePointer<Float>, numData: Int, x0Norm: [Double], threads: Int, m: inout [Double]) {
        let q = (0..<numData).map { dot(data + $0 * dim, data + $0 * dim, dim) }
        var s = [Float](repeating: 0, count: batch * numData), a = s
        // S = X0 · Dataᵀ (once); A_k = X̂_k · Dataᵀ (per grid time).
        let workers = Parallel.threads(threads)
        gemm(noise, data, batch, numData, dim, &s, threads: workers)
        m.withUnsafeMutableBufferPointer { mp in
            let mOut = mp.baseAddress!
            for g in 0..<k {
                let xk = trajectory + g * batch * dim
                gemm(xk, data, batch, numData, dim, &a, threads: workers)
                a.withUnsafeBufferPointer { ap in
                    s.withUnsafeBufferPointer { sp in
                        q.withUnsafeBufferPointer { qp in
                            Parallel.forRanges(batch, threads: workers) { range in
                                for b in range {
                                    let xh = xk + b * dim
                                    let p = dot(xh, xh, dim), c = dot(xh, noise + b * dim, dim)
                                    let row = (a: ap.baseAddress! + b * numData, s: sp.baseAddress! + b * numData)
                                    mOut[b * k + g] = path == .linear
                                        ? nearestLinear(p: p, c: c, r: x0Norm[b], a: row.a, s: row.s, q: qp.baseAddress!, n: numData)
                                        : nearestCurved(p: p, c: c, r: x0Norm[b], a: row.a, s: row.s, q: qp.baseAddress!, n: numData,
                                                        path: path)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Joint minimum over data points for the Linear path: the clamped projection per point, one pass.
    static func nearestLinear(p: Double, c: Double, r: Double, a: UnsafePointer<Float>, s: UnsafePointer<Float>,
                              q: UnsafePointer<Double>, n: Int) -> Double {
        var bestD = Double.infinity, bestM = 0.0
        for j in 0..<n {
            let aj = Double(a[j]), sj = Double(s[j])
            let num = aj - c - sj + r, den = q[j] - 2 * sj + r
            let m = den > 0 ? min(1, max(0, num / den)) : 0
            // |x̂ − x0 − m(x1 − x0)|² = |x̂ − x0|² − 2m·num + m²·den
            let d = (p - 2 * c + r) - 2 * m * num + m * m * den
            if d < bestD { bestD = d; bestM = m }
        }
        return bestM
    }

    static let scanPoints = 64
    static let candidates = 4

    /// GVP/VP: every data point is scanned on a 65-point m grid (the same coefficients for all points, so it is
    /// a short vectorisable loop per point); the 4 best (point, m) pairs are refined by golden-section search and
    /// the best refined pair wins.
    static func nearestCurved(p: Double, c: Double, r: Double, a: UnsafePointer<Float>, s: UnsafePointer<Float>,
                              q: UnsafePointer<Double>, n: Int, path: InterpolationPath) -> Double {
        let g = scanPoints
        let co = (0...g).map { path.coefficients(sitTime: Double($0) / Double(g)) }
        // d(m) = P − 2α·A − 2σ·C + α²·Q + 2ασ·S + σ²·R; the terms without A, Q, S are the same for every point.
        let base = co.map { p - 2 * $0.sigma * c + $0.sigma * $0.sigma * r }
        let twoAlpha = co.map { 2 * $0.alpha }, alpha2 = co.map { $0.alpha * $0.alpha }, cross = co.map { 2 * $0.alpha * $0.sigma }
        var top: [(d: Double, j: Int, i: Int)] = []
        base.withUnsafeBufferPointer { bp in twoAlpha.withUnsafeBufferPointer { ta in
        alpha2.withUnsafeBufferPointer { a2 in cross.withUnsafeBufferPointer { cr in
            for j in 0..<n {
                let aj = Double(a[j]), sj = Double(s[j]), qj = q[j]
                var bestD = Double.infinity, bestI = 0
                for i in 0...g {
                    let d = bp[i] - ta[i] * aj + a2[i] * qj + cr[i] * sj
                    if d < bestD { bestD = d; bestI = i }
                }
                if top.count < candidates || bestD < top[top.count - 1].d {
                    top.append((bestD, j, bestI))
                    top.sort { $0.d < $1.d }
                    if top.count > candidates { top.removeLast() }
                }
            }
        } } } }
        var best = (m: 0.0, d: Double.infinity)
        for cand in top {
            let pair = Pair(p: p, a: Double(a[cand.j]), c: c, q: q[cand.j], s: Double(s[cand.j]), r: r)
            let lo = Double(max(0, cand.i - 1)) / Double(g), hi = Double(min(g, cand.i + 1)) / Double(g)
            let refined = golden(lo: lo, hi: hi) { distance(pair, path, $0) }
            if refined.d < best.d { best = refined }
        }
        return best.m
    }

    /// out[M, N] = A[M, K] · B[N, K]ᵀ (row-major, float32).
    static func gemm(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ rows: Int, _ cols: Int, _ inner: Int,
                     _ out: inout [Float], threads: Int) {
        out.withUnsafeMutableBufferPointer { o in
            BLAS.sgemm(transA: false, transB: true, m: rows, n: cols, k: inner, a: a, lda: inner, b: b, ldb: inner,
                       beta: 0, c: o.baseAddress!, ldc: cols, threads: threads)
        }
    }
}
