import MixflowCore
import MixflowModels

// DiT^DH <-> ONNX: every tensor of the official state dict (docs/exactness.md §6.5, RoPE buffers and t_embedder.W included)
// as a float32 initializer under its own name, plus the `model.*` architecture metadata, optionally with the
// runnable forward graph (`DiTDHGraph`) over the same initializers.

/// The result of `ModelONNX.loadNative`: a SiT or a DiT^DH plus what the file said and what was left out.
public struct LoadedNativeModel {
    public let model: NativeModel
    /// The file's metadata_props in file order.
    public let metadata: [(key: String, value: String)]
    /// Initializers that were skipped (SiT files only: REPA projectors, graph constants).
    public let ignored: [String]
    /// true when the architecture came from the shapes (no `model.*` metadata).
    public let inferred: Bool
}

extension ModelONNX {
    /// Whether a file holds a DiT^DH: `model.arch` = "DiTDH", or, without `model.arch`, an initializer only
    /// DiT^DH has (`dec_feat_rope.freqs_cos`, `s_embedder.proj.weight`).
    static func isDiTDH(metadata: [(key: String, value: String)], names: [String]) -> Bool {
        if let arch = metadata.last(where: { $0.key == "model.arch" })?.value { return arch == "DiTDH" }
        return names.contains("dec_feat_rope.freqs_cos") || names.contains("s_embedder.proj.weight")
    }

    /// Loads a SiT, REPA's SiT (see `isREPA`) or a DiT^DH (see `isDiTDH`); SiT files go through
    /// `load(path:heads:threads:)`.
    public static func loadNative(path: String, heads: Int? = nil, threads: Int = 0) throws -> LoadedNativeModel {
        let reader = try OnnxReader(path: path)
        let metadata = reader.metadata.map { (key: String(decoding: $0.key, as: UTF8.self),
                                              value: String(decoding: $0.value, as: UTF8.self)) }
        if isREPA(metadata: metadata, names: reader.tensors.map(\.name)) {
            return try loadREPA(reader, metadata: metadata, path: path, heads: heads, threads: threads)
        }
        guard isDiTDH(metadata: metadata, names: reader.tensors.map(\.name)) else {
            let l = try load(path: path, heads: heads, threads: threads)
            return LoadedNativeModel(model: l.model, metadata: l.metadata, ignored: l.ignored, inferred: l.inferred)
        }
        return try loadDiTDH(reader, metadata: metadata, path: path, threads: threads)
    }

    /// Loads a DiT^DH checkpoint: architecture from `model.*` metadata, else from the shapes
    /// (`inferDiTDHConfig`); every tensor of the table must be present under its exact name with its shape.
    /// - Throws: `.format` listing missing, unexpected and mis-shaped tensors in one message, non-finite
    ///   weights, bad metadata; `.io`; `.outOfMemory`.
    static func loadDiTDH(_ reader: OnnxReader, metadata: [(key: String, value: String)], path: String,
                          threads: Int) throws -> LoadedNativeModel {
        var byName: [String: Int] = [:]
        for (i, t) in reader.tensors.enumerated() {
            if let j = byName[t.name] { throw MixflowError.format("\(path): initializer \"\(reader.tensors[j].name)\" appears twice") }
            byName[t.name] = i
        }
        let hasArch = metadata.contains(where: { $0.key == "model.arch" })
        let config: DiTDHConfig
        do {
            config = hasArch ? try DiTDHModel.config(fromMetadata: metadata)
                             : try inferDiTDHConfig(byName.mapValues { reader.tensors[$0].dims })
        } catch let error as MixflowError {
            throw error.prefixed("\(path): ")
        }
        let table = DiTDHParameterTable(config)
        let c = config
        try checkInitializers(table.entries, reader: reader, found: { byName[$0.name].map { Source(index: $0) } },
                              unexpected: byName.keys.filter { table.index(of: $0) == nil },
                              architecture: "DiT^DH(depth \(c.encoderDepth), hidden \(c.encoderHidden), heads \(c.encoderHeads), "
                                  + "head_depth \(c.headDepth), head_hidden \(c.headHidden), head_heads \(c.headHeads), "
                                  + "input \(c.inputSize), channels \(c.inChannels), classes \(c.numClasses))",
                              path: path)
        let model = try DiTDHModel(config, seed: 0, threads: threads)
        try readWeights(model, reader: reader, found: { Source(index: byName[$0.name]!) }, path: path)
        return LoadedNativeModel(model: model, metadata: metadata, ignored: [], inferred: !hasArch)
    }

