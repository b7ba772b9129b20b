import ArgumentParser
import CMixflow
import MixflowCore
import MixflowMethod
import MixflowModels
import MixflowIO

@main
struct MixflowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mixflow",
        abstract: "MixFlow post-training and sampling for flow-matching image models.",
        version: versionText,
        subcommands: [PostTrainCommand.self, SampleCommand.self, SlowFlowCommand.self, EvalCommand.self])

    /// ArgumentParser's `main`, inside the MPI job when `mpirun` started this process (see Cluster). An error on
    /// one rank aborts every rank (the others may be waiting for it in a collective), so the job never hangs.
    static func main() {
        do { try Cluster.start() } catch { Cluster.current.abort(message: "\(error)", code: 1) }
        let cluster = Cluster.current
        do {
            var command = try parseAsRoot()
            if cluster.isDistributed, !(command is PostTrainCommand || command is SampleCommand || command is EvalCommand) {
                throw ValidationError("under mpirun, mixflow runs posttrain, sample and eval; start \(type(of: command).configuration.commandName ?? "this command") without mpirun")
            }
            try command.run()
            cluster.finish()
        } catch {
            let code = exitCode(for: error)
            // A help request or an interrupt every rank agreed on (exit 130) ends all ranks cleanly.
            if cluster.isDistributed, code != .success, !(code.rawValue == 130 && interrupted != 0) {
                cluster.abort(message: fullMessage(for: error), code: code.rawValue)
            }
            cluster.finish()
            exit(withError: error)
        }
    }
}

