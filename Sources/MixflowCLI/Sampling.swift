import ArgumentParser
import MixflowCore
import MixflowIO
import MixflowMethod
import MixflowModels

/// A native model (SiT or DiT^DH) with the transport it was trained by.
struct LoadedNative {
    let model: NativeModel
    let transport: TransportConfig
    /// Where the transport came from: "checkpoint" (transport.* keys), or the default that was assumed.
    let transportSource: String

    var arch: String {
        if let d = model as? DiTDHModel {
            let c = d.config
            return "DiT^DH(depth \(c.encoderDepth), hidden \(c.encoderHidden), head \(c.headDepth)x\(c.headHidden))"
        }
        if let s = model as? SiTModel { return "SiT(depth \(s.config.depth), hidden \(s.config.hidden), patch \(s.config.patch))" }
        return "model"
    }
}

/// Loads a native model from a trainer checkpoint (`.mixflow`, EMA weights unless `ema` is false) or an ONNX file
/// (`.onnx`: ours, or a checkpoint written by `python -m mixflow.convert`). The transport comes from the file's
/// `transport.*` keys; a file without them (a converted official checkpoint) is assumed to follow its
/// architecture's official recipe: RAE's (noise at 1, dimension shift √(C·H·W/4096)) for a DiT^DH, SiT's otherwise.
func loadNative(_ path: String, ema: Bool, threads: Int) throws -> LoadedNative {
    let model: NativeModel
    let metadata: [(key: String, value: String)]
    if path.hasSuffix(".onnx") {
        let loaded = try ModelONNX.loadNative(path: path, threads: threads)
        model = loaded.model
        metadata = loaded.metadata
    } else {
        let ck = try Checkpoint.read(from: path)
        let name = ema && ck.section("ema") != nil ? "ema" : "params"
        // Compared before the model is built: metadata alone must not make us allocate a model the file lacks.
        guard let weights = ck.section(name), weights.count == (try nativeParameterCount(fromMetadata: ck.metadata)) else {
            throw MixflowError.format("\(path): section \(name) is missing or does not match the architecture")
        }
        model = try nativeModel(fromMetadata: ck.metadata, threads: threads)
        weights.withUnsafeBufferPointer { model.parameters.update(from: $0.baseAddress!, count: weights.count) }
        metadata = ck.metadata
    }
    if metadata.contains(where: { $0.key.hasPrefix("transport.") }) {
        return LoadedNative(model: model, transport: try TransportConfig(keyValues: metadata), transportSource: "checkpoint")
    }
    if model is DiTDHModel {
        return LoadedNative(model: model, transport: try TransportConfig.preset("rae", dim: model.sampleDim),
                            transportSource: "assumed: RAE preset for a DiT^DH")
    }
    return LoadedNative(model: model, transport: TransportConfig(), transportSource: "assumed: SiT convention")
}

