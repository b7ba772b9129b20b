import CMixflow
import MixflowCore
import MixflowIO
import MixflowMethod
import MixflowModels

// SiT <-> ONNX. Validation and conversion only; the format lives in MixflowIO's ModelONNX.

/// The first released sizes (ABI 1).
let modelLoadParamsMinimumSize = 12
let modelSaveParamsMinimumSize = 56
/// More extra metadata entries than any real checkpoint needs; bounds what a caller's count can make us read.
let maxSaveMetadata: Int32 = 4096

private let loadDefaults: mixflow_model_load_params = {
    var p = mixflow_model_load_params()
    p.struct_size = UInt32(MemoryLayout<mixflow_model_load_params>.size)
    p.heads = 0; p.num_threads = 0
    return p
}()

private let saveDefaults: mixflow_model_save_params = {
    var p = mixflow_model_save_params()
    p.struct_size = UInt32(MemoryLayout<mixflow_model_save_params>.size)
    p.graph = 1; p.external_threshold = 1 << 20; p.step = -1
    p.transport = nil; p.metadata_keys = nil; p.metadata_values = nil; p.num_metadata = 0
    return p
}()

/// Fills `out` with the load defaults: heads from the file (or the official table), all cores.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size too small) or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_model_load_default_params(
    _ out: UnsafeMutablePointer<mixflow_model_load_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_model_load_default_params") {
        try writeParams(loadDefaults, to: out, "out", structSize: struct_size, minimumSize: modelLoadParamsMinimumSize)
    }
}

/// Fills `out` with the save defaults: runnable graph, external data from 1 MiB, no step, no transport, no
/// extra metadata.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size too small) or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_model_save_default_params(
    _ out: UnsafeMutablePointer<mixflow_model_save_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_model_save_default_params") {
        try writeParams(saveDefaults, to: out, "out", structSize: struct_size, minimumSize: modelSaveParamsMinimumSize)
    }
}

/// Loads a SiT or a DiT^DH from an ONNX file. A DiT^DH file is one whose `model.arch` is "DiTDH" or, without
/// `model.arch`, one holding `dec_feat_rope.freqs_cos` or `s_embedder.proj.weight`: every official tensor
/// (docs/exactness.md §6.5, RoPE buffers and `t_embedder.W` included) must be there under its exact name and shape; without
/// metadata the architecture comes from the shapes (heads from the RoPE tables), and equal encoder and head
/// widths are refused with a message asking for the metadata. For SiT: one written by `mixflow_model_save_onnx`, a checkpoint converted with
/// `python -m mixflow.convert`, or what `torch.onnx.export` writes for the official SiT module (initializer
/// names may carry a prefix such as "model." or "module."). The architecture comes from the file's `model.*`
/// metadata or, without it, from the tensor shapes (depth, width, patch, channels, input size, classes,
/// learn_sigma; heads from `params->heads` or the official table). Weights are read straight into the model
/// (external data included) and must be finite. A REPA checkpoint's `projectors.*` and a graph's constants
/// are skipped and listed by `mixflow_model_ignored_tensors`. The file is hostile input: every size, offset
/// and external location is checked first. Free the model with `mixflow_model_free`.
///
/// - Parameters:
///   - path: UTF-8 path of the `.onnx` file; external data must lie in its folder.
///   - params: may be NULL (defaults); else filled by `mixflow_model_load_default_params`; copied.
///   - out: receives the new model; set to NULL on failure.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL path or out, bad params, heads needed but not
///   given or not dividing hidden), `MIXFLOW_ERR_IO` (missing or unreadable file), `MIXFLOW_ERR_FORMAT` (not ONNX,
///   hostile, or tensors that do not fit: the message lists missing, unexpected and mis-shaped tensors, with the
///   path, the tensor name and, for data problems, the byte offset), `MIXFLOW_ERR_UNSUPPORTED`,
///   `MIXFLOW_ERR_OUT_OF_MEMORY` or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_model_load_onnx(
    _ path: UnsafePointer<CChar>?, _ params: UnsafePointer<mixflow_model_load_params>?,
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_model>?>?
) -> mixflow_status {
    capi("mixflow_model_load_onnx") {
        let out = try require(out, "out")
        out.pointee = nil
        let file = try string(path, "path")
        let p = params == nil ? loadDefaults
            : try readParams(params, "params", defaults: loadDefaults, minimumSize: modelLoadParamsMinimumSize)
        guard p.heads >= 0 else { throw MixflowError.invalidArgument("params->heads must be >= 0 (0 = from the file), got \(p.heads)") }
        guard p.num_threads >= 0 else {
            throw MixflowError.invalidArgument("params->num_threads must be >= 0 (0 = all cores), got \(p.num_threads)")
        }
        let loaded = try ModelONNX.loadNative(path: file, heads: p.heads > 0 ? Int(p.heads) : nil, threads: Int(p.num_threads))
        // A DiT^DH reports its shape as the custom arch "DiTDH" (mixflow_model_get_params); a SiT as arch "".
        let shape = ModelShape(of: loaded.model)
        let arch = shape.customArch
        let settings = ModelSettings(shape: shape, arch: arch, seed: 0, threads: Int(p.num_threads))
        let box = Model(wrapping: loaded.model, settings: settings)
        box.fileMetadata = loaded.metadata
        box.ignoredTensors = loaded.ignored
        out.pointee = Handle.make(box, kind: .model, as: mixflow_model.self)
    }
}

