import MixflowCore

extension SiTModel {
    /// Backward pass of the last `forward`: given dL/d(out) ([B, C, H, W], the returned C channels),
    /// accumulates dL/dθ into `grads` (call `zeroGradients` first for a fresh gradient) and, if `dx` is
    /// given, writes dL/dx ([B, C, H, W], overwritten). pos_embed and the dropped learn_sigma rows of
    /// final_layer.linear get no gradient (zero), as in the official model.
    ///
    /// - Throws: `MixflowError.invalidArgument` when no forward pass of `batch` samples precedes it.
    public func backward(dout: UnsafePointer<Float>, batch b: Int, dx: UnsafeMutablePointer<Float>? = nil) throws {
        let a = try acts.saved(batch: b, state: state)
        let c = config, d = c.hidden, tk = c.tokens, bt = b * tk, btd = bt * d, th = threads
        typealias T = SiTParameterTable
        let f = table.final
        // Unpatchify: only the kept channels receive gradient.
        a.outTokens.initialize(repeating: 0, count: bt * c.outFeatures)
        unpatchifyBackward(do: a.outTokens, dout: dout, b: b, c: c.inChannels, cOut: c.outChannels,
                           h: c.inputSize, w: c.inputSize, p: c.patch)
        // Final layer. gA = d(modulated), then the residual-stream gradient lives in gB.
        let finalMod = Modulation(mod: a.finalMod, stride: 2 * d, shift: 0, scale: d)
        layerNormModulateForward(out: a.modulated, mean: a.finalMean, rstd: a.finalRstd, x: a.x(c.depth),
                                 modulation: finalMod, b: b, t: tk, d: d, threads: th)
        linearBackward(dinp: a.gA, dweight: grad(f(T.finalLinW)), dbias: grad(f(T.finalLinB)), dout: a.outTokens,
                       inp: a.modulated, weight: param(f(T.finalLinW)), n: bt, c: d, oc: c.outFeatures, threads: th,
                       overwriteInputGradient: true)
        zero(a.gB, btd); zero(a.gMod, 2 * b * d)
        layerNormModulateBackward(dx: a.gB, dmod: a.gMod, dout: a.gA, x: a.x(c.depth), mean: a.finalMean,
                                  rstd: a.finalRstd, modulation: finalMod, b: b, t: tk, d: d, threads: th)
        linearBackward(dinp: a.gCondAct, dweight: grad(f(T.finalAdaW)), dbias: grad(f(T.finalAdaB)), dout: a.gMod,
                       inp: a.condAct, weight: param(f(T.finalAdaW)), n: b, c: d, oc: 2 * d, threads: th,
                       overwriteInputGradient: true)
        for l in stride(from: c.depth - 1, through: 0, by: -1) {
            tapGradient(after: l + 1, a.gB, batch: b)
            blockBackward(l, a, b)
        }
        // Patch embedding (pos_embed is fixed: the residual gradient passes it unchanged).
        zero(a.gHidden1, b * tk * c.patchFeatures)
        linearBackward(dinp: dx == nil ? nil : a.gHidden1, dweight: grad(T.xEmbedW), dbias: grad(T.xEmbedB), dout: a.gB,
                       inp: a.patches, weight: param(T.xEmbedW), n: bt, c: c.patchFeatures, oc: d, threads: th)
        if let dx {
            zero(dx, b * c.sampleSize)
            patchifyBackward(dx: dx, dpatches: a.gHidden1, b: b, c: c.inChannels, h: c.inputSize, w: c.inputSize, p: c.patch)
        }
        // Conditioning: c = t_emb + y_emb, both receive dc.
        zero(a.gCond, b * d)
        siluBackward(dinp: a.gCond, dout: a.gCondAct, inp: a.cond, count: b * d)
        embeddingBackward(dtable: grad(T.yTable), dout: a.gCond, labels: a.labels, b: b, d: d)
        linearBackward(dinp: a.gT, dweight: grad(T.tMlp2W), dbias: grad(T.tMlp2B), dout: a.gCond, inp: a.tHiddenAct,
                       weight: param(T.tMlp2W), n: b, c: d, oc: d, threads: th, overwriteInputGradient: true)
        zero(a.gMod, b * d)
        siluBackward(dinp: a.gMod, dout: a.gT, inp: a.tHidden, count: b * d)
        linearBackward(dinp: nil, dweight: grad(T.tMlp0W), dbias: grad(T.tMlp0B), dout: a.gMod, inp: a.tFreq,
                       weight: param(T.tMlp0W), n: b, c: timestepFeatures, oc: d, threads: th)
    }

