#if canImport(Glibc)
import Glibc
#endif
import MixflowCore

// MARK: - Timestep frequency features (SiT TimestepEmbedder.timestep_embedding, 256 features)
// f_k = exp(−ln(10000)·k/128), k = 0..127; e(t) = [cos(t·f_0..127), sin(t·f_0..127)] (COS first).

public let timestepFeatures = 256

/// The 128 frequencies as float32 (the reference computes them in float32 from the same formula).
public let timestepFrequencies: [Float] = (0..<(timestepFeatures / 2)).map {
    Float(exp(-log(10000.0) * Double($0) / Double(timestepFeatures / 2)))
}

/// t: [B] → out: [B, 256] (overwritten). The argument t·f_k is rounded to float32 first, as in the
/// float32 reference; cos/sin of it are then evaluated in double and rounded.
public func timestepFeaturesForward(out: UnsafeMutablePointer<Float>, t: UnsafePointer<Float>, b: Int) {
    let half = timestepFeatures / 2
    for s in 0..<b {
        for k in 0..<half {
            let arg = Double(t[s] * timestepFrequencies[k])
            out[s * timestepFeatures + k] = Float(cos(arg))
            out[s * timestepFeatures + half + k] = Float(sin(arg))
        }
    }
}

// MARK: - 2-D sin-cos positional embedding (fixed), docs/exactness.md §5.2
// For token (row i, col j), K = D/4, ω_k = 10000^(−k/K):
// [sin(j·ω), cos(j·ω), sin(i·ω), cos(i·ω)] — the FIRST half encodes the column index. Computed in double.

/// → out: [gridH·gridW, D] (overwritten); D must be a multiple of 4.
public func sinCosPositionalEmbedding(out: UnsafeMutablePointer<Float>, gridH: Int, gridW: Int, d: Int) {
    let k = d / 4
    for i in 0..<gridH {
        for j in 0..<gridW {
            let row = out + (i * gridW + j) * d
            for q in 0..<k {
                let omega = 1 / pow(10000.0, Double(q) / Double(k))
                row[q] = Float(sin(Double(j) * omega))
                row[k + q] = Float(cos(Double(j) * omega))
                row[2 * k + q] = Float(sin(Double(i) * omega))
                row[3 * k + q] = Float(cos(Double(i) * omega))
            }
        }
    }
}

// MARK: - Label embedding table lookup

/// table: [rows, D], labels: [B] (already validated, in 0..<rows) → out: [B, D] (overwritten).
public func embeddingForward(out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>,
                             labels: UnsafePointer<Int32>, b: Int, d: Int) {
    for s in 0..<b { (out + s * d).update(from: table + Int(labels[s]) * d, count: d) }
}

/// dout: [B, D] → dtable rows (+=), in sample order (two samples with one label add in a fixed order).
public func embeddingBackward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              labels: UnsafePointer<Int32>, b: Int, d: Int) {
    for s in 0..<b { axpy(dtable + Int(labels[s]) * d, 1, dout + s * d, d) }
}

/// x: [B, T, D] += pos: [T, D] for every sample.
public func addPositional(x: UnsafeMutablePointer<Float>, pos: UnsafePointer<Float>, b: Int, t: Int, d: Int) {
    for s in 0..<b { axpy(x + s * t * d, 1, pos, t * d) }
}
