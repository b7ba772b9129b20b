import MixflowCore

/// SiT as a `TrainableModel`: the trainer optimises every trainable table entry (pos_embed is fixed).
extension SiTModel: TrainableModel {
    public var parameterCount: Int { table.count }
    public var trainableRanges: [Range<Int>] {
        // Merge adjacent trainable entries into as few ranges as possible.
        var ranges: [Range<Int>] = []
        for e in table.entries where e.trainable {
            if let last = ranges.last, last.upperBound == e.offset {
                ranges[ranges.count - 1] = last.lowerBound..<(e.offset + e.count)
            } else {
                ranges.append(e.offset..<(e.offset + e.count))
            }
        }
        return ranges
    }
    public var parameters: UnsafeMutablePointer<Float> { params }
    public var gradients: UnsafeMutablePointer<Float> { grads }
    public var sampleDim: Int { config.sampleSize }

    public var architectureMetadata: [(key: String, value: String)] {
        let c = config
        return [("model.arch", "SiT"), ("model.depth", "\(c.depth)"), ("model.hidden", "\(c.hidden)"),
                ("model.heads", "\(c.heads)"), ("model.patch", "\(c.patch)"), ("model.input_size", "\(c.inputSize)"),
                ("model.in_channels", "\(c.inChannels)"), ("model.num_classes", "\(c.numClasses)"),
                ("model.learn_sigma", c.learnSigma ? "1" : "0"), ("model.class_dropout", "\(c.classDropout)"),
                ("model.mlp_ratio", "\(c.mlpRatio)")]
    }

    /// Rebuilds the architecture from `architectureMetadata` (weights are loaded separately).
    public static func fromMetadata(_ meta: [(key: String, value: String)], threads: Int = 0) throws -> SiTModel {
        func value(_ k: String) -> String? { meta.last(where: { $0.key == "model." + k })?.value }
        guard value("arch") == "SiT" else {
            throw MixflowError.format("model.arch is \"\(value("arch") ?? "missing")\", expected \"SiT\"")
        }
        func int(_ k: String) throws -> Int {
            guard let s = value(k), let v = Int(s) else { throw MixflowError.format("model.\(k) is missing or not an integer") }
            return v
        }
        var c = SiTConfig(depth: try int("depth"), hidden: try int("hidden"), heads: try int("heads"), patch: try int("patch"),
                          inputSize: try int("input_size"), inChannels: try int("in_channels"),
                          numClasses: try int("num_classes"), learnSigma: try int("learn_sigma") != 0,
                          classDropout: Float(value("class_dropout") ?? "0.1") ?? 0.1)
        if let r = value("mlp_ratio") { c.mlpRatio = Int(r) ?? 4 }
        do { try c.validate() } catch let MixflowError.invalidArgument(m) { throw MixflowError.format("model: \(m)") }
        return try SiTModel(c, seed: 0, threads: threads)
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
