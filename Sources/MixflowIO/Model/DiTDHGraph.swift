import MixflowCore
import MixflowModels

/// The DiT^DH forward pass (docs/exactness.md §6.2–§6.4, evaluation mode: labels used as given) as a standard ONNX graph,
/// opset 17, over the initializers a checkpoint export already holds under their official names (RoPE tables
/// and t_embedder.W included: the graph reads the stored tables, it never recomputes them). Inputs `x`
/// [B, C, H, W] float, `t` [B] float (RAE convention: noise at 1, the shifted τ the model is conditioned on),
/// `y` [B] int64 (num_classes = null class); output `out` [B, C, H, W], the velocity. B is symbolic.
///
/// Only ops every runtime has are used: Conv (the two 1×1 patch embeds), Reshape/Transpose (tokens, heads,
/// unpatchify), Gemm (Linear on [rows, features]), Sin/Cos (Gaussian-Fourier features, sin first), Gather
/// (label table), Sigmoid·x (SiLU), ReduceMean/Sqrt/Reciprocal (RMSNorm, opset 17 has no RMSNormalization),
/// Split/Concat/Neg (adaLN chunks, SwiGLU halves, the RoPE pair rotation), MatMul + Softmax (attention).
/// The op order follows `DiTDHModel.forward` so the float32 results agree to rounding.
enum DiTDHGraph {
    static func add(_ c: DiTDHConfig, to writer: OnnxWriter) throws {
        let g = OnnxGraphBuilder(writer)
        let de = Int64(c.encoderHidden), dh = Int64(c.headHidden), tk = Int64(c.tokens), ch = Int64(c.inChannels)
        let size = Int64(c.inputSize)
        try g.value("x", output: false, dataType: OnnxDataType.float, dims: [-1, ch, size, size])
        try g.value("t", output: false, dataType: OnnxDataType.float, dims: [-1])
        try g.value("y", output: false, dataType: OnnxDataType.int64, dims: [-1])

        // Condition: c = SiLU(t_emb + y_emb), t_emb = MLP([sin(2π·τ·W), cos(2π·τ·W)]); the angle is formed in
        // the native (and official) order ((τ·W)·2)·π, in float32.
        let column = try g.op("Unsqueeze", "t", try g.int64([1]))                                  // [B, 1]
        var angle = try g.op("Mul", column, "t_embedder.W")                                        // [B, 256]
        angle = try g.op("Mul", try g.op("Mul", angle, try g.float([2])), try g.float([Float.pi]))
        let features = try g.op("Concat", try g.op("Sin", angle), try g.op("Cos", angle), attrs: [("axis", .int(1))])
        var temb = try SiTGraph.gemm(g, features, "t_embedder.mlp.0")
        temb = try SiTGraph.gemm(g, try SiTGraph.silu(g, temb), "t_embedder.mlp.2")
        let yemb = try g.op("Gather", "y_embedder.embedding_table.weight", "y", attrs: [("axis", .int(0))])
        // Double SiLU: c is SiLU'd here and every adaLN applies its own SiLU before its Linear.
        let cond = try SiTGraph.silu(g, try SiTGraph.silu(g, try g.op("Add", temb, yemb, hint: "cond")))

        // Encoder: s = s_embedder(x) + pos_embed; blocks with one modulation row per sample ([B, 1, 6D]).
        var s = try g.op("Add", try embed(g, "s_embedder", width: de, tokens: tk), "pos_embed", hint: "enc")
        for l in 0..<c.encoderDepth {
            let mod = try g.op("Unsqueeze", try SiTGraph.gemm(g, cond, "blocks.\(l).adaLN_modulation.1"), try g.int64([1]))
            s = try block(g, l, s, mod: mod, width: de, heads: Int64(c.encoderHeads), hidden: Int64(c.encoderSwiGLU),
                          tokens: tk, rope: "enc_feat_rope")
        }
        // Bridge: s ← s_projector(SiLU(t_emb (every token) + s)); the head's adaLN inputs read SiLU(s).
        s = try SiTGraph.silu(g, try g.op("Add", s, try g.op("Unsqueeze", temb, try g.int64([1]))))
        if c.hasProjector {
            s = try SiTGraph.tokenLinear(g, s, "s_projector", tokens: tk, features: de, out: dh)
        }
        let tokenCond = try SiTGraph.silu(g, s)                                                    // [B, T, dh]

        // Head: its own embedding of x (no position embedding), one modulation row per token ([B, T, 6D]).
        var h = try embed(g, "x_embedder", width: dh, tokens: tk)
        for k in 0..<c.headDepth {
            let l = c.encoderDepth + k
            let mod = try SiTGraph.tokenLinear(g, tokenCond, "blocks.\(l).adaLN_modulation.1", tokens: tk, features: dh,
                                               out: 6 * dh)
            h = try block(g, l, h, mod: mod, width: dh, heads: Int64(c.headHeads), hidden: Int64(c.headSwiGLU),
                          tokens: tk, rope: "dec_feat_rope")
        }

        // Final layer: RMSNorm with weight, per-token (shift, scale) — shift first — no gate, Linear to C.
        let fmod = try SiTGraph.tokenLinear(g, tokenCond, "final_layer.adaLN_modulation.1", tokens: tk, features: dh,
                                            out: 2 * dh)
        let fchunk = try g.node("Split", [fmod, try g.int64([dh, dh])], outputs: 2, hint: "final_adaln",
                                attrs: [("axis", .int(2))])
        let normed = try rmsNorm(g, h, "final_layer.norm_final.weight")
        var o = try SiTGraph.tokenLinear(g, try modulate(g, normed, shift: fchunk[0], scale: fchunk[1]),
                                         "final_layer.linear", tokens: tk, features: dh, out: ch)
        // Patch size 1: token n = row·W + col holds the C-vector of one position.
        o = try g.op("Transpose", o, attrs: [("perm", .ints([0, 2, 1]))])
        o = try g.op("Reshape", o, try g.int64([-1, ch, size, size]))
        try g.node("Identity", [o], named: ["out"])
        try g.value("out", output: true, dataType: OnnxDataType.float, dims: [-1, ch, size, size])
    }

