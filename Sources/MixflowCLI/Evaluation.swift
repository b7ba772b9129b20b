import ArgumentParser
import MixflowCore
import MixflowEval
import MixflowMethod
import MixflowModels

/// FD (Fashion-MNIST classifier features) and conditional accuracy of a model's samples, always on the
/// same noise and labels, after the uint8 round trip real images went through.
struct Evaluation {
    let net: FeatureNet
    let reference: FeatureStats
    let samples: Int
    let seed: UInt64
    let threads: Int

    init(net: FeatureNet, reference: FeatureStats, samples: Int, seed: UInt64, threads: Int) throws {
        guard samples >= 2 else { throw ValidationError("--eval-samples must be >= 2, got \(samples)") }
        self.net = net; self.reference = reference; self.samples = samples; self.seed = seed; self.threads = threads
    }

    /// The FD and accuracy of a model's samples, and the samples (labels cycling over the classes), on rank 0
    /// (the other ranks sample their share and get nil).
    func evaluate(model: NativeModel, transport: TransportConfig, method: String, gridPoints: Int) throws -> (fd: Double, accuracy: Double, samples: [Float])? {
        guard let x = try sampleAcrossRanks(model: model, transport: transport, method: method, gridPoints: gridPoints,
                                            count: samples, seed: seed, threads: threads) else { return nil }
        let labels = try LabelSampling.cycle.labels(count: samples, numClasses: max(1, model.numClasses), seed: seed)
        let s = try score(x, convention: transport.convention, labels: labels)
        return (s.fd, s.accuracy, x)
    }

    /// FD against the reference, class accuracy and the features of `samples` generated images (raw model
    /// output, one per label). They are first quantised as a saved image would be (the convention's uint8
    /// rule) and scaled back to [-1, 1] as the feature net expects.
    func score(_ x: [Float], convention: TimeConvention, labels: [Int32]) throws -> (fd: Double, accuracy: Double, features: [Float]) {
        guard x.count == samples * net.inputDim, labels.count == samples else {
            throw MixflowError.invalidArgument("the feature net scores \(samples) images of \(net.inputDim) values; got \(x.count) values and \(labels.count) labels")
        }
        let images = x.map { Float(ImageQuantization.byte($0, convention)) / 127.5 - 1 }
        let features = net.features(of: images, count: samples)
        let stats = features.withUnsafeBufferPointer { FeatureStats(features: $0.baseAddress!, count: samples, dim: net.featureDim) }
        let fd = try FrechetDistance.distance(stats, reference)
        let accuracy = images.withUnsafeBufferPointer { xb in
            labels.withUnsafeBufferPointer { net.accuracy(images: xb.baseAddress!, labels: $0.baseAddress!, count: samples) }
        }
        return (fd, accuracy, features)
    }
}

extension FeatureNet {
    /// The features of `count` images [count, inputDim] in [-1, 1].
    func features(of images: [Float], count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count * featureDim)
        images.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { forward(images: x.baseAddress!, count: count, features: $0.baseAddress!, logits: nil) }
        }
        return out
    }
}

extension SlowFlowReference {
    /// The name on the command line and in output file names.
    var cliName: String {
        switch self {
        case .endpoint: return "endpoint"
        case .nearestData: return "nearest-data"
        case .noiseLevel: return "noise-level"
        }
    }
}

/// What `mixflow slowflow` and `posttrain --gamma auto` tell a user about MixFlow: the `MixFlowOutlook` of the
/// model's own trajectories (endpoint lag, nearest-data suggest_gamma), with the measurements behind it.
struct MixFlowAdvice {
    let lag: SlowFlowLag
    /// The nearest-data suggest_gamma, when it was measured.
    let nearestDataGamma: Double?
    let outlook: MixFlowOutlook

    init(endpointT t: [Double], m: [Double], batch: Int, nearestDataGamma: Double?) throws {
        lag = try SlowFlowStatistics.lag(t: t, m: m, batch: batch, excludingFinal: true)
        self.nearestDataGamma = nearestDataGamma
        outlook = MixFlowOutlook(endpointLags: lag.lags, nearestDataGamma: nearestDataGamma)
    }

