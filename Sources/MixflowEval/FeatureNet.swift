import CBLAS
import MixflowCore

/// The fixed classifier whose penultimate activations are the features of "FD (Fashion-MNIST classifier
/// features)", KID and conditional accuracy: an MLP with ReLU on every hidden layer.
///
/// File layout (little-endian, written by scripts/train-featnet.py):
/// ```
/// offset 0   8 bytes  magic "MXFNET01"
/// offset 8   uint32   L, the number of linear layers (2...16)
/// offset 12  uint32 × (L + 1)  widths w0 (input, 784), w1, ..., wL (classes)
/// then for each layer l = 0..<L: weight [w(l+1), w(l)] float32 row-major, then bias [w(l+1)] float32
/// ```
/// The file must end exactly after the last bias. Inputs are images flattened row-major and scaled to
/// [-1, 1] (`x / 127.5 - 1`, `PixelScaling.symmetric`). Features are the ReLU outputs of layer L-2
/// (width w(L-1)); logits are the outputs of the last layer.
public final class FeatureNet {
    public static let magic: [UInt8] = Array("MXFNET01".utf8)
    public let widths: [Int]
    /// weights[l]: [widths[l+1], widths[l]]; biases[l]: [widths[l+1]].
    let weights: [[Float]]
    let biases: [[Float]]

    public var inputDim: Int { widths[0] }
    public var featureDim: Int { widths[widths.count - 2] }
    public var numClasses: Int { widths[widths.count - 1] }

    public convenience init(path: String) throws {
        try self.init(bytes: try readWholeFile(path), name: path)
    }

    public init(bytes: [UInt8], name: String) throws {
        func u32(_ o: Int) -> Int {
            Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24
        }
        guard bytes.count >= 12 else {
            throw MixflowError.format("\(name): truncated at byte offset \(bytes.count): the header needs 12 bytes")
        }
        guard Array(bytes[0..<8]) == Self.magic else {
            throw MixflowError.format("\(name): bad magic at byte offset 0: expected \"MXFNET01\" (a libmixflow feature net)")
        }
        let layers = u32(8)
        guard (2...16).contains(layers) else {
            throw MixflowError.format("\(name): layer count at byte offset 8 must be in 2...16, got \(layers)")
        }
        let headerEnd = 12 + 4 * (layers + 1)
        guard bytes.count >= headerEnd else {
            throw MixflowError.format("\(name): truncated at byte offset \(bytes.count): \(layers) layers need a \(headerEnd)-byte header")
        }
        var widths: [Int] = []
        var total = 0
        for k in 0...layers {
            let w = u32(12 + 4 * k)
            guard (1...65536).contains(w) else {
                throw MixflowError.format("\(name): width \(k) at byte offset \(12 + 4 * k) must be in 1...65536, got \(w)")
            }
            if k > 0 { total += (widths[k - 1] + 1) * w }   // bounded: 16 layers of 65536² fit easily in Int
            widths.append(w)
        }
        guard bytes.count == headerEnd + 4 * total else {
            throw MixflowError.format("\(name): widths \(widths) need \(headerEnd + 4 * total) bytes but the file has \(bytes.count)")
        }
        var weights: [[Float]] = [], biases: [[Float]] = []
        var offset = headerEnd
        func floats(_ n: Int, _ what: String) throws -> [Float] {
            var out = [Float](repeating: 0, count: n)
            bytes.withUnsafeBytes { raw in
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * i, as: UInt32.self))) }
            }
            if let bad = out.firstIndex(where: { !$0.isFinite }) {
                throw MixflowError.format("\(name): \(what)[\(bad)] at byte offset \(offset + 4 * bad) is \(out[bad]); weights must be finite")
            }
            offset += 4 * n
            return out
        }
        for l in 0..<layers {
            weights.append(try floats(widths[l + 1] * widths[l], "layer \(l) weight"))
            biases.append(try floats(widths[l + 1], "layer \(l) bias"))
        }
        self.widths = widths
        self.weights = weights
        self.biases = biases
    }

    /// Rows per BLAS call: big enough for sgemm to reach full speed, small enough to stay in cache.
    static let chunk = 1024

    /// images: [n, inputDim] → features: [n, featureDim] (may be nil), logits: [n, numClasses] (may be nil).
    /// Caller validates that images are finite; the forward itself never fails.
    public func forward(images: UnsafePointer<Float>, count n: Int,
                        features: UnsafeMutablePointer<Float>?, logits: UnsafeMutablePointer<Float>?) {
        let layers = weights.count
        let maxWidth = widths.max()!
        let a = UnsafeMutablePointer<Float>.allocate(capacity: Self.chunk * maxWidth)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: Self.chunk * maxWidth)
        defer { a.deallocate(); b.deallocate() }
        var start = 0
        while start < n {
            let rows = min(Self.chunk, n - start)
            // Only the layers needed for the requested outputs run.
            let needed = logits != nil ? layers : layers - 1
            var input = images + start * widths[0]
            for l in 0..<needed {
                let inW = widths[l], outW = widths[l + 1]
                let last = l == layers - 1
                let dest: UnsafeMutablePointer<Float>
                if last, let logits { dest = logits + start * outW }
                else if l == layers - 2, let features { dest = features + start * outW }
                else { dest = l % 2 == 0 ? a : b }
                biases[l].withUnsafeBufferPointer { bias in
                    for r in 0..<rows { (dest + r * outW).update(from: bias.baseAddress!, count: outW) }
                }
                weights[l].withUnsafeBufferPointer { w in
                    // dest[rows, outW] += input[rows, inW] · W[outW, inW]^T
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outW), Int32(inW),
                                1, input, Int32(inW), w.baseAddress, Int32(inW), 1, dest, Int32(outW))
                }
                if !last {
                    for i in 0..<(rows * outW) { dest[i] = max(dest[i], 0) }
                }
                input = UnsafePointer(dest)
            }
            start += rows
        }
    }

    /// Index of the largest logit per row (ties go to the lowest index, as numpy's argmax).
    public func classify(images: UnsafePointer<Float>, count n: Int, logits: UnsafeMutablePointer<Float>?,
                         classes: UnsafeMutablePointer<Int32>?) {
        let k = numClasses
        let owned = logits == nil ? UnsafeMutablePointer<Float>.allocate(capacity: n * k) : nil
        defer { owned?.deallocate() }
        let out = logits ?? owned!
        forward(images: images, count: n, features: nil, logits: out)
        guard let classes else { return }
        for r in 0..<n {
            var best = 0
            for c in 1..<k where out[r * k + c] > out[r * k + best] { best = c }
            classes[r] = Int32(best)
        }
    }
}
