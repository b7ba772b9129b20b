import MixflowCore

/// The `model.*` key=value form of a SiT shape (checkpoints, ONNX metadata_props). One place parses it, so a
/// trainer checkpoint and an ONNX file mean the same thing by the same keys.
extension SiTConfig: NativeModelConfig {
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
        let m = ModelMetadata(meta)
        try m.expectArch("SiT")
        self.init(depth: try m.int("depth"), hidden: try m.int("hidden"), heads: try heads ?? m.int("heads"),
                  patch: try m.int("patch"), inputSize: try m.int("input_size"), inChannels: try m.int("in_channels"),
                  numClasses: try m.int("num_classes"), learnSigma: try m.int("learn_sigma") != 0,
                  classDropout: try m.float("class_dropout", default: 0.1))
        if m.value("mlp_ratio") != nil { mlpRatio = try m.int("mlp_ratio") }
        // A caller's override is an argument, not file content: report it as such.
        if let h = heads, h <= 0 || hidden % h != 0 {
            throw MixflowError.invalidArgument("heads must divide hidden \(hidden), got \(h)")
        }
        let config = self
        try ModelMetadata.validated { try config.validate() }
    }
}
