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

    func evaluate(model: NativeModel, transport: TransportConfig, method: String, gridPoints: Int) throws -> (fd: Double, accuracy: Double) {
        var x = try sampleImages(model: model, transport: transport, method: method, gridPoints: gridPoints,
                                 count: samples, seed: seed, threads: threads)
        // Quantise as a saved image would be (SiT's rule), then scale back as the feature net expects.
        for i in x.indices { x[i] = Float(ImageQuantization.byte(x[i], transport.convention)) / 127.5 - 1 }
        let d = net.featureDim
        var features = [Float](repeating: 0, count: samples * d)
        x.withUnsafeBufferPointer { xb in
            features.withUnsafeMutableBufferPointer { net.forward(images: xb.baseAddress!, count: samples, features: $0.baseAddress!, logits: nil) }
        }
        let stats = features.withUnsafeBufferPointer { FeatureStats(features: $0.baseAddress!, count: samples, dim: d) }
        let fd = try FrechetDistance.distance(stats, reference)
        let labels = try LabelSampling.cycle.labels(count: samples, numClasses: max(1, model.numClasses), seed: seed)
        let accuracy = x.withUnsafeBufferPointer { xb in labels.withUnsafeBufferPointer { net.accuracy(images: xb.baseAddress!, labels: $0.baseAddress!, count: samples) } }
        return (fd, accuracy)
    }
}

/// The Slow Flow of a model's Euler trajectories under the three definitions (see the README), and the γ
/// that `suggest_gamma` derives from each. `gamma` is the nearest-data one: the endpoint definition cannot
/// see a flow that reaches a wrong end point, and the noise-level one has a plateau (no root) on states whose
/// second moment is below the marginal curve's minimum, which inflates γ.
struct SlowFlowRun {
    let statistics: [SlowFlowReference: SlowFlowStatistics]
    let gammas: [SlowFlowReference: Double]
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
            statistics[reference] = SlowFlowStatistics(t: measured.t, m: measured.m, batch: samples)
            gammas[reference] = try SlowFlowStatistics.suggestGamma(t: measured.t, m: measured.m, batch: samples, coverage: 0.95)
        }
        self.statistics = statistics
        self.gammas = gammas
    }
}
