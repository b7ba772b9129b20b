import MixflowCore
import MixflowMethod

/// Hyper-parameters of post-training. Presets follow the official recipes.
public struct TrainerConfig: Equatable, Sendable {
    public var optimizer = AdamWConfig()
    public var schedule: LearningRateSchedule = .constant(1e-4)
    /// EMA decay applied after every step; 0 disables the EMA copy.
    public var emaDecay: Double = 0.9999
    /// Global gradient-norm clip (torch `clip_grad_norm_`); nil = none (SiT), 1.0 for RAE.
    public var maxGradNorm: Double? = nil
    /// λ of REPA's total loss denoise + λ·proj (`--proj-coeff`, 0.5); used only by models with projectors
    /// (`FeatureAlignedModel`) and only in steps given target features.
    public var alignmentWeight: Double = 0.5
    public var seed: UInt64 = 0
    public var threads: Int = 0

    public init() {}

    /// `sit`: AdamW lr 1e-4 constant, betas (0.9, 0.999), EMA 0.9999, no clipping (SiT train.py).
    /// `repa`: as `sit` plus gradient clipping at 1.0 and λ = 0.5 (REPA train.py: `--max-grad-norm 1.0`,
    /// `--proj-coeff 0.5`, AdamW weight decay 0, eps 1e-8).
    /// `rae`: AdamW lr 2e-4, betas (0.9, 0.95), linear decay to 2e-5, clip 1.0, EMA 0.9995 (RAE stage 2);
    /// `decaySteps` gives the (start, end) of the decay in steps (RAE: epochs 40 and 800).
    public static func preset(_ name: String, decaySteps: (Int, Int) = (40, 800)) throws -> TrainerConfig {
        var c = TrainerConfig()
        switch name.lowercased() {
        case "sit":
            break
        case "repa":
            c.maxGradNorm = 1.0
            c.alignmentWeight = 0.5
        case "rae":
            c.optimizer.beta2 = 0.95
            c.schedule = .linearDecay(base: 2e-4, final: 2e-5, decayStart: decaySteps.0, decayEnd: decaySteps.1, warmup: 0)
            c.emaDecay = 0.9995
            c.maxGradNorm = 1.0
        default:
            throw MixflowError.invalidArgument("trainer preset must be \"sit\", \"repa\" or \"rae\", got \"\(name)\"")
        }
        return c
    }

    public func validate() throws {
        try optimizer.validate()
        try schedule.validate()
        guard emaDecay.isFinite, (0...1).contains(emaDecay) else {
            throw MixflowError.invalidArgument("ema_decay must be in [0, 1], got \(describe(emaDecay))")
        }
        if let m = maxGradNorm, !(m.isFinite && m > 0) {
            throw MixflowError.invalidArgument("max_grad_norm must be > 0 (or 0 = no clipping), got \(describe(m))")
        }
        guard alignmentWeight.isFinite, alignmentWeight >= 0 else {
            throw MixflowError.invalidArgument("proj_coeff must be finite and >= 0, got \(describe(alignmentWeight))")
        }
        guard threads >= 0 else { throw MixflowError.invalidArgument("num_threads must be >= 0, got \(threads)") }
    }
}

/// MixFlow post-training of a native model: each `step` runs the transport (draws, slowed input,
/// target), the model forward and backward, an optional gradient hook (for all-reduce across
/// processes), clipping, AdamW and the EMA update, all deterministic for a given seed.
public final class Trainer {
    public let model: TrainableModel
    public let transport: Transport
    public private(set) var config: TrainerConfig
    public let optimizer: AdamW
    /// EMA weights (empty when `emaDecay` is 0).
    public var ema: [Float]
    /// Completed optimiser steps; the next step uses this number for its randomness.
    public var step: Int = 0
    /// Called with (gradients, count, step) after backward and before clipping/update. Throwing aborts
    /// the step before any parameter changes.
    public var gradientHook: ((UnsafeMutablePointer<Float>, Int, Int) throws -> Void)?

    private var scratch = Scratch()

    public init(model: TrainableModel, transport: Transport, config: TrainerConfig) throws {
        try config.validate()
        self.model = model
        self.transport = transport
        self.config = config
        optimizer = try AdamW(count: model.parameterCount, trainable: model.trainableRanges, config: config.optimizer,
                              threads: config.threads)
        ema = config.emaDecay > 0 ? Array(UnsafeBufferPointer(start: model.parameters, count: model.parameterCount)) : []
    }

    /// true once a step of a model with projectors ran without target features (the denoising loss alone),
    /// so that an entry point can say so once.
    public private(set) var trainedWithoutFeatures = false

