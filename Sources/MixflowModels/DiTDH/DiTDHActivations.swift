#if canImport(Glibc)
import Glibc
#endif
import MixflowCore

/// Saved tensors of one LightningDDT block (R = B·T token rows, width d, SwiGLU width hs).
/// The normalised-and-modulated inputs and the SwiGLU hidden are recomputed in backward.
struct DDTBlockActs {
    let mod: UnsafeMutablePointer<Float>       // [B or R, 6d]: per sample (encoder) or per token (head)
    let rstd1, rstd2: UnsafeMutablePointer<Float>   // [R]
    let qkv: UnsafeMutablePointer<Float>       // [R, 3d], q and k after RoPE
    let att, attProj, mid: UnsafeMutablePointer<Float>   // [R, d]
    let w12: UnsafeMutablePointer<Float>       // [R, 2hs]
    let w3: UnsafeMutablePointer<Float>        // [R, d]

    init(_ a: FloatArena, rows r: Int, modRows: Int, d: Int, hs: Int) throws {
        mod = try a.take(modRows * 6 * d); rstd1 = try a.take(r); rstd2 = try a.take(r)
        qkv = try a.take(3 * r * d); att = try a.take(r * d); attProj = try a.take(r * d); mid = try a.take(r * d)
        w12 = try a.take(2 * r * hs); w3 = try a.take(r * d)
    }
}

/// Everything the backward pass of a DiT^DH needs from one forward pass, plus the scratch of both passes.
/// Inference sets keep one encoder and one head block slot and two residual streams per path (about
/// 1/depth of the training memory) and no backward scratch.
final class DiTDHActivations: ActivationBuffers, ActivationSet {
    // Inputs and conditioning.
    let tokensIn, fourier, tHidden, tHiddenAct, tEmb, cond, condAct, condAct2: UnsafeMutablePointer<Float>
    let encStreams, headStreams: [UnsafeMutablePointer<Float>]
    let blocks: [DDTBlockActs]
    // Encoder → head bridge and final layer.
    let sPre, sAct, sProj, sProjAct, finalMod, finalRstd, outTokens: UnsafeMutablePointer<Float>
    // Scratch shared by forward and backward.
    let modulated, hidden: UnsafeMutablePointer<Float>
    // Backward scratch (rows R unless noted; widths the larger of the two paths).
    let gA, gB, gC, gQKV, gW12, gHidden, gMod, gSProjAct, gSProj, gSAct, gEnc, gTokens: UnsafeMutablePointer<Float>
    let gCondAct2, gCondAct, gCond, gT, gTHidden: UnsafeMutablePointer<Float>   // [B, de]

    init(_ c: DiTDHConfig, batch b: Int, training: Bool, arena a: FloatArena) throws {
        let r = b * c.tokens, de = c.encoderHidden, dh = c.headHidden, ch = c.inChannels
        let dMax = max(de, dh), hsMax = max(c.encoderSwiGLU, c.headSwiGLU)
        tokensIn = try a.take(r * ch); fourier = try a.take(b * 2 * fourierFeatures)
        tHidden = try a.take(b * de); tHiddenAct = try a.take(b * de); tEmb = try a.take(b * de)
        cond = try a.take(b * de); condAct = try a.take(b * de); condAct2 = try a.take(b * de)
        encStreams = try (0..<(training ? c.encoderDepth + 1 : 2)).map { _ in try a.take(r * de) }
        headStreams = try (0..<(training ? c.headDepth + 1 : 2)).map { _ in try a.take(r * dh) }
        let slots = training ? Array(0..<c.depth) : [0, c.encoderDepth]
        blocks = try slots.map { l in
            let (d, _, hs) = c.block(l)
            return try DDTBlockActs(a, rows: r, modRows: l < c.encoderDepth ? b : r, d: d, hs: hs)
        }
        sPre = try a.take(r * de); sAct = try a.take(r * de); sProj = try a.take(c.hasProjector ? r * dh : 0)
        sProjAct = try a.take(r * dh); finalMod = try a.take(r * 2 * dh); finalRstd = try a.take(r)
        outTokens = try a.take(r * ch)
        modulated = try a.take(r * dMax); hidden = try a.take(r * hsMax)
        let g = training ? 1 : 0
        gA = try a.take(g * r * dMax); gB = try a.take(g * r * dMax); gC = try a.take(g * r * dMax)
        gQKV = try a.take(g * 3 * r * dMax); gW12 = try a.take(g * 2 * r * hsMax); gHidden = try a.take(g * r * hsMax)
        gMod = try a.take(g * r * 6 * dMax); gSProjAct = try a.take(g * r * dh); gSProj = try a.take(g * r * dh)
        gSAct = try a.take(g * r * de); gEnc = try a.take(g * r * de); gTokens = try a.take(g * r * ch)
        gCondAct2 = try a.take(g * b * de); gCondAct = try a.take(g * b * de); gCond = try a.take(g * b * de)
        gT = try a.take(g * b * de); gTHidden = try a.take(g * b * de)
        super.init(batch: b, training: training, arena: a)
    }

    /// Block l's saved tensors (encoder blocks share slot 0 and head blocks slot 1 in inference).
    @inline(__always) func block(_ l: Int, encoderDepth: Int) -> DDTBlockActs {
        training ? blocks[l] : blocks[l < encoderDepth ? 0 : 1]
    }
    /// The encoder residual stream entering encoder block l (l = encoderDepth: the encoder output).
    @inline(__always) func enc(_ l: Int) -> UnsafeMutablePointer<Float> { training ? encStreams[l] : encStreams[l & 1] }
    /// The head residual stream entering head block k (k = headDepth: the final layer's input).
    @inline(__always) func head(_ k: Int) -> UnsafeMutablePointer<Float> { training ? headStreams[k] : headStreams[k & 1] }
}
