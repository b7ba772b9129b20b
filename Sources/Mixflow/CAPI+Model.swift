import CMixflow
import MixflowCore
import MixflowModels
#if canImport(Glibc)
import Glibc
#endif

/// What a mixflow_model handle points to: the model and the C strings of its tensor names.
final class Model {
    let model: NativeModel   // a SiTModel or a DiTDHModel
    let settings: ModelSettings
    let names: [UnsafeMutablePointer<CChar>]
    /// Set by mixflow_model_load_onnx: the file's metadata and the initializers it skipped.
    var fileMetadata: [(key: String, value: String)]?
    var ignoredTensors: [String] = []
    /// How forward passes without a backward run (mixflow_model_forward, the samplers): in cache-sized chunks,
    /// at once on one inference replica per thread when the batch allows. Built at first use; kept, so that the
    /// replicas' activation buffers are reused from call to call.
    private(set) lazy var inference = NativeSamplerModel(model)
    init(_ settings: ModelSettings) throws {
        model = try settings.shape.make(seed: settings.seed, threads: settings.threads)
        self.settings = settings
        names = model.tensorEntries.map { strdup($0.name)! }
    }
    /// A second handle on an existing model (the trainer's), sharing its weights.
    init(wrapping model: NativeModel, settings: ModelSettings) {
        self.model = model
        self.settings = settings
        names = model.tensorEntries.map { strdup($0.name)! }
    }
    deinit { names.forEach { free($0) } }

    /// The table entry called `name`, or an error naming what exists.
    func entry(_ name: UnsafePointer<CChar>?) throws -> ParameterEntry {
        let n = try string(name, "name")
        guard let i = model.tensorIndex(of: n) else {
            throw MixflowError.invalidArgument("name \"\(n)\" is not a tensor of this model (see mixflow_model_tensor_info)")
        }
        return model.tensorEntries[i]
    }
}

func modelBox(_ m: UnsafeMutablePointer<mixflow_model>?) throws -> Model {
    try Handle.get(m, kind: .model, "model", as: Model.self)
}

/// Checks a caller's (shape, ndim) against a tensor's shape.
private func checkShape(_ shape: UnsafePointer<Int64>?, _ ndim: Int32, _ e: ParameterEntry) throws {
    let s = try require(shape, "shape")
    guard ndim >= 1, ndim <= MIXFLOW_MODEL_MAX_NDIM else {
        throw MixflowError.invalidArgument("ndim must be in [1, \(MIXFLOW_MODEL_MAX_NDIM)], got \(ndim)")
    }
    let given = (0..<Int(ndim)).map { s[$0] }
    guard given == e.shape.map(Int64.init) else {
        throw MixflowError.invalidArgument("shape must be \(e.shape) for \"\(e.name)\", got \(given)")
    }
}

/// Validates the (x, t, y, batch) of a forward pass; returns the element count of x.
private func checkInputs(_ box: Model, _ x: UnsafePointer<Float>?, _ t: UnsafePointer<Float>?,
                         _ y: UnsafePointer<Int32>?, _ batch: Int64) throws -> (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Int32>, Int, Int) {
    let x = try require(x, "x"), t = try require(t, "t"), y = try require(y, "y")
    let m = box.model
    let b = try dimension(batch, "batch")
    let n = try checkedCount([batch, Int64(m.inChannels), Int64(m.inputSize), Int64(m.inputSize)], "x")
    // Saved activations grow linearly with the batch; refuse what cannot even be counted.
    _ = try checkedCount([batch, Int64(box.model.activationFloats(batch: 1, training: true))], "activations for this batch")
    try requireFinite(UnsafeBufferPointer(start: x, count: n), "x")
    try requireFinite(UnsafeBufferPointer(start: t, count: b), "t")
    try checkClassLabels(y, count: b, numClasses: m.numClasses)
    return (x, t, y, b, n)
}

// MARK: - Params and lifetime

