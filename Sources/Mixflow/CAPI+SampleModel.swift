import CMixflow
import MixflowCore
import MixflowMethod
import MixflowModels

/// Samples with a native model (`mixflow_model`) instead of a callback; otherwise exactly `mixflow_sample`
/// (same grids, integrators, guidance, baselines, noise keys, NFE). The model predicts what
/// `params->prediction` says, in `params->convention` (a SiT trained by libmixflow's transport: velocity in
/// the transport's convention).
///
/// - Parameters:
///   - model: the network. guide_model: the weaker model for MIXFLOW_GUIDANCE_AUTO, otherwise may be NULL.
///   - noise: [batch, dim] with dim = in_channels·input_size², finite. y: [batch] labels in [0, num_classes]
///     (num_classes = null class), required for CFG; NULL = unconditional.
///   - out_x, out_trajectory, out_nfe: as in `mixflow_sample`.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, dim not the model's, label or null class out
///   of range, NaN/Inf), `MIXFLOW_ERR_INVALID_HANDLE`, `MIXFLOW_ERR_OUT_OF_MEMORY` (activations of the batch) or
///   `MIXFLOW_ERR_CALLBACK` (the model produced NaN/Inf; the message gives the step and the time).
@c public func mixflow_sample_model(
    _ sampler: UnsafeMutablePointer<mixflow_sampler>?,
    _ model: UnsafeMutablePointer<mixflow_model>?, _ guide_model: UnsafeMutablePointer<mixflow_model>?,
    _ noise: UnsafePointer<Float>?, _ batch: Int64, _ dim: Int64, _ y: UnsafePointer<Int32>?, _ first_sample: UInt64,
    _ out_x: UnsafeMutablePointer<Float>?, _ out_trajectory: UnsafeMutablePointer<Float>?,
    _ out_nfe: UnsafeMutablePointer<Int64>?
) -> mixflow_status {
    capi("mixflow_sample_model") {
        let s = try Handle.get(sampler, kind: .sampler, "sampler", as: Sampler.self)
        let mainBox = try modelBox(model), main = mainBox.model
        let guideBox = try guide_model.map { try modelBox($0) }, guide = guideBox?.model
        let noise = try require(noise, "noise")
        let (b, d, n) = try matrixShape(batch, dim)
        let out = try require(out_x, "out_x")
        for (name, m) in [("model", main)] + (guide.map { [("guide_model", $0)] } ?? []) {
            let expected = m.inChannels * m.inputSize * m.inputSize
            guard d == expected else {
                throw MixflowError.invalidArgument("dim must be \(expected) (in_channels x input_size^2 of \(name)), got \(d)")
            }
            if let y {
                try checkClassLabels(y, count: b, numClasses: m.numClasses)
            }
            if s.config.guidance == .classifierFree, s.config.nullClass < 0 || Int(s.config.nullClass) > m.numClasses {
                throw MixflowError.invalidArgument("the sampler's null_class must be in [0, \(m.numClasses)] for \(name), got \(s.config.nullClass)")
            }
        }
        if s.config.guidance == .autoguidance, guide == nil {
            throw MixflowError.invalidArgument("guide_model must not be NULL with MIXFLOW_GUIDANCE_AUTO")
        }
        if s.config.guidance == .classifierFree, y == nil {
            throw MixflowError.invalidArgument("y must not be NULL with MIXFLOW_GUIDANCE_CFG")
        }
        try RandomStream.checkSampleRange(firstSample: first_sample, batch: b)
        if out_trajectory != nil { _ = try checkedCount([Int64(s.outputTimes.count), batch, dim], "out_trajectory") }
        try requireFinite(UnsafeBufferPointer(start: noise, count: n), "noise")
        if UnsafePointer(out) != noise { out.update(from: noise, count: n) }
        let nfe = try s.sample(model: mainBox.inference, guide: guideBox?.inference, labels: y, x: out,
                               batch: b, dim: d, firstSample: first_sample, trajectory: out_trajectory)
        out_nfe?.pointee = Int64(nfe)
    }
}