/// `mixflow --version`: the library version and ABI (mixflow_types.h), then what it computes with (ComputeInfo:
/// CPU, GEMM path, OpenBLAS core, threads), as mixflow_blas_info() reports it.
let versionText = "mixflow \(MIXFLOW_VERSION_STRING) (ABI \(MIXFLOW_ABI_VERSION))\n\(ComputeInfo.text)"

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sample",
        abstract: "Sample a SiT or DiT^DH checkpoint (optionally with CFG or autoguidance); write a PNG grid and/or an ADM-format .npz (arr_0 uint8 NHWC).",
        discussion: """
            RAE's protocol for a converted DiT^DH-XL (python -m mixflow.convert stage2_model.pt dit.onnx --arch DiTDH-XL --latent 768x16x16):
              mixflow sample --checkpoint dit.onnx --n 50000 --label-sampling equal --guidance auto --scale 1.42 --guide-checkpoint dit-s.onnx --latents latents.npy
            (convention rae, Euler on RAE's shifted grid, 50 points = 49 steps). The samples are latents: decode them with RAE's decoder.
            """)
    @OptionGroup var options: SamplingOptions
    @Option(help: "PNG grid to write (1- or 3-channel samples, after --depth-to-space).") var grid: String?
    @Option(help: ".npz to write (uint8 with the convention's rule, after --depth-to-space).") var npz: String?
    @Option(help: "float32 .npy of the raw samples [n, C, S, S] (RAE: the latents to decode with RAE's decoder).")
    var latents: String?
    @Option(help: "int32 .npy of the class labels the samples were drawn with.") var saveLabels: String?
    @Option(parsing: .unconditional, help: "PyTorch pixel_shuffle factor r applied to the samples before --grid/--npz: [C*r*r, S, S] -> [C, S*r, S*r] (undoes a pixel_unshuffle latent).")
    var depthToSpace = 1

    func validate() throws { try requireRange(depthToSpace, 1...64, "--depth-to-space") }

    mutating func run() throws {
        options.threads = Cluster.current.threads(options.threads)
        try prepareOutputs(files: [grid, npz, latents, saveLabels])
        guard let r = try options.run(trajectory: false) else { return }   // ranks > 0 only sample their share
        let m = r.model, c = r.config, n = options.n
        print("model: \(r.loaded.arch), \(m.parameterCount) parameters, samples \(m.inChannels)x\(m.inputSize)x\(m.inputSize), \(m.numClasses) classes")
        print("transport: \(c.convention) convention, shift \(fixed(c.timeShift, 4)) (\(r.loaded.transportSource))")
        let grid0 = r.times.first ?? 0, grid1 = r.times.last ?? 0
        print("grid: \(c.convention), \(r.times.count) points (\(r.times.count - 1) steps) from t = \(fixed(grid0, 6)) to \(fixed(grid1, 6)), method \(c.method)")
        switch c.guidance {
        case .none: print("guidance: none")
        case .classifierFree: print("guidance: cfg, scale \(c.guidanceScale), interval [\(c.guidanceInterval.lowerBound), \(c.guidanceInterval.upperBound)]")
        case .autoguidance: print("guidance: auto (guide \(options.guideCheckpoint ?? "")), scale \(c.guidanceScale), interval [\(c.guidanceInterval.lowerBound), \(c.guidanceInterval.upperBound)]")
        }
        var counts = [Int](repeating: 0, count: max(1, m.numClasses))
        for y in r.labels { counts[Int(y)] += 1 }
        let shown = counts.count <= 100 ? counts.map { "\($0)" }.joined(separator: " ")
                                        : "min \(counts.min()!), max \(counts.max()!)"
        print("labels: \(r.labelSampling.rawValue), per-class counts: \(shown)")
        print("NFE: \(r.nfe)")
        var mean = 0.0, sq = 0.0
        for v in r.x { mean += Double(v); sq += Double(v) * Double(v) }
        mean /= Double(r.x.count)
        print("samples: mean \(fixed(mean, 4)), std \(fixed((max(0, sq / Double(r.x.count) - mean * mean)).squareRoot(), 4))")

        if let latents {
            try NPZWriter.writeNPY(path: latents, shape: [n, m.inChannels, m.inputSize, m.inputSize], values: r.x)
            print("wrote \(latents)")
        }
        if let saveLabels {
            try NPZWriter.writeNPY(path: saveLabels, shape: [n], values: r.labels)
            print("wrote \(saveLabels)")
        }
        let (images, channels, size) = try MixflowCLI.depthToSpace(r.x, count: n, channels: m.inChannels, size: m.inputSize, factor: depthToSpace)
        if let grid {
            guard channels == 1 || channels == 3 else {
                throw MixflowError.invalidArgument("--grid needs 1- or 3-channel images; the samples have \(channels) channels (see --depth-to-space)")
            }
            let g = images.withUnsafeBufferPointer { PNG.grid($0, count: n, channels: channels, size: size, columns: 16) }
            try PNG.write(path: grid, pixels: g.pixels, width: g.width, height: g.height, channels: channels)
            print("wrote \(grid)")
        }
        if let npz {
            var bytes = [UInt8](repeating: 0, count: images.count)
            images.withUnsafeBufferPointer { xb in
                bytes.withUnsafeMutableBufferPointer { out in
                    ImageQuantization.toNHWC(xb.baseAddress!, n: n, c: channels, h: size, w: size, convention: c.convention,
                                             out: out.baseAddress!)
                }
            }
            // The writer asks for byte ranges [offset, offset + count) of the NHWC array.
            try NPZWriter.write(path: npz, shape: [n, size, size, channels]) { offset, out in
                bytes.withUnsafeBufferPointer { out.baseAddress!.update(from: $0.baseAddress! + offset, count: out.count) }
            }
            print("wrote \(npz)")
        }
    }
}