/// Fills `out` with the default model: the official SiT-XL/2 on 32×32×4 inputs (256 px SD-VAE latents),
/// 1000 classes, learn_sigma on, class dropout 0.1, seed 0, all cores.
///
/// - Parameters:
///   - out: the struct to fill (its first `struct_size` bytes are written).
///   - struct_size: `sizeof(mixflow_model_params)` as the caller sees it.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size too small) or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_model_default_params(
    _ out: UnsafeMutablePointer<mixflow_model_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_model_default_params") {
        try writeParams(ModelSettings.defaults, to: out, "out", structSize: struct_size, minimumSize: modelParamsMinimumSize)
    }
}

/// Creates a SiT or a DiT^DH (by `params->arch`) with the official from-scratch initialisation for
/// `params->seed`. SiT: xavier-uniform Linear weights, N(0, 0.02²) label table and timestep MLP, zero
/// biases, zero adaLN and final layers, fixed 2-D sin-cos pos_embed. DiT^DH: PyTorch-default Linear init,
/// xavier patch embeddings, N(0, 0.02²) label table and timestep-MLP weights, N(0, 1) t_embedder.W, zero
/// adaLN and final layers, RMSNorm weights 1, fixed pos_embed and RoPE tables. The draws come from the
/// counter-based generator of libmixflow, not from the PyTorch generator. Load trained weights with `mixflow_model_set_tensor`. Free it with `mixflow_model_free`.
///
/// - Parameters:
///   - params: filled by `mixflow_model_default_params`, then edited; copied.
///   - out: receives the new handle; set to NULL on failure.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, unknown arch, a shape constraint broken),
///   `MIXFLOW_ERR_OUT_OF_MEMORY` or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_model_create(
    _ params: UnsafePointer<mixflow_model_params>?,
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_model>?>?
) -> mixflow_status {
    capi("mixflow_model_create") {
        let out = try require(out, "out")
        out.pointee = nil
        let p = try readParams(params, "params", defaults: ModelSettings.defaults, minimumSize: modelParamsMinimumSize)
        let box = try Model(try ModelSettings(c: p))
        out.pointee = Handle.make(box, kind: .model, as: mixflow_model.self)
    }
}

/// Frees a model. NULL is a no-op.
@c public func mixflow_model_free(_ model: UnsafeMutablePointer<mixflow_model>?) {
    Handle.free(model, kind: .model)
}

/// Copies the model's parameters into `out` (its first `struct_size` bytes).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT`, `MIXFLOW_ERR_INVALID_HANDLE` or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_model_get_params(
    _ model: UnsafeMutablePointer<mixflow_model>?,
    _ out: UnsafeMutablePointer<mixflow_model_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_model_get_params") {
        let box = try modelBox(model)
        try writeParams(box.settings.c, to: out, "out", structSize: struct_size, minimumSize: modelParamsMinimumSize)
    }
}

// MARK: - Tensors

/// Number of floats in all tensors, fixed ones included (SiT-XL/2: 675,129,632; DiT^DH-XL: 838,675,796
/// plus 102,400 for the RoPE tables); -1 if `model` is not a live model handle.
@c public func mixflow_model_num_params(_ model: UnsafeMutablePointer<mixflow_model>?) -> Int64 {
    guard let box = try? modelBox(model) else { return -1 }
    return Int64(box.model.parameterCount)
}

/// Floats of REPA target features per sample for a model with projectors (REPA's SiT: tokens · Σ z_dims,
/// the `feature_size` of `mixflow_trainer_step_features`); 0 for a model without projectors; -1 if `model` is
/// not a live model handle.
@c public func mixflow_model_feature_size(_ model: UnsafeMutablePointer<mixflow_model>?) -> Int64 {
    guard let box = try? modelBox(model) else { return -1 }
    return Int64((box.model as? FeatureAlignedModel)?.featureSize ?? 0)
}

