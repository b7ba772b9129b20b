import MixflowCore

/// A native model the C layer can hold behind one handle (SiT, REPA's SiT, DiT^DH): a state-dict-shaped flat
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
    /// Another model object over this model's parameter memory (shared, not copied: it sees every later change
    /// of the weights), with its own activations and `threads`, so that forward passes can run on several
    /// threads at once (a sampler's workers: one replica each). Inference only: a saving forward throws.
    /// A replica keeps the parameter memory alive.
    func inferenceReplica(threads: Int) throws -> NativeModel
}

/// What the scaffold reads from every architecture's configuration.
public protocol NativeModelConfig {
    var inChannels: Int { get }
    var inputSize: Int { get }
    var numClasses: Int { get }
    /// Floats per sample of input and output (C·H·W).
    var sampleSize: Int { get }
    /// Probability that a training label is replaced by the null class.
    var classDropout: Float { get }
    /// The `model.*` description `config(fromMetadata:)` parses back.
    var metadata: [(key: String, value: String)] { get }
}

/// The scaffold every architecture is built on. An architecture supplies its configuration, its parameter
/// layout (inside `state`), its activation set, its explicit forward and backward passes and the metadata
/// parser; everything else — buffers, thread count, the parameter table plumbing, trainable ranges, the
/// activation cache and the start of a forward pass (`CachedActivations`), token taps (`TokenTap`), the
/// training forward/backward entry points, siblings, rebuilding from metadata — is written once here and in
/// Scaffold/.
public protocol NativeArchitecture: NativeModel {
    associatedtype Config: NativeModelConfig
    var config: Config { get }
    /// Parameters, gradients and their layout.
    var state: ModelState { get }
    init(_ config: Config, parameters: ParameterSource, threads: Int) throws
    /// The validated configuration a `model.*` description (`architectureMetadata`) names.
    /// - Throws: `.format` naming the missing, malformed or out-of-range key.
    static func config(fromMetadata meta: [(key: String, value: String)]) throws -> Config
}

extension NativeArchitecture {
    public var inChannels: Int { config.inChannels }
    public var inputSize: Int { config.inputSize }
    public var numClasses: Int { config.numClasses }
    public var sampleDim: Int { config.sampleSize }
    public var architectureMetadata: [(key: String, value: String)] { config.metadata }
    /// Workers every kernel uses (outputs and gradients are bit-identical for any count).
    public var threads: Int {
        get { state.threads }
        set { state.threads = newValue }
    }
    public var tensorEntries: [ParameterEntry] { state.layout.entries }
    public func tensorIndex(of name: String) -> Int? { state.layout.index(of: name) }
    public var parameterCount: Int { state.layout.count }
    public var trainableRanges: [Range<Int>] { state.layout.trainableRanges }
    public var parameters: UnsafeMutablePointer<Float> { state.params }
    public var gradients: UnsafeMutablePointer<Float> { state.grads }
    /// Flat parameters in state-dict order (the same buffer as `parameters`).
    public var params: UnsafeMutablePointer<Float> { state.params }
    /// Flat gradients, same layout (the same buffer as `gradients`).
    public var grads: UnsafeMutablePointer<Float> { state.grads }
    /// Batch size of the last forward pass that saved activations (0 before any); backward applies to it.
    public var lastBatch: Int { state.lastBatch }
    public func zeroGradients() { state.zeroGradients() }
    @inline(__always) func param(_ index: Int) -> UnsafeMutablePointer<Float> { state.param(index) }
    @inline(__always) func grad(_ index: Int) -> UnsafeMutablePointer<Float> { state.grad(index) }

    /// A model with fresh parameters, the official from-scratch initialisation for `seed`; `threads` 0 means every core.
    public init(_ config: Config, seed: UInt64, threads: Int = 0) throws {
        try self.init(config, parameters: .seed(seed), threads: threads)
    }

    public func sibling(seed: UInt64) throws -> NativeModel { try Self(config, seed: seed, threads: threads) }
    public func inferenceReplica(threads: Int) throws -> NativeModel {
        try Self(config, parameters: .shared(state), threads: threads)
    }

    /// Rebuilds the architecture from `architectureMetadata` (weights are loaded separately).
    public static func fromMetadata(_ meta: [(key: String, value: String)], threads: Int = 0) throws -> Self {
        try Self(try config(fromMetadata: meta), seed: 0, threads: threads)
    }

