import MixflowCore

extension DiTDHModel {
    /// Backward pass of the last saving `forward`: given dL/d(out) ([B, C, H, W]), accumulates dL/dθ into
    /// `grads` (call `zeroGradients` first for a fresh gradient) and, if `dx` is given, writes dL/dx
    /// ([B, C, H, W], overwritten; both patch embeddings contribute). The fixed tensors (pos_embed,
    /// t_embedder.W, RoPE tables) get no gradient, as in the official model.
    ///
    /// - Throws: `MixflowError.invalidArgument` when no forward pass of `batch` samples precedes it.
    public func backward(dout: UnsafePointer<Float>, batch b: Int, dx: UnsafeMutablePointer<Float>? = nil) throws {
        let a = try acts.saved(batch: b, state: state)
        let c = config, tb = table, de = c.encoderHidden, dh = c.headHidden, ch = c.inChannels, tk = c.tokens
        let r = b * tk, th = threads
        // Output tokens' gradient, written over outTokens.
        zero(a.outTokens, r * ch)
        unpatchifyBackward(do: a.outTokens, dout: dout, b: b, c: ch, cOut: ch, h: c.inputSize, w: c.inputSize, p: 1)
        // Final layer.
        let finalMod = Modulation(mod: a.finalMod, stride: 2 * dh, shift: 0, scale: dh)
        rmsNormModulateForward(out: a.modulated, rstd: a.finalRstd, x: a.head(c.headDepth), weight: param(tb.finalNorm),
                               modulation: finalMod, b: r, t: 1, d: dh, threads: th)
        linearBackward(dinp: a.gA, dweight: grad(tb.finalLinW), dbias: grad(tb.finalLinB), dout: a.outTokens,
                       inp: a.modulated, weight: param(tb.finalLinW), n: r, c: dh, oc: ch, threads: th,
                       overwriteInputGradient: true)
        zero(a.gB, r * dh); zero(a.gMod, r * 2 * dh)
        rmsNormModulateBackward(dx: a.gB, dweight: grad(tb.finalNorm), dmod: a.gMod, dout: a.gA, x: a.head(c.headDepth),
                                weight: param(tb.finalNorm), rstd: a.finalRstd, modulation: finalMod,
                                b: r, t: 1, d: dh, threads: th)
        linearBackward(dinp: a.gSProjAct, dweight: grad(tb.finalAdaW), dbias: grad(tb.finalAdaB), dout: a.gMod,
                       inp: a.sProjAct, weight: param(tb.finalAdaW), n: r, c: dh, oc: 2 * dh, threads: th,
                       overwriteInputGradient: true)
        // Head blocks; gB carries the residual-stream gradient.
        for k in stride(from: c.headDepth - 1, through: 0, by: -1) {
            blockBackward(c.encoderDepth + k, a, b, x: a.head(k), cond: a.sProjAct, dcond: a.gSProjAct)
        }
        if dx != nil { zero(a.gTokens, r * ch) }
        linearBackward(dinp: dx == nil ? nil : a.gTokens, dweight: grad(tb.xEmbedW), dbias: grad(tb.xEmbedB), dout: a.gB,
                       inp: a.tokensIn, weight: param(tb.xEmbedW), n: r, c: ch, oc: dh, threads: th)
        // Bridge: sProjAct = SiLU(s_projector(SiLU(t_emb + s_enc))).
        let s = projected(a)
        zero(a.gSProj, r * dh)
        siluBackward(dinp: a.gSProj, dout: a.gSProjAct, inp: s, count: r * dh)
        zero(a.gSAct, r * de)
        if let w = tb.sProjW, let bias = tb.sProjB {
            linearBackward(dinp: a.gSAct, dweight: grad(w), dbias: grad(bias), dout: a.gSProj, inp: a.sAct,
                           weight: param(w), n: r, c: de, oc: dh, threads: th)
        } else {
            a.gSAct.update(from: a.gSProj, count: r * de)
        }
        zero(a.gEnc, r * de)
        siluBackward(dinp: a.gEnc, dout: a.gSAct, inp: a.sPre, count: r * de)
        // t_emb was broadcast to every token: its gradient sums the tokens' (in token order).
        zero(a.gT, b * de)
        for row in 0..<r { axpy(a.gT + (row / tk) * de, 1, a.gEnc + row * de, de) }
        // Encoder blocks.
        a.gB.update(from: a.gEnc, count: r * de)
        zero(a.gCondAct2, b * de)
        for l in stride(from: c.encoderDepth - 1, through: 0, by: -1) {
            blockBackward(l, a, b, x: a.enc(l), cond: a.condAct2, dcond: a.gCondAct2)
        }
        // s_embedder (pos_embed is fixed: the gradient passes it unchanged).
        linearBackward(dinp: dx == nil ? nil : a.gTokens, dweight: grad(tb.sEmbedW), dbias: grad(tb.sEmbedB), dout: a.gB,
                       inp: a.tokensIn, weight: param(tb.sEmbedW), n: r, c: ch, oc: de, threads: th)
        if let dx {
            zero(dx, b * c.sampleSize)
            patchifyBackward(dx: dx, dpatches: a.gTokens, b: b, c: ch, h: c.inputSize, w: c.inputSize, p: 1)
        }
        // Condition: condAct2 = SiLU(SiLU(t_emb + y_emb)).
        zero(a.gCondAct, b * de)
        siluBackward(dinp: a.gCondAct, dout: a.gCondAct2, inp: a.condAct, count: b * de)
        zero(a.gCond, b * de)
        siluBackward(dinp: a.gCond, dout: a.gCondAct, inp: a.cond, count: b * de)
        embeddingBackward(dtable: grad(tb.yTable), dout: a.gCond, labels: a.labels, b: b, d: de)
        axpy(a.gT, 1, a.gCond, b * de)
        linearBackward(dinp: a.gTHidden, dweight: grad(tb.tMlp2W), dbias: grad(tb.tMlp2B), dout: a.gT, inp: a.tHiddenAct,
                       weight: param(tb.tMlp2W), n: b, c: de, oc: de, threads: th, overwriteInputGradient: true)
        zero(a.gCondAct, b * de)   // reused as dL/d(tHidden)
        siluBackward(dinp: a.gCondAct, dout: a.gTHidden, inp: a.tHidden, count: b * de)
        linearBackward(dinp: nil, dweight: grad(tb.tMlp0W), dbias: grad(tb.tMlp0B), dout: a.gCondAct, inp: a.fourier,
                       weight: param(tb.tMlp0W), n: b, c: 2 * fourierFeatures, oc: de, threads: th)
    }

