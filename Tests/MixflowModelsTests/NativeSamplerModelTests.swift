import MixflowCore
import Testing
@testable import MixflowModels

/// A tiny model of each native architecture, its zero-initialised tensors made random.
func tinyNativeModel(_ arch: String, threads: Int = 2) throws -> NativeModel {
    switch arch {
    case "SiT": return try tinyModel(threads: threads)
    case "DiTDH": return try tinyDiTDHModel(threads: threads)
    default:
        let m = try REPAModel(REPAConfig(sit: tinyConfig, encoderDepth: 1, projectorDim: 8, zDims: [5]), seed: 7,
                              threads: threads)
        m.trunk.randomizeZeroInitialized(seed: 8, bound: 0.3)
        return m
    }
}

/// A sampler evaluates a batch in chunks of samples (cache-sized), run one after another or, with several
/// threads, at once on inference replicas: every chunking, at every thread count, must give the bits of one
/// forward pass over the whole batch, with labels and with the null class, for each architecture.
@Test(arguments: ["SiT", "DiTDH", "REPA-SiT"], [1, 2, 3])
func samplerChunksGiveTheWholeBatchBits(arch: String, threads: Int) throws {
    let model = try tinyNativeModel(arch, threads: threads)
    let b = 13, s = model.sampleDim
    let x = randomArray(b * s, seed: 70)
    let t: [Float] = (0..<b).map { Float($0) / 10 }
    let y: [Int32] = (0..<b).map { Int32($0 % (model.numClasses + 1)) }
    let null = [Int32](repeating: Int32(model.numClasses), count: b)
    for labels in [y, null] {
        var whole = [Float](repeating: 0, count: b * s)
        try model.forward(x: x, t: t, y: labels, batch: b, out: &whole, dropout: nil, saveForBackward: false)
        for chunk in [1, 3, 4, 11, 64] {
            #expect(threads == 1 || NativeSamplerModel.plan(batch: b, chunk: chunk, threads: threads).workers == threads)
            let sampler = NativeSamplerModel(model, chunk: chunk)
            var out = [Float](repeating: .nan, count: b * s)
            try out.withUnsafeMutableBufferPointer { o in
                if labels == null {   // the sampler's own null labels
                    try sampler.evaluate(x: x, t: t, y: nil, batch: b, dim: s, out: o.baseAddress!)
                } else {
                    try sampler.evaluate(x: x, t: t, y: labels, batch: b, dim: s, out: o.baseAddress!)
                }
            }
            #expect(out == whole, "\(arch), \(threads) threads, chunk \(chunk), \(labels == null ? "null class" : "labels")")
        }
        // A shorter batch after a longer one reuses the larger activation set: the same bits as a fresh model.
        var part = [Float](repeating: 0, count: 2 * s)
        try model.forward(x: Array(x[(3 * s)..<(5 * s)]), t: Array(t[3..<5]), y: Array(labels[3..<5]), batch: 2,
                          out: &part, dropout: nil, saveForBackward: false)
        #expect(part == Array(whole[(3 * s)..<(5 * s)]))
    }
}

/// The split of a batch into model calls: the calls cover the batch in order, none holds more than `chunk`
/// samples, a split batch gives every worker the same number of calls, and a batch too small to give every
/// thread `minChunk` samples is not split.
@Test func samplerPlanCoversTheBatchEvenly() {
    for threads in 1...4 {
        for chunk in [1, 2, 5, 17, 300] {
            for batch in 1...70 {
                let (calls, workers) = NativeSamplerModel.plan(batch: batch, chunk: chunk, threads: threads)
                let sizes = (0..<calls).map { batch * ($0 + 1) / calls - batch * $0 / calls }
                #expect(sizes.reduce(0, +) == batch && sizes.allSatisfy { 1...chunk ~= $0 },
                        "batch \(batch), chunk \(chunk), \(threads) threads: \(sizes)")
                let splits = threads > 1 && batch >= threads * NativeSamplerModel.minChunk
                #expect(workers == (splits ? threads : 1))
                if splits { #expect(calls % threads == 0 || calls == batch) }
            }
        }
    }
    #expect(NativeSamplerModel.plan(batch: 1 << 40, chunk: 4, threads: Int.max) == (1 << 38, 1))   // no overflow
}

/// An inference replica reads the parameter memory of its model (a later change of a weight shows in both),
/// keeps it alive, refuses a saving forward pass, and a bad label in a split batch is an error, not a crash.
@Test(arguments: ["SiT", "DiTDH", "REPA-SiT"])
func inferenceReplicasShareTheWeights(arch: String) throws {
    var model: NativeModel? = try tinyNativeModel(arch)
    let replica = try model!.inferenceReplica(threads: 1)
    let b = 3, s = replica.sampleDim
    let x = randomArray(b * s, seed: 71), t: [Float] = [0.1, 0.5, 0.9], y: [Int32] = [0, 1, 2]
    func outputs(_ m: NativeModel) throws -> [Float] {
        var out = [Float](repeating: .nan, count: b * s)
        try m.forward(x: x, t: t, y: y, batch: b, out: &out, dropout: nil, saveForBackward: false)
        return out
    }
    let before = try outputs(replica), main = try outputs(model!)
    #expect(before == main)
    for i in 0..<model!.parameterCount { model!.parameters[i] *= 0.5 }
    let after = try outputs(replica), mainAfter = try outputs(model!)
    #expect(after != before && after == mainAfter)
    var out = [Float](repeating: 0, count: b * s)
    #expect(throws: MixflowError.self) {
        try replica.forward(x: x, t: t, y: y, batch: b, out: &out, dropout: nil, saveForBackward: true)
    }
    let sampler = NativeSamplerModel(model!, chunk: 2)
    model = nil   // the sampler and the replica keep what they use alive
    let kept = try outputs(replica)
    #expect(kept == after)
    let n = 12, xs = randomArray(n * s, seed: 72), ts = [Float](repeating: 0.5, count: n)
    var ys = [Int32](repeating: 1, count: n)
    ys[9] = 99
    var big = [Float](repeating: 0, count: n * s)
    #expect(throws: MixflowError.self) {
        try sampler.evaluate(x: xs, t: ts, y: ys, batch: n, dim: s, out: &big)
    }
}