    public func forwardTraining(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int,
                                seed: UInt64, step: UInt64, firstSample: UInt64, out: UnsafeMutablePointer<Float>) throws {
        let dropout = LabelDropout(seed: seed, step: step, firstSample: firstSample)
        if let y {
            try forward(x: x, t: t, y: y, batch: batch, out: out, dropout: dropout, saveForBackward: true)
        } else {
            let null = [Int32](repeating: Int32(numClasses), count: batch)
            try forward(x: x, t: t, y: null, batch: batch, out: out, dropout: dropout, saveForBackward: true)
        }
    }

    public func backward(gradOutput: UnsafePointer<Float>) throws {
        zeroGradients()
        try backward(dout: gradOutput, batch: state.lastBatch, dx: nil)
    }

    /// The end every forward shares: a saving pass of `b` samples is now what backward differentiates.
    func endForward(batch b: Int, saveForBackward: Bool) { if saveForBackward { state.lastBatch = b } }
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

/// One architecture as `nativeModel(fromMetadata:)` knows it: how to build it from its metadata, and its
/// parameter count without allocating it (what a reader compares with the weights a file really holds before
/// building the model: a few hundred bytes of metadata must not make it allocate gigabytes).
struct NativeArchitectureEntry {
    let make: ([(key: String, value: String)], Int) throws -> NativeModel
    let parameterCount: ([(key: String, value: String)]) throws -> Int
}

/// The architectures `nativeModel(fromMetadata:)` knows, by their `model.arch` value. Adding an architecture
/// is one line here (and, for ONNX, one in `ModelONNX.graphs`).
let nativeArchitectures: [String: NativeArchitectureEntry] = [
    "SiT": .init(make: { try SiTModel.fromMetadata($0, threads: $1) },
                 parameterCount: { SiTParameterTable.count(try SiTModel.config(fromMetadata: $0)) }),
    "DiTDH": .init(make: { try DiTDHModel.fromMetadata($0, threads: $1) },
                   parameterCount: { DiTDHParameterTable.count(try DiTDHModel.config(fromMetadata: $0)) }),
    "REPA-SiT": .init(make: { try REPAModel.fromMetadata($0, threads: $1) },
                      parameterCount: { REPAModel.layout(try REPAModel.config(fromMetadata: $0)).count }),
]

/// The registry entry of `model.arch` (SiT when absent).
/// - Throws: `.format` for an unknown architecture.
func nativeArchitecture(_ meta: [(key: String, value: String)]) throws -> NativeArchitectureEntry {
    let arch = meta.last(where: { $0.key == "model.arch" })?.value ?? "SiT"
    guard let entry = nativeArchitectures[arch] else {
        throw MixflowError.format("model.arch is \"\(arch)\", expected one of \(nativeArchitectures.keys.sorted())")
    }
    return entry
}

/// Rebuilds a native model from its `architectureMetadata` (dispatching on `model.arch`).
/// - Throws: `.format` for an unknown architecture or bad metadata.
public func nativeModel(fromMetadata meta: [(key: String, value: String)], threads: Int = 0) throws -> NativeModel {
    try nativeArchitecture(meta).make(meta, threads)
}

/// The parameter count of the architecture `architectureMetadata` describes, without allocating it.
/// - Throws: `.format` for an unknown architecture, `.invalidArgument`/`.format` for bad metadata.
public func nativeParameterCount(fromMetadata meta: [(key: String, value: String)]) throws -> Int {
    try nativeArchitecture(meta).parameterCount(meta)
}

/// Reads `model.*` keys (the last value of a repeated key wins), the one parser every architecture's
/// `config(fromMetadata:)` uses.
public struct ModelMetadata {
    let meta: [(key: String, value: String)]
    public init(_ meta: [(key: String, value: String)]) { self.meta = meta }

    public func value(_ k: String) -> String? { meta.last(where: { $0.key == "model." + k })?.value }

    /// Throws `.format` unless model.arch is `arch`.
    public func expectArch(_ arch: String) throws {
        guard value("arch") == arch else {
            throw MixflowError.format("model.arch is \"\(value("arch") ?? "missing")\", expected \"\(arch)\"")
        }
    }

    public func int(_ k: String) throws -> Int {
        guard let s = value(k), let v = Int(s) else { throw MixflowError.format("model.\(k) is missing or not an integer") }
        return v
    }

    /// A float key, `fallback` when absent.
    public func float(_ k: String, default fallback: Float) throws -> Float {
        guard let s = value(k) else { return fallback }
        guard let v = Float(s) else { throw MixflowError.format("model.\(k) is \"\(s)\", expected a number") }
        return v
    }

    /// Runs a config's `validate`, reporting its complaint as file content (`.format`).
    public static func validated(_ check: () throws -> Void) throws {
        do { try check() } catch let MixflowError.invalidArgument(m) { throw MixflowError.format("model: \(m)") }
    }
}
