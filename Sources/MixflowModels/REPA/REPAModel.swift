import MixflowCore

/// What a projector pass saves for one batch (R = B·T token rows): the tokens it read, and per projector the
/// two hidden pre-activations and activations, its output z̃ and λ·d(proj)/d(z̃); plus backward scratch.
final class REPAActivations: ActivationBuffers, ActivationSet {
    let tokens: UnsafeMutablePointer<Float>                       // [R, D]
    let h1, a1, h2, a2: [UnsafeMutablePointer<Float>]             // [R, P] each
    let zTilde, dzTilde: [UnsafeMutablePointer<Float>]            // [R, z_k] each
    let gA, gB: UnsafeMutablePointer<Float>                       // [R, P]

    init(_ c: REPAConfig, batch b: Int, training: Bool, arena: FloatArena) throws {
        // Projectors run only in saving (training) passes: an inference set is empty.
        let r = training ? b * c.sit.tokens : 0, p = c.projectorDim
        tokens = try arena.take(r * c.sit.hidden)
        h1 = try c.zDims.map { _ in try arena.take(r * p) }; a1 = try c.zDims.map { _ in try arena.take(r * p) }
        h2 = try c.zDims.map { _ in try arena.take(r * p) }; a2 = try c.zDims.map { _ in try arena.take(r * p) }
        zTilde = try c.zDims.map { try arena.take(r * $0) }; dzTilde = try c.zDims.map { try arena.take(r * $0) }
        gA = try arena.take(r * p); gB = try arena.take(r * p)
        super.init(batch: b, training: training, arena: arena)
    }
}

/// REPA's SiT (github.com/sihyun-yu/REPA models/sit.py): a SiT trunk plus one projector MLP per target
/// encoder on the tokens after block `encoderDepth`, trained with REPA's total loss
/// denoise + λ·proj, proj = mean over encoders, samples and tokens of −cos(z, z̃) (loss.py).
///
/// The trunk's own forward and backward are SiT's; this file holds only the projectors' explicit forward
/// and backward and the alignment loss. Parameters are one flat buffer in the official state-dict order
/// (the projectors between the blocks and final_layer). Bit-identical for any thread count, as SiT.
public final class REPAModel: NativeArchitecture, FeatureAlignedModel, TokenTap {
    public let config: REPAConfig
    /// The SiT part; its `state` holds every parameter, projectors included.
    public let trunk: SiTModel
    /// Entry index of `projectors.0.0.weight` (projector k's six tensors follow at 6k…6k+5).
    let firstProjector: Int
    var acts = ActivationCache<REPAActivations>()
    /// true once `alignmentLoss` set λ·d(proj)/d(z̃) for the last saving forward: backward then adds it.
    private var aligned = false

    public var state: ModelState { trunk.state }
    var afterBlock: Int { config.encoderDepth }

    public init(_ config: REPAConfig, parameters: ParameterSource, threads: Int) throws {
        try config.validate()
        self.config = config
        var first = 0
        trunk = try SiTModel(config.sit, beforeFinal: { layout in
            first = layout.entries.count
            REPAModel.addProjectors(config, to: &layout)
        }, parameters: parameters, threads: threads)
        firstProjector = first
        trunk.state.tap = self
    }

    /// The projectors' tensors, in the official state dict's order and names.
    static func addProjectors(_ c: REPAConfig, to layout: inout ParameterLayout) {
        let d = c.sit.hidden, p = c.projectorDim
        for (k, z) in c.zDims.enumerated() {
            let q = "projectors.\(k)."
            layout.add(q + "0.weight", [p, d]); layout.add(q + "0.bias", [p])
            layout.add(q + "2.weight", [p, p]); layout.add(q + "2.bias", [p])
            layout.add(q + "4.weight", [z, p]); layout.add(q + "4.bias", [z])
        }
    }

    /// The parameter layout of `c` without allocating a model (to check a file against it first).
    public static func layout(_ c: REPAConfig) -> ParameterLayout {
        SiTParameterTable(c.sit, beforeFinal: { addProjectors(c, to: &$0) }).layout
    }

    public static func config(fromMetadata meta: [(key: String, value: String)]) throws -> REPAConfig {
        try REPAConfig(metadata: meta)
    }

    public var featureSize: Int { config.featureSize }

    public func activationFloats(batch: Int, training: Bool = true) -> Int {
        let own = REPAActivations.floats(config, batch: batch, training: training)
        let sit = trunk.activationFloats(batch: batch, training: training)
        return own > Int.max - sit ? Int.max : own + sit
    }

    /// SiT's forward; a saving pass also runs the projectors (`projectorOutput`). Same contract as `SiTModel.forward`.
    public func forward(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>, batch: Int,
                        out: UnsafeMutablePointer<Float>, dropout: LabelDropout? = nil, saveForBackward: Bool = true) throws {
        if saveForBackward { aligned = false }
        try trunk.forward(x: x, t: t, y: y, batch: batch, out: out, dropout: dropout, saveForBackward: saveForBackward)
    }

    /// SiT's backward of dL/d(out), plus, when `alignmentLoss` was called after the forward, the gradient of
    /// λ·proj through the projectors into the trunk.
    public func backward(dout: UnsafePointer<Float>, batch: Int, dx: UnsafeMutablePointer<Float>? = nil) throws {
        try trunk.backward(dout: dout, batch: batch, dx: dx)
    }

