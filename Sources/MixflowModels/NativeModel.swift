import MixflowCore

/// A native model the C layer can hold behind one handle (SiT or DiT^DH): a state-dict-shaped flat
/// parameter table, an inference/training forward, a backward with optional input gradient, and the
/// input shape [C, S, S] with class labels 0...numClasses (numClasses = null).
public protocol NativeModel: TrainableModel {
    var tensorEntries: [ParameterEntry] { get }
    func tensorIndex(of name: String) -> Int?
    var inChannels: Int { get }
    var inputSize: Int { get }
    var numClasses: Int { get }
    var threads: Int { get set }
    func activationFloats(batch: Int, training: Bool) -> Int
    func forward(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>, batch: Int,
                 out: UnsafeMutablePointer<Float>, dropout: LabelDropout?, saveForBackward: Bool) throws
    func backward(dout: UnsafePointer<Float>, batch: Int, dx: UnsafeMutablePointer<Float>?) throws
    func zeroGradients()
    /// A new, independent model of the same architecture (official init for `seed`, same thread count).
    func sibling(seed: UInt64) throws -> NativeModel
}

/// The one check of class labels before they index a class embedding (every forward runs it, and callers that
/// want to refuse a batch before doing any work run it first): each of `count` labels must be in
/// [0, numClasses) or, when `nullClassAllowed`, also numClasses (the null class).
public func checkClassLabels(_ y: UnsafePointer<Int32>, count: Int, numClasses: Int, nullClassAllowed: Bool = true,
                             name: String = "y") throws {
    let limit = nullClassAllowed ? numClasses : numClasses - 1
    for i in 0..<count where y[i] < 0 || Int(y[i]) > limit {
        let range = nullClassAllowed ? "[0, \(numClasses)] (\(numClasses) = null class)" : "[0, \(numClasses))"
        throw MixflowError.invalidArgument("\(name)[\(i)] must be in \(range), got \(y[i])")
    }
}

/// Rebuilds a native model from its `architectureMetadata` (dispatching on `model.arch`).
public func nativeModel(fromMetadata meta: [(key: String, value: String)], threads: Int = 0) throws -> NativeModel {
    switch meta.last(where: { $0.key == "model.arch" })?.value {
    case "DiTDH": return try DiTDHModel.fromMetadata(meta, threads: threads)
    default: return try SiTModel.fromMetadata(meta, threads: threads)
    }
}

/// Merges adjacent trainable entries into as few ranges as possible.
func trainableRanges(of entries: [ParameterEntry]) -> [Range<Int>] {
    var ranges: [Range<Int>] = []
    for e in entries where e.trainable {
        if let last = ranges.last, last.upperBound == e.offset {
            ranges[ranges.count - 1] = last.lowerBound..<(e.offset + e.count)
        } else {
            ranges.append(e.offset..<(e.offset + e.count))
        }
    }
    return ranges
}

extension SiTModel: NativeModel {
    public var tensorEntries: [ParameterEntry] { table.entries }
    public func tensorIndex(of name: String) -> Int? { table.index(of: name) }
    public var inChannels: Int { config.inChannels }
    public var inputSize: Int { config.inputSize }
    public var numClasses: Int { config.numClasses }
    public func sibling(seed: UInt64) throws -> NativeModel { try SiTModel(config, seed: seed, threads: threads) }
}
