#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowMethod
import Testing

// --label-sampling: cycle is i mod K, random is seeded and uniform-looking, equal gives floor(n/K) or +1 per class;
// and autoguidance with the guide equal to the main model is exactly unguided sampling, at any scale.

private func counts(_ labels: [Int32], _ k: Int) -> [Int] {
    var c = [Int](repeating: 0, count: k)
    for l in labels { c[Int(l)] += 1 }
    return c
}

@Test func cycleLabelsAreIModK() throws {
    #expect(try LabelSampling.cycle.labels(count: 7, numClasses: 3, seed: 9) == [0, 1, 2, 0, 1, 2, 0])
}

@Test(arguments: [(100, 10), (1003, 1000), (7, 3), (5, 8), (1, 1)])
func equalLabelsGiveFloorOrOneMorePerClass(n: Int, k: Int) throws {
    let labels = try LabelSampling.equal.labels(count: n, numClasses: k, seed: 4)
    #expect(labels == (try EqualLabels.make(count: n, numClasses: k, seed: 4)))
    #expect(counts(labels, k).allSatisfy { $0 == n / k || $0 == n / k + 1 })
}

@Test func randomLabelsAreSeededInRangeAndNotBalanced() throws {
    let a = try LabelSampling.random.labels(count: 5000, numClasses: 10, seed: 1)
    #expect(a == (try LabelSampling.random.labels(count: 5000, numClasses: 10, seed: 1)))
    #expect(a != (try LabelSampling.random.labels(count: 5000, numClasses: 10, seed: 2)))
    #expect(a.allSatisfy { $0 >= 0 && $0 < 10 })
    // 500 expected per class, sd ~21: [400, 600] fails only for a broken draw; exact balance would be suspicious.
    let c = counts(a, 10)
    #expect(c.allSatisfy { $0 > 400 && $0 < 600 } && c != [Int](repeating: 500, count: 10), "\(c)")
    // A prefix of a longer draw is the shorter draw (label i depends only on i).
    #expect(Array(a.prefix(100)) == (try LabelSampling.random.labels(count: 100, numClasses: 10, seed: 1)))
}

@Test func labelSamplingRejectsBadSizes() {
    #expect(throws: MixflowError.invalidArgument("n must be in [1, 2147483647], got 0")) {
        _ = try LabelSampling.random.labels(count: 0, numClasses: 10, seed: 0)
    }
    #expect(throws: MixflowError.invalidArgument("num_classes must be in [1, 16777216], got 0")) {
        _ = try LabelSampling.cycle.labels(count: 3, numClasses: 0, seed: 0)
    }
}

@Test(arguments: [0.0, 1.0, 1.42, 3.7, -2.5])
func autoguidanceWithTheMainModelAsGuideIsUnguidedSampling(scale: Double) throws {
    // A deterministic, label- and time-dependent nonlinear model; RAE grid with a shift, Euler as RAE samples.
    let model = ClosureModel { x, t, y, out in
        let dim = x.count / t.count
        for i in 0..<x.count {
            let b = i / dim
            let label = Float(y?[b] ?? 0)
            let phase: Float = x[i] * 1.3 + t[b] * 2
            out[i] = sinf(phase) - 0.3 * x[i] + label * 0.1
        }
    }
    var c = SamplerConfig(); c.convention = .rae; c.method = .euler; c.numSteps = 12; c.timeShift = 2.5
    let x0 = normals(3 * 8, seed: 5)
    let plain = try runSampler(c, model, x0, batch: 3, labels: [0, 2, 1])
    c.guidance = .autoguidance; c.guidanceScale = scale; c.guidanceInterval = 0.2...0.9
    let guided = try runSampler(c, model, x0, batch: 3, labels: [0, 2, 1], guide: model)
    #expect(guided.x == plain.x)   // bit for bit: G + w (G - G) = G exactly
    #expect(plain.x != x0 && guided.nfe == plain.nfe && plain.nfe == 11)
}