    /// Projector k's output z̃ [B, T, z_dims[k]] of the last saving forward.
    /// - Throws: `.invalidArgument` without a saving forward of `batch` samples, or k out of range.
    public func projectorOutput(_ k: Int, batch: Int) throws -> UnsafePointer<Float> {
        guard config.zDims.indices.contains(k) else {
            throw MixflowError.invalidArgument("projector must be in [0, \(config.zDims.count)), got \(k)")
        }
        return UnsafePointer(try acts.saved(batch: batch, state: state).zTilde[k])
    }

    /// REPA's alignment loss of the last saving forward against the target features `z` [B, featureSize]
    /// (sample-major; within a sample, encoder k's [T, z_dims[k]] after encoder k−1's), and sets λ·d(proj)/d(z̃)
    /// for the next backward. proj = 1/(E·B) Σ_k Σ_j mean_n −⟨z/‖z‖, z̃/‖z̃‖⟩ with each norm at least 1e-12
    /// (F.normalize). Features are trusted to be finite (the entry points check them).
    /// - Returns: proj (without λ).
    /// - Throws: `.invalidArgument` without a saving forward of `batch` samples.
    public func alignmentLoss(features z: UnsafePointer<Float>, batch b: Int, weight lambda: Float) throws -> Float {
        let a = try acts.saved(batch: b, state: state)
        let tk = config.sit.tokens, e = config.zDims.count, perSample = config.featureSize
        let scale = Double(lambda) / Double(e * b * tk)
        var total = 0.0, prefix = 0
        for (k, zd) in config.zDims.enumerated() {
            for row in 0..<(b * tk) {
                let (j, n) = row.quotientAndRemainder(dividingBy: tk)
                let u = a.zTilde[k] + row * zd, du = a.dzTilde[k] + row * zd
                let v = z + j * perSample + prefix + n * zd
                var uv = 0.0, uu = 0.0, vv = 0.0
                for i in 0..<zd {
                    let ui = Double(u[i]), vi = Double(v[i])
                    uv += ui * vi; uu += ui * ui; vv += vi * vi
                }
                let nu = max(uu.squareRoot(), 1e-12), nv = max(vv.squareRoot(), 1e-12)
                total -= uv / (nu * nv)
                // d(−cos)/du = −(v/(nu·nv) − (u·v)·u/(nu³·nv)); the second term vanishes where nu is clamped.
                let radial = uu.squareRoot() > 1e-12 ? uv / (nu * nu * nu * nv) : 0
                for i in 0..<zd { du[i] = Float(-scale * (Double(v[i]) / (nu * nv) - radial * Double(u[i]))) }
            }
            prefix += tk * zd
        }
        aligned = true
        return Float(total / Double(e * b * tk))
    }

    // MARK: - Projectors (the trunk's TokenTap)

    func forward(tokens: UnsafePointer<Float>, batch b: Int) throws {
        let a = try acts.get(config, batch: b, training: true)
        let r = b * config.sit.tokens, d = config.sit.hidden, p = config.projectorDim, th = threads
        a.tokens.update(from: tokens, count: r * d)
        for (k, zd) in config.zDims.enumerated() {
            let w = { (j: Int) in self.param(self.firstProjector + 6 * k + j) }
            linearForward(out: a.h1[k], inp: a.tokens, weight: w(0), bias: w(1), n: r, c: d, oc: p, threads: th)
            siluForward(out: a.a1[k], inp: a.h1[k], count: r * p)
            linearForward(out: a.h2[k], inp: a.a1[k], weight: w(2), bias: w(3), n: r, c: p, oc: p, threads: th)
            siluForward(out: a.a2[k], inp: a.h2[k], count: r * p)
            linearForward(out: a.zTilde[k], inp: a.a2[k], weight: w(4), bias: w(5), n: r, c: p, oc: zd, threads: th)
        }
    }

    func backward(dTokens: UnsafeMutablePointer<Float>, batch b: Int) {
        guard aligned, let a = try? acts.saved(batch: b, state: state) else { return }
        let r = b * config.sit.tokens, d = config.sit.hidden, p = config.projectorDim, th = threads
        for (k, zd) in config.zDims.enumerated() {
            let w = { (j: Int) in self.param(self.firstProjector + 6 * k + j) }
            let g = { (j: Int) in self.grad(self.firstProjector + 6 * k + j) }
            zero(a.gA, r * p)
            linearBackward(dinp: a.gA, dweight: g(4), dbias: g(5), dout: a.dzTilde[k], inp: a.a2[k], weight: w(4),
                           n: r, c: p, oc: zd, threads: th)
            zero(a.gB, r * p)
            siluBackward(dinp: a.gB, dout: a.gA, inp: a.h2[k], count: r * p)
            zero(a.gA, r * p)
            linearBackward(dinp: a.gA, dweight: g(2), dbias: g(3), dout: a.gB, inp: a.a1[k], weight: w(2),
                           n: r, c: p, oc: p, threads: th)
            zero(a.gB, r * p)
            siluBackward(dinp: a.gB, dout: a.gA, inp: a.h1[k], count: r * p)
            linearBackward(dinp: dTokens, dweight: g(0), dbias: g(1), dout: a.gB, inp: a.tokens, weight: w(0),
                           n: r, c: d, oc: p, threads: th)
        }
    }
}
