import CMixflow
import MixflowCore
import MixflowMethod

// MARK: - Params

/// Fills `out` with the default MixFlow transport: Linear path, SiT convention, velocity prediction,
/// Beta(2,1) times, γ = 0.8, target at t, official train_eps rule, no shift, no Input Perturbation.
///
/// - Parameters:
///   - out: the struct to fill (its first `struct_size` bytes are written).
///   - struct_size: `sizeof(mixflow_transport_params)` as the caller sees it.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size too small) or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_transport_default_params(
    _ out: UnsafeMutablePointer<mixflow_transport_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_transport_default_params") {
        try writeParams(TransportConfig().c, to: out, "out", structSize: struct_size,
                        minimumSize: transportParamsMinimumSize)
    }
}

/// Fills `out` with an official recipe: "sit" (γ 0.8, SiT convention), "rae" (γ 0.4, RAE convention with
/// interval [0, 0.999], Beta(2,1) before the shift s = max(1, sqrt(dim / 4096))), or "repa" (γ 0.8,
/// REPA convention; REPA's γ is not published). All use the Linear path and velocity prediction.
///
/// - Parameters:
///   - name: "sit", "rae" or "repa" (case-insensitive).
///   - dim: C·H·W of one sample for the RAE shift; 0 = no shift; ignored by "sit" and "repa".
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (unknown name, NULL, negative dim) or
///   `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_transport_preset_params(
    _ name: UnsafePointer<CChar>?, _ dim: Int64,
    _ out: UnsafeMutablePointer<mixflow_transport_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_transport_preset_params") {
        let preset = try string(name, "name")
        guard dim >= 0 else { throw MixflowError.invalidArgument("dim must be >= 0 (0 = no shift), got \(dim)") }
        let config = try TransportConfig.preset(preset, dim: Int(dim))
        try writeParams(config.c, to: out, "out", structSize: struct_size, minimumSize: transportParamsMinimumSize)
    }
}

// MARK: - Handle

/// Creates a MixFlow transport. Free it with `mixflow_transport_free`.
///
/// - Parameters:
///   - params: filled by `mixflow_transport_default_params` or `_preset_params`, then edited; copied.
///   - out: receives the new handle; set to NULL on failure.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, unknown enum, value out of range) or
///   `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_transport_create(
    _ params: UnsafePointer<mixflow_transport_params>?,
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_transport>?>?
) -> mixflow_status {
    capi("mixflow_transport_create") {
        let out = try require(out, "out")
        out.pointee = nil
        let p = try readParams(params, "params", defaults: TransportConfig().c, minimumSize: transportParamsMinimumSize)
        let transport = try asParams { try Transport(try TransportConfig(c: p)) }
        out.pointee = Handle.make(transport, kind: .transport, as: mixflow_transport.self)
    }
}

/// Frees a transport. NULL is a no-op.
@c public func mixflow_transport_free(_ transport: UnsafeMutablePointer<mixflow_transport>?) {
    Handle.free(transport, kind: .transport)
}

/// Copies the transport's parameters into `out` (its first `struct_size` bytes).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT`, `MIXFLOW_ERR_INVALID_HANDLE` or `MIXFLOW_ERR_ABI_MISMATCH`.
@c public func mixflow_transport_get_params(
    _ transport: UnsafeMutablePointer<mixflow_transport>?,
    _ out: UnsafeMutablePointer<mixflow_transport_params>?, _ struct_size: UInt32
) -> mixflow_status {
    capi("mixflow_transport_get_params") {
        let tr = try Handle.get(transport, kind: .transport, "transport", as: Transport.self)
        try writeParams(tr.config.c, to: out, "out", structSize: struct_size, minimumSize: transportParamsMinimumSize)
    }
}

/// The training interval [t0, t1] from which the uniform draw behind t is taken (SiT/RAE `check_interval`),
/// in the transport's convention, before the time distribution and the shift.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_transport_training_interval(
    _ transport: UnsafeMutablePointer<mixflow_transport>?,
    _ out_t0: UnsafeMutablePointer<Double>?, _ out_t1: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_transport_training_interval") {
        let tr = try Handle.get(transport, kind: .transport, "transport", as: Transport.self)
        let t0 = try require(out_t0, "out_t0"), t1 = try require(out_t1, "out_t1")
        t0.pointee = tr.interval.lowerBound
        t1.pointee = tr.interval.upperBound
    }
}

