#if canImport(Glibc)
import Glibc
#endif
import MixflowCore

/// DiT^DH, the RAE stage-2 model (docs/exactness.md §6): a LightningDDT encoder on the noisy latent conditioned per
/// sample on c = SiLU(t_emb + y_emb), then a wide head on a second embedding of the same latent conditioned
/// per token on s = s_projector(SiLU(t_emb + encoder output)), and an RMSNorm final layer without gate.
/// Parameters live in one flat buffer laid out as the official state dict (RoPE tables and t_embedder.W
/// included, fixed), with a parallel gradient buffer and a hand-written backward pass.
///
/// Threads: as `SiTModel`: every split depends only on shapes and every reduction has a fixed order, so
/// outputs and gradients are bit-identical for any `threads`. A model is used by one thread at a time.
public final class DiTDHModel: NativeArchitecture, CachedActivations {
    public let config: DiTDHConfig
    public let table: DiTDHParameterTable
    public let state: ModelState
    var acts = ActivationCache<DiTDHActivations>()

    public init(_ config: DiTDHConfig, parameters: ParameterSource, threads: Int) throws {
        try config.validate()
        self.config = config
        table = DiTDHParameterTable(config)
        state = try ModelState(table.layout, parameters: parameters, threads: threads)
        if case .seed(let seed) = parameters { initialize(seed: seed) }
    }

    // MARK: - Forward

    /// x: [B, C, H, W], t: [B] (RAE convention: noise at 1), y: [B] (labels in 0...numClasses; numClasses =
    /// null) → out: [B, C, H, W], the velocity. Same contract as `SiTModel.forward`.
    public func forward(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>, batch b: Int,
                        out: UnsafeMutablePointer<Float>, dropout: LabelDropout? = nil,
                        saveForBackward: Bool = true) throws {
        let a = try beginForward(y: y, batch: b, dropout: dropout, saveForBackward: saveForBackward)
        let c = config, tb = table, de = c.encoderHidden, dh = c.headHidden, ch = c.inChannels, tk = c.tokens
        let r = b * tk, th = threads
        // Patch size 1: a token is the C-vector of one latent position (row-major over the grid).
        patchifyForward(patches: a.tokensIn, x: x, b: b, c: ch, h: c.inputSize, w: c.inputSize, p: 1)
        // Condition c = SiLU(t_emb + y_emb); the encoder's adaLN applies its own SiLU on top (double SiLU).
        fourierFeaturesForward(out: a.fourier, t: t, w: param(tb.tW), b: b)
        linearForward(out: a.tHidden, inp: a.fourier, weight: param(tb.tMlp0W), bias: param(tb.tMlp0B),
                      n: b, c: 2 * fourierFeatures, oc: de, threads: th)
        siluForward(out: a.tHiddenAct, inp: a.tHidden, count: b * de)
        linearForward(out: a.tEmb, inp: a.tHiddenAct, weight: param(tb.tMlp2W), bias: param(tb.tMlp2B),
                      n: b, c: de, oc: de, threads: th)
        embeddingForward(out: a.cond, table: param(tb.yTable), labels: a.labels, b: b, d: de)
        axpy(a.cond, 1, a.tEmb, b * de)
        siluForward(out: a.condAct, inp: a.cond, count: b * de)
        siluForward(out: a.condAct2, inp: a.condAct, count: b * de)
        // Encoder: s = s_embedder(x) + pos_embed, blocks with per-sample conditioning and encoder RoPE.
        linearForward(out: a.enc(0), inp: a.tokensIn, weight: param(tb.sEmbedW), bias: param(tb.sEmbedB),
                      n: r, c: ch, oc: de, threads: th)
        addPositional(x: a.enc(0), pos: param(tb.posEmbed), b: b, t: tk, d: de)
        for l in 0..<c.encoderDepth {
            blockForward(l, a, b, x: a.enc(l), out: a.enc(l + 1), cond: a.condAct2)
        }
        // Bridge: s ← SiLU(t_emb (every token) + s), then s_projector; the head's adaLN reads SiLU(s).
        let sEnc = a.enc(c.encoderDepth)
        for row in 0..<r {
            (a.sPre + row * de).update(from: sEnc + row * de, count: de)
            axpy(a.sPre + row * de, 1, a.tEmb + (row / tk) * de, de)
        }
        siluForward(out: a.sAct, inp: a.sPre, count: r * de)
        let s = projected(a)
        if let w = tb.sProjW, let bias = tb.sProjB {
            linearForward(out: a.sProj, inp: a.sAct, weight: param(w), bias: param(bias), n: r, c: de, oc: dh, threads: th)
        }
        siluForward(out: a.sProjAct, inp: s, count: r * dh)
        // Head: its own embedding of x (no position embedding), per-token conditioning, decoder RoPE.
        linearForward(out: a.head(0), inp: a.tokensIn, weight: param(tb.xEmbedW), bias: param(tb.xEmbedB),
                      n: r, c: ch, oc: dh, threads: th)
        for k in 0..<c.headDepth {
            blockForward(c.encoderDepth + k, a, b, x: a.head(k), out: a.head(k + 1), cond: a.sProjAct)
        }
        // Final layer: RMSNorm, per-token (shift, scale) from Linear(SiLU(s)), no gate, Linear to C.
        linearForward(out: a.finalMod, inp: a.sProjAct, weight: param(tb.finalAdaW), bias: param(tb.finalAdaB),
                      n: r, c: dh, oc: 2 * dh, threads: th)
        rmsNormModulateForward(out: a.modulated, rstd: a.finalRstd, x: a.head(c.headDepth), weight: param(tb.finalNorm),
                               modulation: Modulation(mod: a.finalMod, stride: 2 * dh, shift: 0, scale: dh),
                               b: r, t: 1, d: dh, threads: th)
        linearForward(out: a.outTokens, inp: a.modulated, weight: param(tb.finalLinW), bias: param(tb.finalLinB),
                      n: r, c: dh, oc: ch, threads: th)
        unpatchifyForward(out: out, o: a.outTokens, b: b, c: ch, cOut: ch, h: c.inputSize, w: c.inputSize, p: 1)
        endForward(batch: b, saveForBackward: saveForBackward)
    }

