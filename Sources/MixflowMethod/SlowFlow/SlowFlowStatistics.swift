import MixflowCore

/// Per-grid-time summaries of a Slow Flow measurement and the γ it suggests.
///
/// Times are in the paper's convention (0 noise, 1 data). The slowdown ratio is m/t; it is undefined at t = 0
/// (reported as NaN there). Quantiles use linear interpolation between order statistics (numpy's default).
public struct SlowFlowStatistics: Equatable, Sendable {
    /// The quantile levels reported for m and m/t.
    public static let levels: [Double] = [0.05, 0.25, 0.5, 0.75, 0.95]
    /// Column names, in the order of `rows` and of the C API's `out_stats`.
    public static let columns = ["t", "mean_m", "q05_m", "q25_m", "q50_m", "q75_m", "q95_m",
                                 "mean_ratio", "q05_ratio", "q25_ratio", "q50_ratio", "q75_ratio", "q95_ratio", "frac_m_le_t"]

    public var rows: [[Double]]

    /// - Parameters: t [K], m [batch × K] (row-major per sample) as returned by `SlowFlow.measure`.
    public init(t: [Double], m: [Double], batch: Int) {
        let k = t.count
        rows = (0..<k).map { g in
            let ms = (0..<batch).map { m[$0 * k + g] }
            var row = [t[g], mean(ms)] + Self.levels.map { quantile(ms, $0) }
            if t[g] > 0 {
                let r = ms.map { $0 / t[g] }
                row += [mean(r)] + Self.levels.map { quantile(r, $0) }
            } else {
                row += [Double](repeating: .nan, count: 6)
            }
            row.append(Double(ms.filter { $0 <= t[g] }.count) / Double(batch))
            return row
        }
    }

    /// γ such that the mixture interval [(1 − γ)·t, t] of MixFlow training covers `coverage` of the measured
    /// slowed times, pooled over every sample and every grid time with t > 0.
    ///
    /// Derivation: MixFlow trains on m ~ U[(1 − γ)t, t], i.e. on ratios m/t ∈ [1 − γ, 1]. A measured pair (m, t)
    /// is covered when m ≥ (1 − γ)t, and a pair with m > t is not slowed at all, so it is counted with ratio 1
    /// (covered by every γ ≥ 0). With r = min(1, m/t) pooled over all pairs, the smallest γ covering a fraction
    /// `coverage` is 1 − Q_{1−coverage}(r), clamped to [0, 1]. If nothing is slowed every r is 1 and γ = 0; if
    /// the model runs at a constant fraction c of the true speed (m = c·t) every r is c and γ = 1 − c.
    public static func suggestGamma(t: [Double], m: [Double], batch: Int, coverage: Double) throws -> Double {
        guard coverage.isFinite, coverage > 0, coverage <= 1 else {
            throw MixflowError.invalidArgument("coverage must be in (0, 1], got \(coverage)")
        }
        let k = t.count
        var r: [Double] = []
        for g in 0..<k where t[g] > 0 {
            for b in 0..<batch { r.append(min(1, m[b * k + g] / t[g])) }
        }
        guard !r.isEmpty else { throw MixflowError.invalidArgument("no grid time with t > 0 (paper convention): nothing to measure") }
        return min(1, max(0, 1 - quantile(r, 1 - coverage)))
    }

    /// How much a sampler's own path lags, pooled over every sample and every grid time with t > 0: the fraction
    /// of pairs slowed (m < t − 10⁻³) and the median of m/t (< 1: the states sit at noisier times than their
    /// labels). `excludingFinal` drops the last grid time: under the endpoint definition its state is the end
    /// point itself, matched at m = 1 by construction. This is the lag `mixflow slowflow` bases its advice on
    /// (results/regimes).
    public static func lag(t: [Double], m: [Double], batch: Int, excludingFinal: Bool) throws -> SlowFlowLag {
        let k = t.count
        var ratios: [Double] = [], slowed = 0
        for g in 0..<(excludingFinal ? k - 1 : k) where t[g] > 0 {
            for b in 0..<batch {
                ratios.append(m[b * k + g] / t[g])
                if m[b * k + g] < t[g] - Self.lagTolerance { slowed += 1 }
            }
        }
        guard !ratios.isEmpty else { throw MixflowError.invalidArgument("no grid time with t > 0 (paper convention) to measure a lag on") }
        return SlowFlowLag(slowed: Double(slowed) / Double(ratios.count), medianRatio: quantile(ratios, 0.5))
    }

    /// m < t − this counts as slowed (the matching is exact to ~10⁻⁶; this keeps rounding from counting).
    public static let lagTolerance = 1e-3

    // MARK: - Export

    public func csv() -> String {
        var s = Self.columns.joined(separator: ",") + "\n"
        for row in rows { s += row.map(format).joined(separator: ",") + "\n" }
        return s
    }

    /// `{"reference": ..., "columns": {...: [per grid time]}}`; NaN is written as null.
    public func json(reference: String) -> String {
        var parts: [String] = []
        for (c, name) in Self.columns.enumerated() {
            let values = rows.map { $0[c].isNaN ? "null" : format($0[c]) }.joined(separator: ", ")
            parts.append("    \"\(name)\": [\(values)]")
        }
        return "{\n  \"reference\": \"\(reference)\",\n  \"convention\": \"paper (0 = noise, 1 = data)\",\n  \"columns\": {\n"
            + parts.joined(separator: ",\n") + "\n  }\n}\n"
    }

    private func format(_ v: Double) -> String { v.isNaN ? "nan" : "\(v)" }
}

/// The lag summary of `SlowFlowStatistics.lag`.
public struct SlowFlowLag: Equatable, Sendable {
    /// Fraction of (sample, grid time) pairs with m < t − 10⁻³.
    public let slowed: Double
    /// Median of m/t.
    public let medianRatio: Double
    /// Lags along its path: most pairs slowed and the median matched time behind t. Under the endpoint
    /// definition this is the condition results/regimes tests MixFlow against.
    public var lags: Bool { slowed > 0.5 && medianRatio < 1 }
}

func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }

/// numpy's default (linear) quantile.
func quantile(_ v: [Double], _ q: Double) -> Double {
    guard !v.isEmpty else { return .nan }
    let s = v.sorted()
    let h = Double(s.count - 1) * q
    let lo = Int(h.rounded(.down)), hi = min(lo + 1, s.count - 1)
    return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
}
