import MixflowCore
import MixflowModels

// REPA's SiT <-> ONNX: the export is the shared one (`ModelONNX.export`; the projectors are initializers under
// their official names) with `REPAGraph`, SiT's forward graph plus the projectors' outputs. The import keeps the
// projectors: a file whose model.arch is "REPA-SiT", or without metadata one that holds a whole projector, loads
// as a `REPAModel`.

/// REPA's forward (models/sit.py returns (x, zs)) as an ONNX graph: SiT's graph (output `out`), plus one output
/// `z_tilde_<k>` [B, T, z_dims[k]] per projector: Linear → SiLU → Linear → SiLU → Linear on every token of the
/// residual stream after block `encoder_depth`.
enum REPAGraph {
    static func add(_ c: REPAConfig, to writer: OnnxWriter) throws {
        var zs: [String] = []
        let d = Int64(c.sit.hidden), tk = Int64(c.sit.tokens), p = Int64(c.projectorDim)
        let g = try SiTGraph.add(c.sit, to: writer) { g, blocks, tokens in
            guard blocks == c.encoderDepth else { return }
            for (k, z) in c.zDims.enumerated() {
                let q = "projectors.\(k)."
                var h = try SiTGraph.silu(g, try SiTGraph.tokenLinear(g, tokens, q + "0", tokens: tk, features: d, out: p))
                h = try SiTGraph.silu(g, try SiTGraph.tokenLinear(g, h, q + "2", tokens: tk, features: p, out: p))
                zs.append(try SiTGraph.tokenLinear(g, h, q + "4", tokens: tk, features: p, out: Int64(z)))
            }
        }
        for (k, z) in zs.enumerated() {
            try g.node("Identity", [z], named: ["z_tilde_\(k)"])
            try g.value("z_tilde_\(k)", output: true, dataType: OnnxDataType.float, dims: [-1, tk, Int64(c.zDims[k])])
        }
    }
}

extension ModelONNX {
    /// Whether a file holds REPA's SiT (see above); names may carry a prefix (`model.`, `module.`).
    static func isREPA(metadata: [(key: String, value: String)], names: [String]) -> Bool {
        if let arch = metadata.last(where: { $0.key == "model.arch" })?.value { return arch == "REPA-SiT" }
        // Without metadata: a whole first projector (its first and last Linear); stray projector tensors alone
        // leave the file a SiT, which skips and reports them.
        let official = Set(names.compactMap { officialName($0) })
        return official.contains("projectors.0.0.weight") && official.contains("projectors.0.4.weight")
    }

    /// Loads REPA's SiT: the architecture from `model.*` metadata, else from the shapes (SiT's `inferConfig`,
    /// the projector widths from `projectors.<k>.{0,4}.weight`, encoder_depth REPA's default 8, which the shapes
    /// cannot tell); every tensor of the table must be present (names may carry a prefix) with its shape.
    /// - Throws: `.format` listing missing, unexpected and mis-shaped tensors in one message, non-finite
    ///   weights, bad metadata; `.io`; `.outOfMemory`.
    static func loadREPA(_ reader: OnnxReader, metadata: [(key: String, value: String)], path: String, heads: Int?,
                         threads: Int) throws -> LoadedNativeModel {
        var official: [String: Source] = [:], unexpected: [String] = []
        for (i, t) in reader.tensors.enumerated() {
            guard let name = officialName(t.name) else { unexpected.append(t.name); continue }
            if let j = official[name] {
                throw MixflowError.format("\(path): initializers \"\(reader.tensors[j.index].name)\" and \"\(t.name)\" are both \(name)")
            }
            official[name] = Source(index: i)
        }
        let hasArch = metadata.contains(where: { $0.key == "model.arch" })
        let config: REPAConfig
        do {
            config = hasArch ? try REPAConfig(metadata: metadata)
                             : try inferREPAConfig(official.mapValues { reader.tensors[$0.index].dims }, heads: heads)
        } catch let error as MixflowError {
            throw error.prefixed("\(path): ")
        }
        // The table's shapes, without allocating the model: a hostile metadata cannot make us allocate.
        let entries = REPAModel.layout(config).entries
        let known = Set(entries.map(\.name))
        unexpected += official.compactMap { known.contains($0.key) ? nil : reader.tensors[$0.value.index].name }
        let c = config.sit
        try checkInitializers(entries, reader: reader, found: { official[$0.name] }, unexpected: unexpected,
                              architecture: "REPA-SiT(depth \(c.depth), hidden \(c.hidden), patch \(c.patch), input \(c.inputSize), "
                                  + "channels \(c.inChannels), classes \(c.numClasses), encoder_depth \(config.encoderDepth), "
                                  + "projector_dim \(config.projectorDim), z_dims \(config.zDims))",
                              path: path)
        let model = try REPAModel(config, seed: 0, threads: threads)
        try readWeights(model, reader: reader, found: { official[$0.name]! }, path: path)
        return LoadedNativeModel(model: model, metadata: metadata, ignored: [], inferred: !hasArch)
    }

    /// REPA's SiT from the official tensors' shapes; encoder_depth 8 (REPA's default) unless the trunk is shallower.
    static func inferREPAConfig(_ shapes: [String: [Int64]], heads: Int?) throws -> REPAConfig {
        let hint = "; add the model.* metadata (python -m mixflow.convert --arch REPA-SiT-XL/2) to load this file"
        var sit = try inferConfig(shapes.filter { !$0.key.hasPrefix("projectors.") }, heads: heads)
        sit.learnSigma = false
        var zDims: [Int] = []
        var projectorDim = 0
        while let first = shapes["projectors.\(zDims.count).0.weight"], let last = shapes["projectors.\(zDims.count).4.weight"] {
            guard first.count == 2, last.count == 2, first[0] > 0, first[0] <= 1 << 16, last[0] > 0, last[0] <= 1 << 16 else {
                throw MixflowError.format("cannot infer REPA's projectors: projectors.\(zDims.count) has shapes \(first), \(last)" + hint)
            }
            projectorDim = Int(first[0])
            zDims.append(Int(last[0]))
        }
        guard !zDims.isEmpty else { throw MixflowError.format("cannot infer REPA's projectors: projectors.0 is missing" + hint) }
        let c = REPAConfig(sit: sit, encoderDepth: min(8, sit.depth), projectorDim: projectorDim, zDims: zDims)
        do { try c.validate() } catch let MixflowError.invalidArgument(m) {
            throw MixflowError.format("cannot infer the REPA-SiT architecture: \(m)" + hint)
        }
        return c
    }
}
