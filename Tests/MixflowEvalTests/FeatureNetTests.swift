import MixflowCore
@testable import MixflowEval
import Testing

// The im2col/sgemm forward is checked against a direct, loop-by-loop convolution written here from the
// definition (no BLAS, no im2col), on a small random net serialised in the documented file layout.

struct TinyNet {
    var c = 2, h = 6, w = 5
    var convs: [(out: Int, pool: Bool)] = [(3, false), (4, true)]
    var fcs = [7, 5, 3]
    var params: [[Float]] = []   // per layer: weight, bias, weight, bias, ...

    init(seed: UInt64) {
        var state = seed
        func next() -> Float {   // a small LCG: any deterministic values will do
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000 * 0.5
        }
        var ch = c, hh = h, ww = w
        for conv in convs {
            params.append((0..<(conv.out * ch * 9)).map { _ in next() }); params.append((0..<conv.out).map { _ in next() })
            ch = conv.out
            if conv.pool { hh /= 2; ww /= 2 }
        }
        var f = ch * hh * ww
        for o in fcs {
            params.append((0..<(o * f)).map { _ in next() }); params.append((0..<o).map { _ in next() })
            f = o
        }
    }

    func bytes() -> [UInt8] {
        var b = Array("MXFNET02".utf8)
        func u32(_ v: Int) { b += withUnsafeBytes(of: UInt32(v).littleEndian, Array.init) }
        u32(c); u32(h); u32(w); u32(convs.count)
        for conv in convs { u32(conv.out); u32(conv.pool ? 1 : 0) }
        u32(fcs.count); for o in fcs { u32(o) }
        for p in params { for v in p { b += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) } }
        return b
    }

    /// Direct forward of one image [c, h, w] → (features, logits).
    func reference(_ x: [Float]) -> ([Float], [Float]) {
        var act = x, ch = c, hh = h, ww = w, p = 0
        for conv in convs {
            let wt = params[p], bias = params[p + 1]; p += 2
            var out = [Float](repeating: 0, count: conv.out * hh * ww)
            for o in 0..<conv.out { for y in 0..<hh { for xx in 0..<ww {
                var s = bias[o]
                for i in 0..<ch { for ky in 0..<3 { for kx in 0..<3 {
                    let sy = y + ky - 1, sx = xx + kx - 1
                    if sy >= 0 && sy < hh && sx >= 0 && sx < ww { s += wt[((o * ch + i) * 3 + ky) * 3 + kx] * act[(i * hh + sy) * ww + sx] }
                } } }
                out[(o * hh + y) * ww + xx] = max(s, 0)
            } } }
            act = out; ch = conv.out
            if conv.pool {
                let oh = hh / 2, ow = ww / 2
                var pooled = [Float](repeating: 0, count: ch * oh * ow)
                for k in 0..<ch { for y in 0..<oh { for xx in 0..<ow {
                    pooled[(k * oh + y) * ow + xx] = [act[(k * hh + 2 * y) * ww + 2 * xx], act[(k * hh + 2 * y) * ww + 2 * xx + 1],
                                                     act[(k * hh + 2 * y + 1) * ww + 2 * xx], act[(k * hh + 2 * y + 1) * ww + 2 * xx + 1]].max()!
                } } }
                act = pooled; hh = oh; ww = ow
            }
        }
        var features: [Float] = []
        for (l, o) in fcs.enumerated() {
            let wt = params[p], bias = params[p + 1]; p += 2
            var out = bias
            for j in 0..<o { for i in 0..<act.count { out[j] += wt[j * act.count + i] * act[i] } }
            if l < fcs.count - 1 { out = out.map { max($0, 0) } }
            if l == fcs.count - 2 { features = out }
            act = out
        }
        return (features, act)
    }
}

