import MixflowCore
import MixflowModels

/// The SiT forward pass (docs/exactness.md §5, evaluation mode: labels used as given) as a standard ONNX graph, opset 17,
/// over the initializers a checkpoint export already holds under their official names. Inputs
/// `x` [B, C, H, W] float, `t` [B] float (the model's own time convention, raw), `y` [B] int64 (num_classes =
/// null class); output `out` [B, C, H, W] (the learn_sigma half dropped, as upstream). B is symbolic.
///
/// Only ops every runtime has are used: Conv (patch embedding, kernel = stride = p), Reshape, Transpose,
/// Gemm (Linear on [rows, features]), Cos/Sin (timestep features), Gather (label table), Sigmoid·x (SiLU),
/// LayerNormalization (opset 17, unit scale, no bias), Split (adaLN chunks), MatMul + Softmax (attention),
/// Tanh (GELU, tanh approximation, written out), Slice (learn_sigma).
enum SiTGraph {
    /// `afterBlock(g, l + 1, tokens)` sees the residual stream [B, T, D] after block l (an architecture built on
    /// SiT adds its heads there, as REPA's projectors); the builder is returned for outputs added after `out`.
    @discardableResult
    static func add(_ c: SiTConfig, to writer: OnnxWriter,
                    afterBlock: (OnnxGraphBuilder, Int, String) throws -> Void = { _, _, _ in }) throws -> OnnxGraphBuilder {
        let g = OnnxGraphBuilder(writer)
        let d = Int64(c.hidden), tk = Int64(c.tokens), p = Int64(c.patch), ch = Int64(c.inChannels)
        let size = Int64(c.inputSize), grid = Int64(c.gridSize)
        try g.value("x", output: false, dataType: OnnxDataType.float, dims: [-1, ch, size, size])
        try g.value("t", output: false, dataType: OnnxDataType.float, dims: [-1])
        try g.value("y", output: false, dataType: OnnxDataType.int64, dims: [-1])

        // Patch embedding: Conv [B, D, Hp, Wp] → tokens [B, T, D] (token n = row·Wp + col) + fixed positions.
        var x = try g.op("Conv", "x", "x_embedder.proj.weight", "x_embedder.proj.bias", hint: "patches",
                         attrs: [("kernel_shape", .ints([p, p])), ("strides", .ints([p, p]))])
        x = try g.op("Reshape", x, try g.int64([0, d, tk]))
        x = try g.op("Transpose", x, attrs: [("perm", .ints([0, 2, 1]))])
        x = try g.op("Add", x, "pos_embed", hint: "tokens")

        // Conditioning c = MLP([cos(t·f), sin(t·f)]) + table[y]; every adaLN reads SiLU(c).
        let column = try g.op("Unsqueeze", "t", try g.int64([1]))
        let freqs = try g.float(timestepFrequencies, dims: [1, Int64(timestepFrequencies.count)])
        let arg = try g.op("Mul", column, freqs)
        let features = try g.op("Concat", try g.op("Cos", arg), try g.op("Sin", arg), attrs: [("axis", .int(1))])
        var temb = try gemm(g, features, "t_embedder.mlp.0")
        temb = try gemm(g, try silu(g, temb), "t_embedder.mlp.2")
        let yemb = try g.op("Gather", "y_embedder.embedding_table.weight", "y", attrs: [("axis", .int(0))])
        let cond = try silu(g, try g.op("Add", temb, yemb, hint: "cond"))

        let ones = try g.float([Float](repeating: 1, count: c.hidden), dims: [d])
        let one = try g.float([1])
        let norm = { (v: String) in try g.op("LayerNormalization", v, ones, attrs: [("axis", .int(-1)), ("epsilon", .float(layerNormEps))]) }
        let modulate = { (v: String, shift: String, scale: String) in
            try g.op("Add", try g.op("Mul", v, try g.op("Add", scale, one)), shift)
        }
        for l in 0..<c.depth {
            let pre = "blocks.\(l)."
            // [B, 6D] → six [B, 1, D] rows that broadcast over tokens.
            let mod = try g.op("Unsqueeze", try gemm(g, cond, pre + "adaLN_modulation.1"), try g.int64([1]))
            let chunk = try g.node("Split", [mod, try g.int64([Int64](repeating: d, count: 6))], outputs: 6,
                                   hint: "adaln", attrs: [("axis", .int(2))])
            let att = try attention(g, c, try modulate(try norm(x), chunk[0], chunk[1]), pre)
            x = try g.op("Add", x, try g.op("Mul", chunk[2], att), hint: "resid")
            var h = try tokenLinear(g, try modulate(try norm(x), chunk[3], chunk[4]), pre + "mlp.fc1", tokens: tk,
                                features: d, out: Int64(c.mlpHidden))
            h = try tokenLinear(g, try gelu(g, h), pre + "mlp.fc2", tokens: tk, features: Int64(c.mlpHidden), out: d)
            x = try g.op("Add", x, try g.op("Mul", chunk[5], h), hint: "resid")
            try afterBlock(g, l + 1, x)
        }

        // Final layer: adaLN (shift, scale) — shift first — then the linear head and unpatchify.
        let fmod = try g.op("Unsqueeze", try gemm(g, cond, "final_layer.adaLN_modulation.1"), try g.int64([1]))
        let fchunk = try g.node("Split", [fmod, try g.int64([d, d])], outputs: 2, hint: "final_adaln", attrs: [("axis", .int(2))])
        let cOut = Int64(c.outChannels)
        var o = try tokenLinear(g, try modulate(try norm(x), fchunk[0], fchunk[1]), "final_layer.linear", tokens: tk,
                                features: d, out: Int64(c.outFeatures))
        // Token features are ordered (p_row, p_col, channel): [B, Hp, Wp, p, p, C_out] → [B, C_out, Hp, p, Wp, p].
        o = try g.op("Reshape", o, try g.int64([-1, grid, grid, p, p, cOut]))
        o = try g.op("Transpose", o, attrs: [("perm", .ints([0, 5, 1, 3, 2, 4]))])
        o = try g.op("Reshape", o, try g.int64([-1, cOut, size, size]))
        if c.learnSigma {
            o = try g.op("Slice", o, try g.int64([0]), try g.int64([ch]), try g.int64([1]))
        }
        try g.node("Identity", [o], named: ["out"])
        try g.value("out", output: true, dataType: OnnxDataType.float, dims: [-1, ch, size, size])
        return g
    }