    /// The DiT^DH shape from the official tensors' shapes (docs/exactness.md §6.5): widths and channels from the two patch
    /// embeds, tokens from pos_embed, head dims (hence heads) from the RoPE tables, classes from the label table,
    /// and the encoder/head split from the block widths. Equal encoder and head widths make the split
    /// ambiguous: such files need the `model.*` metadata.
    /// - Throws: `.format` naming the tensor that is missing or inconsistent.
    static func inferDiTDHConfig(_ shapes: [String: [Int64]]) throws -> DiTDHConfig {
        let hint = "; add the model.* metadata (python -m mixflow.convert --arch DiTDH-XL/DiTDH-S) to load this file"
        func dims(_ name: String, rank: Int) throws -> [Int] {
            guard let d = shapes[name], d.count == rank, d.allSatisfy({ $0 > 0 && $0 <= Int64(Int32.max) }) else {
                throw MixflowError.format("cannot infer the DiT^DH architecture: \(name) is "
                                          + (shapes[name].map { "\($0)" } ?? "missing") + ", expected \(rank) positive dims" + hint)
            }
            return d.map { Int($0) }
        }
        let s = try dims("s_embedder.proj.weight", rank: 4), x = try dims("x_embedder.proj.weight", rank: 4)
        let pos = try dims("pos_embed", rank: 3), y = try dims("y_embedder.embedding_table.weight", rank: 2)
        let enc = try dims("enc_feat_rope.freqs_cos", rank: 2), dec = try dims("dec_feat_rope.freqs_cos", rank: 2)
        let de = s[0], ch = s[1], dh = x[0], tokens = pos[1]
        let side = Int((Double(tokens)).squareRoot().rounded())
        guard side * side == tokens, pos[2] == de else {
            throw MixflowError.format("cannot infer the DiT^DH architecture: pos_embed is \(pos), expected [1, S·S, \(de)]" + hint)
        }
        guard enc[1] > 0, de % enc[1] == 0, dec[1] > 0, dh % dec[1] == 0 else {
            throw MixflowError.format("cannot infer the DiT^DH architecture: RoPE head dims \(enc[1]) / \(dec[1]) do not divide "
                                      + "the widths \(de) / \(dh)" + hint)
        }
        guard y[0] >= 2 else {
            throw MixflowError.format("cannot infer the DiT^DH architecture: y_embedder.embedding_table.weight has \(y[0]) rows, "
                                      + "expected num_classes + 1 >= 2" + hint)
        }
        var widths: [Int] = []
        while let w = shapes["blocks.\(widths.count).norm1.weight"], w.count == 1 { widths.append(Int(w[0])) }
        guard de != dh else {
            throw MixflowError.format("cannot infer the DiT^DH architecture: the encoder and head widths are both \(de), so the "
                                      + "split of the \(widths.count) blocks is ambiguous" + hint)
        }
        let encoderDepth = widths.prefix(while: { $0 == de }).count
        let headDepth = widths.dropFirst(encoderDepth).prefix(while: { $0 == dh }).count
        guard encoderDepth > 0, headDepth > 0, encoderDepth + headDepth == widths.count else {
            throw MixflowError.format("cannot infer the DiT^DH architecture: block widths \(widths) are not \(de) (encoder) "
                                      + "followed by \(dh) (head)" + hint)
        }
        let c = DiTDHConfig(encoderDepth: encoderDepth, encoderHidden: de, encoderHeads: de / enc[1], headDepth: headDepth,
                            headHidden: dh, headHeads: dh / dec[1], inputSize: side, inChannels: ch, numClasses: y[0] - 1)
        do { try c.validate() } catch let MixflowError.invalidArgument(m) {
            throw MixflowError.format("cannot infer the DiT^DH architecture: \(m)" + hint)
        }
        return c
    }
}
