import MixflowCore

// MARK: - Official initialisation for training from scratch (docs/exactness.md §6.6, `initialize_weights(xavier_uniform_init=False)`)
//
// Scheme (part of the reproducibility contract): tensor k of the table draws from
// RandomStream(seed, step: k, sample: 0, tag: .initialization), element j from uniform j (as SiT) or Gaussian j.
//   PyTorch default Linear init (every block Linear, s_projector, the timestep-MLP biases): weight and bias
//     uniform in ±1/√fan_in (kaiming_uniform(a = √5) for the weight, the same bound for the bias);
//   xavier uniform (both patch convs viewed as [D, C]): ±√(6 / (fan_in + fan_out));
//   normal: N(0, 0.02²) for the label table and both timestep-MLP weights, N(0, 1) for t_embedder.W;
//   zero: patch-conv biases, every adaLN last Linear, final_layer.linear; one: every RMSNorm weight;
//   pos_embed: the 2-D sin-cos table (first half = column); RoPE buffers: `ropeTables` (first half = row).

extension DiTDHModel {
    enum InitKind: Equatable { case zero, one, sinCos, rope, normal(Float), xavier, torchDefault(fanIn: Int) }

    /// Overwrites every tensor with the official from-scratch initialisation for `seed`.
    public func initialize(seed: UInt64) {
        let c = config
        for (k, e) in table.entries.enumerated() {
            let dst = UnsafeMutableBufferPointer(start: params + e.offset, count: e.count)
            let stream = RandomStream(seed: seed, step: UInt64(k), sample: 0, tag: .initialization)
            switch initKind(k) {
            case .zero: dst.update(repeating: 0)
            case .one: dst.update(repeating: 1)
            case .sinCos:
                sinCosPositionalEmbedding(out: dst.baseAddress!, gridH: c.inputSize, gridW: c.inputSize, d: c.encoderHidden)
            case .rope:
                // The cos entry fills both tables; the sin entry (next index) is then already written.
                if k == table.encCos {
                    ropeTables(cos: dst.baseAddress!, sin: param(table.encSin), grid: c.inputSize, headDim: e.shape[1])
                } else if k == table.decCos {
                    ropeTables(cos: dst.baseAddress!, sin: param(table.decSin), grid: c.inputSize, headDim: e.shape[1])
                }
            case .normal(let std):
                Gaussian.fill(dst, stream: stream, start: 0)
                for j in 0..<e.count { dst[j] *= std }
            case .xavier:
                let fanOut = e.shape[0], fanIn = e.count / e.shape[0]
                fillUniform(dst, stream: stream, bound: (6 / Double(fanIn + fanOut)).squareRoot())
            case .torchDefault(let fanIn):
                fillUniform(dst, stream: stream, bound: 1 / Double(fanIn).squareRoot())
            }
        }
    }

    /// Test hook: gives the tensors that the official init sets to zero or one uniform values in
    /// [−bound, bound) (one ± bound for RMSNorm weights), so that every path of the network carries signal.
    package func randomizeConstantInitialized(seed: UInt64, bound: Double = 0.1) {
        for (k, e) in table.entries.enumerated() {
            let kind = initKind(k)
            guard kind == .zero || kind == .one else { continue }
            let stream = RandomStream(seed: seed, step: UInt64(k), sample: 1, tag: .initialization)
            let dst = UnsafeMutableBufferPointer(start: params + e.offset, count: e.count)
            fillUniform(dst, stream: stream, bound: bound)
            if kind == .one { for j in 0..<e.count { dst[j] += 1 } }
        }
    }

    func initKind(_ k: Int) -> InitKind {
        let tb = table, e = tb.entries[k], name = e.name
        switch k {
        case tb.posEmbed: return .sinCos
        case tb.encCos, tb.encSin, tb.decCos, tb.decSin: return .rope
        case tb.xEmbedW, tb.sEmbedW: return .xavier
        case tb.xEmbedB, tb.sEmbedB: return .zero
        case tb.tW: return .normal(1)
        case tb.tMlp0W, tb.tMlp2W, tb.yTable: return .normal(0.02)
        case tb.tMlp0B: return .torchDefault(fanIn: 2 * fourierFeatures)
        case tb.tMlp2B: return .torchDefault(fanIn: config.encoderHidden)
        case tb.finalNorm: return .one
        case tb.finalLinW, tb.finalLinB, tb.finalAdaW, tb.finalAdaB: return .zero
        default: break
        }
        if name.hasSuffix("norm1.weight") || name.hasSuffix("norm2.weight") { return .one }
        if name.contains("adaLN_modulation") { return .zero }
        // Remaining: block Linears and s_projector, weight [out, in] and bias [out]. A bias's fan-in is its
        // weight's (the entry just before it).
        let weight = e.shape.count == 2 ? e : tb.entries[k - 1]
        return .torchDefault(fanIn: weight.shape[1])
    }
}
