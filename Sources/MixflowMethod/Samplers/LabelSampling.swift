import MixflowCore

/// How the class labels of a sampling run are drawn (the `mixflow` tool's `--label-sampling`).
///
/// - `cycle`: label i is i mod K (no randomness; what `mixflow sample` always did).
/// - `random`: every label uniform on [0, K) (SiT's `sample_ddp.py`, RAE's `--label-sampling random`).
///   Label i is ⌊u·K⌋ for uniform number i of `RandomStream(seed, step: 2, sample: 0, tag: .labels)`
///   (step 2: the `equal` draws use steps 0 and 1 of the same tag).
/// - `equal`: RAE's default, ⌊n/K⌋ of every class plus n mod K random ones, shuffled (`EqualLabels`).
public enum LabelSampling: String, CaseIterable, Sendable {
    case cycle, random, equal

    /// The n labels for K = `numClasses` classes and `seed`.
    /// - Throws: `.invalidArgument` when n is outside [1, 2^31 − 1] or numClasses outside [1, 2^24].
    public func labels(count n: Int, numClasses: Int, seed: UInt64) throws -> [Int32] {
        guard n >= 1, n <= EqualLabels.maxCount else {
            throw MixflowError.invalidArgument("n must be in [1, \(EqualLabels.maxCount)], got \(n)")
        }
        guard numClasses >= 1, numClasses <= EqualLabels.maxClasses else {
            throw MixflowError.invalidArgument("num_classes must be in [1, \(EqualLabels.maxClasses)], got \(numClasses)")
        }
        switch self {
        case .cycle:
            return (0..<n).map { Int32($0 % numClasses) }
        case .random:
            let stream = RandomStream(seed: seed, step: 2, sample: 0, tag: .labels)
            return (0..<n).map { Int32(EqualLabels.below(numClasses, EqualLabels.uniform(stream, $0))) }
        case .equal:
            return try EqualLabels.make(count: n, numClasses: numClasses, seed: seed)
        }
    }
}