    /// Backward of block l. On entry gB holds dL/d(block output); on exit dL/d(block input).
    /// dL/d(SiLU(c)) is accumulated into gCondAct.
    func blockBackward(_ l: Int, _ a: SiTActivations, _ b: Int) {
        let c = config, d = c.hidden, tk = c.tokens, bt = b * tk, btd = bt * d, th = threads, m = c.mlpHidden
        typealias T = SiTParameterTable
        let w = { (k: Int) in self.param(T.block(l, k)) }
        let g = { (k: Int) in self.grad(T.block(l, k)) }
        let mod = a.mods[l]
        let msa = Modulation(mod: mod, stride: 6 * d, shift: 0, scale: d)
        let mlp = Modulation(mod: mod, stride: 6 * d, shift: 3 * d, scale: 4 * d)
        zero(a.gMod, 6 * b * d)
        // MLP branch: out = mid + gate_mlp ⊙ fc2(gelu(fc1(mod(LN(mid))))).
        zero(a.gA, btd)
        gatedResidualBackward(dy: a.gA, dmod: a.gMod, dout: a.gB, y: a.fc2[l], mod: mod, stride: 6 * d, gate: 5 * d,
                              b: b, t: tk, d: d, threads: th)
        // GELU(fc1) is recomputed, with its slope in gHidden2 (one tanh per element for both).
        geluForwardSlope(act: a.hiddenAct, slope: a.gHidden2, inp: a.fc1[l], count: bt * m, threads: th)
        linearBackward(dinp: a.gHidden1, dweight: g(T.fc2W), dbias: g(T.fc2B), dout: a.gA, inp: a.hiddenAct,
                       weight: w(T.fc2W), n: bt, c: m, oc: d, threads: th, overwriteInputGradient: true)
        multiply(a.gHidden2, by: a.gHidden1, count: bt * m, threads: th)
        layerNormModulateForward(out: a.modulated, mean: a.mean2[l], rstd: a.rstd2[l], x: a.mids[l], modulation: mlp,
                                 b: b, t: tk, d: d, threads: th)
        linearBackward(dinp: a.gC, dweight: g(T.fc1W), dbias: g(T.fc1B), dout: a.gHidden2, inp: a.modulated,
                       weight: w(T.fc1W), n: bt, c: d, oc: m, threads: th, overwriteInputGradient: true)
        // gB becomes dL/d(mid): identity path plus the LayerNorm path.
        layerNormModulateBackward(dx: a.gB, dmod: a.gMod, dout: a.gC, x: a.mids[l], mean: a.mean2[l], rstd: a.rstd2[l],
                                  modulation: mlp, b: b, t: tk, d: d, threads: th)
        // Attention branch: mid = x + gate_msa ⊙ proj(attn(qkv(mod(LN(x))))).
        zero(a.gA, btd)
        gatedResidualBackward(dy: a.gA, dmod: a.gMod, dout: a.gB, y: a.attProj[l], mod: mod, stride: 6 * d, gate: 2 * d,
                              b: b, t: tk, d: d, threads: th)
        linearBackward(dinp: a.gC, dweight: g(T.projW), dbias: g(T.projB), dout: a.gA, inp: a.att[l],
                       weight: w(T.projW), n: bt, c: d, oc: d, threads: th, overwriteInputGradient: true)
        zero(a.gQKV, 3 * btd)
        attentionBackward(dqkv: a.gQKV, dout: a.gC, qkv: a.qkv[l], b: b, t: tk, d: d, heads: c.heads, threads: th)
        layerNormModulateForward(out: a.modulated, mean: a.mean1[l], rstd: a.rstd1[l], x: a.xs[l], modulation: msa,
                                 b: b, t: tk, d: d, threads: th)
        linearBackward(dinp: a.gA, dweight: g(T.qkvW), dbias: g(T.qkvB), dout: a.gQKV, inp: a.modulated,
                       weight: w(T.qkvW), n: bt, c: d, oc: 3 * d, threads: th, overwriteInputGradient: true)
        layerNormModulateBackward(dx: a.gB, dmod: a.gMod, dout: a.gA, x: a.xs[l], mean: a.mean1[l], rstd: a.rstd1[l],
                                  modulation: msa, b: b, t: tk, d: d, threads: th)
        // adaLN: mod = Linear(SiLU(c)).
        linearBackward(dinp: a.gCondAct, dweight: g(T.adaW), dbias: g(T.adaB), dout: a.gMod, inp: a.condAct,
                       weight: w(T.adaW), n: b, c: d, oc: 6 * d, threads: th)
    }
}

@inline(__always) func zero(_ p: UnsafeMutablePointer<Float>, _ n: Int) { p.initialize(repeating: 0, count: n) }