/// Options shared by the commands that sample.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Model to sample: a trainer checkpoint (.mixflow) or an ONNX model (.onnx, e.g. from python -m mixflow.convert).")
    var checkpoint: String
    @Flag(help: "Use the raw weights instead of the EMA weights (trainer checkpoints).") var raw = false
    @Option(help: "auto (euler for the RAE convention, heun otherwise), euler, heun, midpoint, rk4, dopri5.")
    var method = "auto"
    @Option(parsing: .unconditional, help: "Grid points: SiT and RAE count N points = N - 1 steps (RAE: 50 -> 49 Euler steps); REPA counts steps.")
    var steps = 50
    @Option(help: "Time convention, which also picks the time grid: auto (the checkpoint's), sit, rae (RAE's shifted grid from 1 down to shifted(0.001)), repa.")
    var convention = "auto"
    @Option(parsing: .unconditional, help: "RAE's dimension shift s >= 1 of the grid (default: the checkpoint's training shift; sqrt(C*H*W/4096) for a converted DiT^DH).")
    var timeShift: Double?
    @Option(parsing: .unconditional, help: "Number of samples.") var n = 64
    @Option(help: "none, cfg (classifier-free, null class) or auto (autoguidance with --guide-checkpoint). Default: auto with a guide checkpoint, cfg when --scale != 1, else none.")
    var guidance: String?
    @Option(name: [.customLong("scale"), .customLong("cfg")], parsing: .unconditional, help: "Guidance scale w (1 = off for CFG): CFG u + w(c - u); autoguidance G + w(main - G).")
    var scale = 1.0
    @Option(parsing: .unconditional, help: "Guidance interval \"lo,hi\" in the model's time convention: guidance where lo <= t <= hi, else the plain output.")
    var guidanceInterval = "0,1"
    @Option(help: "The weaker guide model for --guidance auto (RAE: a DiT^DH-S checkpoint); same formats as --checkpoint.")
    var guideCheckpoint: String?
    @Option(help: "Class labels: auto (equal for the RAE convention, as RAE's sampler; cycle otherwise), cycle (label i = i mod K), random (uniform), equal (floor(n/K) of every class, the rest random, shuffled).")
    var labelSampling = "auto"
    @Option(parsing: .unconditional, help: "Seed of the starting noise and of the labels.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Worker threads (0 = all cores, shared among the MPI ranks on this machine; results do not depend on it).") var threads = 0

    /// Every option, before any file is read (ArgumentParser calls this right after parsing).
    func validate() throws {
        try requireFile(checkpoint, "--checkpoint")
        guard method.lowercased() == "auto" || samplerMethods[method.lowercased()] != nil else {
            throw ValidationError("--method must be auto or one of \(samplerMethods.keys.sorted().joined(separator: ", ")), got \(method)")
        }
        let conv = try conventionChoice()
        try requireRange(steps, (conv == nil || conv == .repa ? 1 : 2)...1_000_000, "--steps")
        if let timeShift { guard timeShift.isFinite, timeShift >= 1 else { throw ValidationError("--time-shift must be >= 1, got \(timeShift)") } }
        try requireRange(n, 1...Int(Int32.max), "--n")
        let mode = try guidanceChoice()
        if mode != .autoguidance, guideCheckpoint != nil { throw ValidationError("--guide-checkpoint is only used with --guidance auto") }
        if let guideCheckpoint { try requireFile(guideCheckpoint, "--guide-checkpoint") }
        guard scale.isFinite else { throw ValidationError("--scale must be finite, got \(scale)") }
        _ = try guidanceBounds()
        guard labelSampling.lowercased() == "auto" || LabelSampling(rawValue: labelSampling.lowercased()) != nil else {
            throw ValidationError("--label-sampling must be auto, cycle, random or equal, got \(labelSampling)")
        }
        try requireRange(threads, 0...4096, "--threads")
    }

    /// --convention: nil for auto (the checkpoint's).
    func conventionChoice() throws -> TimeConvention? {
        if convention.lowercased() == "auto" { return nil }
        guard let c = TimeConvention.allCases.first(where: { "\($0)" == convention.lowercased() }) else {
            throw ValidationError("--convention must be auto, sit, rae or repa, got \(convention)")
        }
        return c
    }

    /// --guidance, with its default: auto with a guide checkpoint, cfg when --scale != 1, else none.
    func guidanceChoice() throws -> GuidanceMode {
        let mode = guidance ?? (guideCheckpoint != nil ? "auto" : (scale != 1 ? "cfg" : "none"))
        switch mode.lowercased() {
        case "none": return .none
        case "cfg": return .classifierFree
        case "auto":
            guard guideCheckpoint != nil else { throw ValidationError("--guidance auto needs --guide-checkpoint") }
            return .autoguidance
        default: throw ValidationError("--guidance must be none, cfg or auto, got \(mode)")
        }
    }

    /// --guidance-interval as a range.
    func guidanceBounds() throws -> ClosedRange<Double> {
        let bounds = guidanceInterval.split(separator: ",").map { Double($0.trimmingSpaces) }
        guard bounds.count == 2, let lo = bounds[0], let hi = bounds[1], lo.isFinite, hi.isFinite, lo <= hi else {
            throw ValidationError("--guidance-interval must be \"lo,hi\" with lo <= hi, got \(guidanceInterval)")
        }
        return lo...hi
    }

    /// What a run produced (`noise` and `traj` only with a trajectory, which runs in one process).
    struct Run {
        let loaded: LoadedNative
        let config: SamplerConfig
        let x: [Float], noise: [Float], traj: [Float], times: [Double]
        let labels: [Int32]
        let labelSampling: LabelSampling
        let nfe: Int
        var model: NativeModel { loaded.model }
        var transport: TransportConfig { loaded.transport }
    }

    func samplerConfig(for loaded: LoadedNative) throws -> SamplerConfig {
        var transport = loaded.transport
        if let c = try conventionChoice() { transport.convention = c }
        if let timeShift { transport.timeShift = timeShift }
        if transport.convention != .repa, steps < 2 {
            throw MixflowError.invalidArgument("--steps counts grid points in the \(transport.convention) convention of \(checkpoint): it must be >= 2, got \(steps)")
        }
        let m = method.lowercased() == "auto" ? (transport.convention == .rae ? "euler" : "heun") : method
        var config = try MixflowCLI.samplerConfig(model: loaded.model, transport: transport, method: m, gridPoints: steps,
                                                  seed: seed, threads: threads)
        config.guidance = try guidanceChoice()
        config.guidanceScale = scale
        config.guidanceInterval = try guidanceBounds()
        return config
    }

    /// Runs the sampler; returns the samples [n, dim], the labels and, if asked, the starting noise and the
    /// trajectory [points, n, dim] with its times. Under MPI the samples are split across the ranks and
    /// gathered on rank 0; the other ranks get nil.
    func run(trajectory: Bool) throws -> Run? {
        let loaded = try loadNative(checkpoint, ema: !raw, threads: threads)
        let config = try samplerConfig(for: loaded)
        let mode = LabelSampling(rawValue: labelSampling.lowercased()) ?? (config.convention == .rae ? .equal : .cycle)
        var guide: NativeModel?
        if config.guidance == .autoguidance, let path = guideCheckpoint {
            let g = try loadNative(path, ema: !raw, threads: threads).model
            let m = loaded.model
            guard g.inChannels == m.inChannels, g.inputSize == m.inputSize, g.numClasses == m.numClasses else {
                throw MixflowError.invalidArgument("--guide-checkpoint takes \(g.inChannels)x\(g.inputSize)x\(g.inputSize) latents with \(g.numClasses) classes; "
                                      + "the model takes \(m.inChannels)x\(m.inputSize)x\(m.inputSize) with \(m.numClasses)")
            }
            guide = g
        }
        let labels = try mode.labels(count: n, numClasses: max(1, loaded.model.numClasses), seed: seed)
        let sampler = try Sampler(config)
        let times = sampler.outputTimes
        let dim = loaded.model.sampleDim
        if !trajectory {
            guard let (x, nfe) = try sampleAcrossRanks(model: loaded.model, guide: guide, sampler: sampler, labels: labels,
                                                       seed: seed) else { return nil }
            return Run(loaded: loaded, config: config, x: x, noise: [], traj: [], times: times, labels: labels,
                       labelSampling: mode, nfe: nfe)
        }
        var noise = [Float](repeating: 0, count: n * dim)
        var traj = [Float](repeating: 0, count: times.count * n * dim)
        let (x, nfe) = try traj.withUnsafeMutableBufferPointer { tb in
            try noise.withUnsafeMutableBufferPointer { nb in
                try sampleImages(model: loaded.model, guide: guide, sampler: sampler, labels: labels, seed: seed,
                                 trajectory: tb.baseAddress, noiseOut: nb.baseAddress)
            }
        }
        return Run(loaded: loaded, config: config, x: x, noise: noise, traj: traj, times: times, labels: labels, labelSampling: mode, nfe: nfe)
    }
}

