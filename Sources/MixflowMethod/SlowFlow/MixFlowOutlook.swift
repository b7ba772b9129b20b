/// Whether MixFlow post-training is expected to beat standard post-training on a model, from two Slow Flow
/// measurements of the model's own sampling trajectories. The rule is the one measured in results/regimes
/// (Fashion-MNIST, SiTs of 0.18-1.3 M parameters): MixFlow at γ 0.4-0.8 lowered the FD on every base whose
/// path lagged (endpoint definition) or whose samples sat far from the data (nearest-data suggest_gamma of
/// 0.36 and above: models early in training), and raised it, at every γ, on every base with neither (nearest-data
/// suggest_gamma 0.18 and below: every model that draws recognisable images). It is an association measured on
/// one data set, not a law; `MixFlowOutlook.farFromData` sits between the two groups.
public enum MixFlowOutlook: Int32, Sendable {
    case expectedToHurt = 0
    case expectedToHelp = 1
    /// The endpoint path does not lag and the nearest-data γ was not measured.
    case undecided = -1

    /// The coverage of the nearest-data suggest_gamma the rule was measured with.
    public static let coverage = 0.95
    /// Nearest-data suggest_gamma at and above which the samples count as far from the data.
    public static let farFromData = 0.3
    /// The γ range that helped where MixFlow helped.
    public static let helpfulGamma: ClosedRange<Double> = 0.4...0.8

    /// - Parameters: endpointLags: `SlowFlowLag.lags` of the endpoint measurement; nearestDataGamma: the
    ///   nearest-data suggest_gamma (95 % coverage), nil when not measured.
    public init(endpointLags: Bool, nearestDataGamma: Double?) {
        if endpointLags {
            self = .expectedToHelp
        } else if let gamma = nearestDataGamma {
            self = gamma >= Self.farFromData ? .expectedToHelp : .expectedToHurt
        } else {
            self = .undecided
        }
    }
}
