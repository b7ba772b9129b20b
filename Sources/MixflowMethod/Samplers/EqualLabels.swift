import MixflowCore

/// RAE's "equal" label sampling (`--label-sampling equal`, docs/exactness.md §4.5): every class the same number of times,
/// in a seeded random order, so that an FID set of 50,000 holds exactly 50 images of each of 1,000 classes.
///
/// `n = q·K + r` with `q = ⌊n / K⌋`: labels `i mod K` for `i < q·K` (q of each class), then r labels drawn
/// uniformly from [0, K), then a Fisher–Yates shuffle of all n. Randomness: uniform k of the remainder is
/// `RandomStream(seed, step: 0, sample: 0, tag: .labels)` number k; the shuffle's draw for position i is
/// number i of the stream with step 1 (two uniforms per Philox block). An integer in [0, m) is ⌊u·m⌋ for a
/// 53-bit uniform u (bias below m / 2^53, far under any count this is used for).
///
/// Edge cases: n < K makes every label random (q = 0); n a multiple of K draws no random labels, only the
/// shuffle; K = 1 gives all zeros; n = 1 is one random label.
public enum EqualLabels {
    /// Largest n accepted (the Philox block index of a draw is 32 bits, two draws per block).
    public static let maxCount = Int(Int32.max)
    /// Largest number of classes (the label table limit of the models).
    public static let maxClasses = 1 << 24

    /// Writes the n labels to `out`.
    /// - Throws: `.invalidArgument` when n is outside [1, maxCount] or numClasses outside [1, maxClasses].
    public static func fill(_ out: UnsafeMutableBufferPointer<Int32>, numClasses: Int, seed: UInt64) throws {
        let n = out.count
        guard n >= 1, n <= maxCount else {
            throw MixflowError.invalidArgument("n must be in [1, \(maxCount)], got \(n)")
        }
        guard numClasses >= 1, numClasses <= maxClasses else {
            throw MixflowError.invalidArgument("num_classes must be in [1, \(maxClasses)], got \(numClasses)")
        }
        let full = (n / numClasses) * numClasses
        for i in 0..<full { out[i] = Int32(i % numClasses) }
        let extra = RandomStream(seed: seed, step: 0, sample: 0, tag: .labels)
        for i in full..<n { out[i] = Int32(below(numClasses, uniform(extra, i - full))) }
        let shuffle = RandomStream(seed: seed, step: 1, sample: 0, tag: .labels)
        var i = n - 1
        while i > 0 {
            let j = below(i + 1, uniform(shuffle, i))
            out.swapAt(i, j)
            i -= 1
        }
    }

    /// The n labels as an array (see `fill`).
    public static func make(count n: Int, numClasses: Int, seed: UInt64) throws -> [Int32] {
        guard n >= 1, n <= maxCount else { throw MixflowError.invalidArgument("n must be in [1, \(maxCount)], got \(n)") }
        var out = [Int32](repeating: 0, count: n)
        try out.withUnsafeMutableBufferPointer { try fill($0, numClasses: numClasses, seed: seed) }
        return out
    }

    /// Uniform number k of `stream` in [0, 1).
    static func uniform(_ stream: RandomStream, _ k: Int) -> Double {
        let pair = stream.uniformPair(UInt32(k >> 1))
        return k & 1 == 0 ? pair.0 : pair.1
    }

    /// ⌊u·m⌋ clamped to m − 1 (u < 1, so the clamp only guards rounding).
    static func below(_ m: Int, _ u: Double) -> Int { min(Int(u * Double(m)), m - 1) }
}
