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

    /// Writes `model` to `path` atomically (data file first, model last; nothing visible on failure).
    ///
    /// The weights are written bit for bit as float32, so `load(export(m))` reproduces every parameter's bytes.
    /// - Throws: `.invalidArgument` (a reserved, empty or repeated metadata key; threshold < -1), `.io`, `.format`
    ///   (the inline part over 2 GiB: lower the threshold).
    public static func export(_ model: SiTModel, to path: String, options: ExportOptions = ExportOptions()) throws {
        guard options.externalThreshold >= -1 else {
            throw MixflowError.invalidArgument("external threshold must be >= -1 (-1 = all inline), got \(options.externalThreshold)")
        }
        for (key, _) in options.metadata where reservedPrefixes.contains(where: { key.hasPrefix($0) }) {
            throw MixflowError.invalidArgument("metadata key \"\(key)\" is reserved (the exporter writes model.* and mixflow.format)")
        }
        let writer = try OnnxWriter(path: path, externalThreshold: options.externalThreshold, graphName: "SiT")
        do {
            for (k, v) in model.config.metadata { try writer.setMetadata(k, v) }
            try writer.setMetadata("mixflow.format", options.graph ? "sit-forward" : "sit-checkpoint")
            for (k, v) in options.metadata { try writer.setMetadata(k, v) }
            if options.graph { try SiTGraph.add(model.config, to: writer) }
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
}
