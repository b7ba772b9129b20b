import MixflowCore

/// What the trainer needs from a model: one flat parameter buffer with a parallel gradient buffer,
/// and a training forward/backward pair. Native SiT (and later DiT^DH) conform to it.
public protocol TrainableModel: AnyObject {
    /// Number of floats in the flat parameter (and gradient) buffer.
    var parameterCount: Int { get }
    /// Ranges of the flat buffer the optimiser updates (fixed buffers such as SiT's pos_embed excluded).
    var trainableRanges: [Range<Int>] { get }
    /// The flat parameters (owned by the model; valid for its life).
    var parameters: UnsafeMutablePointer<Float> { get }
    /// The flat gradients written by `backward` (owned by the model; valid for its life).
    var gradients: UnsafeMutablePointer<Float> { get }
    /// Floats per sample of input and output (C·H·W).
    var sampleDim: Int { get }
    /// `key=value` description sufficient to rebuild the architecture (`model.*` keys).
    var architectureMetadata: [(key: String, value: String)] { get }

    /// Training-mode forward: class labels are dropped to the null class with the model's dropout
    /// probability, deterministically from (seed, step, firstSample + i); activations are kept for backward.
    func forwardTraining(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int,
                         seed: UInt64, step: UInt64, firstSample: UInt64, out: UnsafeMutablePointer<Float>) throws
    /// Backward of the last `forwardTraining` for upstream gradient dL/d(out); overwrites `gradients`.
    func backward(gradOutput: UnsafePointer<Float>) throws
}

/// A model trained with REPA's representation alignment: projector heads whose outputs z̃ are pulled toward
/// target features z from a pretrained encoder (proj = mean −cos(z, z̃)).
public protocol FeatureAlignedModel: TrainableModel {
    /// Floats of target features per sample (encoder-major: Σ_k tokens · z_dims[k]).
    var featureSize: Int { get }
    /// The alignment loss of the last training forward against `features` [batch, featureSize]; sets
    /// weight·d(proj)/d(z̃) for the next `backward`. Returns proj (without the weight).
    func alignmentLoss(features: UnsafePointer<Float>, batch: Int, weight: Float) throws -> Float
}
