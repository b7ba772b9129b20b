import ArgumentParser
import MixflowCore
import MixflowEval
import MixflowMethod
import MixflowModels

/// `mixflow eval`: sample a model shaped like the feature net's input (1×28×28 for the shipped one) and score
/// the samples against the Fashion-MNIST test set.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval",
        abstract: "Sample a model and score the samples: FD and KID (Fashion-MNIST classifier features) against the 10k test set, and the classifier's accuracy on them (conditional correctness).",
        discussion: """
            Samples go through the uint8 round trip real images went through (the convention's rule) before the
            feature net sees them. FD is biased at small n: compare models only at the same --n, seed and
            feature net. KID is unbiased (mean of --kid-subsets subsets of --kid-subset-size, with its standard error;
            features divided by the test features' RMS value first).
              mixflow eval --checkpoint models/fmnist-base/base.onnx --n 1000 --method euler --steps 50
            """)
    @OptionGroup var options: SamplingOptions
    @Option(help: "Folder with the feature net and the reference statistics.") var featnet = "share/featnet"
    @Option(help: "Folder with the Fashion-MNIST IDX files (the test images are KID's reference).")
    var data = "/usr/share/datasets/fashion-mnist"
    @Option(parsing: .unconditional, help: "KID subsets.") var kidSubsets = 50
    @Option(parsing: .unconditional, help: "KID subset size (0 = min(n, 1000)).") var kidSubsetSize = 0

    /// Every option and input file, before anything is read (the sampling options validate themselves).
    func validate() throws {
        try requireRange(kidSubsets, 1...100_000, "--kid-subsets")
        if kidSubsetSize != 0 { try requireRange(kidSubsetSize, 2...max(2, options.n), "--kid-subset-size") }
        guard options.n >= 2 else { throw ValidationError("--n must be >= 2 to score samples, got \(options.n)") }
        for file in ["fmnist-cnn.mxfnet", "fmnist-test-stats.mxfstat"] { try requireFile("\(repositoryPath(featnet))/\(file)", "--featnet") }
        try requireFile("\(data)/t10k-images-idx3-ubyte.gz", "--data")
    }

    mutating func run() throws {
        options.threads = Cluster.current.threads(options.threads)
        let featnet = repositoryPath(self.featnet)
        let net = try FeatureNet(path: "\(featnet)/fmnist-cnn.mxfnet")
        let reference = try FeatureStats(path: "\(featnet)/fmnist-test-stats.mxfstat")
        let real = try readImages("\(data)/t10k-images-idx3-ubyte.gz")
        guard real.count % net.inputDim == 0 else {
            throw MixflowError.invalidArgument("\(data)/t10k-images-idx3-ubyte.gz does not hold \(net.inputDim)-pixel images")
        }
        let subsetSize = kidSubsetSize == 0 ? min(options.n, 1000) : kidSubsetSize
        let evaluation = try Evaluation(net: net, reference: reference, samples: options.n, seed: options.seed, threads: options.threads)
        guard let r = try options.run(trajectory: false) else { return }   // ranks > 0 only sample their share
        let n = options.n, d = net.featureDim
        guard r.model.sampleDim == net.inputDim else {
            throw MixflowError.invalidArgument("the model's samples have \(r.model.sampleDim) values, the feature net takes \(net.inputDim) (1x28x28)")
        }
        let scored = try evaluation.score(r.x, convention: r.config.convention, labels: r.labels)
        let realCount = real.count / net.inputDim
        let realFeatures = net.features(of: real, count: realCount)
        // KID's cubic kernel (x·y/d + 1)^3 is not scale-free: both sets are divided by the test features' RMS
        // value, so that x·y/d is O(1) as for Inception features.
        var sumSquares = 0.0
        for v in realFeatures { sumSquares += Double(v) * Double(v) }
        let scale = Float(1 / (sumSquares / Double(max(1, realFeatures.count))).squareRoot())
        let normalised = scored.features.map { $0 * scale }, realNormalised = realFeatures.map { $0 * scale }
        let kid = normalised.withUnsafeBufferPointer { a in
            realNormalised.withUnsafeBufferPointer { b in
                KID.compute(a: a.baseAddress!, countA: n, b: b.baseAddress!, countB: realCount, dim: d,
                            numSubsets: kidSubsets, subsetSize: subsetSize, seed: options.seed)
            }
        }
        print("model: \(options.checkpoint) (\(r.loaded.arch), \(r.model.parameterCount) parameters); \(n) samples, \(r.config.method), \(r.times.count) grid points, \(r.nfe) NFE, seed \(options.seed)")
        print("FD (Fashion-MNIST classifier features) vs the 10k test set: \(fixed(scored.fd, 3))")
        print("KID x 1e3 (same features / test RMS \(fixed(Double(1 / scale), 3)), \(kidSubsets) subsets of \(subsetSize)): \(fixed(kid.mean * 1e3, 3)) +- \(fixed(kid.standardError * 1e3, 3))")
        print("class accuracy of the samples: \(fixed(scored.accuracy, 4))")
    }
}