struct SlowFlowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "slowflow",
        abstract: "Measure the Slow Flow of a checkpoint and suggest gamma.",
        discussion: """
            Matches every state of the sampling trajectory to the ground-truth interpolation x_m = a_m x1 + s_m x0
            nearest to it and reports m per grid time, in the paper's convention (0 = noise, 1 = data; m < t = slowed).
            --reference picks x1: endpoint (the trajectory's own final sample), nearest-data (the training image
            that comes nearest, from --data), noise-level (the m whose marginal second moment matches the state's).
            See docs/slow-flow.md; `posttrain --gamma auto` uses nearest-data.
            """)
    @OptionGroup var options: SamplingOptions
    @Option(help: "endpoint, nearest-data or noise-level.") var reference = "endpoint"
    @Option(help: "Folder with the Fashion-MNIST IDX files (nearest-data and noise-level).")
    var data = "/usr/share/datasets/fashion-mnist"
    @Option(parsing: .unconditional, help: "Training images used as the data for nearest-data and noise-level.") var dataPoints = 10000
    @Option(parsing: .unconditional, help: "Coverage quantile for suggest_gamma, in (0, 1].") var coverage = 0.95
    @Option(help: "CSV file for the per-time statistics.") var csv: String?
    @Option(help: "JSON file for the per-time statistics.") var json: String?

    /// Every option and input file, before anything is read (the sampling options validate themselves).
    func validate() throws {
        let kind = try referenceChoice()
        try requireRange(dataPoints, 1...Int(Int32.max), "--data-points")
        guard coverage.isFinite, coverage > 0, coverage <= 1 else { throw ValidationError("--coverage must be in (0, 1], got \(coverage)") }
        if kind != .endpoint { try requireFile("\(data)/train-images-idx3-ubyte.gz", "--data") }
    }

    func referenceChoice() throws -> SlowFlowReference {
        guard let kind = SlowFlowReference.allCases.first(where: { $0.cliName == reference }) else {
            throw ValidationError("--reference must be endpoint, nearest-data or noise-level, got \(reference)")
        }
        return kind
    }

    func run() throws {
        let kind = try referenceChoice()
        try prepareOutputs(files: [csv, json])
        let data = kind == .endpoint ? [] : try readImages("\(self.data)/train-images-idx3-ubyte.gz")
        var count = 0
        let r = try options.run(trajectory: true)!
        let dim = r.model.sampleDim
        if kind != .endpoint {
            guard data.count % dim == 0 else { throw MixflowError.invalidArgument("the images in \(self.data) do not have the model's \(dim) values") }
            count = min(dataPoints, data.count / dim)
        }
        let measured = try r.traj.withUnsafeBufferPointer { tb in
            try r.noise.withUnsafeBufferPointer { nb in
                try data.withUnsafeBufferPointer { db in
                    try SlowFlow.measure(reference: kind, path: r.config.path, convention: r.config.convention,
                                         times: r.times, trajectory: tb.baseAddress!, noise: nb.baseAddress!,
                                         batch: options.n, dim: dim, data: kind == .endpoint ? nil : db.baseAddress,
                                         numData: count, threads: options.threads)
                }
            }
        }
        let stats = try SlowFlowStatistics(t: measured.t, m: measured.m, batch: options.n)
        let gamma = try SlowFlowStatistics.suggestGamma(t: measured.t, m: measured.m, batch: options.n, coverage: coverage)
        print(stats.csv(), terminator: "")
        print("suggested gamma (\(reference), coverage \(coverage)): \(gamma)")
        // The advice rests on the endpoint lag of the same trajectories, whatever --reference shows.
        let endpoint = kind == .endpoint ? measured : try r.traj.withUnsafeBufferPointer { tb in
            try r.noise.withUnsafeBufferPointer { nb in
                try SlowFlow.measure(reference: .endpoint, path: r.config.path, convention: r.config.convention, times: r.times,
                                     trajectory: tb.baseAddress!, noise: nb.baseAddress!, batch: options.n, dim: dim,
                                     data: nil, numData: 0, threads: options.threads)
            }
        }
        // The outlook's threshold is on the 95 %-coverage nearest-data gamma, whatever --coverage asked for.
        let nearestDataGamma = kind == .nearestData
            ? try SlowFlowStatistics.suggestGamma(t: measured.t, m: measured.m, batch: options.n, coverage: MixFlowOutlook.coverage) : nil
        print(try MixFlowAdvice(endpointT: endpoint.t, m: endpoint.m, batch: options.n, nearestDataGamma: nearestDataGamma).text)
        if let csv { try AtomicFile.write(to: csv) { try $0.write(stats.csv()) } }
        if let json { try AtomicFile.write(to: json) { try $0.write(stats.json(reference: String(reference.map { $0 == "-" ? "_" : $0 }))) } }
    }
}