/// Number of tensors in the state dict (SiT-XL/2: 292; DiT^DH-XL: 382); -1 if `model` is not a live model handle.
@c public func mixflow_model_num_tensors(_ model: UnsafeMutablePointer<mixflow_model>?) -> Int32 {
    guard let box = try? modelBox(model) else { return -1 }
    return Int32(box.model.tensorEntries.count)
}

/// Name and shape of tensor `index`, in the official PyTorch state-dict order.
///
/// - Parameters:
///   - index: in [0, `mixflow_model_num_tensors`).
///   - out_name: receives the official name; owned by `model`, valid until `mixflow_model_free`.
///   - out_shape: [MIXFLOW_MODEL_MAX_NDIM]; the first `*out_ndim` entries are written.
///   - out_ndim: receives the number of dimensions (1 to MIXFLOW_MODEL_MAX_NDIM).
///   - out_trainable: may be NULL; receives 1, or 0 for a fixed tensor never given a gradient (pos_embed;
///     DiT^DH also t_embedder.W and the four RoPE tables).
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, index out of range) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_model_tensor_info(
    _ model: UnsafeMutablePointer<mixflow_model>?, _ index: Int32,
    _ out_name: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ out_shape: UnsafeMutablePointer<Int64>?,
    _ out_ndim: UnsafeMutablePointer<Int32>?, _ out_trainable: UnsafeMutablePointer<Int32>?
) -> mixflow_status {
    capi("mixflow_model_tensor_info") {
        let box = try modelBox(model)
        let name = try require(out_name, "out_name"), shape = try require(out_shape, "out_shape")
        let ndim = try require(out_ndim, "out_ndim")
        let count = box.model.tensorEntries.count
        guard index >= 0, Int(index) < count else {
            throw MixflowError.invalidArgument("index must be in [0, \(count)), got \(index)")
        }
        let e = box.model.tensorEntries[Int(index)]
        name.pointee = UnsafePointer(box.names[Int(index)])
        for (k, s) in e.shape.enumerated() { shape[k] = Int64(s) }
        ndim.pointee = Int32(e.shape.count)
        out_trainable?.pointee = e.trainable ? 1 : 0
    }
}

/// Copies the tensor called `name` into `out`.
///
/// - Parameters:
///   - name: an official state-dict name, e.g. "blocks.0.attn.qkv.weight".
///   - shape, ndim: the caller's idea of the tensor's shape; must equal it exactly.
///   - out: [product of shape] floats.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, unknown name, wrong shape) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_model_get_tensor(
    _ model: UnsafeMutablePointer<mixflow_model>?, _ name: UnsafePointer<CChar>?,
    _ shape: UnsafePointer<Int64>?, _ ndim: Int32, _ out: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_model_get_tensor") {
        let box = try modelBox(model)
        let e = try box.entry(name)
        try checkShape(shape, ndim, e)
        try require(out, "out").update(from: box.model.parameters + e.offset, count: e.count)
    }
}

/// Overwrites the tensor called `name` with `data` (copied). pos_embed may be set too (a checkpoint
/// carries it); the model then uses the given table.
///
/// - Parameters:
///   - data: [product of shape] finite floats.
///   - shape, ndim: must equal the tensor's shape exactly.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, unknown name, wrong shape, NaN/Inf; the
///   tensor is then unchanged) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_model_set_tensor(
    _ model: UnsafeMutablePointer<mixflow_model>?, _ name: UnsafePointer<CChar>?,
    _ data: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32
) -> mixflow_status {
    capi("mixflow_model_set_tensor") {
        let box = try modelBox(model)
        let e = try box.entry(name)
        let data = try require(data, "data")
        try checkShape(shape, ndim, e)
        try requireFinite(UnsafeBufferPointer(start: data, count: e.count), "data")
        (box.model.parameters + e.offset).update(from: data, count: e.count)
    }
}

