/// The official SiT state dict in PyTorch order (docs/exactness.md §5.6): pos_embed, x_embedder,
/// t_embedder, y_embedder, then the ten tensors of each block, then final_layer. All tensors are packed
/// back to back in that order in one flat float buffer, so a checkpoint maps one to one and the optimiser
/// and a gradient all-reduce see a single contiguous vector.
public struct SiTParameterTable: Sendable {
    public let layout: ParameterLayout
    public var entries: [ParameterEntry] { layout.entries }
    public var count: Int { layout.count }

    // Indices of the fixed part (PyTorch order).
    public static let posEmbed = 0, xEmbedW = 1, xEmbedB = 2, tMlp0W = 3, tMlp0B = 4, tMlp2W = 5, tMlp2B = 6, yTable = 7
    public static let perBlock = 10
    /// Offsets inside a block's ten entries.
    public static let qkvW = 0, qkvB = 1, projW = 2, projB = 3, fc1W = 4, fc1B = 5, fc2W = 6, fc2B = 7, adaW = 8, adaB = 9
    /// Offsets inside the final layer's four entries.
    public static let finalLinW = 0, finalLinB = 1, finalAdaW = 2, finalAdaB = 3

    /// `beforeFinal` adds the tensors of an architecture built on SiT (REPA's projectors) between the blocks
    /// and the final layer, where its official state dict has them.
    public init(_ c: SiTConfig, beforeFinal: (inout ParameterLayout) -> Void = { _ in }) {
        var layout = ParameterLayout()
        func add(_ name: String, _ shape: [Int], trainable: Bool = true) { layout.add(name, shape, trainable: trainable) }
        let d = c.hidden
        add("pos_embed", [1, c.tokens, d], trainable: false)
        add("x_embedder.proj.weight", [d, c.inChannels, c.patch, c.patch])
        add("x_embedder.proj.bias", [d])
        add("t_embedder.mlp.0.weight", [d, timestepFeatures])
        add("t_embedder.mlp.0.bias", [d])
        add("t_embedder.mlp.2.weight", [d, d])
        add("t_embedder.mlp.2.bias", [d])
        // One extra row, the null class, because class dropout is on (SiT's use_cfg_embedding).
        add("y_embedder.embedding_table.weight", [c.numClasses + 1, d])
        for i in 0..<c.depth {
            let p = "blocks.\(i)."
            add(p + "attn.qkv.weight", [3 * d, d]); add(p + "attn.qkv.bias", [3 * d])
            add(p + "attn.proj.weight", [d, d]); add(p + "attn.proj.bias", [d])
            add(p + "mlp.fc1.weight", [c.mlpHidden, d]); add(p + "mlp.fc1.bias", [c.mlpHidden])
            add(p + "mlp.fc2.weight", [d, c.mlpHidden]); add(p + "mlp.fc2.bias", [d])
            add(p + "adaLN_modulation.1.weight", [6 * d, d]); add(p + "adaLN_modulation.1.bias", [6 * d])
        }
        beforeFinal(&layout)
        add("final_layer.linear.weight", [c.outFeatures, d]); add("final_layer.linear.bias", [c.outFeatures])
        add("final_layer.adaLN_modulation.1.weight", [2 * d, d]); add("final_layer.adaLN_modulation.1.bias", [2 * d])
        self.layout = layout
    }

    /// Total number of floats, without building the table (used to validate a config before allocating).
    public static func count(_ c: SiTConfig) -> Int {
        let d = c.hidden, m = c.mlpHidden
        let fixed = c.tokens * d + (c.patchFeatures * d + d) + (timestepFeatures * d + d) + (d * d + d)
            + (c.numClasses + 1) * d
        let block = (3 * d * d + 3 * d) + (d * d + d) + (m * d + m) + (d * m + d) + (6 * d * d + 6 * d)
        let final = (c.outFeatures * d + c.outFeatures) + (2 * d * d + 2 * d)
        return fixed + c.depth * block + final
    }

    public func index(of name: String) -> Int? { layout.index(of: name) }

    /// Entry index of tensor `k` (0..<10) of block `i`.
    public static func block(_ i: Int, _ k: Int) -> Int { 8 + perBlock * i + k }
    /// Entry index of tensor `k` (0..<4) of the final layer.
    public func final(_ k: Int) -> Int { entries.count - 4 + k }
}