    /// Linear on a [B, F] matrix: Gemm(v, W, b, transB = 1) with the official [out, in] weight.
    static func gemm(_ g: OnnxGraphBuilder, _ v: String, _ prefix: String) throws -> String {
        try g.op("Gemm", v, prefix + ".weight", prefix + ".bias", attrs: [("transB", .int(1))])
    }

    /// Linear on tokens [B, T, F]: flattened to [B·T, F] for Gemm, then back to [B, T, out].
    static func tokenLinear(_ g: OnnxGraphBuilder, _ v: String, _ prefix: String, tokens: Int64, features: Int64,
                            out: Int64) throws -> String {
        let rows = try g.op("Reshape", v, try g.int64([-1, features]))
        return try g.op("Reshape", try gemm(g, rows, prefix), try g.int64([-1, tokens, out]))
    }

    static func silu(_ g: OnnxGraphBuilder, _ v: String) throws -> String {
        try g.op("Mul", v, try g.op("Sigmoid", v), hint: "silu")
    }

    /// GELU, tanh approximation: ½·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))).
    static func gelu(_ g: OnnxGraphBuilder, _ v: String) throws -> String {
        let cube = try g.op("Mul", try g.op("Mul", v, v), v)
        let inner = try g.op("Add", v, try g.op("Mul", cube, try g.float([0.044715])))
        let th = try g.op("Tanh", try g.op("Mul", inner, try g.float([0.7978845608028654])))
        return try g.op("Mul", try g.op("Mul", v, try g.float([0.5])), try g.op("Add", th, try g.float([1])), hint: "gelu")
    }

    /// Multi-head self-attention on the fused qkv (rows q | k | v, head h = a contiguous D/H slice).
    static func attention(_ g: OnnxGraphBuilder, _ c: SiTConfig, _ v: String, _ pre: String) throws -> String {
        let d = Int64(c.hidden), tk = Int64(c.tokens), heads = Int64(c.heads), hd = Int64(c.headDim)
        var qkv = try tokenLinear(g, v, pre + "attn.qkv", tokens: tk, features: d, out: 3 * d)
        qkv = try g.op("Reshape", qkv, try g.int64([-1, tk, 3, heads, hd]))
        qkv = try g.op("Transpose", qkv, attrs: [("perm", .ints([2, 0, 3, 1, 4]))])   // [3, B, H, T, hd]
        let parts = try g.node("Split", [qkv, try g.int64([1, 1, 1])], outputs: 3, hint: "qkv", attrs: [("axis", .int(0))])
        let axis0 = try g.int64([0])
        let q = try g.op("Squeeze", parts[0], axis0), k = try g.op("Squeeze", parts[1], axis0)
        let vv = try g.op("Squeeze", parts[2], axis0)
        let kt = try g.op("Transpose", k, attrs: [("perm", .ints([0, 1, 3, 2]))])
        let scale = try g.float([1 / Float(c.headDim).squareRoot()])
        let scores = try g.op("Softmax", try g.op("Mul", try g.op("MatMul", q, kt), scale), attrs: [("axis", .int(-1))])
        var o = try g.op("MatMul", scores, vv)                                  // [B, H, T, hd]
        o = try g.op("Transpose", o, attrs: [("perm", .ints([0, 2, 1, 3]))])
        o = try g.op("Reshape", o, try g.int64([-1, tk, d]))
        return try tokenLinear(g, o, pre + "attn.proj", tokens: tk, features: d, out: d)
    }
}
