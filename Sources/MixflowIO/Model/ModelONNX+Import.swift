import MixflowCore
import MixflowModels

/// The result of `ModelONNX.load`: the model plus what the file said and what was left out.
public struct LoadedModel {
    public let model: SiTModel
    /// The file's metadata_props in file order (bytes that are not UTF-8 are replaced).
    public let metadata: [(key: String, value: String)]
    /// Initializers that are not SiT weights and were skipped: REPA's `projectors.*`, and the constants of a
    /// graph (`torch.onnx.export` files), under their names in the file.
    public let ignored: [String]
    /// true when the architecture came from the shapes (no `model.*` metadata).
    public let inferred: Bool
}

extension ModelONNX {
    /// Loads a SiT from an ONNX file: the architecture from `model.*` metadata, else inferred from the shapes
    /// (`inferConfig`); then every official tensor is read straight into the model's flat buffer (external data
    /// with pread, no intermediate copy for float32).
    ///
    /// Initializer names may carry a prefix (`model.`, `module.`, an exporter's scope): the longest suffix
    /// starting after a '.' that is an official SiT name is used.
    /// - Parameters:
    ///   - heads: overrides `model.heads`; needed when there is no metadata and hidden is not an official width.
    ///   - threads: the model's worker threads (0 = all cores).
    /// - Throws: `.io`/`.format` (the file), `.format` listing missing, unexpected and mis-shaped tensors and
    ///   non-finite values, `.invalidArgument` (heads not inferable or invalid), `.outOfMemory`.
    public static func load(path: String, heads: Int? = nil, threads: Int = 0) throws -> LoadedModel {
        let reader = try OnnxReader(path: path)
        let metadata = reader.metadata.map { (key: String(decoding: $0.key, as: UTF8.self),
                                              value: String(decoding: $0.value, as: UTF8.self)) }
        // Official name -> initializer; unmatched initializers are sorted into ignored / unexpected.
        let folded = reader.numNodes > 0 ? foldedTransposes(reader) : [:]
        var official: [String: Source] = [:]
        var unmatched: [String] = [], ignored: [String] = []
        for (i, t) in reader.tensors.enumerated() {
            let source = Source(index: i, transposed: folded[i] != nil)
            guard let name = folded[i] ?? officialName(t.name) else {
                if t.name.hasPrefix("projectors.") || t.name.contains(".projectors.") || reader.numNodes > 0 {
                    ignored.append(t.name)
                } else {
                    unmatched.append(t.name)
                }
                continue
            }
            if name.hasPrefix("projectors.") { ignored.append(t.name); continue }
            if let j = official[name] {
                throw MixflowError.format("\(path): initializers \"\(reader.tensors[j.index].name)\" and \"\(t.name)\" are both \(name)")
            }
            official[name] = source
        }
        let shapes = official.mapValues { s in
            s.transposed ? reader.tensors[s.index].dims.reversed() : reader.tensors[s.index].dims
        }
        let hasArch = metadata.contains(where: { $0.key == "model.arch" })
        let config: SiTConfig
        do {
            config = hasArch ? try SiTConfig(metadata: metadata, heads: heads) : try inferConfig(shapes, heads: heads)
        } catch let error as MixflowError {
            throw error.prefixed("\(path): ")
        }
        let table = SiTParameterTable(config)
        let c = config
        let unexpected = unmatched + official.compactMap { name, s in table.index(of: name) == nil ? reader.tensors[s.index].name : nil }
        try checkInitializers(table.entries, reader: reader, found: { official[$0.name] }, unexpected: unexpected,
                              architecture: "SiT(depth \(c.depth), hidden \(c.hidden), patch \(c.patch), input \(c.inputSize), "
                                  + "channels \(c.inChannels), classes \(c.numClasses), learn_sigma \(c.learnSigma ? 1 : 0))",
                              path: path)
        let model = try SiTModel(config, seed: 0, threads: threads)
        try readWeights(model, reader: reader, found: { official[$0.name]! }, path: path)
        return LoadedModel(model: model, metadata: metadata, ignored: ignored, inferred: !hasArch)
    }