    /// One training step on data x1 [batch, sampleDim] with labels y [batch] (nil = unconditional).
    /// `firstSample` is the global index of row 0 when a batch is split across processes. `features` are the
    /// target features of a model with projectors ([batch, featureSize], see `FeatureAlignedModel`): the loss
    /// is then denoise + λ·proj (REPA); without them, or for other models, the denoising loss alone.
    /// - Returns: the mean loss over this batch.
    /// - Throws: `.invalidArgument` for features given to a model without projectors.
    @discardableResult
    public func trainStep(x1: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int, firstSample: UInt64 = 0,
                          features: UnsafePointer<Float>? = nil) throws -> Double {
        let aligned = model as? FeatureAlignedModel
        if features != nil, aligned == nil {
            throw MixflowError.invalidArgument("features are for models with REPA projectors; this model has none")
        }
        let dim = model.sampleDim
        scratch.ensure(batch: batch, dim: dim)
        let s = UInt64(step)
        let loss: Double = try scratch.withBuffers { xIn, t, m, target, pred in
            try transport.prepare(x1: x1, batch: batch, dim: dim, seed: config.seed, step: s, firstSample: firstSample,
                                  out: PreparedBatchBuffers(xIn: xIn, t: t, m: m, noise: nil, target: target))
            try model.forwardTraining(x: xIn, t: t, y: y, batch: batch, seed: config.seed, step: s,
                                      firstSample: firstSample, out: pred)
            // The gradient of the mean loss overwrites pred (allowed to alias).
            var value = try transport.loss(pred: pred, target: target, t: t, m: m, batch: batch, dim: dim,
                                           perSample: nil, grad: pred)
            if let aligned, let features {
                let weight = Float(config.alignmentWeight)
                value += Double(weight) * Double(try aligned.alignmentLoss(features: features, batch: batch, weight: weight))
            } else if aligned != nil {
                trainedWithoutFeatures = true
            }
            try model.backward(gradOutput: pred)
            return value
        }
        let grads = model.gradients, count = model.parameterCount
        try gradientHook?(grads, count, step)
        if let maxNorm = config.maxGradNorm {
            GradientClipping.clip(grads, count: count, maxNorm: maxNorm, threads: config.threads)
        }
        optimizer.update(params: model.parameters, grads: grads, lr: config.schedule.rate(at: step))
        if config.emaDecay > 0 {
            ema.withUnsafeMutableBufferPointer { e in
                EMA.update(ema: e.baseAddress!, params: model.parameters, count: count, decay: config.emaDecay,
                           threads: config.threads)
            }
        }
        step += 1
        return loss
    }

    /// Replaces the hyper-parameters of a running trainer (learning-rate schedule, AdamW settings, EMA decay,
    /// clipping, seed, threads) without touching its state (weights, moments, EMA, step): e.g. a learning-rate
    /// cool-down decided after a resume. The schedule is a function of the step number, so a schedule set
    /// before its decay starts gives exactly the run that had it from step 0. The EMA cannot be switched on
    /// or off here (its weights would be undefined), only its decay changed.
    public func update(config new: TrainerConfig) throws {
        try new.validate()
        guard (new.emaDecay > 0) == (config.emaDecay > 0) else {
            throw MixflowError.invalidArgument("ema_decay cannot change between 0 (no EMA) and > 0 on an existing trainer, "
                                               + "got \(describe(new.emaDecay)) for a trainer with ema_decay \(describe(config.emaDecay))")
        }
        optimizer.config = new.optimizer
        optimizer.threads = new.threads
        config = new
    }

    /// Per-step buffers, reallocated only when the batch shape changes.
    struct Scratch {
        var batch = 0, dim = 0
        var xIn: [Float] = [], target: [Float] = [], pred: [Float] = [], t: [Float] = [], m: [Float] = []

        mutating func ensure(batch: Int, dim: Int) {
            guard batch != self.batch || dim != self.dim else { return }
            self.batch = batch; self.dim = dim
            xIn = .init(repeating: 0, count: batch * dim); target = xIn; pred = xIn
            t = .init(repeating: 0, count: batch); m = t
        }

        mutating func withBuffers<R>(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
                                              UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
            try xIn.withUnsafeMutableBufferPointer { a in
                try t.withUnsafeMutableBufferPointer { b in
                    try m.withUnsafeMutableBufferPointer { c in
                        try target.withUnsafeMutableBufferPointer { d in
                            try pred.withUnsafeMutableBufferPointer { e in
                                try body(a.baseAddress!, b.baseAddress!, c.baseAddress!, d.baseAddress!, e.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
    }
}
