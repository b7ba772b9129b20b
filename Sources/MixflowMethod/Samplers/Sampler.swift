import MixflowCore

/// A validated sampler: the grid of its codebase and the integrator of its method (docs/exactness.md §4).
///
/// Two shapes: `sample` runs the whole trajectory and queries the model itself; `step`
/// advances one grid interval from a model output the caller computed (for callers that keep the loop).
public final class Sampler: @unchecked Sendable {
    public let config: SamplerConfig
    /// Integration grid, model-convention times.
    public let grid: [Double]
    /// Times of the trajectory points (the grid, plus SiT's last SDE step when taken).
    public let outputTimes: [Double]

    public init(_ config: SamplerConfig) throws {
        try config.validate()
        self.config = config
        self.grid = TimeGrid.integrationGrid(config)
        self.outputTimes = TimeGrid.outputTimes(config)
    }

    /// Runs the sampler from the noise in `x` ([batch, dim], overwritten by the sample).
    ///
    /// - Parameters:
    ///   - labels: [batch] class labels, or nil (required for classifier-free guidance).
    ///   - firstSample: global index of row 0 (SDE noise is keyed by it).
    ///   - trajectory: [outputTimes.count, batch, dim] or nil; point 0 is the starting noise.
    /// - Returns: the number of drift evaluations (NFE).
    /// - Throws: `MixflowError.callback` when the model fails or returns a non-finite value (with the step
    ///   and the time), `.invalidArgument` for inconsistent guidance inputs, `.unsupported` when dopri5 stalls.
    @discardableResult
    public func sample(model: SamplerModel, guide: SamplerModel? = nil, labels: UnsafePointer<Int32>?,
                       x: UnsafeMutablePointer<Float>, batch: Int, dim: Int, firstSample: UInt64 = 0,
                       trajectory: UnsafeMutablePointer<Float>? = nil) throws -> Int {
        try RandomStream.checkSampleRange(firstSample: firstSample, batch: batch)
        let field = try GuidedField(config: config, model: model, guide: guide, labels: labels, batch: batch, dim: dim)
        switch (config.method, config.convention) {
        case (.sdeEuler, .repa):
            try SDEIntegrators.repa(field, grid: grid, x: x, trajectory: trajectory, firstSample: firstSample)
        case (.sdeEuler, _), (.sdeHeun, _):
            try SDEIntegrators.sit(field, grid: grid, x: x, trajectory: trajectory, firstSample: firstSample)
        case (.dopri5, _):
            try Dopri5.integrate(field, grid: grid, x: x, trajectory: trajectory, atol: config.atol, rtol: config.rtol)
        default:
            try FixedGridODE.integrate(field, method: config.method, grid: grid, x: x, trajectory: trajectory)
        }
        return field.evaluations
    }

    // MARK: - Step-wise

    /// Number of `step` calls that make a full run: the grid intervals, plus SiT's last SDE step.
    public var numSteps: Int { outputTimes.count - 1 }

    /// The model-convention time at which the caller evaluates the model before `step(index:)`.
    public func stepTime(_ index: Int) -> Double { grid[min(index, grid.count - 1)] }

    /// Advances one step from `x` at `stepTime(index)` given `modelOutput` = model(x, t, y) (after any guidance
    /// the caller applies), writing the next state into `out` (may alias x).
    /// Supported for the one-evaluation methods: Euler (ODE) and Euler–Maruyama (SDE).
    public func step(modelOutput: UnsafePointer<Float>, index: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                     batch: Int, dim: Int, firstSample: UInt64 = 0) throws {
        try RandomStream.checkSampleRange(firstSample: firstSample, batch: batch)
        guard config.method == .euler || config.method == .sdeEuler else {
            throw MixflowError.unsupported("the step-wise API supports the euler and sde_euler methods only (one model "
                                           + "evaluation per step); use the whole-trajectory sampler for \(config.method)")
        }
        guard !config.usesQueryShift else {
            throw MixflowError.unsupported("the step-wise API does not apply the time-shifted query; shift the time yourself")
        }
        guard index >= 0, index < numSteps else {
            throw MixflowError.invalidArgument("index must be in [0, \(numSteps - 1)], got \(index)")
        }
        let n = batch * dim, c = config
        // When out aliases x the kernel overwrites x, so x is checked while it is still there (one extra pass,
        // only in that case); otherwise it is scanned after a failure, only to name the culprit.
        let aliased = UnsafePointer(out) == x
        if aliased { try requireFinite(UnsafeBufferPointer(start: x, count: n), "x") }
        try stepKernel(modelOutput: modelOutput, index: index, x: x, out: out, batch: batch, dim: dim, firstSample: firstSample)
        // Non-finite inputs always reach the output (a·x + b·v with b ≠ 0), so one check of the output, which is
        // hot in cache, replaces two passes over the inputs; the inputs are scanned only to name the culprit.
        if (try? requireFinite(UnsafeBufferPointer(start: out, count: n), "out_next")) == nil {
            try requireFinite(UnsafeBufferPointer(start: modelOutput, count: n), "model_output")
            if !aliased { try requireFinite(UnsafeBufferPointer(start: x, count: n), "x") }
            throw MixflowError.invalidArgument("the step overflowed float32 at index \(index) (t = \(stepTime(index)))")
        }
        _ = c
    }