extension Substring {
    var trimmingSpaces: String { String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed()) }
}

/// The sampler configuration for a native model trained by the transport `transport` (no guidance).
func samplerConfig(model: NativeModel, transport: TransportConfig, method: String, gridPoints: Int, seed: UInt64,
                   threads: Int, cfg: Double = 1) throws -> SamplerConfig {
    guard let m = samplerMethods[method.lowercased()] else {
        throw ValidationError("--method must be one of \(samplerMethods.keys.sorted().joined(separator: ", ")), got \(method)")
    }
    var config = SamplerConfig()
    config.method = m
    config.path = transport.path
    config.convention = transport.convention
    config.prediction = transport.prediction
    config.timeShift = transport.convention == .rae ? transport.timeShift : 1
    config.numSteps = gridPoints
    config.seed = seed
    config.threads = threads
    config.nullClass = Int32(model.numClasses)
    config.channels = model.inChannels
    if cfg != 1 { config.guidance = .classifierFree; config.guidanceScale = cfg }
    return config
}

extension SamplerConfig {
    func outputTimesOfGrid() throws -> [Double] { try Sampler(self).outputTimes }
}

/// Samples `labels.count` images: noise keyed by (seed, sample firstSample + i), the given labels (rows
/// firstSample... of a larger run). Returns the samples and the NFE.
func sampleImages(model: NativeModel, guide: NativeModel? = nil, sampler: Sampler, labels: [Int32], seed: UInt64,
                  firstSample: Int = 0, trajectory: UnsafeMutablePointer<Float>? = nil,
                  noiseOut: UnsafeMutablePointer<Float>? = nil) throws -> (x: [Float], nfe: Int) {
    let dim = model.sampleDim, n = labels.count
    var x = [Float](repeating: 0, count: n * dim)
    x.withUnsafeMutableBufferPointer { buf in
        for i in 0..<n {
            Gaussian.fill(UnsafeMutableBufferPointer(rebasing: buf[(i * dim)..<((i + 1) * dim)]),
                          stream: RandomStream(seed: seed, step: 0, sample: UInt32(truncatingIfNeeded: firstSample + i), tag: .noise),
                          start: 0)
        }
        noiseOut?.update(from: buf.baseAddress!, count: n * dim)
    }
    let nfe = try labels.withUnsafeBufferPointer { y in
        try x.withUnsafeMutableBufferPointer { xb in
            try sampler.sample(model: NativeSamplerModel(model), guide: guide.map { NativeSamplerModel($0) }, labels: y.baseAddress,
                               x: xb.baseAddress!, batch: n, dim: dim, firstSample: UInt64(firstSample), trajectory: trajectory)
        }
    }
    return (x, nfe)
}

