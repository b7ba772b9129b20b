/// Everything the backward pass needs from a forward pass of one batch, plus the scratch both passes use.
/// Sized for one batch size; the model's `ActivationCache` reallocates it when the batch changes.
///
/// Inference sets (`training` false) keep one slot of per-block buffers, reused by every block, two
/// residual streams used in turn, and no backward scratch: about 1/depth of the training memory.
///
/// Saved per block: the residual stream entering it, its adaLN vector, the two LayerNorm statistics,
/// qkv, the attention output before and after proj, the mid residual, fc1's output and fc2's output
/// (12·B·T·D floats). The modulated LayerNorm outputs and GELU(fc1) are recomputed in backward.
final class SiTActivations: ActivationBuffers, ActivationSet {
    // Embeddings and conditioning.
    let patches, tFreq, tHidden, tHiddenAct, tEmb, yEmb, cond, condAct: UnsafeMutablePointer<Float>
    // Per block (index l) and the final layer.
    let xs: [UnsafeMutablePointer<Float>]   // depth + 1 residual streams (2 in inference)
    let mids, mods, mean1, rstd1, mean2, rstd2, qkv, att, attProj, fc1, fc2: [UnsafeMutablePointer<Float>]
    let finalMod, finalMean, finalRstd: UnsafeMutablePointer<Float>
    // Scratch shared by forward and backward.
    let modulated, hiddenAct, outTokens: UnsafeMutablePointer<Float>
    /// gHidden1 also holds d(patches), hence max(4·B·T·D, B·T·C·p²) floats.
    let gA, gB, gC, gQKV, gHidden1, gHidden2, gMod, gCond, gCondAct, gT: UnsafeMutablePointer<Float>

    init(_ c: SiTConfig, batch b: Int, training: Bool, arena: FloatArena) throws {
        let d = c.hidden, t = c.tokens, btd = b * t * d, bt = b * t, bd = b * d, m = c.mlpRatio
        func take(_ n: Int) throws -> UnsafeMutablePointer<Float> { try arena.take(n) }
        patches = try take(b * t * c.patchFeatures); tFreq = try take(b * timestepFeatures)
        tHidden = try take(bd); tHiddenAct = try take(bd); tEmb = try take(bd); yEmb = try take(bd)
        cond = try take(bd); condAct = try take(bd)
        var xs: [UnsafeMutablePointer<Float>] = [try take(btd)]
        var mids: [UnsafeMutablePointer<Float>] = [], mods: [UnsafeMutablePointer<Float>] = []
        var mean1: [UnsafeMutablePointer<Float>] = [], rstd1: [UnsafeMutablePointer<Float>] = []
        var mean2: [UnsafeMutablePointer<Float>] = [], rstd2: [UnsafeMutablePointer<Float>] = []
        var qkv: [UnsafeMutablePointer<Float>] = [], att: [UnsafeMutablePointer<Float>] = []
        var attProj: [UnsafeMutablePointer<Float>] = [], fc1: [UnsafeMutablePointer<Float>] = []
        var fc2: [UnsafeMutablePointer<Float>] = []
        for _ in 0..<(training ? c.depth : 1) {
            mods.append(try take(6 * bd)); mean1.append(try take(bt)); rstd1.append(try take(bt))
            mean2.append(try take(bt)); rstd2.append(try take(bt))
            qkv.append(try take(3 * btd)); att.append(try take(btd)); attProj.append(try take(btd)); mids.append(try take(btd))
            fc1.append(try take(m * btd)); fc2.append(try take(btd)); xs.append(try take(btd))
        }
        if !training { xs.append(try take(btd)) }
        self.xs = xs; self.mids = mids; self.mods = mods; self.mean1 = mean1; self.rstd1 = rstd1
        self.mean2 = mean2; self.rstd2 = rstd2; self.qkv = qkv; self.att = att; self.attProj = attProj
        self.fc1 = fc1; self.fc2 = fc2
        finalMod = try take(2 * bd); finalMean = try take(bt); finalRstd = try take(bt)
        modulated = try take(btd); hiddenAct = try take(m * btd); outTokens = try take(b * t * c.outFeatures)
        // Backward scratch (empty, never touched, in an inference set).
        let g = training ? 1 : 0
        gA = try take(g * btd); gB = try take(g * btd); gC = try take(g * btd); gQKV = try take(g * 3 * btd)
        gHidden1 = try take(g * max(m * btd, b * t * c.patchFeatures)); gHidden2 = try take(g * m * btd)
        gMod = try take(g * 6 * bd); gCond = try take(g * bd); gCondAct = try take(g * bd); gT = try take(g * bd)
        super.init(batch: b, training: training, arena: arena)
    }

    /// Index of block l's buffers (all blocks share slot 0 in inference).
    @inline(__always) func slot(_ l: Int) -> Int { training ? l : 0 }
    /// The residual stream entering block l (l = depth: the final layer's input).
    @inline(__always) func x(_ l: Int) -> UnsafeMutablePointer<Float> { training ? xs[l] : xs[l & 1] }
}
