import Glibc
import MixflowCore
import Testing
@testable import MixflowModels

let tinyConfig = SiTConfig(depth: 2, hidden: 16, heads: 2, patch: 2, inputSize: 4, inChannels: 2, numClasses: 3,
                           learnSigma: true)

/// A tiny model whose zero-initialised tensors (adaLN, final layer, biases) are random, so that every
/// path carries signal (with the official zeros most gradients would vanish and prove nothing).
func tinyModel(_ config: SiTConfig = tinyConfig, threads: Int = 2) throws -> SiTModel {
    let m = try SiTModel(config, seed: 7, threads: threads)
    m.randomizeZeroInitialized(seed: 8, bound: 0.3)
    return m
}

@Test func wholeModelGradientsMatchFiniteDifferences() throws {
    let m = try tinyModel()
    let n = 2 * m.config.sampleSize
    let (bad, grads) = try finiteDifferenceMismatches(m, x: randomArray(n, seed: 50), t: [0.3, 0.9],
                                                      y: [1, 3], r: randomArray(n, seed: 51))   // 3 = the null class
    #expect(bad.isEmpty, "\(bad)")
    for (name, g) in grads where name != "y_embedder.embedding_table.weight" {   // unused label rows legitimately get 0
        #expect(g.contains { $0 != 0 }, "\(name) received no gradient")
    }
}

@Test func resultsAreBitIdenticalForAnyThreadCount() throws {
    // Large enough that every parallel path really splits: B·T·D = 10·64·64 floats > the elementwise grain,
    // B·T = 640 rows > 2 GEMM tiles (3 tiles, the last partial), 40 (sample, head) pairs for attention.
    let config = SiTConfig(depth: 1, hidden: 64, heads: 4, patch: 2, inputSize: 16, inChannels: 4, numClasses: 5)
    var results: [([Float], [Float], [Float])] = []
    for threads in [1, 2, 3] {
        let m = try tinyModel(config, threads: threads)
        let b = 10, n = b * config.sampleSize
        let x = randomArray(n, seed: 60), r = randomArray(n, seed: 61)
        var out = [Float](repeating: 0, count: n), dx = out
        let t: [Float] = (0..<b).map { Float($0) / 9 }, y: [Int32] = (0..<b).map { Int32($0 % 6) }
        try m.forward(x: x, t: t, y: y, batch: b, out: &out)
        m.zeroGradients()
        try m.backward(dout: r, batch: b, dx: &dx)
        results.append((out, dx, Array(UnsafeBufferPointer(start: m.grads, count: m.table.count))))
    }
    for k in 1..<results.count {
        #expect(results[k].0 == results[0].0)
        #expect(results[k].1 == results[0].1)
        #expect(results[k].2 == results[0].2)
    }
}

/// A sample's output does not depend on the batch around it: the same samples at other offsets and in smaller
/// batches give the same bits (needed for sampling byte-identity across MPI ranks and batch sizes). This holds
/// because every element of a BLAS.sgemm product depends only on its own row and column; with OpenBLAS a row's
/// bits depended on its position in the call or on the call's shape.
@Test func forwardIsBitIdenticalForAnyBatchSplit() throws {
    // B·T = 640 rows: the whole batch's larger products (qkv, fc1, fc2) are split between the 2 workers at row 324
    // (27 tiles of 12 rows each), the sub-batches' into other shapes or not at all.
    let config = SiTConfig(depth: 1, hidden: 64, heads: 4, patch: 2, inputSize: 16, inChannels: 4, numClasses: 5)
    let m = try tinyModel(config, threads: 2)
    let b = 10, s = config.sampleSize
    let x = randomArray(b * s, seed: 62)
    let t: [Float] = (0..<b).map { Float($0) / 9 }, y: [Int32] = (0..<b).map { Int32($0 % 6) }
    var whole = [Float](repeating: 0, count: b * s)
    try m.forward(x: x, t: t, y: y, batch: b, out: &whole, saveForBackward: false)
    for (lo, hi) in [(3, 10), (1, 2), (5, 9), (0, 7)] {
        let n = hi - lo
        var part = [Float](repeating: 0, count: n * s)
        try m.forward(x: Array(x[(lo * s)..<(hi * s)]), t: Array(t[lo..<hi]), y: Array(y[lo..<hi]), batch: n,
                      out: &part, saveForBackward: false)
        #expect(part == Array(whole[(lo * s)..<(hi * s)]), "samples \(lo)..<\(hi)")
    }
}

