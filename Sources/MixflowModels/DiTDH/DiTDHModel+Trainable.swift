import MixflowCore

/// DiT^DH as a `TrainableModel`/`NativeModel`: the trainer optimises every trainable entry (pos_embed,
/// t_embedder.W and the RoPE tables are fixed).
extension DiTDHModel: NativeModel {
    public var parameterCount: Int { table.count }
    public var trainableRanges: [Range<Int>] { MixflowModels.trainableRanges(of: table.entries) }
    public var parameters: UnsafeMutablePointer<Float> { params }
    public var gradients: UnsafeMutablePointer<Float> { grads }
    public var sampleDim: Int { config.sampleSize }
    public var tensorEntries: [ParameterEntry] { table.entries }
    public func tensorIndex(of name: String) -> Int? { table.index(of: name) }
    public var inChannels: Int { config.inChannels }
    public var inputSize: Int { config.inputSize }
    public var numClasses: Int { config.numClasses }
    public func sibling(seed: UInt64) throws -> NativeModel { try DiTDHModel(config, seed: seed, threads: threads) }

    public var architectureMetadata: [(key: String, value: String)] {
        let c = config
        return [("model.arch", "DiTDH"), ("model.depth", "\(c.encoderDepth)"), ("model.hidden", "\(c.encoderHidden)"),
                ("model.heads", "\(c.encoderHeads)"), ("model.head_depth", "\(c.headDepth)"),
                ("model.head_hidden", "\(c.headHidden)"), ("model.head_heads", "\(c.headHeads)"),
                ("model.input_size", "\(c.inputSize)"), ("model.in_channels", "\(c.inChannels)"),
                ("model.num_classes", "\(c.numClasses)"), ("model.class_dropout", "\(c.classDropout)")]
    }

    /// Rebuilds the architecture from `architectureMetadata` (weights are loaded separately).
    public static func fromMetadata(_ meta: [(key: String, value: String)], threads: Int = 0) throws -> DiTDHModel {
        try DiTDHModel(try fromMetadataConfig(meta), seed: 0, threads: threads)
    }

    /// The validated configuration `architectureMetadata` describes (no allocation).
    /// - Throws: `.format` naming the missing, malformed or out-of-range key.
    public static func fromMetadataConfig(_ meta: [(key: String, value: String)]) throws -> DiTDHConfig {
        func value(_ k: String) -> String? { meta.last(where: { $0.key == "model." + k })?.value }
        guard value("arch") == "DiTDH" else {
            throw MixflowError.format("model.arch is \"\(value("arch") ?? "missing")\", expected \"DiTDH\"")
        }
        func int(_ k: String) throws -> Int {
            guard let s = value(k), let v = Int(s) else { throw MixflowError.format("model.\(k) is missing or not an integer") }
            return v
        }
        var c = DiTDHConfig(encoderDepth: try int("depth"), encoderHidden: try int("hidden"), encoderHeads: try int("heads"),
                            headDepth: try int("head_depth"), headHidden: try int("head_hidden"),
                            headHeads: try int("head_heads"), inputSize: try int("input_size"),
                            inChannels: try int("in_channels"), numClasses: try int("num_classes"))
        if let s = value("class_dropout") {
            guard let v = Float(s) else { throw MixflowError.format("model.class_dropout is \"\(s)\", expected a number") }
            c.classDropout = v
        }
        do { try c.validate() } catch let MixflowError.invalidArgument(m) { throw MixflowError.format("model: \(m)") }
        return c
    }

    public func forwardTraining(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int,
                                seed: UInt64, step: UInt64, firstSample: UInt64, out: UnsafeMutablePointer<Float>) throws {
        let dropout = LabelDropout(seed: seed, step: step, firstSample: firstSample)
        if let y {
            try forward(x: x, t: t, y: y, batch: batch, out: out, dropout: dropout)
        } else {
            let null = [Int32](repeating: Int32(config.numClasses), count: batch)
            try forward(x: x, t: t, y: null, batch: batch, out: out, dropout: dropout)
        }
    }

    public func backward(gradOutput: UnsafePointer<Float>) throws {
        zeroGradients()
        try backward(dout: gradOutput, batch: lastBatch)
    }
}