    /// A 1×1 patch embed of `x` (Conv with the official [D, C, 1, 1] weight) → tokens [B, T, D], row-major.
    static func embed(_ g: OnnxGraphBuilder, _ prefix: String, width: Int64, tokens: Int64) throws -> String {
        var v = try g.op("Conv", "x", prefix + ".proj.weight", prefix + ".proj.bias", hint: prefix,
                         attrs: [("kernel_shape", .ints([1, 1])), ("strides", .ints([1, 1]))])
        v = try g.op("Reshape", v, try g.int64([0, width, tokens]))
        return try g.op("Transpose", v, attrs: [("perm", .ints([0, 2, 1]))])
    }

    /// RMSNorm over the last axis with a learnable weight, as the native kernel: `(x·r)·w`,
    /// `r = 1/√(mean(x²) + 1e-6)`.
    static func rmsNorm(_ g: OnnxGraphBuilder, _ v: String, _ weight: String) throws -> String {
        let meanSquare = try g.op("ReduceMean", try g.op("Mul", v, v), attrs: [("axes", .ints([-1])), ("keepdims", .int(1))])
        let r = try g.op("Reciprocal", try g.op("Sqrt", try g.op("Add", meanSquare, try g.float([rmsNormEps]))))
        return try g.op("Mul", try g.op("Mul", v, r), weight, hint: "rmsnorm")
    }

    static func modulate(_ g: OnnxGraphBuilder, _ v: String, shift: String, scale: String) throws -> String {
        try g.op("Add", try g.op("Mul", v, try g.op("Add", scale, try g.float([1]))), shift)
    }

