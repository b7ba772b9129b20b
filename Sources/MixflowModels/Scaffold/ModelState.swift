#if canImport(Glibc)
import Glibc
#endif
import MixflowCore

/// Where a new model's parameters come from.
public enum ParameterSource {
    /// Fresh memory, filled with the architecture's official from-scratch initialisation for this seed.
    case seed(UInt64)
    /// The parameter memory of an existing model of the same layout, shared, not copied: an inference replica
    /// (see `NativeModel.inferenceReplica`).
    case shared(ModelState)
}

/// What every native model owns besides its architecture: the parameter layout, the flat parameter buffer and
/// its parallel gradient buffer, and the batch of the last forward pass that saved activations.
public final class ModelState {
    public let layout: ParameterLayout
    /// Flat parameters, `layout.count` floats, in the layout's order.
    public let params: UnsafeMutablePointer<Float>
    /// Flat gradients, same layout; backward accumulates into it; fixed tensors' slots stay 0.
    public let grads: UnsafeMutablePointer<Float>
    /// The state whose parameter and gradient memory this one uses (kept alive by this reference), or nil
    /// when this state owns its buffers. A state with an owner belongs to an inference replica: its forward
    /// passes refuse to save activations, so it never runs backward or writes the gradients.
    public let owner: ModelState?
    /// Batch size of the last forward pass that saved activations (0 before any, and after a failed pass);
    /// backward applies to it.
    public internal(set) var lastBatch = 0
    /// Workers every kernel may use (the architecture's `threads`).
    public var threads: Int
    /// The head attached to the residual stream, if any (see `TokenTap`); its owner keeps it alive.
    weak var tap: TokenTap?

    /// `.seed`: allocates both buffers (parameters uninitialised — the architecture fills them —, gradients
    /// zero); `.shared`: uses those of the given state, whose layout must have the same size. `threads` 0 means
    /// every core.
    /// - Throws: `.outOfMemory`; `.invalidArgument` when a shared state's layout differs in size.
    public init(_ layout: ParameterLayout, parameters: ParameterSource, threads: Int) throws {
        self.layout = layout
        self.threads = Parallel.threads(threads)
        if case .shared(let other) = parameters {
            let root = other.owner ?? other
            guard root.layout.count == layout.count else {
                throw MixflowError.invalidArgument("shared parameters: \(root.layout.count) floats, the layout has \(layout.count)")
            }
            owner = root
            params = root.params
            grads = root.grads
            return
        }
        owner = nil
        let bytes = layout.count * MemoryLayout<Float>.stride
        guard let p = malloc(max(bytes, 1)) else { throw MixflowError.outOfMemory("\(bytes) bytes of parameters") }
        guard let g = calloc(max(layout.count, 1), MemoryLayout<Float>.stride) else {
            free(p); throw MixflowError.outOfMemory("\(bytes) bytes of gradients")
        }
        params = p.bindMemory(to: Float.self, capacity: layout.count)
        grads = g.bindMemory(to: Float.self, capacity: layout.count)
    }

    deinit { if owner == nil { free(params); free(grads) } }

    @inline(__always) public func param(_ index: Int) -> UnsafeMutablePointer<Float> { params + layout.entries[index].offset }
    @inline(__always) public func grad(_ index: Int) -> UnsafeMutablePointer<Float> { grads + layout.entries[index].offset }
    public func zeroGradients() { grads.initialize(repeating: 0, count: layout.count) }
}

/// Separate float buffers handed out one by one, all freed together. In counting mode nothing is allocated
/// and only the total is kept, so the size of an activation layout comes from the very code that builds it.
final class FloatArena {
    private(set) var total = 0
    private var buffers: [UnsafeMutableRawPointer] = []
    let counting: Bool
    /// What a counting arena hands out: never read or written.
    private static let placeholder = UnsafeMutablePointer<Float>.allocate(capacity: 1)

    init(counting: Bool) { self.counting = counting }

    func take(_ n: Int) throws -> UnsafeMutablePointer<Float> {
        total += n
        if counting || n == 0 { return FloatArena.placeholder }
        guard let raw = malloc(n * MemoryLayout<Float>.stride) else {
            throw MixflowError.outOfMemory("\(n * 4) bytes of activations")
        }
        buffers.append(raw)
        return raw.bindMemory(to: Float.self, capacity: n)
    }

