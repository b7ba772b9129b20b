import MixflowCore

/// DiT^DH's `model.*` description: the trainer optimises every trainable entry (pos_embed, t_embedder.W and
/// the RoPE tables are fixed).
extension DiTDHConfig: NativeModelConfig {
    public var metadata: [(key: String, value: String)] {
        [("model.arch", "DiTDH"), ("model.depth", "\(encoderDepth)"), ("model.hidden", "\(encoderHidden)"),
         ("model.heads", "\(encoderHeads)"), ("model.head_depth", "\(headDepth)"), ("model.head_hidden", "\(headHidden)"),
         ("model.head_heads", "\(headHeads)"), ("model.input_size", "\(inputSize)"), ("model.in_channels", "\(inChannels)"),
         ("model.num_classes", "\(numClasses)"), ("model.class_dropout", "\(classDropout)")]
    }
}

extension DiTDHModel {
    /// The validated configuration `architectureMetadata` describes (no allocation).
    /// - Throws: `.format` naming the missing, malformed or out-of-range key.
    public static func config(fromMetadata meta: [(key: String, value: String)]) throws -> DiTDHConfig {
        let m = ModelMetadata(meta)
        try m.expectArch("DiTDH")
        var c = DiTDHConfig(encoderDepth: try m.int("depth"), encoderHidden: try m.int("hidden"), encoderHeads: try m.int("heads"),
                            headDepth: try m.int("head_depth"), headHidden: try m.int("head_hidden"),
                            headHeads: try m.int("head_heads"), inputSize: try m.int("input_size"),
                            inChannels: try m.int("in_channels"), numClasses: try m.int("num_classes"))
        c.classDropout = try m.float("class_dropout", default: c.classDropout)
        try ModelMetadata.validated { try c.validate() }
        return c
    }
}