    var text: String {
        let path = "endpoint Slow Flow: \(fixed(100 * lag.slowed, 0)) % of (sample, t) pairs slowed, median m/t \(fixed(lag.medianRatio, 3))"
        let measured = path + (nearestDataGamma.map { "; nearest-data suggest_gamma \(fixed($0, 2))" } ?? "")
        let range = "\(fixed(MixFlowOutlook.helpfulGamma.lowerBound, 1))-\(fixed(MixFlowOutlook.helpfulGamma.upperBound, 1))"
        switch outlook {
        case .expectedToHelp:
            return """
                advice: MixFlow is expected to help: its sampling path lags behind its time labels (\(measured)). \
                Post-train with gamma \(range) and compare with standard post-training from the same weights. \
                Evidence (results/regimes): such bases were early in training.
                """
        case .expectedToHurt:
            return """
                advice: MixFlow is expected to hurt: the path does not lag and the samples are near the data (\(measured)); \
                in results/regimes every such base and sampler (coarse grids, SDE, guidance) got a higher FD at every gamma. \
                Post-train with standard flow matching (gamma 0).
                """
        case .undecided:
            guard nearestDataGamma != nil else {
                return """
                    advice: the path does not lag (\(path)); whether MixFlow helps also depends on how far the samples are from \
                    the data: measure with --reference nearest-data.
                    """
            }
            return """
                advice: undecided: the path does not lag but the samples sit far from the data (\(measured), at least \
                \(fixed(MixFlowOutlook.farFromData, 1))). In results/regimes MixFlow helped one \
                such base and hurt another: compare both post-trainings from the same weights (mixflow posttrain \
                does) before spending compute on it.
                """
        }
    }
}

/// The Slow Flow of a model's Euler trajectories under the three definitions (docs/slow-flow.md), and the γ
/// that `suggest_gamma` derives from each. `gamma` is the nearest-data one: the endpoint definition cannot
/// see a flow that reaches a wrong end point, and the noise-level one has a plateau (no root) on states whose
/// second moment is below the marginal curve's minimum, which inflates γ.
struct SlowFlowRun {
    let statistics: [SlowFlowReference: SlowFlowStatistics]
    let gammas: [SlowFlowReference: Double]
    let advice: MixFlowAdvice
    static let chosen = SlowFlowReference.nearestData
    var gamma: Double { gammas[Self.chosen]! }

    init(model: NativeModel, transport: TransportConfig, data: [Float], count: Int, seed: UInt64, threads: Int,
         samples: Int = 256, gridPoints: Int = 50, dataPoints: Int = 5000) throws {
        let dim = model.sampleDim
        var traj = [Float](repeating: 0, count: gridPoints * samples * dim)
        var noise = [Float](repeating: 0, count: samples * dim)
        try traj.withUnsafeMutableBufferPointer { tb in
            try noise.withUnsafeMutableBufferPointer { nb in
                _ = try sampleImages(model: model, transport: transport, method: "euler", gridPoints: gridPoints, count: samples,
                                     seed: seed &+ 3, threads: threads, trajectory: tb.baseAddress!, noiseOut: nb.baseAddress!)
            }
        }
        let times = try samplerConfig(model: model, transport: transport, method: "euler", gridPoints: gridPoints,
                                      seed: seed, threads: threads).outputTimesOfGrid()
        let used = min(count, dataPoints)
        var statistics: [SlowFlowReference: SlowFlowStatistics] = [:], gammas: [SlowFlowReference: Double] = [:]
        var endpoint: (t: [Double], m: [Double])?
        for reference in SlowFlowReference.allCases {
            let measured = try traj.withUnsafeBufferPointer { tb in
                try noise.withUnsafeBufferPointer { nb in
                    try data.withUnsafeBufferPointer { db in
                        try SlowFlow.measure(reference: reference, path: transport.path, convention: transport.convention,
                                             times: times, trajectory: tb.baseAddress!, noise: nb.baseAddress!, batch: samples,
                                             dim: dim, data: db.baseAddress!, numData: used, threads: threads)
                    }
                }
            }
            statistics[reference] = try SlowFlowStatistics(t: measured.t, m: measured.m, batch: samples)
            gammas[reference] = try SlowFlowStatistics.suggestGamma(t: measured.t, m: measured.m, batch: samples, coverage: 0.95)
            if reference == .endpoint { endpoint = measured }
        }
        let advice = try MixFlowAdvice(endpointT: endpoint!.t, m: endpoint!.m, batch: samples, nearestDataGamma: gammas[.nearestData])
        self.statistics = statistics
        self.gammas = gammas
        self.advice = advice
    }
}
