import CMixflow
import MixflowCore
import MixflowMethod
import MixflowModels

/// What a mixflow_trainer handle points to.
final class TrainerBox {
    let trainer: Trainer
    let settings: ModelSettings
    init(_ trainer: Trainer, settings: ModelSettings) { self.trainer = trainer; self.settings = settings }
    /// The trained model; trainers are only ever created over native models (SiT or DiT^DH).
    var model: NativeModel { trainer.model as! NativeModel }
}

private func trainerBox(_ t: UnsafeMutablePointer<mixflow_trainer>?) throws -> TrainerBox {
    try Handle.get(t, kind: .trainer, "trainer", as: TrainerBox.self)
}

/// The first released size of mixflow_trainer_params (ABI 1).
/// Fills `out` with the SiT recipe: lr 1e-4 constant, betas (0.9, 0.999), eps 1e-8, no weight decay,
/// EMA 0.9999, no clipping, seed 0.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size too small) or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_trainer_default_params(
    _ out: UnsafeMutablePointer<mixflow_trainer_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_trainer_default_params") {
        try writeParams(TrainerConfig().c, to: out, "out", structSize: struct_size, minimumSize: trainerParamsMinimumSize)
    }
}

/// Fills `out` with an official recipe: "sit" (the defaults), "repa" (the defaults plus clip 1.0 and
/// proj_coeff 0.5, REPA's train.py) or "rae" (lr 2e-4 decaying linearly to 2e-5 between steps `decay_start` and
/// `decay_end`, betas (0.9, 0.95), clip 1.0, EMA 0.9995).
///
/// - Parameters:
///   - decay_start, decay_end: the RAE decay window in steps (RAE: epochs 40 and 800); ignored otherwise.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (unknown name, NULL, bad window) or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_trainer_preset_params(
    _ name: UnsafePointer<CChar>?, _ decay_start: Int64, _ decay_end: Int64,
    _ out: UnsafeMutablePointer<mixflow_trainer_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_trainer_preset_params") {
        let preset = try string(name, "name")
        var config = try TrainerConfig.preset(preset)
        if preset.lowercased() == "rae" {
            guard decay_start >= 0, decay_end > decay_start else {
                throw MixflowError.invalidArgument("decay_start/decay_end must satisfy 0 <= decay_start < decay_end, got \(decay_start), \(decay_end)")
            }
            config = try TrainerConfig.preset(preset, decaySteps: (Int(decay_start), Int(decay_end)))
        }
        try writeParams(config.c, to: out, "out", structSize: struct_size, minimumSize: trainerParamsMinimumSize)
    }
}

/// Creates a trainer that post-trains `model` with `transport`'s objective. The trainer shares the model:
/// every step updates the weights seen through `model` (forward, get_tensor). It keeps its own references,
/// so the model and transport handles may be freed before the trainer.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT`, `MIXFLOW_ERR_INVALID_HANDLE`, `MIXFLOW_ERR_OUT_OF_MEMORY`
///   or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_trainer_create(
    _ model: UnsafeMutablePointer<mixflow_model>?, _ transport: UnsafeMutablePointer<mixflow_transport>?,
    _ params: UnsafePointer<mixflow_trainer_params>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_trainer>?>?
) -> mixflow_status {
    capi("mixflow_trainer_create") {
        let out = try require(out, "out")
        out.pointee = nil
        let m = try modelBox(model)
        let tr = try Handle.get(transport, kind: .transport, "transport", as: Transport.self)
        let p = try readParams(params, "params", defaults: TrainerConfig().c, minimumSize: trainerParamsMinimumSize)
        let trainer = try asParams { try Trainer(model: m.model, transport: tr, config: try TrainerConfig(c: p)) }
        out.pointee = Handle.make(TrainerBox(trainer, settings: m.settings), kind: .trainer, as: mixflow_trainer.self)
    }
}

/// Frees a trainer. NULL is a no-op.
@c public func mixflow_trainer_free(_ trainer: UnsafeMutablePointer<mixflow_trainer>?) {
    Handle.free(trainer, kind: .trainer)
}

