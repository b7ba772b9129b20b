/// Everything the backward pass needs from a forward pass of one batch, plus the scratch both passes use.
/// Sized for one batch size; the model reallocates it when the batch changes.
///
/// Inference sets (`training` false) keep one slot of per-block buffers, reused by every block, two
/// residual streams used in turn, and no backward scratch: about 1/depth of the training memory.
///
/// Saved per block: the residual stream entering it, its adaLN vector, the two LayerNorm statistics,
/// qkv, the attention output before and after proj, the mid residual, fc1's output and fc2's output
/// (12·B·T·D floats). The modulated LayerNorm outputs and GELU(fc1) are recomputed in backward.
final class SiTActivations {
    let batch: Int
    let training: Bool
    private let storage: UnsafeMutablePointer<Float>
    let labels: UnsafeMutablePointer<Int32>

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

    /// Floats needed for `batch` (used to reject a batch before allocating).
    static func floats(_ c: SiTConfig, batch b: Int, training: Bool) -> Int {
        let btd = b * c.tokens * c.hidden, bt = b * c.tokens, bd = b * c.hidden, m = c.mlpRatio
        let embed = b * c.tokens * c.patchFeatures + b * timestepFeatures + 6 * bd
        let perBlock = (8 + m) * btd + 6 * bd + 4 * bt
        let blocks = training ? c.depth * perBlock + btd : perBlock + 2 * btd
        let final = 2 * bd + 2 * bt
        let scratch = (1 + m) * btd + b * c.tokens * c.outFeatures
        let backward = (6 + m) * btd + max(m * btd, b * c.tokens * c.patchFeatures) + 9 * bd
        return embed + blocks + final + scratch + (training ? backward : 0)
    }

    init(_ c: SiTConfig, batch b: Int, training: Bool) throws {
        batch = b
        self.training = training
        let total = SiTActivations.floats(c, batch: b, training: training)
        guard let raw = malloc(total * MemoryLayout<Float>.stride) else {
            throw MixflowError.outOfMemory("batch \(b) needs \(total * 4) bytes of activations")
        }
        let base = raw.bindMemory(to: Float.self, capacity: total)
        storage = base
        labels = .allocate(capacity: b)
        let d = c.hidden, t = c.tokens, btd = b * t * d, bt = b * t, bd = b * d, m = c.mlpRatio
        var cur = 0
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { cur += n }; return base + cur }
        patches = take(b * t * c.patchFeatures); tFreq = take(b * timestepFeatures)
        tHidden = take(bd); tHiddenAct = take(bd); tEmb = take(bd); yEmb = take(bd); cond = take(bd); condAct = take(bd)
        var xs: [UnsafeMutablePointer<Float>] = [take(btd)]
        var mids: [UnsafeMutablePointer<Float>] = [], mods: [UnsafeMutablePointer<Float>] = []
        var mean1: [UnsafeMutablePointer<Float>] = [], rstd1: [UnsafeMutablePointer<Float>] = []
        var mean2: [UnsafeMutablePointer<Float>] = [], rstd2: [UnsafeMutablePointer<Float>] = []
        var qkv: [UnsafeMutablePointer<Float>] = [], att: [UnsafeMutablePointer<Float>] = []
        var attProj: [UnsafeMutablePointer<Float>] = [], fc1: [UnsafeMutablePointer<Float>] = []
        var fc2: [UnsafeMutablePointer<Float>] = []
        for _ in 0..<(training ? c.depth : 1) {
            mods.append(take(6 * bd)); mean1.append(take(bt)); rstd1.append(take(bt))
            mean2.append(take(bt)); rstd2.append(take(bt))
            qkv.append(take(3 * btd)); att.append(take(btd)); attProj.append(take(btd)); mids.append(take(btd))
            fc1.append(take(m * btd)); fc2.append(take(btd)); xs.append(take(btd))
        }
        if !training { xs.append(take(btd)) }
        self.xs = xs; self.mids = mids; self.mods = mods; self.mean1 = mean1; self.rstd1 = rstd1
        self.mean2 = mean2; self.rstd2 = rstd2; self.qkv = qkv; self.att = att; self.attProj = attProj
        self.fc1 = fc1; self.fc2 = fc2
        finalMod = take(2 * bd); finalMean = take(bt); finalRstd = take(bt)
        modulated = take(btd); hiddenAct = take(m * btd); outTokens = take(b * t * c.outFeatures)
        // Backward scratch (empty, never touched, in an inference set).
        let g = training ? 1 : 0
        gA = take(g * btd); gB = take(g * btd); gC = take(g * btd); gQKV = take(g * 3 * btd)
        gHidden1 = take(g * max(m * btd, b * t * c.patchFeatures)); gHidden2 = take(g * m * btd)
        gMod = take(g * 6 * bd); gCond = take(g * bd); gCondAct = take(g * bd); gT = take(g * bd)
        precondition(cur == total, "SiTActivations layout and size disagree")
    }

    /// Index of block l's buffers (all blocks share slot 0 in inference).
    @inline(__always) func slot(_ l: Int) -> Int { training ? l : 0 }
    /// The residual stream entering block l (l = depth: the final layer's input).
    @inline(__always) func x(_ l: Int) -> UnsafeMutablePointer<Float> { training ? xs[l] : xs[l & 1] }

    deinit {
        free(storage)
        labels.deallocate()
    }
}

#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
