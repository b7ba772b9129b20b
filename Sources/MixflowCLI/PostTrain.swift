import ArgumentParser
import MixflowCore
import MixflowEval
import MixflowIO
import MixflowMethod
import MixflowModels
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; long loops save a checkpoint and exit when they see it. A second signal exits at
/// once (the checkpoints on disk are always complete: they are written to a temp file and renamed).
nonisolated(unsafe) var interrupted: Int32 = 0

func onInterrupt(_: Int32) {
    if interrupted != 0 { _exit(130) }
    interrupted = 1
}

/// Exits with 130 when an interrupt arrived (on any rank), after the post-training checkpoints were saved.
func exitIfInterrupted(_ during: String) throws {
    guard Cluster.current.agreeInterrupted() else { return }
    print("\ninterrupted during \(during): post-training checkpoints are saved; rerun to resume")
    throw ExitCode(130)
}

struct PostTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "posttrain",
        abstract: "Post-train a base model with standard flow matching and with MixFlow (same steps, same seed), evaluate both against the base, and write the post-trained ONNX, a sample grid and the Slow Flow statistics.")

    @Option(help: "Base model: an ONNX model (.onnx) or a trainer checkpoint (.mixflow, EMA weights).")
    var base = "models/fmnist-base/base.onnx"
    @Option(help: "Folder with the Fashion-MNIST IDX files.") var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Folder with the feature net and the reference statistics.") var featnet = "share/featnet"
    @Option(help: "Output folder (rerunning resumes from its checkpoints).") var out = "runs/posttrain"
    @Option(parsing: .unconditional, help: "Post-training steps per method.") var steps = 200
    @Option(parsing: .unconditional, help: "Batch size.") var batch = 64
    @Option(parsing: .unconditional, help: "Learning rate (constant).") var lr = 1e-4
    @Option(parsing: .unconditional, help: "EMA decay of the post-trained weights.") var ema = 0.99
    @Option(parsing: .unconditional, help: "gamma in [0, 1], or \"auto\" for suggest_gamma on the base model (nearest-data Slow Flow, 95 % coverage).") var gamma = "auto"
    @Option(parsing: .unconditional, help: "Generated samples per evaluation (the same count, noise and labels for every model).") var evalSamples = 250
    @Option(parsing: .unconditional, help: "Sampling grid sizes to evaluate (grid points, SiT convention).") var evalSteps = "10,20,50"
    @Option(help: "Samplers to evaluate.") var evalMethods = "euler,heun"
    @Option(parsing: .unconditional, help: "float32 .npy of REPA target features, one row per --data image ([N, tokens, z_dim]): a base model with projectors (REPA's SiT) then trains denoise + λ·proj (λ 0.5).") var features: String?
    @Option(parsing: .unconditional) var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Worker threads (0 = all cores, shared among the MPI ranks on this machine; results do not depend on it).") var threads = 0

    /// Every option and input file, before the data are read (ArgumentParser calls this right after parsing).
    func validate() throws {
        try requireRange(steps, 1...10_000_000, "--steps")
        try requireRange(batch, 1...65536, "--batch")
        guard lr.isFinite, lr >= 0 else { throw ValidationError("--lr must be a finite number >= 0, got \(lr)") }
        guard ema.isFinite else { throw ValidationError("--ema must be in [0, 1], got \(ema)") }
        try requireRange(ema, 0...1, "--ema")
        _ = try gammaChoice()
        try requireRange(evalSamples, 2...1_000_000, "--eval-samples")
        _ = try evalGridSizes()
        _ = try evalMethodList()
        try requireRange(threads, 0...4096, "--threads")
        try requireFile(repositoryPath(base), "--base")
        for file in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] { try requireFile("\(data)/\(file)", "--data") }
        for file in ["fmnist-cnn.mxfnet", "fmnist-test-stats.mxfstat"] { try requireFile("\(repositoryPath(featnet))/\(file)", "--featnet") }
    }

    /// --gamma: nil for auto.
    func gammaChoice() throws -> Double? {
        if gamma == "auto" { return nil }
        guard let v = Double(gamma), (0...1).contains(v) else { throw ValidationError("--gamma must be in [0, 1] or auto, got \(gamma)") }
        return v
    }

    /// --eval-steps as grid sizes.
    func evalGridSizes() throws -> [Int] {
        let sizes = evalSteps.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingSpaces) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 != nil && (2...1_000_000).contains($0!) }) else {
            throw ValidationError("--eval-steps must be a comma-separated list of grid sizes in [2, 1000000], got \(evalSteps)")
        }
        return sizes.map { $0! }
    }

    /// --eval-methods as sampler names.
    func evalMethodList() throws -> [String] {
        let methods = evalMethods.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces.lowercased() }
        guard !methods.isEmpty, methods.allSatisfy({ samplerMethods[$0] != nil }) else {
            throw ValidationError("--eval-methods must be a comma-separated list of \(samplerMethods.keys.sorted().joined(separator: ", ")), got \(evalMethods)")
        }
        return methods
    }

    mutating func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)     // progress and results appear as they happen, also through a pipe
        let cluster = Cluster.current
        threads = cluster.threads(threads)
        guard batch >= cluster.size else { throw ValidationError("--batch \(batch) must be at least the number of ranks, \(cluster.size)") }
        signal(SIGINT, onInterrupt)
        signal(SIGTERM, onInterrupt)
        try prepareOutputs(folders: [out])
        let clock = Stopwatch()
        // Data, base model, evaluation tools.
        let x = try readImages("\(data)/train-images-idx3-ubyte.gz")
        let labelsFile = try IDXArray(path: "\(data)/train-labels-idx1-ubyte.gz")
        var y = [Int32](repeating: 0, count: labelsFile.count)
        try y.withUnsafeMutableBufferPointer { try labelsFile.readInt32(into: $0.baseAddress!) }
        let (baseModel, baseTransport) = try loadBase()
        guard !y.isEmpty else { throw ValidationError("\(data)/train-labels-idx1-ubyte.gz holds no labels: nothing to post-train on") }
        try checkClassLabels(y, count: y.count, numClasses: baseModel.numClasses, nullClassAllowed: false, name: "train-labels")
        let dim = baseModel.sampleDim
        guard dim * y.count == x.count else {
            throw MixflowError.invalidArgument("the base model takes \(dim) floats per sample; the data have \(x.count / max(1, y.count))")
        }
        let z = try loadFeatures(for: baseModel, rows: y.count)
        let featnet = repositoryPath(self.featnet)
        let net = try FeatureNet(path: "\(featnet)/fmnist-cnn.mxfnet")
        let reference = try FeatureStats(path: "\(featnet)/fmnist-test-stats.mxfstat")
        print("base: \(repositoryPath(base)) (\(baseModel.parameterCount) parameters), data: \(y.count) images\(cluster.isDistributed ? ", \(cluster.size) ranks x \(threads) threads" : "")  [\(clock)]")

        // gamma: given, or the smallest interval covering 95 % of the measured slowed times (measured by rank 0).
        var g = 0.0
        if let given = try gammaChoice() {
            g = given
        } else {
            if cluster.isRoot {
                let sf = try SlowFlowRun(model: baseModel, transport: baseTransport, data: x, count: y.count, seed: seed, threads: threads)
                for reference in SlowFlowReference.allCases {
                    let name = reference.cliName
                    try AtomicFile.write(to: "\(out)/slowflow-\(name).csv") { try $0.write(sf.statistics[reference]!.csv()) }
                    print("suggest_gamma (\(name) Slow Flow of the base, 95 % coverage): \(fixed(sf.gammas[reference]!, 3))\(reference == SlowFlowRun.chosen ? "  <- used" : "")")
                }
                print(sf.advice.text)
                g = sf.gamma
            }
            g = cluster.broadcast(g)
            print("gamma = \(fixed(g, 3))  [\(clock)]")
            try exitIfInterrupted("the Slow Flow measurement")
        }

        // The two post-training runs, from the same weights, seed and minibatches.
        var results: [(String, NativeModel)] = [("base", baseModel)]
        for (name, gammaRun) in [("standard", 0.0), ("mixflow", g)] {
            var tc = TransportConfig()
            tc.convention = baseTransport.convention
            tc.timeShift = baseTransport.timeShift
            tc.timeDistribution = gammaRun == 0 ? .uniform : .beta21
            tc.gamma = gammaRun
            tc.threads = threads
            let model = try postTrain(name: name, from: baseModel, transport: tc, data: x, labels: y, features: z, clock: clock)
            results.append((name, model))
        }
        try exitIfInterrupted("post-training")

        // Evaluation: every model, sampler and grid size on the same noise and labels.
        let table = try Evaluation(net: net, reference: reference, samples: evalSamples, seed: seed &+ 1, threads: threads)
        let methods = try evalMethodList(), sizes = try evalGridSizes()
        var rows: [[String]] = [], accuracyRows: [[String]] = []
        // The ETA counts network evaluations: each (sampler, grid) costs its NFE per sample.
        let costs = methods.flatMap { m in sizes.map { n in (m, n, nfePerSample(method: m, gridPoints: n)) } }
        let progress = Progress(label: "evaluation", total: results.count * costs.reduce(0) { $0 + $1.2 })
        var done = 0
        for (name, model) in results {
            var row = [name], accuracyRow = [name], lastSamples: [Float]?
            for (m, n, cost) in costs {
                let r = try table.evaluate(model: model, transport: baseTransport, method: m, gridPoints: n)   // nil on ranks > 0
                row.append(r.map { fixed($0.fd, 2) } ?? "")
                accuracyRow.append(r.map { fixed($0.accuracy, 3) } ?? "")
                lastSamples = r?.samples
                done += cost
                progress.update(done, note: "\(name) \(m) \(n): FD \(row.last!)")
                try exitIfInterrupted("the evaluation")
            }
            rows.append(row)
            accuracyRows.append(accuracyRow)
            // The grid shows the first samples of the last (finest) evaluation rather than sampling again.
            if let x = lastSamples { try writeGrid(x, model: model, path: "\(out)/\(name)-samples.png") }
        }
        progress.finish()
        let header = ["model"] + costs.map { "\($0.0) \($0.1)" }
        print("\nFD (Fashion-MNIST classifier features), \(evalSamples) samples vs the 10k test set; lower is better. gamma = \(fixed(g, 3)), \(steps) post-training steps each:")
        print(formatTable([header] + rows))
        print("\nClass accuracy of the feature net on the samples (conditional correctness; the test set scores 0.909):")
        print(formatTable([header] + accuracyRows))
        guard cluster.isRoot else { return }
        let exportMetadata: [(key: String, value: String)] = [("transport.gamma", "\(g)"), ("mixflow.step", "\(steps)")]
        try ModelONNX.export(results[2].1, to: "\(out)/mixflow.onnx", options: .init(graph: true, metadata: exportMetadata))
        print("wrote \(out)/mixflow.onnx, \(out)/{base,standard,mixflow}-samples.png\(gamma == "auto" ? ", \(out)/slowflow-{endpoint,nearest-data,noise-level}.csv" : "")  [\(clock)]")
    }

    func loadBase() throws -> (NativeModel, TransportConfig) {
        let loaded = try loadNative(repositoryPath(base), ema: true, threads: threads)
        return (loaded.model, loaded.transport)
    }

    /// Post-trains a copy of `base` (fresh optimiser) for `steps` steps; resumes from `<out>/<name>.mixflow`.
    /// The --features rows (checked against the model and the data), or nil; says once when a model with
    /// projectors trains without them.
    func loadFeatures(for model: NativeModel, rows: Int) throws -> [Float]? {
        let size = (model as? FeatureAlignedModel)?.featureSize ?? 0
        guard let path = features else {
            if size > 0 { print("note: the base model has REPA projectors but no --features: training the denoising loss alone") }
            return nil
        }
        guard size > 0 else { throw ValidationError("--features is for models with REPA projectors; \(base) has none") }
        let (shape, values) = try NPYReader.readFloat32(path: path)
        guard shape.first == rows, values.count == rows * size else {
            throw ValidationError("--features \(path) has shape \(shape); the data have \(rows) images and the model takes \(size) floats of features each")
        }
        try values.withUnsafeBufferPointer { try requireFinite($0, "--features") }
        print("features: \(path) \(shape), denoise + λ·proj")
        return values
    }

    /// Under MPI every rank trains on its slice of each global minibatch (rows and randomness keyed by the
    /// global sample index), the gradient hook averages the gradients, and rank 0 writes the checkpoints.
    func postTrain(name: String, from base: NativeModel, transport: TransportConfig, data: [Float], labels: [Int32],
                   features: [Float]?, clock: Stopwatch) throws -> NativeModel {
        let path = "\(out)/\(name).mixflow"
        let trainer: Trainer
        if access(path, F_OK) == 0 {
            trainer = try Trainer.resume(from: path, threads: threads, parameterCount: nativeParameterCount) {
                try nativeModel(fromMetadata: $0, threads: threads)
            }
            // Resuming another configuration would silently mix two runs.
            let was = trainer.transport.config
            guard was.gamma == transport.canonical.gamma, was.timeDistribution == transport.timeDistribution, trainer.config.emaDecay == ema,
                  trainer.config.schedule == .constant(lr), trainer.config.seed == seed, trainer.step <= steps else {
                throw MixflowError.invalidArgument("\(path) is a run with gamma \(was.gamma), \(was.timeDistribution), \(trainer.config.schedule), EMA \(trainer.config.emaDecay), seed \(trainer.config.seed) at step \(trainer.step); this one asks for gamma \(transport.gamma), \(transport.timeDistribution), lr \(lr), EMA \(ema), seed \(seed), \(steps) steps: use another --out or delete it")
            }
        } else {
            let model = try base.sibling(seed: 0)
            model.parameters.update(from: base.parameters, count: base.parameterCount)
            var config = TrainerConfig()
            config.schedule = .constant(lr)
            config.emaDecay = ema
            config.seed = seed
            config.threads = threads
            trainer = try Trainer(model: model, transport: try Transport(transport), config: config)
        }
        let cluster = Cluster.current
        let (first, local) = cluster.slice(of: batch)
        trainer.gradientHook = { grads, count, _ in cluster.averageGradients(grads, count: count, rows: local, total: batch) }
        // Replicas must start equal (the same base, or the same checkpoint on a shared --out) and stay equal.
        func save() throws {
            try cluster.checkSame([UInt64(trainer.step), trainer.checksum()], "the step and weights of \(path)")
            if cluster.isRoot { try trainer.save(to: path) }
        }
        try cluster.checkSame([UInt64(trainer.step), trainer.checksum()], "the starting step and weights of \(path)")
        let dim = base.sampleDim, n = labels.count
        var xb = [Float](repeating: 0, count: local * dim), yb = [Int32](repeating: 0, count: local)
        let fs = (base as? FeatureAlignedModel)?.featureSize ?? 0
        var zb = [Float](repeating: 0, count: features == nil ? 0 : local * fs)
        let progress = Progress(label: name, total: steps)
        while trainer.step < steps && !cluster.agreeInterrupted() {
            // Minibatch k depends only on (seed, k): both runs see the same data in the same order. This rank
            // takes rows first..<first + local of it.
            for i in 0..<local {
                let u = RandomStream(seed: seed, step: UInt64(trainer.step), sample: UInt32(first + i), tag: .scalars).uniformPair(2).0
                let j = min(n - 1, Int(u * Double(n)))
                for k in 0..<dim { xb[i * dim + k] = data[j * dim + k] }
                yb[i] = labels[j]
                if let features { for k in 0..<fs { zb[i * fs + k] = features[j * fs + k] } }
            }
            let loss = cluster.sum(try zb.withUnsafeBufferPointer { z in
                try trainer.trainStep(x1: xb, y: yb, batch: local, firstSample: UInt64(first),
                                      features: features == nil ? nil : z.baseAddress)
            } * Double(local) / Double(batch))
            progress.update(trainer.step, note: "loss \(fixed(loss, 4))")
            if trainer.step % 100 == 0 { try save() }
        }
        try save()
        progress.finish()
        let emaModel = try base.sibling(seed: 0)
        let weights = trainer.ema.isEmpty ? Array(UnsafeBufferPointer(start: trainer.model.parameters, count: base.parameterCount)) : trainer.ema
        weights.withUnsafeBufferPointer { emaModel.parameters.update(from: $0.baseAddress!, count: base.parameterCount) }
        return emaModel
    }

    /// Network evaluations per sample of a fixed-grid sampler (an estimate for the adaptive dopri5).
    func nfePerSample(method: String, gridPoints: Int) -> Int {
        let steps = gridPoints - 1
        switch method {
        case "heun", "heun2", "midpoint": return 2 * steps
        case "rk4": return 4 * steps
        case "dopri5": return 6 * steps
        default: return steps
        }
    }

    /// A PNG of up to 100 samples, 10 per row: with labels cycling over 10 classes, one class per column.
    func writeGrid(_ x: [Float], model: NativeModel, path: String) throws {
        let n = min(100, x.count / model.sampleDim)
        let g = x.withUnsafeBufferPointer { PNG.grid($0, count: n, channels: model.inChannels, size: model.inputSize, columns: 10) }
        try PNG.write(path: path, pixels: g.pixels, width: g.width, height: g.height, channels: model.inChannels)
    }
}
