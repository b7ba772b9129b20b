#if canImport(Glibc)
import Glibc
#endif
import MixflowCore

/// How training labels are dropped to the null class (classifier-free guidance training): sample i of a
/// batch is dropped when u < class_dropout, u = RandomStream(seed, step, firstSample + i, .scalars)
/// .uniformPair(1).0. Block 0 of that stream belongs to the transport (t and m), block 1 to this draw.
public struct LabelDropout: Sendable {
    public var seed: UInt64
    public var step: UInt64
    public var firstSample: UInt64
    public init(seed: UInt64, step: UInt64, firstSample: UInt64) {
        self.seed = seed; self.step = step; self.firstSample = firstSample
    }

    public func drops(_ i: Int, probability: Float) -> Bool {
        let u = RandomStream(seed: seed, step: step, sample: UInt32(truncatingIfNeeded: firstSample &+ UInt64(i)),
                             tag: .scalars).uniformPair(1).0
        return u < Double(probability)
    }
}

/// A SiT (Scalable Interpolant Transformer, docs/exactness.md §5) with its parameters in one flat buffer laid out as the
/// official state dict, a parallel gradient buffer, a forward pass that saves what backward needs, and a
/// hand-written backward pass.
///
/// Threads: every kernel, GEMMs included, uses up to `threads` workers (OpenBLAS itself is pinned to one
/// thread; see `BLAS`). Work splits depend only on shapes and every reduction has a fixed order, so
/// outputs and gradients are bit-identical for any `threads`.
/// A model is used by one thread at a time.
public final class SiTModel: NativeArchitecture, CachedActivations {
    public let config: SiTConfig
    public let table: SiTParameterTable
    public let state: ModelState
    /// Activations of the last training forward (what backward reads) and the smaller inference set.
    var acts = ActivationCache<SiTActivations>()

    public convenience init(_ config: SiTConfig, parameters: ParameterSource, threads: Int) throws {
        try self.init(config, beforeFinal: { _ in }, parameters: parameters, threads: threads)
    }

    /// A SiT whose table has extra tensors between the blocks and the final layer (see `SiTParameterTable`):
    /// the trunk of an architecture that attaches a `TokenTap`.
    init(_ config: SiTConfig, beforeFinal: (inout ParameterLayout) -> Void, parameters: ParameterSource,
         threads: Int) throws {
        try config.validate()
        self.config = config
        table = SiTParameterTable(config, beforeFinal: beforeFinal)
        state = try ModelState(table.layout, parameters: parameters, threads: threads)
        if case .seed(let seed) = parameters { initialize(seed: seed) }
    }

    public static func config(fromMetadata meta: [(key: String, value: String)]) throws -> SiTConfig {
        try SiTConfig(metadata: meta)
    }

    // MARK: - Forward

