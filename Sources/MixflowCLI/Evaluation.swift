import ArgumentParser
import MixflowCore
import MixflowEval
import MixflowMethod
import MixflowModels

/// Samples `count` images from a native model: noise keyed by (seed, sample i), labels i mod num_classes.
/// The sampler configuration every command uses for a native model trained by the transport `transport`.
func samplerConfig(model: SiTModel, transport: TransportConfig, method: String, gridPoints: Int, seed: UInt64,
                   threads: Int, cfg: Double = 1) throws -> SamplerConfig {
    let methods: [String: SamplerMethod] = ["euler": .euler, "heun": .heun, "midpoint": .midpoint, "rk4": .rk4, "dopri5": .dopri5]
    guard let m = methods[method.lowercased()] else {
        throw ValidationError("--method must be one of \(methods.keys.sorted()), got \(method)")
    }
    var config = SamplerConfig()
    config.method = m
    config.path = transport.path
    config.convention = transport.convention
    config.prediction = transport.prediction
    config.numSteps = gridPoints
    config.seed = seed
    config.threads = threads
    config.nullClass = Int32(model.config.numClasses)
    config.channels = model.config.inChannels
    if cfg != 1 { config.guidance = .classifierFree; config.guidanceScale = cfg }
    return config
}

extension SamplerConfig {
    func outputTimesOfGrid() throws -> [Double] { try Sampler(self).outputTimes }
}

func sampleImages(model: SiTModel, transport: TransportConfig, method: String, gridPoints: Int, count n: Int,
                  seed: UInt64, threads: Int, trajectory: UnsafeMutablePointer<Float>? = nil,
                  noiseOut: UnsafeMutablePointer<Float>? = nil, cfg: Double = 1) throws -> [Float] {
    let sampler = try Sampler(try samplerConfig(model: model, transport: transport, method: method, gridPoints: gridPoints,
                                                seed: seed, threads: threads, cfg: cfg))
    let dim = model.sampleDim
    var x = [Float](repeating: 0, count: n * dim)
    x.withUnsafeMutableBufferPointer { buf in
        for i in 0..<n {
            Gaussian.fill(UnsafeMutableBufferPointer(rebasing: buf[(i * dim)..<((i + 1) * dim)]),
                          stream: RandomStream(seed: seed, step: 0, sample: UInt32(i), tag: .noise), start: 0)
        }
        noiseOut?.update(from: buf.baseAddress!, count: n * dim)
    }
    let labels = (0..<n).map { Int32($0 % max(1, model.config.numClasses)) }
    let native = NativeSamplerModel(model)
    try labels.withUnsafeBufferPointer { y in
        try x.withUnsafeMutableBufferPointer { xb in
            _ = try sampler.sample(model: native, labels: y.baseAddress, x: xb.baseAddress!, batch: n, dim: dim,
                                   trajectory: trajectory)
        }
    }
    return x
}

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

    func evaluate(model: SiTModel, transport: TransportConfig, method: String, gridPoints: Int) throws -> (fd: Double, accuracy: Double) {
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
        let labels = (0..<samples).map { Int32($0 % max(1, model.config.numClasses)) }
        let accuracy = x.withUnsafeBufferPointer { xb in labels.withUnsafeBufferPointer { net.accuracy(images: xb.baseAddress!, labels: $0.baseAddress!, count: samples) } }
        return (fd, accuracy)
    }
}

/// The noise-level Slow Flow of a model (its samples' second moments against the data's), and the γ
/// that `suggest_gamma` derives from it.
struct SlowFlowRun {
    let statistics: SlowFlowStatistics
    let gamma: Double

    init(model: SiTModel, transport: TransportConfig, data: [Float], count: Int, seed: UInt64, threads: Int,
         samples: Int = 256, gridPoints: Int = 50, dataPoints: Int = 5000) throws {
        let dim = model.sampleDim
        let points = gridPoints
        var traj = [Float](repeating: 0, count: points * samples * dim)
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
        let measured = try traj.withUnsafeBufferPointer { tb in
            try noise.withUnsafeBufferPointer { nb in
                try data.withUnsafeBufferPointer { db in
                    try SlowFlow.measure(reference: .noiseLevel, path: transport.path, convention: transport.convention,
                                         times: times, trajectory: tb.baseAddress!, noise: nb.baseAddress!, batch: samples,
                                         dim: dim, data: db.baseAddress!, numData: used, threads: threads)
                }
            }
        }
        statistics = SlowFlowStatistics(t: measured.t, m: measured.m, batch: samples)
        gamma = try SlowFlowStatistics.suggestGamma(t: measured.t, m: measured.m, batch: samples, coverage: 0.95)
    }
}