    /// Backward of block l. On entry gB holds dL/d(block output); on exit dL/d(block input). dL/d(cond)
    /// (cond = the SiLU'd adaLN input) is accumulated into `dcond`.
    func blockBackward(_ l: Int, _ a: DiTDHActivations, _ b: Int, x: UnsafePointer<Float>,
                       cond: UnsafePointer<Float>, dcond: UnsafeMutablePointer<Float>) {
        let g = geometry(l, b), d = g.d, hs = g.hs, r = b * config.tokens, th = threads
        let s = a.block(l, encoderDepth: config.encoderDepth)
        typealias T = DiTDHParameterTable
        let w = { (k: Int) in self.param(self.table.block(l, k)) }
        let gw = { (k: Int) in self.grad(self.table.block(l, k)) }
        let msa = Modulation(mod: s.mod, stride: 6 * d, shift: 0, scale: d)
        let mlp = Modulation(mod: s.mod, stride: 6 * d, shift: 3 * d, scale: 4 * d)
        zero(a.gMod, g.mb * 6 * d)
        // MLP branch: out = mid + gate_mlp ⊙ w3(SwiGLU(w12(mod(RMSNorm₂(mid))))).
        zero(a.gA, r * d)
        gatedResidualBackward(dy: a.gA, dmod: a.gMod, dout: a.gB, y: s.w3, mod: s.mod, stride: 6 * d, gate: 5 * d,
                              b: g.mb, t: g.mt, d: d, threads: th)
        swigluForward(out: a.hidden, inp: s.w12, n: r, hidden: hs, threads: th)
        linearBackward(dinp: a.gHidden, dweight: gw(T.w3W), dbias: gw(T.w3B), dout: a.gA, inp: a.hidden,
                       weight: w(T.w3W), n: r, c: hs, oc: d, threads: th, overwriteInputGradient: true)
        zero(a.gW12, r * 2 * hs)
        swigluBackward(dinp: a.gW12, dout: a.gHidden, inp: s.w12, n: r, hidden: hs, threads: th)
        rmsNormModulateForward(out: a.modulated, rstd: s.rstd2, x: s.mid, weight: w(T.norm2), modulation: mlp,
                               b: g.mb, t: g.mt, d: d, threads: th)
        linearBackward(dinp: a.gC, dweight: gw(T.w12W), dbias: gw(T.w12B), dout: a.gW12, inp: a.modulated,
                       weight: w(T.w12W), n: r, c: d, oc: 2 * hs, threads: th, overwriteInputGradient: true)
        // gB becomes dL/d(mid): identity path plus the RMSNorm path.
        rmsNormModulateBackward(dx: a.gB, dweight: gw(T.norm2), dmod: a.gMod, dout: a.gC, x: s.mid, weight: w(T.norm2),
                                rstd: s.rstd2, modulation: mlp, b: g.mb, t: g.mt, d: d, threads: th)
        // Attention branch: mid = x + gate_msa ⊙ proj(attn(RoPE(qkv(mod(RMSNorm₁(x)))))).
        zero(a.gA, r * d)
        gatedResidualBackward(dy: a.gA, dmod: a.gMod, dout: a.gB, y: s.attProj, mod: s.mod, stride: 6 * d, gate: 2 * d,
                              b: g.mb, t: g.mt, d: d, threads: th)
        linearBackward(dinp: a.gC, dweight: gw(T.projW), dbias: gw(T.projB), dout: a.gA, inp: s.att,
                       weight: w(T.projW), n: r, c: d, oc: d, threads: th, overwriteInputGradient: true)
        zero(a.gQKV, 3 * r * d)
        attentionBackward(dqkv: a.gQKV, dout: a.gC, qkv: s.qkv, b: b, t: config.tokens, d: d, heads: g.heads, threads: th)
        // The saved q, k are rotated; their gradients are rotated back (the map is orthogonal per pair).
        ropeApply(qkv: a.gQKV, cos: param(g.cos), sin: param(g.sin), b: b, t: config.tokens, d: d, heads: g.heads,
                  inverse: true, threads: th)
        rmsNormModulateForward(out: a.modulated, rstd: s.rstd1, x: x, weight: w(T.norm1), modulation: msa,
                               b: g.mb, t: g.mt, d: d, threads: th)
        linearBackward(dinp: a.gA, dweight: gw(T.qkvW), dbias: gw(T.qkvB), dout: a.gQKV, inp: a.modulated,
                       weight: w(T.qkvW), n: r, c: d, oc: 3 * d, threads: th, overwriteInputGradient: true)
        rmsNormModulateBackward(dx: a.gB, dweight: gw(T.norm1), dmod: a.gMod, dout: a.gA, x: x, weight: w(T.norm1),
                                rstd: s.rstd1, modulation: msa, b: g.mb, t: g.mt, d: d, threads: th)
        // adaLN: mod = Linear(cond).
        linearBackward(dinp: dcond, dweight: gw(T.adaW), dbias: gw(T.adaB), dout: a.gMod, inp: cond,
                       weight: w(T.adaW), n: g.mb, c: d, oc: 6 * d, threads: th)
    }
}