/// One MixFlow training step on data x1 with labels y: prepare the batch (t, slowed m, noise), forward with
/// class dropout, loss, backward, gradient hook, clipping, AdamW, EMA. Deterministic for a given seed.
///
/// - Parameters:
///   - x1: [batch, in_channels, input_size, input_size] data, finite.
///   - y: [batch] labels in [0, num_classes) (num_classes = null is allowed); NULL = unconditional.
///   - first_sample: global index of row 0 when one global batch is split across processes (0 otherwise).
///   - out_loss: may be NULL; receives the mean loss of this batch.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf, label out of range),
///   `MIXFLOW_ERR_INVALID_HANDLE` or `MIXFLOW_ERR_CALLBACK` (the gradient hook returned non-zero; no parameter changed).
@c public func mixflow_trainer_step(
    _ trainer: UnsafeMutablePointer<mixflow_trainer>?, _ x1: UnsafePointer<Float>?, _ y: UnsafePointer<Int32>?,
    _ batch: Int64, _ first_sample: UInt64, _ out_loss: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_trainer_step") {
        try trainerStep(trainer, x1, y, nil, 0, batch, first_sample, out_loss)
    }
}

/// `mixflow_trainer_step` with REPA target features: for a model with projectors (REPA's SiT) the loss is
/// denoise + proj_coeff·proj, proj = mean over encoders, samples and tokens of −cos(z, z̃) (REPA's loss.py).
/// With `features` NULL it is exactly `mixflow_trainer_step` (a model with projectors then trains the denoising
/// loss alone; `mixflow_trainer_trained_without_features` reports that it happened).
///
/// - Parameters:
///   - features: [batch, feature_size] finite target features, or NULL. Per sample, encoder k's
///     [tokens, z_dims[k]] after encoder k−1's (tokens in the model's patch order, row-major over the grid).
///   - feature_size: floats per sample; must equal `mixflow_model_feature_size` of the trainer's model
///     (0 with NULL features).
/// - Returns: as `mixflow_trainer_step`; `MIXFLOW_ERR_INVALID_ARGUMENT` also for features given to a model
///   without projectors, a wrong feature_size, or non-finite features.
@c public func mixflow_trainer_step_features(
    _ trainer: UnsafeMutablePointer<mixflow_trainer>?, _ x1: UnsafePointer<Float>?, _ y: UnsafePointer<Int32>?,
    _ features: UnsafePointer<Float>?, _ feature_size: Int64, _ batch: Int64, _ first_sample: UInt64,
    _ out_loss: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_trainer_step_features") {
        try trainerStep(trainer, x1, y, features, feature_size, batch, first_sample, out_loss)
    }
}

/// 1 when a step of a trainer whose model has projectors ran without features (the denoising loss alone),
/// else 0; -1 for an invalid handle.
@c public func mixflow_trainer_trained_without_features(_ trainer: UnsafeMutablePointer<mixflow_trainer>?) -> Int32 {
    (try? trainerBox(trainer)).map { $0.trainer.trainedWithoutFeatures ? 1 : 0 } ?? -1
}

/// The one validation and delegation of both step entry points.
private func trainerStep(
    _ trainer: UnsafeMutablePointer<mixflow_trainer>?, _ x1: UnsafePointer<Float>?, _ y: UnsafePointer<Int32>?,
    _ features: UnsafePointer<Float>?, _ featureSize: Int64, _ batch: Int64, _ firstSample: UInt64,
    _ outLoss: UnsafeMutablePointer<Float>?
) throws {
    let box = try trainerBox(trainer)
    let x1 = try require(x1, "x1")
    let m = box.model
    let b = try dimension(batch, "batch")
    let n = try checkedCount([batch, Int64(m.sampleDim)], "x1")
    _ = try checkedCount([batch, Int64(m.activationFloats(batch: 1, training: true))], "activations for this batch")
    try requireFinite(UnsafeBufferPointer(start: x1, count: n), "x1")
    let expected = Int64((m as? FeatureAlignedModel)?.featureSize ?? 0)
    if let features {
        guard expected > 0 else {
            throw MixflowError.invalidArgument("features: the model has no REPA projectors; pass NULL")
        }
        guard featureSize == expected else {
            throw MixflowError.invalidArgument("feature_size must be \(expected) for this model, got \(featureSize)")
        }
        let count = try checkedCount([batch, featureSize], "features")
        try requireFinite(UnsafeBufferPointer(start: features, count: count), "features")
    } else if featureSize != 0 {
        throw MixflowError.invalidArgument("feature_size must be 0 when features is NULL, got \(featureSize)")
    }
    if let y {
        try checkClassLabels(y, count: b, numClasses: m.numClasses)
    }
    let loss = try box.trainer.trainStep(x1: x1, y: y, batch: b, firstSample: firstSample, features: features)
    outLoss?.pointee = Float(loss)
}

