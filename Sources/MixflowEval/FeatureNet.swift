import MixflowCore

/// The fixed classifier whose penultimate activations are the features of "FD (Fashion-MNIST classifier
/// features)", KID and conditional accuracy: 3×3 convolutions (stride 1, zero padding 1) each followed by
/// ReLU and optionally a 2×2 max-pool, then fully connected layers with ReLU on all but the last.
///
/// File layout (little-endian, written by scripts/train-featnet.py):
/// ```
/// offset 0   8 bytes  magic "MXFNET02"
/// offset 8   uint32 × 3  input channels, height, width
/// offset 20  uint32   nconv (0...8), then per conv: uint32 out_channels, uint32 pool (0 or 1)
///            uint32   nfc (2...8), then per layer: uint32 out_features
/// then per conv: weight [out, in, 3, 3] float32, bias [out]; per fc: weight [out, in] float32, bias [out]
/// ```
/// The file must end exactly after the last bias. Pools floor odd sizes (PyTorch's MaxPool2d(2)). The first fc
/// takes the last conv output flattened in (channel, y, x) order. Inputs are images [C, H, W] row-major scaled
/// to [-1, 1] (`x / 127.5 - 1`); features are the ReLU outputs of the second-to-last fc layer.
public final class FeatureNet {
    public static let magic: [UInt8] = Array("MXFNET02".utf8)

    struct Conv { var inC: Int; var outC: Int; var pool: Bool; var height: Int; var width: Int; var weight: [Float]; var bias: [Float] }
    struct Dense { var inF: Int; var outF: Int; var weight: [Float]; var bias: [Float] }

    let inputShape: (c: Int, h: Int, w: Int)
    let convs: [Conv]
    let fcs: [Dense]

    public var inputDim: Int { inputShape.c * inputShape.h * inputShape.w }
    public var featureDim: Int { fcs[fcs.count - 2].outF }
    public var numClasses: Int { fcs[fcs.count - 1].outF }

    public convenience init(path: String) throws {
        try self.init(bytes: try readWholeFile(path), name: path)
    }

    public init(bytes: [UInt8], name: String) throws {
        var offset = 0
        func u32(_ what: String) throws -> Int {
            guard offset + 4 <= bytes.count else {
                throw MixflowError.format("\(name): truncated at byte offset \(bytes.count) while reading \(what)")
            }
            defer { offset += 4 }
            return Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
        }
        func size(_ what: String, _ range: ClosedRange<Int>) throws -> Int {
            let at = offset, v = try u32(what)
            guard range.contains(v) else {
                throw MixflowError.format("\(name): \(what) at byte offset \(at) must be in \(range.lowerBound)...\(range.upperBound), got \(v)")
            }
            return v
        }
        guard bytes.count >= 8, Array(bytes[0..<8]) == Self.magic else {
            throw MixflowError.format("\(name): bad magic at byte offset 0: expected \"MXFNET02\" (a libmixflow feature net)")
        }
        offset = 8
        var c = try size("input channels", 1...64), h = try size("input height", 1...1024), w = try size("input width", 1...1024)
        inputShape = (c, h, w)
        var convShapes: [(Int, Int, Bool, Int, Int)] = []
        for k in 0..<(try size("conv count", 0...8)) {
            let oc = try size("conv \(k) channels", 1...1024), pool = try size("conv \(k) pool flag", 0...1) == 1
            convShapes.append((c, oc, pool, h, w))
            c = oc
            if pool { h /= 2; w /= 2 }
            guard h >= 1 && w >= 1 else { throw MixflowError.format("\(name): conv \(k) pools the image below 1 pixel") }
        }
        var fcShapes: [(Int, Int)] = []
        var features = c * h * w
        for k in 0..<(try size("fc count", 2...8)) {
            let out = try size("fc \(k) width", 1...65536)
            fcShapes.append((features, out))
            features = out
        }
        // All sizes are bounded above, so these totals cannot overflow.
        let total = convShapes.reduce(0) { $0 + ($1.1 * $1.0 * 9 + $1.1) } + fcShapes.reduce(0) { $0 + ($1.1 * $1.0 + $1.1) }
        guard bytes.count == offset + 4 * total else {
            throw MixflowError.format("\(name): the layer sizes need \(offset + 4 * total) bytes but the file has \(bytes.count)")
        }
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
        var convs: [Conv] = [], fcs: [Dense] = []
        for (k, s) in convShapes.enumerated() {
            let weight = try floats(s.1 * s.0 * 9, "conv \(k) weight")
            convs.append(Conv(inC: s.0, outC: s.1, pool: s.2, height: s.3, width: s.4, weight: weight,
                              bias: try floats(s.1, "conv \(k) bias")))
        }
        for (k, s) in fcShapes.enumerated() {
            let weight = try floats(s.1 * s.0, "fc \(k) weight")
            fcs.append(Dense(inF: s.0, outF: s.1, weight: weight, bias: try floats(s.1, "fc \(k) bias")))
        }
        self.convs = convs
        self.fcs = fcs
    }

    /// Images per chunk: enough columns for sgemm to run at full speed, small enough for the im2col buffer.
    static let chunk = 32

    /// images: [n, inputDim] → features: [n, featureDim] (may be nil), logits: [n, numClasses] (may be nil).
    /// The caller validates the input is finite; the forward itself never fails. Rows are independent and an
    /// image's bits do not depend on its chunk's size or its place in it (every element of a BLAS.sgemm
    /// product depends only on its own row and column), so the result does not depend on n or on how a set
    /// is split into calls.
    public func forward(images: UnsafePointer<Float>, count n: Int,
                        features: UnsafeMutablePointer<Float>?, logits: UnsafeMutablePointer<Float>?) {
        // Chunk c always holds images [32c, 32c + 32), whatever the thread count, and rows are independent:
        // the result is bit-identical for any number of threads.
        let chunks = (n + Self.chunk - 1) / Self.chunk
        Parallel.forRanges(chunks, threads: Parallel.coreCount) { range in
            var scratch = Scratch(net: self)
            defer { scratch.free() }
            for c in range {
                let start = c * Self.chunk, rows = min(Self.chunk, n - start)
                forwardChunk(images + start * inputDim, rows, &scratch,
                             features.map { $0 + start * featureDim }, logits.map { $0 + start * numClasses })
            }
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
