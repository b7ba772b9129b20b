/// The official DiT^DH state dict in PyTorch order (docs/exactness.md §6.5: the root's pos_embed, then the children in
/// registration order: x_embedder, s_embedder, s_projector, t_embedder (W first), y_embedder, final_layer,
/// the two RoPE modules' buffers, then the blocks, encoder first), packed back to back in one flat buffer.
/// pos_embed, t_embedder.W and the four RoPE tables are stored but fixed (never given a gradient).
public struct DiTDHParameterTable: Sendable {
    public let layout: ParameterLayout
    public var entries: [ParameterEntry] { layout.entries }
    public var count: Int { layout.count }

    /// Entry indices of the fixed part (sProjW/sProjB are nil when s_projector is Identity).
    public let posEmbed, xEmbedW, xEmbedB, sEmbedW, sEmbedB: Int
    public let sProjW: Int?, sProjB: Int?
    public let tW, tMlp0W, tMlp0B, tMlp2W, tMlp2B, yTable: Int
    public let finalNorm, finalLinW, finalLinB, finalAdaW, finalAdaB: Int
    public let encCos, encSin, decCos, decSin: Int
    /// Index of block 0's first entry.
    public let firstBlock: Int

    public static let perBlock = 12
    /// Offsets inside a block's twelve entries.
    public static let norm1 = 0, norm2 = 1, qkvW = 2, qkvB = 3, projW = 4, projB = 5, w12W = 6, w12B = 7,
                      w3W = 8, w3B = 9, adaW = 10, adaB = 11

    public init(_ c: DiTDHConfig) {
        var layout = ParameterLayout()
        @discardableResult
        func add(_ name: String, _ shape: [Int], trainable: Bool = true) -> Int { layout.add(name, shape, trainable: trainable) }
        let de = c.encoderHidden, dh = c.headHidden, ch = c.inChannels, t = c.tokens
        posEmbed = add("pos_embed", [1, t, de], trainable: false)
        xEmbedW = add("x_embedder.proj.weight", [dh, ch, 1, 1]); xEmbedB = add("x_embedder.proj.bias", [dh])
        sEmbedW = add("s_embedder.proj.weight", [de, ch, 1, 1]); sEmbedB = add("s_embedder.proj.bias", [de])
        if c.hasProjector {
            sProjW = add("s_projector.weight", [dh, de]); sProjB = add("s_projector.bias", [dh])
        } else {
            sProjW = nil; sProjB = nil
        }
        tW = add("t_embedder.W", [fourierFeatures], trainable: false)
        tMlp0W = add("t_embedder.mlp.0.weight", [de, 2 * fourierFeatures]); tMlp0B = add("t_embedder.mlp.0.bias", [de])
        tMlp2W = add("t_embedder.mlp.2.weight", [de, de]); tMlp2B = add("t_embedder.mlp.2.bias", [de])
        // One extra row, the null class (LabelEmbedder's use_cfg_embedding with dropout on).
        yTable = add("y_embedder.embedding_table.weight", [c.numClasses + 1, de])
        finalNorm = add("final_layer.norm_final.weight", [dh])
        finalLinW = add("final_layer.linear.weight", [ch, dh]); finalLinB = add("final_layer.linear.bias", [ch])
        finalAdaW = add("final_layer.adaLN_modulation.1.weight", [2 * dh, dh])
        finalAdaB = add("final_layer.adaLN_modulation.1.bias", [2 * dh])
        let hdEnc = de / c.encoderHeads, hdDec = dh / c.headHeads
        encCos = add("enc_feat_rope.freqs_cos", [t, hdEnc], trainable: false)
        encSin = add("enc_feat_rope.freqs_sin", [t, hdEnc], trainable: false)
        decCos = add("dec_feat_rope.freqs_cos", [t, hdDec], trainable: false)
        decSin = add("dec_feat_rope.freqs_sin", [t, hdDec], trainable: false)
        firstBlock = layout.entries.count
        for i in 0..<c.depth {
            let (d, _, hs) = c.block(i)
            let p = "blocks.\(i)."
            add(p + "norm1.weight", [d]); add(p + "norm2.weight", [d])
            add(p + "attn.qkv.weight", [3 * d, d]); add(p + "attn.qkv.bias", [3 * d])
            add(p + "attn.proj.weight", [d, d]); add(p + "attn.proj.bias", [d])
            add(p + "mlp.w12.weight", [2 * hs, d]); add(p + "mlp.w12.bias", [2 * hs])
            add(p + "mlp.w3.weight", [d, hs]); add(p + "mlp.w3.bias", [d])
            add(p + "adaLN_modulation.1.weight", [6 * d, d]); add(p + "adaLN_modulation.1.bias", [6 * d])
        }
        self.layout = layout
    }

    /// Total number of floats, from the shapes alone (no table, no allocation; used to validate a config).
    public static func count(_ c: DiTDHConfig) -> Int {
        let de = c.encoderHidden, dh = c.headHidden, ch = c.inChannels, t = c.tokens
        var n = t * de + (dh * ch + dh) + (de * ch + de) + (c.hasProjector ? dh * de + dh : 0)
        n += fourierFeatures + (de * 2 * fourierFeatures + de) + (de * de + de) + (c.numClasses + 1) * de
        n += dh + (ch * dh + ch) + (2 * dh * dh + 2 * dh)
        n += 2 * t * (de / c.encoderHeads) + 2 * t * (dh / c.headHeads)
        for i in 0..<c.depth {
            let (d, _, hs) = c.block(i)
            n += 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (2 * hs * d + 2 * hs) + (d * hs + d) + (6 * d * d + 6 * d)
        }
        return n
    }

    public func index(of name: String) -> Int? { layout.index(of: name) }

    /// Entry index of tensor `k` (0..<12) of block `i`.
    public func block(_ i: Int, _ k: Int) -> Int { firstBlock + DiTDHParameterTable.perBlock * i + k }
}
