import MixflowCore
import Testing
@testable import MixflowModels

/// A sampler evaluates a batch in chunks of samples (cache-sized): every chunking must give the bits of one
/// forward pass over the whole batch, with labels and with the null class, for each architecture.
@Test(arguments: ["SiT", "DiTDH"])
func samplerChunksGiveTheWholeBatchBits(arch: String) throws {
    let model: NativeModel = arch == "SiT" ? try tinyModel() : try tinyDiTDHModel()
    let b = 11, s = model.sampleDim
    let x = randomArray(b * s, seed: 70)
    let t: [Float] = (0..<b).map { Float($0) / 10 }
    let y: [Int32] = (0..<b).map { Int32($0 % (model.numClasses + 1)) }
    let null = [Int32](repeating: Int32(model.numClasses), count: b)
    for labels in [y, null] {
        var whole = [Float](repeating: 0, count: b * s)
        try model.forward(x: x, t: t, y: labels, batch: b, out: &whole, dropout: nil, saveForBackward: false)
        for chunk in [1, 3, 4, 11, 64] {
            let sampler = NativeSamplerModel(model, chunk: chunk)
            var out = [Float](repeating: .nan, count: b * s)
            try out.withUnsafeMutableBufferPointer { o in
                if labels == null {   // the sampler's own null labels
                    try sampler.evaluate(x: x, t: t, y: nil, batch: b, dim: s, out: o.baseAddress!)
                } else {
                    try sampler.evaluate(x: x, t: t, y: labels, batch: b, dim: s, out: o.baseAddress!)
                }
            }
            #expect(out == whole, "\(arch), chunk \(chunk), \(labels == null ? "null class" : "labels")")
        }
        // A shorter batch after a longer one reuses the larger activation set: the same bits as a fresh model.
        var part = [Float](repeating: 0, count: 2 * s)
        try model.forward(x: Array(x[(3 * s)..<(5 * s)]), t: Array(t[3..<5]), y: Array(labels[3..<5]), batch: 2,
                          out: &part, dropout: nil, saveForBackward: false)
        #expect(part == Array(whole[(3 * s)..<(5 * s)]))
    }
}