/// Writes `model` as ONNX: every tensor as a float32 initializer under its official name and shape (bit for
/// bit: loading the file back gives identical bytes), the `model.*` architecture metadata, "mixflow.format"
/// ("sit-forward", "sit-checkpoint", "ditdh-forward" or "ditdh-checkpoint"), then the optional step,
/// `transport.*` and extra metadata, and with `params->graph` = 1 the runnable forward graph (opset 17, IR 8;
/// inputs `x` [B, C, H, W] float, `t` [B] float in the model's own time convention, `y` [B] int64 with
/// num_classes = the null class; output `out` [B, C, H, W]: a SiT's first C channels (the learn_sigma half
/// dropped), a DiT^DH's velocity) for onnxruntime and other ONNX tools. Written atomically: the data file,
/// then the model, each through a temporary file, fsync and rename; on failure nothing at `path` changes. For
/// a trainer's EMA weights, save the model from `mixflow_trainer_get_model(trainer, 1, &m)`.
///
/// - Parameters:
///   - path: UTF-8 path of the `.onnx` file; its folder must exist and be writable.
///   - params: may be NULL (defaults); else filled by `mixflow_model_save_default_params`; read during the call only.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, graph not 0/1, threshold < -1, step < -1,
///   num_metadata out of range, NULL or repeated or reserved key), `MIXFLOW_ERR_INVALID_HANDLE` (model or
///   transport), `MIXFLOW_ERR_IO`, `MIXFLOW_ERR_FORMAT` (the inline part exceeds 2 GiB: lower the threshold),
///   or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_model_save_onnx(
    _ model: UnsafeMutablePointer<mixflow_model>?, _ path: UnsafePointer<CChar>?,
    _ params: UnsafePointer<mixflow_model_save_params>?
) -> mixflow_status {
    capi("mixflow_model_save_onnx") {
        let box = try modelBox(model)
        let file = try string(path, "path")
        let p = params == nil ? saveDefaults
            : try readParams(params, "params", defaults: saveDefaults, minimumSize: modelSaveParamsMinimumSize)
        guard p.graph == 0 || p.graph == 1 else { throw MixflowError.invalidArgument("params->graph must be 0 or 1, got \(p.graph)") }
        guard p.external_threshold >= -1 else {
            throw MixflowError.invalidArgument("params->external_threshold must be >= -1 (-1 = all inline), got \(p.external_threshold)")
        }
        guard p.step >= -1 else { throw MixflowError.invalidArgument("params->step must be >= -1 (-1 = not recorded), got \(p.step)") }
        var metadata: [(key: String, value: String)] = []
        if p.step >= 0 { metadata.append((key: "mixflow.step", value: "\(p.step)")) }
        if let t = p.transport {
            let tr = try Handle.get(UnsafeMutablePointer(mutating: t), kind: .transport, "params->transport", as: Transport.self)
            metadata += tr.config.keyValues
        }
        metadata += try extraMetadata(p)
        let options = ModelONNX.ExportOptions(graph: p.graph == 1, externalThreshold: p.external_threshold, metadata: metadata)
        try ModelONNX.export(box.model, to: file, options: options)
    }
}

private func extraMetadata(_ p: mixflow_model_save_params) throws -> [(key: String, value: String)] {
    guard p.num_metadata >= 0, p.num_metadata <= maxSaveMetadata else {
        throw MixflowError.invalidArgument("params->num_metadata must be in [0, \(maxSaveMetadata)], got \(p.num_metadata)")
    }
    guard p.num_metadata > 0 else { return [] }
    let keys = try require(p.metadata_keys, "params->metadata_keys"), values = try require(p.metadata_values, "params->metadata_values")
    return try (0..<Int(p.num_metadata)).map { i in
        (key: try string(keys[i], "params->metadata_keys[\(i)]"), value: try string(values[i], "params->metadata_values[\(i)]"))
    }
}

/// Copies the metadata of the file `model` was loaded from (or, for a created model, its `model.*` architecture
/// keys) into `buf` as "key=value" lines, each ending in '\n', in file order, NUL-terminated; two-call form: with
/// `buf` NULL only `*out_len` (bytes without the NUL) is set.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL out_len, cap too small: `*out_len` is still set)
///   or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_model_metadata(
    _ model: UnsafeMutablePointer<mixflow_model>?, _ buf: UnsafeMutablePointer<CChar>?, _ cap: UInt,
    _ out_len: UnsafeMutablePointer<UInt>?
) -> mixflow_status {
    capi("mixflow_model_metadata") {
        let box = try modelBox(model)
        let lines = (box.fileMetadata ?? box.model.architectureMetadata).map { "\($0.key)=\($0.value)\n" }.joined()
        try copyOut(Array(lines.utf8), buf, cap, out_len, "metadata")
    }
}

/// Copies the names of the initializers `mixflow_model_load_onnx` skipped (REPA `projectors.*`, a graph's
/// constants), one per line, each ending in '\n', NUL-terminated; "" for a created model or when nothing was
/// skipped. Two-call form as `mixflow_model_metadata`.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL out_len, cap too small) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_model_ignored_tensors(
    _ model: UnsafeMutablePointer<mixflow_model>?, _ buf: UnsafeMutablePointer<CChar>?, _ cap: UInt,
    _ out_len: UnsafeMutablePointer<UInt>?
) -> mixflow_status {
    capi("mixflow_model_ignored_tensors") {
        let box = try modelBox(model)
        try copyOut(Array(box.ignoredTensors.map { $0 + "\n" }.joined().utf8), buf, cap, out_len, "list")
    }
}
