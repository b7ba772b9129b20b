/// The time grids of the three codebases, in the model's own convention (docs/exactness.md §4.1).
///
/// `points` are the grid times; `sitInterval` is the [t0, t1] SiT's `check_interval` chose (SiT only).
/// Grids count points, not steps: SiT and RAE N points (N − 1 intervals); REPA N steps (N + 1 points).
public enum TimeGrid {
    /// torch.linspace in float32 (CPU kernel, scalar path): step = (end − start)/(n − 1) in float32;
    /// the first half counts up from start, the second half down from end.
    /// torch's vectorised path can differ from this by one ulp inside a SIMD block.
    public static func linspaceFloat32(_ start: Float, _ end: Float, _ n: Int) -> [Float] {
        if n == 1 { return [start] }
        let step = (end - start) / Float(n - 1)
        let half = n / 2
        return (0..<n).map { i in i < half ? start + step * Float(i) : end - step * Float(n - 1 - i) }
    }

    /// The same rule in float64 (REPA's `torch.linspace(..., dtype=torch.float64)`).
    public static func linspaceFloat64(_ start: Double, _ end: Double, _ n: Int) -> [Double] {
        if n == 1 { return [start] }
        let step = (end - start) / Double(n - 1)
        let half = n / 2
        return (0..<n).map { i in i < half ? start + step * Double(i) : end - step * Double(n - 1 - i) }
    }

    /// SiT's `check_interval(..., eval=True)` for the ODE: Linear/GVP velocity [0, 1]; other predictions
    /// [ε, 1 − ε]; VP [0, 1 − ε].
    public static func sitODEInterval(_ c: SamplerConfig) -> (Double, Double) {
        let eps = c.effectiveSampleEps
        switch (c.path, c.prediction) {
        case (.vp, _): return (0, 1 - eps)
        case (_, .velocity): return (0, 1)
        default: return (eps, 1 - eps)
        }
    }

    /// SiT's interval for the SDE: t0 = ε for SBDM or non-velocity models (Linear/GVP), 0 for VP or
    /// otherwise; t1 = 1 − last_step_size when a last step of non-zero size is taken, else 1 − ε.
    public static func sitSDEInterval(_ c: SamplerConfig) -> (Double, Double) {
        let eps = c.effectiveSampleEps
        let size = c.lastStep == .none ? 0 : c.lastStepSize
        let t1 = size != 0 ? 1 - size : 1 - eps
        let t0: Double = (c.path != .vp && (c.diffusionForm == .sbdm || c.prediction != .velocity)) ? eps : 0
        return (t0, t1)
    }

    /// RAE: τ = 1 − linspace(0, 0.999, N) (float32), then the dimension shift τ ← sτ/(1 + (s − 1)τ),
    /// evaluated in float32 as torch does on a float32 tensor. Runs from 1 down to shifted(0.001).
    public static func rae(numPoints n: Int, shift s: Double) -> [Float] {
        let base = linspaceFloat32(0, Float(1 - 1.0 / 1000), n)
        let sf = Float(s)
        return base.map { u in
            let tau = 1 - u
            return s == 1 ? tau : sf * tau / (1 + (sf - 1) * tau)
        }
    }

    /// The integration grid for a config (model-convention times, as float64 holding the exact grid values).
    public static func integrationGrid(_ c: SamplerConfig) -> [Double] {
        switch c.convention {
        case .sit:
            let (t0, t1) = c.method.isSDE ? sitSDEInterval(c) : sitODEInterval(c)
            return linspaceFloat32(Float(t0), Float(t1), c.numSteps).map(Double.init)
        case .rae:
            return rae(numPoints: c.numSteps, shift: c.timeShift).map(Double.init)
        case .repa:
            if c.method == .sdeEuler {
                // REPA: linspace(1, 0.04, N) in float64, then a final 0.
                return linspaceFloat64(1, 0.04, c.numSteps) + [0]
            }
            return linspaceFloat64(1, 0, c.numSteps + 1)
        }
    }

    /// The times of the returned trajectory: the integration grid, plus SiT's last SDE step when one is
    /// taken (its end time is t1 + last_step_size; Tweedie jumps to the data end, SiT time 1).
    public static func outputTimes(_ c: SamplerConfig) -> [Double] {
        let grid = integrationGrid(c)
        guard c.convention == .sit, c.method.isSDE else { return grid }
        switch c.lastStep {
        case .none: return grid
        case .mean, .euler: return grid + [Double(Float(grid[grid.count - 1] + c.lastStepSize))]
        case .tweedie: return grid + [1]
        }
    }
}