    /// Linear weights an exporter stored transposed under a generated name: `torch.onnx.export` folds the
    /// Transpose of a Linear on [B, T, D] tokens into a new [in, out] initializer ("val_26", "onnx::MatMul_9")
    /// used as `Add(MatMul(h, Wᵀ), P.bias)`. The bias keeps its module name P, so Wᵀ is P.weight transposed.
    /// Returns initializer index -> official weight name.
    static func foldedTransposes(_ reader: OnnxReader) -> [Int: String] {
        let nodes = reader.nodes()
        var consumers: [String: [Int]] = [:]
        for (k, n) in nodes.enumerated() { for v in n.inputs where !v.isEmpty { consumers[v, default: []].append(k) } }
        var out: [Int: String] = [:]
        for n in nodes where n.opType == "MatMul" && n.inputs.count == 2 && n.outputs.count == 1 {
            guard let w = reader.index(of: n.inputs[1]), officialName(n.inputs[1]) == nil,
                  reader.tensors[w].dims.count == 2 else { continue }
            for c in consumers[n.outputs[0]] ?? [] where nodes[c].opType == "Add" && nodes[c].inputs.count == 2 {
                let other = nodes[c].inputs[0] == n.outputs[0] ? nodes[c].inputs[1] : nodes[c].inputs[0]
                guard reader.index(of: other) != nil, let bias = officialName(other), bias.hasSuffix(".bias") else { continue }
                let weight = String(bias.dropLast(".bias".count)) + ".weight"
                if isOfficial(weight) { out[w] = weight }
            }
        }
        return out
    }

    /// The official name inside `name`: itself, or its longest suffix starting after a '.' that looks like a SiT
    /// (or REPA projector) state-dict key; nil when none does.
    public static func officialName(_ name: String) -> String? {
        if isOfficial(name) { return name }
        var rest = Substring(name)
        while let dot = rest.firstIndex(of: ".") {
            rest = rest[rest.index(after: dot)...]
            if isOfficial(rest) { return String(rest) }
        }
        return nil
    }

    static func isOfficial<S: StringProtocol>(_ s: S) -> Bool {
        let parts = s.split(separator: Character("."), omittingEmptySubsequences: false).map { String($0) }
        let wb: Set<String> = ["weight", "bias"]
        switch parts.first {
        case "pos_embed": return parts.count == 1
        case "x_embedder": return parts.count == 3 && parts[1] == "proj" && wb.contains(parts[2])
        case "t_embedder": return parts.count == 4 && parts[1] == "mlp" && (parts[2] == "0" || parts[2] == "2") && wb.contains(parts[3])
        case "y_embedder": return parts == ["y_embedder", "embedding_table", "weight"]
        case "blocks":
            guard parts.count >= 4, let i = Int(parts[1]), i >= 0, String(i) == parts[1], wb.contains(parts.last!) else { return false }
            let module = parts[2..<(parts.count - 1)].joined(separator: ".")
            return ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "adaLN_modulation.1"].contains(module)
        case "final_layer":
            let module = parts.dropFirst().dropLast().joined(separator: ".")
            return parts.count >= 3 && ["linear", "adaLN_modulation.1"].contains(module) && wb.contains(parts.last!)
        case "projectors": return parts.count >= 2
        default: return false
        }
    }
}

extension MixflowError {
    func prefixed(_ prefix: String) -> MixflowError {
        switch self {
        case .invalidArgument(let m): return .invalidArgument(prefix + m)
        case .format(let m): return .format(prefix + m)
        case .io(let m): return .io(prefix + m)
        case .unsupported(let m): return .unsupported(prefix + m)
        case .outOfMemory(let m): return .outOfMemory(prefix + m)
        default: return self
        }
    }
}