    deinit { buffers.forEach { free($0) } }
}

/// What every architecture's activation set holds besides its own tensors: the batch size it is laid out for,
/// whether it is a training set (kept for backward) or the smaller inference set, the arena that owns its
/// buffers, and the labels of the pass (after class dropout: what the class-embedding backward reads).
class ActivationBuffers {
    let batch: Int
    let training: Bool
    let arena: FloatArena
    let labels: UnsafeMutablePointer<Int32>

    init(batch: Int, training: Bool, arena: FloatArena) {
        self.batch = batch
        self.training = training
        self.arena = arena
        labels = .allocate(capacity: arena.counting ? 1 : batch)   // a counting pass may be asked about any batch
    }

    deinit { labels.deallocate() }
}

/// An architecture's saved tensors and scratch for one batch size, laid out on a `FloatArena`.
protocol ActivationSet: ActivationBuffers {
    associatedtype Config
    init(_ c: Config, batch: Int, training: Bool, arena: FloatArena) throws
}

extension ActivationSet {
    /// Floats needed for `batch` (a counting pass of the same layout code; used to refuse a batch before allocating).
    static func floats(_ c: Config, batch: Int, training: Bool) -> Int {
        let arena = FloatArena(counting: true)
        return (try? Self(c, batch: batch, training: training, arena: arena)) == nil ? Int.max : arena.total
    }
}

/// The training set (kept for backward) and the smaller inference set of one model. The training set is
/// rebuilt when the batch size changes, the inference set when it grows (a sampler's last, shorter chunk
/// reuses it); the old set is freed before the new one is allocated.
struct ActivationCache<A: ActivationSet> {
    private var training: A?
    private var inference: A?

    /// The training set backward reads: the check every backward starts with, that the last forward pass
    /// (`state.lastBatch`, 0 after a failed one) saved activations for `batch` samples.
    func saved(batch b: Int, state: ModelState) throws -> A {
        guard let a = training, state.lastBatch == b, a.batch == b else {
            throw MixflowError.invalidArgument("backward needs a forward pass of the same batch (\(b)) first")
        }
        return a
    }

    mutating func get(_ c: A.Config, batch b: Int, training isTraining: Bool) throws -> A {
        if isTraining {
            if let a = training, a.batch == b { return a }
            training = nil
            let a = try A(c, batch: b, training: true, arena: FloatArena(counting: false))
            training = a
            return a
        }
        if let a = inference, a.batch >= b { return a }   // every tensor of a set for B samples has room for b ≤ B
        inference = nil
        let a = try A(c, batch: b, training: false, arena: FloatArena(counting: false))
        inference = a
        return a
    }
}

/// An architecture whose passes keep their tensors in an `ActivationCache` (SiT, DiT^DH): the memory query
/// and the start of every forward pass, written once.
protocol CachedActivations: NativeArchitecture {
    associatedtype Activations: ActivationSet where Activations.Config == Config
    var acts: ActivationCache<Activations> { get set }
}

extension CachedActivations {
    /// Floats of saved activations and scratch a batch needs (for memory planning and to refuse a batch).
    public func activationFloats(batch: Int, training: Bool = true) -> Int {
        Activations.floats(config, batch: batch, training: training)
    }

    /// The start every forward shares: the activation set of `b` samples (the training set when saving),
    /// forgetting the previous saved pass (a failed or partial pass leaves nothing to differentiate), the check
    /// of the labels, and the labels the pass uses in the set's `labels` (dropped to the null class with
    /// probability `classDropout` under `dropout`, else as given).
    func beginForward(y: UnsafePointer<Int32>, batch b: Int, dropout: LabelDropout?,
                      saveForBackward: Bool) throws -> Activations {
        if saveForBackward, state.owner != nil {
            throw MixflowError.invalidArgument("an inference replica cannot save activations for backward")
        }
        let a = try acts.get(config, batch: b, training: saveForBackward)
        if saveForBackward { state.lastBatch = 0 }
        try checkClassLabels(y, count: b, numClasses: numClasses)
        let p = config.classDropout
        for i in 0..<b {
            a.labels[i] = dropout.map { $0.drops(i, probability: p) } == true ? Int32(numClasses) : y[i]
        }
        return a
    }
}