/// Installs (or, with fn = NULL, removes) the gradient hook. `user_data` is passed through untouched.
/// The hook runs on the thread that called `mixflow_trainer_step`, once per step.
/// Scale-out recipe: run one process per worker, give each its slice of the global batch with
/// `first_sample` set to the slice's global index, and average the gradients in the hook with
/// MPI_Allreduce (or torch.distributed.all_reduce) divided by the number of workers; every worker then
/// applies the same update and the replicas stay identical.
///
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_HANDLE` / `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL trainer).
@c public func mixflow_trainer_set_gradient_hook(
    _ trainer: UnsafeMutablePointer<mixflow_trainer>?, _ fn: mixflow_gradient_fn?, _ user_data: UnsafeMutableRawPointer?
) -> mixflow_status {
    capi("mixflow_trainer_set_gradient_hook") {
        let box = try trainerBox(trainer)
        guard let fn else { box.trainer.gradientHook = nil; return }
        box.trainer.gradientHook = { grads, count, step in
            let code = fn(user_data, grads, Int64(count), Int64(step))
            if code != 0 { throw MixflowError.callback("the gradient hook returned \(code) at step \(step)") }
        }
    }
}

/// Copies the trainer's current hyper-parameters into `out` (its first `struct_size` bytes).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size too small), `MIXFLOW_ERR_ABI_MISMATCH` or
///   `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_trainer_get_params(
    _ trainer: UnsafeMutablePointer<mixflow_trainer>?, _ out: UnsafeMutablePointer<mixflow_trainer_params>?,
    _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_trainer_get_params") {
        let box = try trainerBox(trainer)
        try writeParams(box.trainer.config.c, to: out, "out", structSize: struct_size, minimumSize: trainerParamsMinimumSize)
    }
}

/// Replaces the hyper-parameters of a trainer (learning-rate schedule, betas, eps, weight decay, EMA decay,
/// clipping, seed, threads) and keeps its state: weights, AdamW moments, EMA weights and step count. Typical
/// use: read them with `mixflow_trainer_get_params`, edit, set — e.g. a learning-rate cool-down decided after
/// a resume. The schedule is a function of the step number, so a schedule set before its decay starts gives
/// bit for bit the run that had it from step 0. The next `mixflow_trainer_save` stores the new values.
/// \param params validated as in `mixflow_trainer_create`; read during the call only.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad value, switching the EMA on or off),
///   `MIXFLOW_ERR_ABI_MISMATCH` or `MIXFLOW_ERR_INVALID_HANDLE`. On error nothing changes.
@c public func mixflow_trainer_set_params(
    _ trainer: UnsafeMutablePointer<mixflow_trainer>?, _ params: UnsafePointer<mixflow_trainer_params>?
) -> mixflow_status {
    capi("mixflow_trainer_set_params") {
        let box = try trainerBox(trainer)
        let p = try readParams(params, "params", defaults: box.trainer.config.c, minimumSize: trainerParamsMinimumSize)
        try asParams { try box.trainer.update(config: try TrainerConfig(c: p)) }
    }
}

/// Number of completed steps (the next step's number). -1 for an invalid handle.
@c public func mixflow_trainer_step_count(_ trainer: UnsafeMutablePointer<mixflow_trainer>?) -> Int64 {
    (try? trainerBox(trainer)).map { Int64($0.trainer.step) } ?? -1
}