/// Samples `labels.count` images split across the ranks (each its `Cluster.slice`, noise keyed by the global
/// sample index) and gathers them on rank 0 in order: the bits one process sampling them all would get, as
/// long as a row's forward does not depend on the rows batched with it. dopri5 is refused under MPI: its
/// adaptive step size depends on the whole batch. Returns nil on the other ranks; one process samples all.
func sampleAcrossRanks(model: NativeModel, guide: NativeModel? = nil, sampler: Sampler, labels: [Int32],
                       seed: UInt64) throws -> (x: [Float], nfe: Int)? {
    let cluster = Cluster.current
    guard cluster.isDistributed else { return try sampleImages(model: model, guide: guide, sampler: sampler, labels: labels, seed: seed) }
    guard sampler.config.method != .dopri5 else {
        throw ValidationError("dopri5 adapts its step size to the whole batch, so it cannot be split across ranks: run it without mpirun, or use a fixed-grid method")
    }
    let (first, count) = cluster.slice(of: labels.count)
    let local = count == 0 ? (x: [Float](), nfe: 0)
        : try sampleImages(model: model, guide: guide, sampler: sampler, labels: Array(labels[first..<(first + count)]),
                           seed: seed, firstSample: first)
    guard let x = try cluster.gather(local.x, total: labels.count, width: model.sampleDim) else { return nil }
    return (x, local.nfe)
}

/// The samples of the old helpers: labels i mod K, no guidance unless `cfg` != 1 (in one process).
func sampleImages(model: NativeModel, transport: TransportConfig, method: String, gridPoints: Int, count n: Int,
                  seed: UInt64, threads: Int, trajectory: UnsafeMutablePointer<Float>? = nil,
                  noiseOut: UnsafeMutablePointer<Float>? = nil, cfg: Double = 1) throws -> [Float] {
    let sampler = try Sampler(try samplerConfig(model: model, transport: transport, method: method, gridPoints: gridPoints,
                                                seed: seed, threads: threads, cfg: cfg))
    let labels = try LabelSampling.cycle.labels(count: n, numClasses: max(1, model.numClasses), seed: seed)
    return try sampleImages(model: model, sampler: sampler, labels: labels, seed: seed, trajectory: trajectory,
                            noiseOut: noiseOut).x
}

/// The same samples split across the ranks (see `sampleAcrossRanks`): all of them on rank 0, nil on the others.
func sampleAcrossRanks(model: NativeModel, transport: TransportConfig, method: String, gridPoints: Int, count n: Int,
                       seed: UInt64, threads: Int) throws -> [Float]? {
    let sampler = try Sampler(try samplerConfig(model: model, transport: transport, method: method, gridPoints: gridPoints,
                                                seed: seed, threads: threads))
    let labels = try LabelSampling.cycle.labels(count: n, numClasses: max(1, model.numClasses), seed: seed)
    return try sampleAcrossRanks(model: model, sampler: sampler, labels: labels, seed: seed)?.x
}

/// PyTorch's `pixel_shuffle` (depth-to-space) of samples [n, C·r², S, S] → [n, C, S·r, S·r]:
/// out[c, h·r + i, w·r + j] = in[c·r² + i·r + j, h, w] (the inverse of `pixel_unshuffle`).
func depthToSpace(_ x: [Float], count n: Int, channels: Int, size: Int, factor r: Int) throws -> (x: [Float], channels: Int, size: Int) {
    guard r >= 1 else { throw ValidationError("--depth-to-space must be >= 1, got \(r)") }
    if r == 1 { return (x, channels, size) }
    guard channels % (r * r) == 0 else {
        throw MixflowError.invalidArgument("--depth-to-space \(r) needs channels divisible by \(r * r), the model has \(channels)")
    }
    let c = channels / (r * r), s = size * r
    var out = [Float](repeating: 0, count: x.count)
    for k in 0..<n {
        for ci in 0..<channels {
            let co = ci / (r * r), i = (ci / r) % r, j = ci % r
            for h in 0..<size {
                for w in 0..<size {
                    out[((k * c + co) * s + h * r + i) * s + w * r + j] = x[((k * channels + ci) * size + h) * size + w]
                }
            }
        }
    }
    return (out, c, s)
}
