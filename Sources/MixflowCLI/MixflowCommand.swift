import ArgumentParser
import MixflowCore
import MixflowMethod
import MixflowModels
import MixflowIO

@main
struct MixflowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mixflow",
        abstract: "MixFlow post-training and sampling for flow-matching image models.",
        subcommands: [PostTrainCommand.self, SampleCommand.self, SlowFlowCommand.self])
}

/// Loads a native SiT from a trainer checkpoint (`.mixflow`), with its EMA weights by default.
func loadModel(_ path: String, ema: Bool, threads: Int) throws -> (SiTModel, TransportConfig) {
    let ck = try Checkpoint.read(from: path)
    let model = try SiTModel.fromMetadata(ck.metadata, threads: threads)
    let name = ema && ck.section("ema") != nil ? "ema" : "params"
    guard let weights = ck.section(name), weights.count == model.parameterCount else {
        throw MixflowError.format("\(path): section \(name) is missing or does not match the architecture")
    }
    weights.withUnsafeBufferPointer { model.params.update(from: $0.baseAddress!, count: weights.count) }
    return (model, try TransportConfig(keyValues: ck.metadata))
}

/// Options shared by the commands that sample.
struct SamplingOptions: ParsableArguments {
    @Option(help: "Trainer checkpoint (.mixflow) to sample from.") var checkpoint: String
    @Flag(help: "Use the raw weights instead of the EMA weights.") var raw = false
    @Option(help: "euler, heun, midpoint, rk4, dopri5.") var method = "heun"
    @Option(help: "Grid points (SiT convention: N points, N - 1 steps).") var steps = 50
    @Option(help: "Number of samples.") var n = 64
    @Option(help: "Classifier-free guidance scale (1 = off).") var cfg = 1.0
    @Option(help: "Seed of the starting noise.") var seed: UInt64 = 0
    @Option(help: "Worker threads (0 = all cores; results do not depend on it).") var threads = 0

    /// Runs the sampler; returns the samples [n, dim], the starting noise and, if asked, the trajectory
    /// [points, n, dim] with its times.
    func run(trajectory: Bool) throws -> (model: SiTModel, x: [Float], noise: [Float], traj: [Float], times: [Double], transport: TransportConfig) {
        guard n > 0 else { throw ValidationError("--n must be > 0") }
        let (model, transport) = try loadModel(checkpoint, ema: !raw, threads: threads)
        let times = try samplerConfig(model: model, transport: transport, method: method, gridPoints: steps, seed: seed,
                                      threads: threads).outputTimesOfGrid()
        var noise = [Float](repeating: 0, count: n * model.sampleDim)
        var traj = [Float](repeating: 0, count: trajectory ? times.count * n * model.sampleDim : 0)
        let x = try traj.withUnsafeMutableBufferPointer { tb in
            try noise.withUnsafeMutableBufferPointer { nb in
                try sampleImages(model: model, transport: transport, method: method, gridPoints: steps, count: n, seed: seed,
                                 threads: threads, trajectory: trajectory ? tb.baseAddress : nil, noiseOut: nb.baseAddress, cfg: cfg)
            }
        }
        return (model, x, noise, traj, times, transport)
    }
}

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sample",
        abstract: "Sample a checkpoint; write a PNG grid and/or an ADM-format .npz (arr_0 uint8 NHWC).")
    @OptionGroup var options: SamplingOptions
    @Option(help: "PNG grid to write.") var grid: String?
    @Option(help: ".npz to write.") var npz: String?

    func run() throws {
        let r = try options.run(trajectory: false)
        let c = r.model.config
        if let grid {
            let g = r.x.withUnsafeBufferPointer {
                PNG.grid($0, count: options.n, channels: c.inChannels == 3 ? 3 : 1, size: c.inputSize, columns: 16)
            }
            // Multi-channel latents that are not RGB: show channel 0 only.
            if c.inChannels == 1 || c.inChannels == 3 {
                try PNG.write(path: grid, pixels: g.pixels, width: g.width, height: g.height, channels: c.inChannels)
            } else {
                throw ValidationError("--grid needs 1- or 3-channel images; this model has \(c.inChannels) channels")
            }
            print("wrote \(grid)")
        }
        if let npz {
            var bytes = [UInt8](repeating: 0, count: r.x.count)
            r.x.withUnsafeBufferPointer { xb in
                bytes.withUnsafeMutableBufferPointer { out in
                    ImageQuantization.toNHWC(xb.baseAddress!, n: options.n, c: c.inChannels, h: c.inputSize, w: c.inputSize,
                                             convention: r.transport.convention, out: out.baseAddress!)
                }
            }
            // The writer asks for byte ranges [offset, offset + count) of the NHWC array.
            try NPZWriter.write(path: npz, shape: [options.n, c.inputSize, c.inputSize, c.inChannels]) { offset, out in
                bytes.withUnsafeBufferPointer { out.baseAddress!.update(from: $0.baseAddress! + offset, count: out.count) }
            }
            print("wrote \(npz)")
        }
    }
}

struct SlowFlowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "slowflow",
        abstract: "Measure the Slow Flow of a checkpoint (endpoint definition) and suggest gamma.")
    @OptionGroup var options: SamplingOptions
    @Option(help: "Coverage quantile for suggest_gamma.") var coverage = 0.95
    @Option(help: "CSV file for the per-time statistics.") var csv: String?
    @Option(help: "JSON file for the per-time statistics.") var json: String?

    func run() throws {
        let r = try options.run(trajectory: true)
        let dim = r.model.sampleDim
        let measured = try r.traj.withUnsafeBufferPointer { tb in
            try r.noise.withUnsafeBufferPointer { nb in
                try SlowFlow.measure(reference: .endpoint, path: r.transport.path, convention: r.transport.convention,
                                     times: r.times, trajectory: tb.baseAddress!, noise: nb.baseAddress!,
                                     batch: options.n, dim: dim, data: nil, numData: 0, threads: options.threads)
            }
        }
        let stats = SlowFlowStatistics(t: measured.t, m: measured.m, batch: options.n)
        let gamma = try SlowFlowStatistics.suggestGamma(t: measured.t, m: measured.m, batch: options.n, coverage: coverage)
        print(stats.csv(), terminator: "")
        print("suggested gamma (coverage \(coverage)): \(gamma)")
        if let csv { try AtomicFile.write(to: csv) { try $0.write(stats.csv()) } }
        if let json { try AtomicFile.write(to: json) { try $0.write(stats.json(reference: "endpoint")) } }
    }
}