/// Saves model, EMA, optimiser state, step and every setting to `path`, atomically (temporary file, fsync,
/// rename): a crash during the save never corrupts an existing checkpoint.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT`, `MIXFLOW_ERR_INVALID_HANDLE` or `MIXFLOW_ERR_IO`.
@c public func mixflow_trainer_save(_ trainer: UnsafeMutablePointer<mixflow_trainer>?, _ path: UnsafePointer<CChar>?) -> mixflow_status {
    capi("mixflow_trainer_save") {
        let box = try trainerBox(trainer)
        try box.trainer.save(to: try string(path, "path"), extraMetadata: [("model.seed", "\(box.settings.seed)")])
    }
}

/// Resumes a trainer from a checkpoint written by `mixflow_trainer_save`; training continues bit-identically.
///
/// - Parameters:
///   - num_threads: 0 = all cores (results do not depend on it).
///   - out: receives the trainer; NULL on failure. Use `mixflow_trainer_get_model` for its model.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT`, `MIXFLOW_ERR_IO` or `MIXFLOW_ERR_FORMAT` (corrupt,
///   truncated or foreign file).
@c public func mixflow_trainer_resume(
    _ path: UnsafePointer<CChar>?, _ num_threads: Int32, _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_trainer>?>?
) -> mixflow_status {
    capi("mixflow_trainer_resume") {
        let out = try require(out, "out")
        out.pointee = nil
        let p = try string(path, "path")
        guard num_threads >= 0 else { throw MixflowError.invalidArgument("num_threads must be >= 0, got \(num_threads)") }
        var seed: UInt64 = 0
        let trainer = try Trainer.resume(from: p, threads: Int(num_threads), parameterCount: nativeParameterCount) { meta in
            seed = meta.last(where: { $0.key == "model.seed" }).flatMap { UInt64($0.value) } ?? 0
            return try nativeModel(fromMetadata: meta, threads: Int(num_threads))
        }
        let model = trainer.model as! NativeModel
        let shape = ModelShape(of: model)
        // Custom-shape arch strings: the checkpoint stores the shape, not the name it was created under.
        let arch = shape.customArch
        let settings = ModelSettings(shape: shape, arch: arch, seed: seed, threads: Int(num_threads))
        out.pointee = Handle.make(TrainerBox(trainer, settings: settings), kind: .trainer, as: mixflow_trainer.self)
    }
}

/// A new handle on the trainer's model (weights shared: it sees every later step). With `ema` = 1, a new,
/// independent model holding a copy of the EMA weights instead (the weights to sample from).
/// Free the result with `mixflow_model_free`.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL; ema = 1 without an EMA),
///   `MIXFLOW_ERR_INVALID_HANDLE` or `MIXFLOW_ERR_OUT_OF_MEMORY`.
@c public func mixflow_trainer_get_model(
    _ trainer: UnsafeMutablePointer<mixflow_trainer>?, _ ema: Int32, _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_model>?>?
) -> mixflow_status {
    capi("mixflow_trainer_get_model") {
        let out = try require(out, "out")
        out.pointee = nil
        let box = try trainerBox(trainer)
        guard ema == 0 || ema == 1 else { throw MixflowError.invalidArgument("ema must be 0 or 1, got \(ema)") }
        if ema == 0 {
            out.pointee = Handle.make(Model(wrapping: box.model, settings: box.settings), kind: .model, as: mixflow_model.self)
            return
        }
        guard !box.trainer.ema.isEmpty else { throw MixflowError.invalidArgument("ema = 1 but this trainer keeps no EMA (ema_decay 0)") }
        let copy = try box.model.sibling(seed: box.settings.seed)
        box.trainer.ema.withUnsafeBufferPointer { copy.parameters.update(from: $0.baseAddress!, count: copy.parameterCount) }
        out.pointee = Handle.make(Model(wrapping: copy, settings: box.settings), kind: .model, as: mixflow_model.self)
    }
}