@Test func backwardAccumulatesAndRequiresAMatchingForward() throws {
    let m = try tinyModel()
    let b = 1, n = m.config.sampleSize
    let x = randomArray(n, seed: 62), r = randomArray(n, seed: 63)
    var out = [Float](repeating: 0, count: n)
    #expect(throws: MixflowError.self) { try m.backward(dout: r, batch: b) }
    try m.forward(x: x, t: [0.5], y: [0], batch: b, out: &out)
    #expect(throws: MixflowError.self) { try m.backward(dout: r, batch: 2) }
    m.zeroGradients()
    try m.backward(dout: r, batch: b)
    let once = Array(UnsafeBufferPointer(start: m.grads, count: m.table.count))
    try m.backward(dout: r, batch: b)
    // A second backward adds the same gradient again (GEMMs with beta = 1 may fuse the add: 1-ulp slack).
    for i in stride(from: 0, to: once.count, by: 97) { #expect(abs(m.grads[i] - 2 * once[i]) <= 1e-6 * max(1, abs(once[i]))) }
}

@Test func labelDropoutIsDeterministicAndNearItsProbability() throws {
    let drop = LabelDropout(seed: 11, step: 5, firstSample: 0)
    let n = 20000
    let count = (0..<n).filter { drop.drops($0, probability: 0.1) }.count
    // Binomial(20000, 0.1): sd ≈ 42; 6 sd.
    #expect(abs(count - 2000) < 255)
    // A batch split across workers draws the same labels: sample i of a worker starting at 100 is 100 + i.
    let shifted = LabelDropout(seed: 11, step: 5, firstSample: 100)
    for i in 0..<50 { #expect(shifted.drops(i, probability: 0.1) == drop.drops(100 + i, probability: 0.1)) }
    // The draw is block 1 of the .scalars stream, independent of the transport's block 0.
    let u = RandomStream(seed: 11, step: 5, sample: 3, tag: .scalars).uniformPair(1).0
    #expect(drop.drops(3, probability: 0.1) == (u < 0.1))
}

@Test func droppedLabelsUseTheNullClassRow() throws {
    let m = try tinyModel()
    let n = m.config.sampleSize
    let x = randomArray(n, seed: 64)
    var a = [Float](repeating: 0, count: n), nullOut = a
    // Find a (seed, step) whose sample 0 is dropped; then training forward equals eval with the null label.
    var step: UInt64 = 0
    while !LabelDropout(seed: 1, step: step, firstSample: 0).drops(0, probability: 0.1) { step += 1 }
    try m.forward(x: x, t: [0.4], y: [1], batch: 1, out: &a, dropout: LabelDropout(seed: 1, step: step, firstSample: 0))
    try m.forward(x: x, t: [0.4], y: [3], batch: 1, out: &nullOut)
    #expect(a == nullOut)
}

@Test func officialInitialisationHasTheDocumentedStatistics() throws {
    let m = try SiTModel(SiTConfig(depth: 1, hidden: 64, heads: 4, patch: 2, inputSize: 8, inChannels: 4, numClasses: 10),
                         seed: 3)
    for e in m.table.entries {
        let v = UnsafeBufferPointer(start: m.params + e.offset, count: e.count)
        if e.shape.count == 1 || e.name.contains("adaLN") || e.name == "final_layer.linear.weight" {
            #expect(v.allSatisfy { $0 == 0 }, "\(e.name) must start at zero")
        } else if e.name.hasPrefix("t_embedder") || e.name.hasPrefix("y_embedder") {
            let sd = (v.map { Double($0 * $0) }.reduce(0, +) / Double(e.count)).squareRoot()
            #expect(abs(sd - 0.02) < 0.002, "\(e.name) std \(sd)")
        } else if e.name != "pos_embed" {
            let bound = Float((6 / Double(e.shape[0] + e.count / e.shape[0])).squareRoot())
            #expect(v.allSatisfy { abs($0) <= bound } && v.contains { abs($0) > 0.9 * bound }, "\(e.name)")
        }
    }
    let again = try SiTModel(m.config, seed: 3), other = try SiTModel(m.config, seed: 4)
    #expect(memcmp(m.params, again.params, 4 * m.table.count) == 0)
    #expect(memcmp(m.params + 1000, other.params + 1000, 400) != 0)
}

@Test func inferenceForwardEqualsTrainingForwardWithLessMemory() throws {
    let m = try tinyModel(SiTConfig(depth: 3, hidden: 16, heads: 2, patch: 2, inputSize: 4, inChannels: 2, numClasses: 3))
    let b = 2, n = b * m.config.sampleSize
    let x = randomArray(n, seed: 70), r = randomArray(n, seed: 71)
    try expectInferenceMatchesTraining(m, x: x, t: [0.2, 0.6], y: [0, 2])
    // An inference pass in between does not disturb the saved training activations.
    var train = [Float](repeating: 0, count: n), other = train
    try m.forward(x: r, t: [0.9, 0.1], y: [1, 1], batch: b, out: &other, saveForBackward: false)
    m.zeroGradients()
    try m.backward(dout: r, batch: b)
    let g1 = Array(UnsafeBufferPointer(start: m.grads, count: m.table.count))
    try m.forward(x: x, t: [0.2, 0.6], y: [0, 2], batch: b, out: &train)
    m.zeroGradients()
    try m.backward(dout: r, batch: b)
    #expect(g1 == Array(UnsafeBufferPointer(start: m.grads, count: m.table.count)))
}