    /// x: [B, C, H, W], t: [B], y: [B] (labels in 0...numClasses; numClasses = null) → out: [B, C, H, W].
    ///
    /// Labels are checked here (an unchecked label would index outside the class table); x and t are trusted
    /// (the C layer validates them). With `dropout` the labels are dropped to the null
    /// class as in training; without, they are used as given (eval mode). With `saveForBackward` false
    /// only one block's buffers exist (inference: ~1/depth of the memory) and `backward` is unavailable
    /// until the next saving forward. Both modes give bit-identical outputs.
    public func forward(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>, batch b: Int,
                        out: UnsafeMutablePointer<Float>, dropout: LabelDropout? = nil,
                        saveForBackward: Bool = true) throws {
        let a = try beginForward(y: y, batch: b, dropout: dropout, saveForBackward: saveForBackward)
        let c = config, d = c.hidden, tk = c.tokens, bt = b * tk, th = threads
        typealias T = SiTParameterTable
        // Patch embedding + fixed positions.
        patchifyForward(patches: a.patches, x: x, b: b, c: c.inChannels, h: c.inputSize, w: c.inputSize, p: c.patch)
        linearForward(out: a.x(0), inp: a.patches, weight: param(T.xEmbedW), bias: param(T.xEmbedB),
                      n: bt, c: c.patchFeatures, oc: d, threads: th)
        addPositional(x: a.x(0), pos: param(T.posEmbed), b: b, t: tk, d: d)
        // Conditioning c = MLP(freq(t)) + table[y]; every adaLN reads SiLU(c).
        timestepFeaturesForward(out: a.tFreq, t: t, b: b)
        linearForward(out: a.tHidden, inp: a.tFreq, weight: param(T.tMlp0W), bias: param(T.tMlp0B),
                      n: b, c: timestepFeatures, oc: d, threads: th)
        siluForward(out: a.tHiddenAct, inp: a.tHidden, count: b * d)
        linearForward(out: a.tEmb, inp: a.tHiddenAct, weight: param(T.tMlp2W), bias: param(T.tMlp2B),
                      n: b, c: d, oc: d, threads: th)
        embeddingForward(out: a.yEmb, table: param(T.yTable), labels: a.labels, b: b, d: d)
        for i in 0..<(b * d) { a.cond[i] = a.tEmb[i] + a.yEmb[i] }
        siluForward(out: a.condAct, inp: a.cond, count: b * d)
        for l in 0..<c.depth {
            blockForward(l, a, b)
            try tapTokens(after: l + 1, a.x(l + 1), batch: b, saveForBackward: saveForBackward)
        }
        // Final layer: adaLN (shift, scale), LayerNorm, modulate, linear, unpatchify.
        let f = table.final
        linearForward(out: a.finalMod, inp: a.condAct, weight: param(f(T.finalAdaW)), bias: param(f(T.finalAdaB)),
                      n: b, c: d, oc: 2 * d, threads: th)
        layerNormModulateForward(out: a.modulated, mean: a.finalMean, rstd: a.finalRstd, x: a.x(c.depth),
                                 modulation: Modulation(mod: a.finalMod, stride: 2 * d, shift: 0, scale: d),
                                 b: b, t: tk, d: d, threads: th)
        linearForward(out: a.outTokens, inp: a.modulated, weight: param(f(T.finalLinW)), bias: param(f(T.finalLinB)),
                      n: bt, c: d, oc: c.outFeatures, threads: th)
        unpatchifyForward(out: out, o: a.outTokens, b: b, c: c.inChannels, cOut: c.outChannels,
                          h: c.inputSize, w: c.inputSize, p: c.patch)
        endForward(batch: b, saveForBackward: saveForBackward)
    }

    /// One adaLN-Zero block: x ← x + g_msa ⊙ Attn(mod(LN(x))); x ← x + g_mlp ⊙ MLP(mod(LN(x))).
    /// The adaLN vector is split (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp).
    func blockForward(_ l: Int, _ a: SiTActivations, _ b: Int) {
        let c = config, d = c.hidden, tk = c.tokens, bt = b * tk, th = threads, m = c.mlpHidden
        typealias T = SiTParameterTable
        let w = { (k: Int) in self.param(T.block(l, k)) }
        let s = a.slot(l), xIn = a.x(l), xOut = a.x(l + 1)
        linearForward(out: a.mods[s], inp: a.condAct, weight: w(T.adaW), bias: w(T.adaB), n: b, c: d, oc: 6 * d, threads: th)
        layerNormModulateForward(out: a.modulated, mean: a.mean1[s], rstd: a.rstd1[s], x: xIn,
                                 modulation: Modulation(mod: a.mods[s], stride: 6 * d, shift: 0, scale: d),
                                 b: b, t: tk, d: d, threads: th)
        linearForward(out: a.qkv[s], inp: a.modulated, weight: w(T.qkvW), bias: w(T.qkvB), n: bt, c: d, oc: 3 * d, threads: th)
        attentionForward(out: a.att[s], qkv: a.qkv[s], b: b, t: tk, d: d, heads: c.heads, threads: th)
        // The GELU and the gated residuals are done by the GEMMs on their output blocks (LinearEpilogue).
        let gate = { (column: Int) in LinearEpilogue.Gate(mod: a.mods[s], stride: 6 * d, column: column, tokens: tk) }
        linearForward(out: a.attProj[s], inp: a.att[s], weight: w(T.projW), bias: w(T.projB), n: bt, c: d, oc: d, threads: th,
                      then: .gatedResidual(res: a.mids[s], x: xIn, gate: gate(2 * d)))
        layerNormModulateForward(out: a.modulated, mean: a.mean2[s], rstd: a.rstd2[s], x: a.mids[s],
                                 modulation: Modulation(mod: a.mods[s], stride: 6 * d, shift: 3 * d, scale: 4 * d),
                                 b: b, t: tk, d: d, threads: th)
        linearForward(out: a.fc1[s], inp: a.modulated, weight: w(T.fc1W), bias: w(T.fc1B), n: bt, c: d, oc: m, threads: th,
                      then: .gelu(act: a.hiddenAct))
        linearForward(out: a.fc2[s], inp: a.hiddenAct, weight: w(T.fc2W), bias: w(T.fc2B), n: bt, c: m, oc: d, threads: th,
                      then: .gatedResidual(res: xOut, x: a.mids[s], gate: gate(5 * d)))
    }
}
