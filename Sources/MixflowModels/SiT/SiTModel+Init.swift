import MixflowCore

// MARK: - Official initialisation for training from scratch (docs/exactness.md §5.5), from a seed
//
// Scheme (part of the reproducibility contract): tensor k of the table draws from
// RandomStream(seed, step: k, sample: 0, tag: .initialization).
//   xavier uniform (every Linear weight, the patch conv viewed as [D, C·p·p]): element j uses the uniform
//     u = uniformPair(j / 2).(j even ? 0 : 1) and becomes (2u − 1)·√(6 / (fan_in + fan_out));
//   normal N(0, 0.02²) (label table, both timestep-MLP weights): 0.02 · Gaussian element j of the stream;
//   zero: every bias, every adaLN last Linear (blocks and final layer) and the final linear;
//   pos_embed: the fixed 2-D sin-cos table.

extension SiTModel {
    /// Overwrites every parameter with the official from-scratch initialisation for `seed`.
    public func initialize(seed: UInt64) {
        let table = self.table
        (params).initialize(repeating: 0, count: table.count)
        for (k, e) in table.entries.enumerated() {
            let dst = UnsafeMutableBufferPointer(start: params + e.offset, count: e.count)
            let stream = RandomStream(seed: seed, step: UInt64(k), sample: 0, tag: .initialization)
            switch initKind(e) {
            case .zero: break
            case .sinCos:
                sinCosPositionalEmbedding(out: dst.baseAddress!, gridH: config.gridSize, gridW: config.gridSize, d: config.hidden)
            case .normal:
                Gaussian.fill(dst, stream: stream, start: 0)
                for j in 0..<e.count { dst[j] *= 0.02 }
            case .xavier:
                let fanOut = e.shape[0], fanIn = e.count / e.shape[0]
                fillUniform(dst, stream: stream, bound: (6 / Double(fanIn + fanOut)).squareRoot())
            }
        }
    }

    /// Test hook: gives the tensors that the official init sets to zero (adaLN last layers, final linear,
    /// biases) uniform values in [−bound, bound), so that every path of the network carries signal.
    package func randomizeZeroInitialized(seed: UInt64, bound: Double = 0.1) {
        for (k, e) in table.entries.enumerated() where initKind(e) == .zero {
            let stream = RandomStream(seed: seed, step: UInt64(k), sample: 1, tag: .initialization)
            fillUniform(UnsafeMutableBufferPointer(start: params + e.offset, count: e.count), stream: stream, bound: bound)
        }
    }

    enum InitKind { case zero, sinCos, normal, xavier }

    func initKind(_ e: ParameterEntry) -> InitKind {
        if e.name == "pos_embed" { return .sinCos }
        if e.shape.count == 1 { return .zero }  // every bias
        if e.name.contains("adaLN_modulation") || e.name == "final_layer.linear.weight" { return .zero }
        if e.name.hasPrefix("t_embedder.") || e.name.hasPrefix("y_embedder.") { return .normal }
        return .xavier
    }
}

/// dst[j] = (2u_j − 1)·bound with u_j the j-th uniform of the stream (two per Philox block).
func fillUniform(_ dst: UnsafeMutableBufferPointer<Float>, stream: RandomStream, bound: Double) {
    var j = 0
    while j < dst.count {
        let (u0, u1) = stream.uniformPair(UInt32(truncatingIfNeeded: j / 2))
        dst[j] = Float((2 * u0 - 1) * bound)
        if j + 1 < dst.count { dst[j + 1] = Float((2 * u1 - 1) * bound) }
        j += 2
    }
}