    /// s after s_projector: its own buffer, or SiLU(t_emb + s) itself when the projector is Identity.
    func projected(_ a: DiTDHActivations) -> UnsafeMutablePointer<Float> { table.sProjW == nil ? a.sAct : a.sProj }

    /// Geometry of block l: width, heads, SwiGLU width, the modulation row split and the RoPE tables.
    func geometry(_ l: Int, _ b: Int) -> (d: Int, heads: Int, hs: Int, mb: Int, mt: Int, cos: Int, sin: Int) {
        let (d, heads, hs) = config.block(l)
        // Encoder: one modulation row per sample (b: B, t: T); head: one per token (b: B·T, t: 1).
        return l < config.encoderDepth
            ? (d, heads, hs, b, config.tokens, table.encCos, table.encSin)
            : (d, heads, hs, b * config.tokens, 1, table.decCos, table.decSin)
    }

    /// One LightningDDT block: x ← x + g_msa ⊙ Attn(RoPE; mod(RMSNorm₁(x))); x ← x + g_mlp ⊙ SwiGLU(mod(RMSNorm₂(x))),
    /// (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp) = Linear(SiLU(cond)).
    /// `cond` is already SiLU'd ([B, d] for the encoder, [B·T, d] for the head).
    func blockForward(_ l: Int, _ a: DiTDHActivations, _ b: Int, x: UnsafePointer<Float>,
                      out: UnsafeMutablePointer<Float>, cond: UnsafePointer<Float>) {
        let g = geometry(l, b), d = g.d, r = b * config.tokens, th = threads
        let s = a.block(l, encoderDepth: config.encoderDepth)
        let w = { (k: Int) in self.param(self.table.block(l, k)) }
        typealias T = DiTDHParameterTable
        linearForward(out: s.mod, inp: cond, weight: w(T.adaW), bias: w(T.adaB), n: g.mb, c: d, oc: 6 * d, threads: th)
        rmsNormModulateForward(out: a.modulated, rstd: s.rstd1, x: x, weight: w(T.norm1),
                               modulation: Modulation(mod: s.mod, stride: 6 * d, shift: 0, scale: d),
                               b: g.mb, t: g.mt, d: d, threads: th)
        linearForward(out: s.qkv, inp: a.modulated, weight: w(T.qkvW), bias: w(T.qkvB), n: r, c: d, oc: 3 * d, threads: th)
        ropeApply(qkv: s.qkv, cos: param(g.cos), sin: param(g.sin), b: b, t: config.tokens, d: d, heads: g.heads,
                  inverse: false, threads: th)
        attentionForward(out: s.att, qkv: s.qkv, b: b, t: config.tokens, d: d, heads: g.heads, threads: th)
        // The gated residuals are done by the GEMMs on their output blocks (LinearEpilogue).
        let gate = { (column: Int) in LinearEpilogue.Gate(mod: s.mod, stride: 6 * d, column: column, tokens: g.mt) }
        linearForward(out: s.attProj, inp: s.att, weight: w(T.projW), bias: w(T.projB), n: r, c: d, oc: d, threads: th,
                      then: .gatedResidual(res: s.mid, x: x, gate: gate(2 * d)))
        rmsNormModulateForward(out: a.modulated, rstd: s.rstd2, x: s.mid, weight: w(T.norm2),
                               modulation: Modulation(mod: s.mod, stride: 6 * d, shift: 3 * d, scale: 4 * d),
                               b: g.mb, t: g.mt, d: d, threads: th)
        linearForward(out: s.w12, inp: a.modulated, weight: w(T.w12W), bias: w(T.w12B), n: r, c: d, oc: 2 * g.hs, threads: th)
        swigluForward(out: a.hidden, inp: s.w12, n: r, hidden: g.hs, threads: th)
        linearForward(out: s.w3, inp: a.hidden, weight: w(T.w3W), bias: w(T.w3B), n: r, c: g.hs, oc: d, threads: th,
                      then: .gatedResidual(res: out, x: s.mid, gate: gate(5 * d)))
    }
}