// MARK: - Training maths

/// Prepares a MixFlow training batch from data x1: draws t (the label), the slowed time m and the noise
/// x0, and writes the model input x_m, the times and the regression target.
///
/// `x_in = alpha(m) x1 + sigma(m) x0`, the network is called as `model(x_in, t, y)`, and the target is
/// the velocity (noise, score) at t or at m as the params say. Randomness is keyed by
/// (seed, step, first_sample + row), so any thread count and any split of a batch across workers give the
/// same numbers.
///
/// - Parameters:
///   - x1: data, [batch, dim], finite.
///   - batch, dim: sizes, > 0; dim is the product of the per-sample dims.
///   - seed: any 64-bit value. step: the training step, < 2^60.
///   - first_sample: global index of row 0 (0 for a single worker); first_sample + batch <= 2^32.
///   - out_x_in: [batch, dim]. out_t: [batch]. out_m: [batch], may be NULL. out_noise: [batch, dim], may be
///     NULL. out_target: [batch, dim]. No output may alias x1 or another output.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size <= 0 or overflowing, NaN/Inf in x1;
///   outputs are then unspecified) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_transport_prepare(
    _ transport: UnsafeMutablePointer<mixflow_transport>?,
    _ x1: UnsafePointer<Float>?, _ batch: Int64, _ dim: Int64,
    _ seed: UInt64, _ step: UInt64, _ first_sample: UInt64,
    _ out_x_in: UnsafeMutablePointer<Float>?, _ out_t: UnsafeMutablePointer<Float>?,
    _ out_m: UnsafeMutablePointer<Float>?, _ out_noise: UnsafeMutablePointer<Float>?,
    _ out_target: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_transport_prepare") {
        let tr = try Handle.get(transport, kind: .transport, "transport", as: Transport.self)
        let x1 = try require(x1, "x1")
        let (b, d, _) = try matrixShape(batch, dim)
        let out = PreparedBatchBuffers(
            xIn: try require(out_x_in, "out_x_in"), t: try require(out_t, "out_t"), m: out_m, noise: out_noise,
            target: try require(out_target, "out_target"))
        try tr.prepare(x1: x1, batch: b, dim: d, seed: seed, step: step, firstSample: first_sample, out: out)
    }
}

/// Computes the per-sample losses `loss_i = c_i mean_j (pred_ij - target_ij)^2`, their mean over the
/// batch, and the gradient of that mean with respect to pred, for the caller to backpropagate through its
/// own model. c_i is 1 for velocity prediction and SiT's weight (times sigma^2 for score) otherwise.
///
/// - Parameters:
///   - pred: the model output, [batch, dim], finite. target: from `mixflow_transport_prepare`, [batch, dim].
///   - t, m: [batch] from `mixflow_transport_prepare`; may be NULL for velocity prediction or weight NONE
///     with noise prediction (m may also be NULL when the target time is t).
///   - out_per_sample: [batch], may be NULL. out_mean: may be NULL. out_grad: [batch, dim], may be NULL,
///     may alias pred.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf in pred, target, t or m
///   — t and m are checked whenever given —, or a loss that overflows) or `MIXFLOW_ERR_INVALID_HANDLE`. A failed
///   call writes none of out_per_sample, out_mean and out_grad.
@c public func mixflow_transport_loss(
    _ transport: UnsafeMutablePointer<mixflow_transport>?,
    _ pred: UnsafePointer<Float>?, _ target: UnsafePointer<Float>?,
    _ t: UnsafePointer<Float>?, _ m: UnsafePointer<Float>?,
    _ batch: Int64, _ dim: Int64,
    _ out_per_sample: UnsafeMutablePointer<Float>?, _ out_mean: UnsafeMutablePointer<Float>?,
    _ out_grad: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_transport_loss") {
        let tr = try Handle.get(transport, kind: .transport, "transport", as: Transport.self)
        let pred = try require(pred, "pred"), target = try require(target, "target")
        let (b, d, _) = try matrixShape(batch, dim)
        let mean = try tr.loss(pred: pred, target: target, t: t, m: m, batch: b, dim: d,
                               perSample: out_per_sample, grad: out_grad)
        out_mean?.pointee = Float(mean)
    }
}
