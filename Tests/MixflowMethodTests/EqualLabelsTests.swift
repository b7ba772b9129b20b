import MixflowCore
@testable import MixflowMethod
import Testing

// "equal" label sampling: exact per-class counts, determinism per seed, a real shuffle, and bad input.

private func counts(_ labels: [Int32], _ k: Int) -> [Int] {
    var c = [Int](repeating: 0, count: k)
    for l in labels { c[Int(l)] += 1 }
    return c
}

@Test(arguments: [(50_000, 1000), (1000, 1000), (12, 5), (3, 7), (1, 1), (17, 1)])
func equalLabelsGiveEveryClassTheFloorCount(n: Int, k: Int) throws {
    let labels = try EqualLabels.make(count: n, numClasses: k, seed: 0)
    #expect(labels.count == n)
    #expect(labels.allSatisfy { $0 >= 0 && Int($0) < k })
    let c = counts(labels, k), q = n / k, r = n % k
    #expect(c.allSatisfy { $0 >= q && $0 <= q + r })
    #expect(c.reduce(0, +) == n)
    if r == 0 { #expect(c.allSatisfy { $0 == q }) }
}

@Test func equalLabelsAreDeterministicPerSeedAndShuffled() throws {
    let a = try EqualLabels.make(count: 5000, numClasses: 1000, seed: 7)
    #expect(a == (try EqualLabels.make(count: 5000, numClasses: 1000, seed: 7)))
    let b = try EqualLabels.make(count: 5000, numClasses: 1000, seed: 8)
    #expect(a != b && counts(a, 1000) == counts(b, 1000))
    // Not the unshuffled i mod K order; and a shuffle moves almost every element (expected fixed points: 5).
    let fixed = a.enumerated().filter { Int($0.element) == $0.offset % 1000 }.count
    #expect(fixed < 50)
    // The remainder labels are random too: different seeds give different counts for n = 1003.
    let c1 = counts(try EqualLabels.make(count: 1003, numClasses: 1000, seed: 1), 1000)
    let c2 = counts(try EqualLabels.make(count: 1003, numClasses: 1000, seed: 2), 1000)
    #expect(c1 != c2 && c1.min() == 1 && c1.max()! <= 4)
}

@Test func equalLabelsFirstPositionIsUniformOverClasses() throws {
    // Across seeds the first label should be roughly uniform over 4 classes (n = 8): 4000 draws, each count
    // ~1000 with sd ~27, so [850, 1150] fails only for a broken shuffle.
    var c = [Int](repeating: 0, count: 4)
    for s in 0..<4000 { c[Int(try EqualLabels.make(count: 8, numClasses: 4, seed: UInt64(s))[0])] += 1 }
    #expect(c.allSatisfy { $0 > 850 && $0 < 1150 }, "\(c)")
}

@Test func equalLabelsRejectBadSizes() {
    #expect(throws: MixflowError.invalidArgument("n must be in [1, 2147483647], got 0")) {
        _ = try EqualLabels.make(count: 0, numClasses: 10, seed: 0)
    }
    #expect(throws: MixflowError.invalidArgument("num_classes must be in [1, 16777216], got 0")) {
        _ = try EqualLabels.make(count: 5, numClasses: 0, seed: 0)
    }
}