@Test(arguments: [1, 5, 32, 33, 70])
func forwardMatchesADirectConvolution(batch: Int) throws {
    let tiny = TinyNet(seed: 7)
    let net = try FeatureNet(bytes: tiny.bytes(), name: "tiny")
    #expect(net.inputDim == 60 && net.featureDim == 5 && net.numClasses == 3)
    var state: UInt64 = 99
    let images: [Float] = (0..<(batch * 60)).map { _ in
        state = state &* 6364136223846793005 &+ 1; return Float(Int(state >> 40) % 2001 - 1000) / 1000
    }
    var features = [Float](repeating: .nan, count: batch * 5), logits = [Float](repeating: .nan, count: batch * 3)
    net.forward(images: images, count: batch, features: &features, logits: &logits)
    var onlyFeatures = [Float](repeating: .nan, count: batch * 5)
    net.forward(images: images, count: batch, features: &onlyFeatures, logits: nil)
    var classes = [Int32](repeating: -1, count: batch)
    net.classify(images: images, count: batch, logits: nil, classes: &classes)
    for b in 0..<batch {
        let (f, l) = tiny.reference(Array(images[(b * 60)..<((b + 1) * 60)]))
        // float32 sums of up to 60 terms in different orders: 1e-5 absolute at values of order 1.
        for j in 0..<5 { #expect(abs(features[b * 5 + j] - f[j]) <= 1e-5 * max(1, abs(f[j])) && onlyFeatures[b * 5 + j] == features[b * 5 + j]) }
        for j in 0..<3 { #expect(abs(logits[b * 3 + j] - l[j]) <= 1e-5 * max(1, abs(l[j]))) }
        #expect(classes[b] == Int32(l.indices.max { l[$0] < l[$1] }!))
    }
}

@Test func hostileNetFilesGiveFormatErrors() {
    let good = TinyNet(seed: 1).bytes()
    var badMagic = good; badMagic[7] = 0x31
    var nanWeight = good; nanWeight.replaceSubrange(good.count - 4..<good.count, with: [0, 0, 0xC0, 0x7F])
    var bigConv = good; bigConv[20] = 9   // nconv = 9
    let cases: [([UInt8], String)] = [
        (Array(good[0..<5]), "net: bad magic at byte offset 0"),
        (badMagic, "net: bad magic at byte offset 0"),
        (Array(good[0..<14]), "net: truncated at byte offset 14 while reading input height"),
        (bigConv, "net: conv count at byte offset 20 must be in 0...8, got 9"),
        (Array(good.dropLast()), "but the file has \(good.count - 1)"),
        (good + [0], "but the file has \(good.count + 1)"),
        (nanWeight, "net: fc 2 bias[2] at byte offset \(good.count - 4) is nan; weights must be finite"),
    ]
    for (bytes, message) in cases {
        let m = formatError { _ = try FeatureNet(bytes: bytes, name: "net") }
        #expect(m?.contains(message) == true, "\(message) vs \(m ?? "no error")")
    }
}

/// The package root, from this file's path (tests may run from any working directory).
let packageRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)   // Tests/MixflowEvalTests/FeatureNetTests.swift
    return parts.joined(separator: "/")
}()
let shippedNet = packageRoot + "/share/featnet/fmnist-cnn.mxfnet"

@Test(.enabled(if: fashionAvailable(), "Fashion-MNIST is absent: apt-get install dataset-fashion-mnist"))
func shippedNetClassifiesTheTestSetAboveEightyEightPercent() throws {
    // The full 10k set is checked by the Python suite on the release build; debug builds use 2000 images.
    let net = try FeatureNet(path: shippedNet)
    let images = try IDXArray(path: fashionRoot + "/t10k-images-idx3-ubyte.gz")
    let labels = try IDXArray(path: fashionRoot + "/t10k-labels-idx1-ubyte.gz")
    var x = [Float](repeating: 0, count: images.count), y = [Int32](repeating: 0, count: labels.count)
    try images.readFloat(into: &x, scaling: .symmetric)
    try labels.readInt32(into: &y)
    let n = 2000
    let accuracy = net.accuracy(images: x, labels: y, count: n)
    #expect(accuracy >= 0.88, "accuracy on the first \(n) test images: \(accuracy)")
}
