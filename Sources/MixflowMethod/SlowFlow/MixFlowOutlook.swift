/// Whether MixFlow post-training is expected to beat standard post-training on a model, from two Slow Flow
/// measurements of the model's own sampling trajectories. The rule is the one measured in results/regimes
/// (Fashion-MNIST, SiTs of 0.18-1.3 M parameters, four sizes, 24 bases post-trained):
/// - the path lags (endpoint definition): MixFlow at γ 0.4-0.8 lowered the FD on every such base (four; on a
///   fifth that lags only just, endpoint median m/t 0.997, γ 0.4 helped and γ 0.8 hurt);
/// - the path does not lag and the samples sit near the data (nearest-data suggest_gamma below
///   `farFromData`): MixFlow raised the FD at every γ on every such base (13, ten predicted beforehand);
/// - the path does not lag but the samples sit far from the data: such bases gained or lost with no measured
///   summary ordering them (two threshold rules placed there failed out of sample), so the rule does not
///   decide there.
/// It is an association measured on one data set, not a law.
public enum MixFlowOutlook: Int32, Sendable {
    case expectedToHurt = 0
    case expectedToHelp = 1
    /// The endpoint path does not lag, and the nearest-data γ was not measured or is at least `farFromData`.
    case undecided = -1

    /// The coverage of the nearest-data suggest_gamma the rule was measured with.
    public static let coverage = 0.95
    /// Nearest-data suggest_gamma at and above which the samples count as far from the data (placed between
    /// 0.27, hurt, and 0.36, helped on one base and hurt on another).
    public static let farFromData = 0.3
    /// The γ range that helped where MixFlow helped.
    public static let helpfulGamma: ClosedRange<Double> = 0.4...0.8

    /// - Parameters: endpointLags: `SlowFlowLag.lags` of the endpoint measurement; nearestDataGamma: the
    ///   nearest-data suggest_gamma (95 % coverage), nil when not measured.
    public init(endpointLags: Bool, nearestDataGamma: Double?) {
        if endpointLags {
            self = .expectedToHelp
        } else if let gamma = nearestDataGamma, gamma < Self.farFromData {
            self = .expectedToHurt
        } else {
            self = .undecided
        }
    }
}
