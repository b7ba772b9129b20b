import MixflowCore
import MixflowModels

/// SiT ↔ ONNX: a checkpoint file (every parameter as an initializer under its official PyTorch name and
/// shape, plus `model.*` architecture metadata and whatever the caller adds), optionally with the runnable
/// forward graph (`SiTGraph`) over the same initializers, and the import of such files — ours, converted
/// official checkpoints, and what `torch.onnx.export` writes for the official SiT module.
public enum ModelONNX {
    /// Metadata keys the exporter owns; a caller may not set them.
    public static let reservedPrefixes = ["model.", "mixflow.format"]

    /// What `export` writes besides the initializers.
    public struct ExportOptions {
        /// true: the runnable forward graph (inputs x, t, y; output out) over the initializers.
        public var graph: Bool
        /// Tensors of at least this many bytes go to `<file>.data`; -1 keeps everything inline.
        public var externalThreshold: Int64
        /// Extra metadata (transport.*, mixflow.step, …), written after the model.* keys, in order.
        public var metadata: [(key: String, value: String)]
        public init(graph: Bool = true, externalThreshold: Int64 = 1 << 20, metadata: [(key: String, value: String)] = []) {
            self.graph = graph; self.externalThreshold = externalThreshold; self.metadata = metadata
        }
    }

    /// The runnable forward graph of each architecture, by `model.arch`, and the name the file's
    /// "mixflow.format" starts with. Adding an architecture is one line here.
    static let graphs: [String: (format: String, add: (NativeModel, OnnxWriter) throws -> Void)] = [
        "SiT": ("sit", { try SiTGraph.add(($0 as! SiTModel).config, to: $1) }),
        "DiTDH": ("ditdh", { try DiTDHGraph.add(($0 as! DiTDHModel).config, to: $1) }),
        "REPA-SiT": ("repa-sit", { try REPAGraph.add(($0 as! REPAModel).config, to: $1) }),
    ]

    /// Writes `model` to `path` atomically (data file first, model last; nothing visible on failure): the
    /// `model.*` keys of `architectureMetadata`, "mixflow.format" ("<arch>-forward" with the graph, else
    /// "<arch>-checkpoint"), the caller's metadata, with `options.graph` the runnable forward graph (inputs x, t, y;
    /// output out), then every tensor of the table under its official name.
    ///
    /// The weights are written bit for bit as float32, so `load(export(m))` reproduces every parameter's bytes.
    /// - Throws: `.invalidArgument` (a reserved, empty or repeated metadata key; threshold < -1), `.io`, `.format`
    ///   (the inline part over 2 GiB: lower the threshold), `.unsupported` (an architecture without a graph).
    public static func export(_ model: NativeModel, to path: String, options: ExportOptions = ExportOptions()) throws {
        guard options.externalThreshold >= -1 else {
            throw MixflowError.invalidArgument("external threshold must be >= -1 (-1 = all inline), got \(options.externalThreshold)")
        }
        for (key, _) in options.metadata where reservedPrefixes.contains(where: { key.hasPrefix($0) }) {
            throw MixflowError.invalidArgument("metadata key \"\(key)\" is reserved (the exporter writes model.* and mixflow.format)")
        }
        let meta = model.architectureMetadata
        let arch = meta.last(where: { $0.key == "model.arch" })?.value ?? ""
        guard let graph = graphs[arch] else { throw MixflowError.unsupported("no ONNX export for model.arch \"\(arch)\"") }
        let writer = try OnnxWriter(path: path, externalThreshold: options.externalThreshold, graphName: arch)
        do {
            for (k, v) in meta { try writer.setMetadata(k, v) }
            try writer.setMetadata("mixflow.format", graph.format + (options.graph ? "-forward" : "-checkpoint"))
            for (k, v) in options.metadata { try writer.setMetadata(k, v) }
            if options.graph { try graph.add(model, writer) }
            for e in model.tensorEntries {
                try writer.add(e.name, dims: e.shape.map(Int64.init),
                               data: UnsafeBufferPointer(start: model.parameters + e.offset, count: e.count))
            }
            try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Checks the file's tensors against a table and throws one `.format` error listing every problem: the
    /// entries no initializer provides, the initializers no entry takes (`unexpected`), and those with the
    /// wrong shape or a non-float type. `found(e)` is the initializer for entry `e` and whether it is stored
    /// transposed. Run before allocating the model: only a file holding every tensor with its shape vouches
    /// for the size its metadata asks for.
    static func checkInitializers(_ entries: [ParameterEntry], reader: OnnxReader, found: (ParameterEntry) -> Source?,
                                  unexpected: [String], architecture: String, path: String) throws {
        var missing: [String] = [], misShaped: [String] = []
        let arch = architecture.prefix(while: { $0 != "(" })
        for e in entries {
            guard let source = found(e) else { missing.append(e.name); continue }
            let t = reader.tensors[source.index]
            let expected = e.shape.map(Int64.init)
            if source.transposed, t.dims != expected.reversed() {
                misShaped.append("\(t.name) (\(e.name) transposed) is \(t.dims), \(arch) needs \(expected.reversed())")
            } else if !source.transposed, t.dims != expected {
                misShaped.append("\(t.name) is \(t.dims), \(arch) needs \(e.shape)")
            } else if !t.isConvertibleToFloat {
                misShaped.append("\(t.name) has element type \(OnnxDataType.describe(t.dataType)), "
                                 + "\(arch) needs a float type")
            }
        }
        guard missing.isEmpty && misShaped.isEmpty && unexpected.isEmpty else {
            func list(_ title: String, _ items: [String]) -> String? {
                guard !items.isEmpty else { return nil }
                let shown = items.sorted().prefix(12).joined(separator: ", ")
                return "\(title) (\(items.count)): \(shown)" + (items.count > 12 ? ", …" : "")
            }
            let parts = [list("missing", missing), list("unexpected", unexpected), list("mis-shaped", misShaped)].compactMap { $0 }
            throw MixflowError.format("\(path): the initializers do not fit \(architecture): " + parts.joined(separator: "; "))
        }
    }

    /// Reads every tensor of `model` from the file (through a temporary copy for the few stored transposed) and
    /// refuses non-finite weights.
    static func readWeights(_ model: NativeModel, reader: OnnxReader, found: (ParameterEntry) -> Source, path: String) throws {
        for e in model.tensorEntries {
            let source = found(e), i = source.index
            let dst = UnsafeMutableBufferPointer(start: model.parameters + e.offset, count: e.count)
            if source.transposed {
                // The exporter stored Wᵀ [in, out].
                let wt = try reader.read(reader.tensors[i].name)
                let rows = e.shape[0], cols = e.shape[1]
                for r in 0..<rows { for c in 0..<cols { dst[r * cols + c] = wt[c * rows + r] } }
            } else {
                try reader.read(i, into: dst)
            }
            if let bad = dst.firstIndex(where: { !$0.isFinite }) {
                throw MixflowError.format("\(path): initializer \"\(reader.tensors[i].name)\" element \(bad) is \(dst[bad]); "
                                          + "weights must be finite")
            }
        }
    }

    /// Where an official tensor is in the file: an initializer, possibly stored transposed.
    struct Source {
        let index: Int
        let transposed: Bool
        init(index: Int, transposed: Bool = false) { self.index = index; self.transposed = transposed }
    }
}
