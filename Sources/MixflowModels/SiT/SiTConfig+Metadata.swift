import MixflowCore

/// The `model.*` key=value form of a SiT shape (checkpoints, ONNX metadata_props). One place parses it, so a
/// trainer checkpoint and an ONNX file mean the same thing by the same keys.
extension SiTConfig {
    public var metadata: [(key: String, value: String)] {
        [("model.arch", "SiT"), ("model.depth", "\(depth)"), ("model.hidden", "\(hidden)"),
         ("model.heads", "\(heads)"), ("model.patch", "\(patch)"), ("model.input_size", "\(inputSize)"),
         ("model.in_channels", "\(inChannels)"), ("model.num_classes", "\(numClasses)"),
         ("model.learn_sigma", learnSigma ? "1" : "0"), ("model.class_dropout", "\(classDropout)"),
         ("model.mlp_ratio", "\(mlpRatio)")]
    }

    /// Parses `metadata` (the last value of a repeated key wins); `heads` overrides model.heads when given.
    /// - Throws: `.format` for a missing or malformed key or a shape that fails `validate`; `.invalidArgument`
    ///   when `heads` does not divide the width.
    public init(metadata meta: [(key: String, value: String)], heads: Int? = nil) throws {
        func value(_ k: String) -> String? { meta.last(where: { $0.key == "model." + k })?.value }
        guard value("arch") == "SiT" else {
            throw MixflowError.format("model.arch is \"\(value("arch") ?? "missing")\", expected \"SiT\"")
        }
        func int(_ k: String) throws -> Int {
            guard let s = value(k), let v = Int(s) else { throw MixflowError.format("model.\(k) is missing or not an integer") }
            return v
        }
        let dropout = value("class_dropout") ?? "0.1"
        guard let p = Float(dropout) else { throw MixflowError.format("model.class_dropout is not a number: \"\(dropout)\"") }
        self.init(depth: try int("depth"), hidden: try int("hidden"), heads: try heads ?? int("heads"), patch: try int("patch"),
                  inputSize: try int("input_size"), inChannels: try int("in_channels"),
                  numClasses: try int("num_classes"), learnSigma: try int("learn_sigma") != 0, classDropout: p)
        if value("mlp_ratio") != nil { mlpRatio = try int("mlp_ratio") }
        // A caller's override is an argument, not file content: report it as such.
        if let h = heads, h <= 0 || hidden % h != 0 {
            throw MixflowError.invalidArgument("heads must divide hidden \(hidden), got \(h)")
        }
        do { try validate() } catch let MixflowError.invalidArgument(m) { throw MixflowError.format("model: \(m)") }
    }
}