/// Copies the gradient of the tensor called `name` from the last `mixflow_model_gradients` into `out`
/// (zeros before the first call, and always for pos_embed).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, unknown name, wrong shape) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_model_get_grad(
    _ model: UnsafeMutablePointer<mixflow_model>?, _ name: UnsafePointer<CChar>?,
    _ shape: UnsafePointer<Int64>?, _ ndim: Int32, _ out: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_model_get_grad") {
        let box = try modelBox(model)
        let e = try box.entry(name)
        try checkShape(shape, ndim, e)
        try require(out, "out").update(from: box.model.gradients + e.offset, count: e.count)
    }
}

// MARK: - Compute

/// Runs the model in evaluation mode (labels as given, no class dropout): out = v(x, t, y), the first C
/// channels of the head (the learn_sigma half is dropped, as upstream). Keeps no activations for a
/// backward pass: the batch runs in chunks of samples sized to the caches (at least 4), and with several
/// threads and at least 4 samples per thread the chunks run at once, one per thread, on replicas of the model
/// that share its weights. The same bits whatever the batch, chunking or thread count.
///
/// - Parameters:
///   - x: [batch, in_channels, input_size, input_size], finite.
///   - t: [batch], finite, in the model's own time convention (raw, not ×1000).
///   - y: [batch] class labels in [0, num_classes]; num_classes is the null (unconditional) class.
///   - out: [batch, in_channels, input_size, input_size]; must not alias x.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, batch <= 0 or overflowing, NaN/Inf, label
///   out of range), `MIXFLOW_ERR_OUT_OF_MEMORY` (activations of a large batch) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_model_forward(
    _ model: UnsafeMutablePointer<mixflow_model>?,
    _ x: UnsafePointer<Float>?, _ t: UnsafePointer<Float>?, _ y: UnsafePointer<Int32>?, _ batch: Int64,
    _ out: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_model_forward") {
        let box = try modelBox(model)
        let (x, t, y, b, _) = try checkInputs(box, x, t, y, batch)
        try box.inference.evaluate(x: x, t: t, y: y, batch: b, dim: box.model.sampleDim, out: try require(out, "out"))
    }
}

/// Computes L = mean over all elements of (v(x, t, y) − target)² and its gradient with respect to every
/// trainable tensor (read them with `mixflow_model_get_grad`; earlier gradients are replaced, not added)
/// and, optionally, to x. Labels are used as given (no class dropout).
///
/// - Parameters:
///   - x, t, y, batch: as in `mixflow_model_forward`.
///   - target: [batch, in_channels, input_size, input_size], finite.
///   - out_loss: may be NULL; receives L.
///   - out_dx: may be NULL; [batch, in_channels, input_size, input_size] receives dL/dx; must not alias x.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (as forward, plus target), `MIXFLOW_ERR_OUT_OF_MEMORY`
///   or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_model_gradients(
    _ model: UnsafeMutablePointer<mixflow_model>?,
    _ x: UnsafePointer<Float>?, _ t: UnsafePointer<Float>?, _ y: UnsafePointer<Int32>?,
    _ target: UnsafePointer<Float>?, _ batch: Int64,
    _ out_loss: UnsafeMutablePointer<Float>?, _ out_dx: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_model_gradients") {
        let box = try modelBox(model)
        let (x, t, y, b, n) = try checkInputs(box, x, t, y, batch)
        let target = try require(target, "target")
        try requireFinite(UnsafeBufferPointer(start: target, count: n), "target")
        let prediction = try ScratchBuffer(n, repeating: Float(0), "the prediction of batch \(b)")
        try prediction.withBuffer { buffer in
            let pred = buffer.baseAddress!
            try box.model.forward(x: x, t: t, y: y, batch: b, out: pred, dropout: nil, saveForBackward: true)
            // dL/dpred = 2(pred − target)/n, written over pred; the loss is summed in double.
            var loss = 0.0
            let scale = 2 / Float(n)
            for i in 0..<n {
                let r = pred[i] - target[i]
                loss += Double(r) * Double(r)
                pred[i] = scale * r
            }
            box.model.zeroGradients()
            try box.model.backward(dout: pred, batch: b, dx: out_dx)
            out_loss?.pointee = Float(loss / Double(n))
        }
    }
}
