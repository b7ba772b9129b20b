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
    /// Writes a DiT^DH to `path` atomically: the `model.*` keys of `architectureMetadata`, "mixflow.format"
    /// ("ditdh-forward" with the graph, else "ditdh-checkpoint"), the caller's metadata, with `options.graph` the
    /// runnable forward graph (`DiTDHGraph`: inputs x, t, y; output out), then every tensor bit for bit.
    /// - Throws: `.invalidArgument` (reserved, empty or repeated key; threshold < -1), `.io`, `.format` (inline
    ///   part over 2 GiB).
    public static func export(_ model: DiTDHModel, to path: String, options: ExportOptions = ExportOptions()) throws {
        guard options.externalThreshold >= -1 else {
            throw MixflowError.invalidArgument("external threshold must be >= -1 (-1 = all inline), got \(options.externalThreshold)")
        }
        for (key, _) in options.metadata where reservedPrefixes.contains(where: { key.hasPrefix($0) }) {
            throw MixflowError.invalidArgument("metadata key \"\(key)\" is reserved (the exporter writes model.* and mixflow.format)")
        }
        let writer = try OnnxWriter(path: path, externalThreshold: options.externalThreshold, graphName: "DiTDH")
        do {
            for (k, v) in model.architectureMetadata { try writer.setMetadata(k, v) }
            try writer.setMetadata("mixflow.format", options.graph ? "ditdh-forward" : "ditdh-checkpoint")
            for (k, v) in options.metadata { try writer.setMetadata(k, v) }
            if options.graph { try DiTDHGraph.add(model.config, to: writer) }
            for e in model.table.entries {
                try writer.add(e.name, dims: e.shape.map(Int64.init),
                               data: UnsafeBufferPointer(start: model.params + e.offset, count: e.count))
            }
            try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Whether a file holds a DiT^DH: `model.arch` = "DiTDH", or, without `model.arch`, an initializer only
    /// DiT^DH has (`dec_feat_rope.freqs_cos`, `s_embedder.proj.weight`).
    static func isDiTDH(metadata: [(key: String, value: String)], names: [String]) -> Bool {
        if let arch = metadata.last(where: { $0.key == "model.arch" })?.value { return arch == "DiTDH" }
        return names.contains("dec_feat_rope.freqs_cos") || names.contains("s_embedder.proj.weight")
    }

    /// Loads a SiT or a DiT^DH (see `isDiTDH`); SiT files go through `load(path:heads:threads:)`.
    public static func loadNative(path: String, heads: Int? = nil, threads: Int = 0) throws -> LoadedNativeModel {
        let reader = try OnnxReader(path: path)
        let metadata = reader.metadata.map { (key: String(decoding: $0.key, as: UTF8.self),
                                              value: String(decoding: $0.value, as: UTF8.self)) }
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
            config = hasArch ? try DiTDHModel.fromMetadataConfig(metadata)
                             : try inferDiTDHConfig(byName.mapValues { reader.tensors[$0].dims })
        } catch let error as MixflowError {
            throw error.prefixed("\(path): ")
        }
        let table = DiTDHParameterTable(config)
        // Checked before allocating: a hostile model.depth cannot make us allocate more than the file holds.
        var missing: [String] = [], misShaped: [String] = [], unexpected: [String] = []
        for e in table.entries {
            guard let i = byName[e.name] else { missing.append(e.name); continue }
            let t = reader.tensors[i]
            if t.dims != e.shape.map(Int64.init) {
                misShaped.append("\(t.name) is \(t.dims), DiT^DH needs \(e.shape)")
            } else if !t.isConvertibleToFloat {
                misShaped.append("\(t.name) has element type \(OnnxDataType.describe(t.dataType)), DiT^DH needs a float type")
            }
        }
        for name in byName.keys where table.index(of: name) == nil { unexpected.append(name) }
        guard missing.isEmpty && misShaped.isEmpty && unexpected.isEmpty else {
            func list(_ title: String, _ items: [String]) -> String? {
                guard !items.isEmpty else { return nil }
                let shown = items.sorted().prefix(12).joined(separator: ", ")
                return "\(title) (\(items.count)): \(shown)" + (items.count > 12 ? ", …" : "")
            }
            let parts = [list("missing", missing), list("unexpected", unexpected), list("mis-shaped", misShaped)].compactMap { $0 }
            let c = config
            throw MixflowError.format("\(path): the initializers do not fit DiT^DH(depth \(c.encoderDepth), hidden \(c.encoderHidden), "
                                      + "heads \(c.encoderHeads), head_depth \(c.headDepth), head_hidden \(c.headHidden), "
                                      + "head_heads \(c.headHeads), input \(c.inputSize), channels \(c.inChannels), "
                                      + "classes \(c.numClasses)): " + parts.joined(separator: "; "))
        }
        let model = try DiTDHModel(config, seed: 0, threads: threads)
        for e in model.table.entries {
            let i = byName[e.name]!
            let dst = UnsafeMutableBufferPointer(start: model.params + e.offset, count: e.count)
            try reader.read(i, into: dst)
            if let bad = dst.firstIndex(where: { !$0.isFinite }) {
                throw MixflowError.format("\(path): initializer \"\(e.name)\" element \(bad) is \(dst[bad]); weights must be finite")
            }
        }
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