    /// One LightningDDT block on x [B, T, D] with modulation `mod` ([B, 1, 6D] or [B, T, 6D]; chunks
    /// shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp):
    /// x ← x + g_msa ⊙ Attn(RoPE; mod(RMSNorm₁(x))); x ← x + g_mlp ⊙ SwiGLU(mod(RMSNorm₂(x))).
    static func block(_ g: OnnxGraphBuilder, _ l: Int, _ x: String, mod: String, width d: Int64, heads: Int64,
                      hidden hs: Int64, tokens tk: Int64, rope: String) throws -> String {
        let pre = "blocks.\(l)."
        let chunk = try g.node("Split", [mod, try g.int64([Int64](repeating: d, count: 6))], outputs: 6, hint: "adaln",
                               attrs: [("axis", .int(2))])
        let attIn = try modulate(g, try rmsNorm(g, x, pre + "norm1.weight"), shift: chunk[0], scale: chunk[1])
        let att = try attention(g, attIn, pre, width: d, heads: heads, tokens: tk, rope: rope)
        let mid = try g.op("Add", x, try g.op("Mul", chunk[2], att), hint: "resid")
        let mlpIn = try modulate(g, try rmsNorm(g, mid, pre + "norm2.weight"), shift: chunk[3], scale: chunk[4])
        // SwiGLU: w12 output [a | b] (a first), hidden = SiLU(a) ⊙ b, then w3.
        let ab = try SiTGraph.tokenLinear(g, mlpIn, pre + "mlp.w12", tokens: tk, features: d, out: 2 * hs)
        let halves = try g.node("Split", [ab, try g.int64([hs, hs])], outputs: 2, hint: "swiglu", attrs: [("axis", .int(2))])
        let hidden = try g.op("Mul", try SiTGraph.silu(g, halves[0]), halves[1])
        let mlp = try SiTGraph.tokenLinear(g, hidden, pre + "mlp.w3", tokens: tk, features: hs, out: d)
        return try g.op("Add", mid, try g.op("Mul", chunk[5], mlp), hint: "resid")
    }

    /// Multi-head self-attention with 2-D RoPE on q and k (the stored `<rope>.freqs_cos/sin` tables [T, hd]):
    /// `q ← q·cos + rot(q)·sin`, rot pairing (2m, 2m+1): (a, b) ↦ (−b, a).
    static func attention(_ g: OnnxGraphBuilder, _ v: String, _ pre: String, width d: Int64, heads: Int64,
                          tokens tk: Int64, rope: String) throws -> String {
        let hd = d / heads
        var qkv = try SiTGraph.tokenLinear(g, v, pre + "attn.qkv", tokens: tk, features: d, out: 3 * d)
        qkv = try g.op("Reshape", qkv, try g.int64([-1, tk, 3, heads, hd]))
        qkv = try g.op("Transpose", qkv, attrs: [("perm", .ints([2, 0, 3, 1, 4]))])           // [3, B, H, T, hd]
        let parts = try g.node("Split", [qkv, try g.int64([2, 1])], outputs: 2, hint: "qkv", attrs: [("axis", .int(0))])
        // q and k rotated together ([2, B, H, T, hd]; the [T, hd] tables broadcast).
        let pairs = try g.op("Reshape", parts[0], try g.int64([0, 0, 0, 0, hd / 2, 2]))
        let ab = try g.node("Split", [pairs, try g.int64([1, 1])], outputs: 2, hint: "rope_pair", attrs: [("axis", .int(-1))])
        let rotated = try g.op("Reshape", try g.op("Concat", try g.op("Neg", ab[1]), ab[0], attrs: [("axis", .int(-1))]),
                               try g.int64([0, 0, 0, 0, hd]))
        let qk = try g.op("Add", try g.op("Mul", parts[0], rope + ".freqs_cos"), try g.op("Mul", rotated, rope + ".freqs_sin"),
                          hint: "rope")
        let split = try g.node("Split", [qk, try g.int64([1, 1])], outputs: 2, hint: "qk", attrs: [("axis", .int(0))])
        let axis0 = try g.int64([0])
        let q = try g.op("Squeeze", split[0], axis0), k = try g.op("Squeeze", split[1], axis0)
        let vv = try g.op("Squeeze", parts[1], axis0)
        let kt = try g.op("Transpose", k, attrs: [("perm", .ints([0, 1, 3, 2]))])
        let scale = try g.float([1 / Float(hd).squareRoot()])
        let scores = try g.op("Softmax", try g.op("Mul", try g.op("MatMul", q, kt), scale), attrs: [("axis", .int(-1))])
        var o = try g.op("MatMul", scores, vv)                                                  // [B, H, T, hd]
        o = try g.op("Transpose", o, attrs: [("perm", .ints([0, 2, 1, 3]))])
        o = try g.op("Reshape", o, try g.int64([-1, tk, d]))
        return try SiTGraph.tokenLinear(g, o, pre + "attn.proj", tokens: tk, features: d, out: d)
    }
}