    private func stepKernel(modelOutput: UnsafePointer<Float>, index: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                            batch: Int, dim: Int, firstSample: UInt64) throws {
        let n = batch * dim, c = config
        let tau = stepTime(index)
        let lambda = c.epsScaleBase + c.epsScaleSlope * c.convention.noiseLevel(tau)
        let map = VelocityMap.make(path: c.path, convention: c.convention, prediction: c.prediction, modelTime: tau,
                                   epsScale: c.usesEpsilonScaling ? lambda : 1)
        let a = Float(map.a), b = Float(map.b)
        @inline(__always) func v(_ j: Int) -> Float { a * x[j] + b * modelOutput[j] }
        if c.method == .euler {
            let t0 = grid[index], t1 = grid[index + 1]
            let h = c.convention == .repa ? Float(t1 - t0) : Float(t1) - Float(t0)
            for j in 0..<n { out[j] = x[j] + h * v(j) }
            return
        }
        let noise = try ScratchBuffer(n, repeating: Float(0), "the noise of batch \(batch) x dim \(dim)")
        let xi = noise.base
        defer { withExtendedLifetime(noise) {} }
        if c.convention == .repa {
            let delta = grid[index + 1] - grid[index], w = 2 * tau
            let (sa, sb) = scoreFromVelocity(path: c.path, sitTime: 1 - tau)
            let da = Float(-0.5 * w * sa), db = Float(1 + 0.5 * w * sb), h = Float(delta)
            let stochastic = index < grid.count - 2
            if stochastic { SDEIntegrators.noise(xi, seed: c.seed, step: index, firstSample: firstSample, batch: batch, dim: dim) }
            let g = stochastic ? Float(w.squareRoot() * abs(delta).squareRoot()) : 0
            for j in 0..<n { out[j] = x[j] + (da * x[j] + db * v(j)) * h + g * xi[j] }
            return
        }
        let w = diffusionWeight(c.diffusionForm, norm: c.diffusionNorm, path: c.path, sitTime: tau)
        let (sa, sb) = scoreFromVelocity(path: c.path, sitTime: tau)
        let da = Float(w * sa), db = Float(1 + w * sb)
        if index < grid.count - 1 {
            let dt = Float(grid[1]) - Float(grid[0])
            SDEIntegrators.noise(xi, seed: c.seed, step: index, firstSample: firstSample, batch: batch, dim: dim)
            let g = Float((2 * w).squareRoot()) * dt.squareRoot()
            for j in 0..<n { out[j] = x[j] + (da * x[j] + db * v(j)) * dt + g * xi[j] }
            return
        }
        let size = Float(c.lastStepSize)
        switch c.lastStep {
        case .none: for j in 0..<n { out[j] = x[j] }
        case .mean: for j in 0..<n { out[j] = x[j] + (da * x[j] + db * v(j)) * size }
        case .euler: for j in 0..<n { out[j] = x[j] + v(j) * size }
        case .tweedie:
            let co = c.path.coefficients(sitTime: tau)
            let q = co.sigma * co.sigma / co.alpha
            let ta = Float(1 / co.alpha + q * sa), tb = Float(q * sb)
            for j in 0..<n { out[j] = ta * x[j] + tb * v(j) }
        }
    }
}
