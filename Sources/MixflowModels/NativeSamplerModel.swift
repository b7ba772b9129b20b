import MixflowMethod
import MixflowCore

/// A native libmixflow model as a sampler model: no callback, no copy of the model output. Labels are
/// validated by the caller (the C API checks them once per call); a NULL `y` means unconditional (the null class).
///
/// A batch is evaluated in calls of at most `chunk` samples, whose activations fit in a core's caches
/// (`chunkBytes`): every layer of a whole sampling batch would otherwise stream its tensors through memory (on
/// the Fashion-MNIST base, 250 samples, the elementwise kernels and the bias copies spent a third of a step
/// waiting on it). With several threads and enough samples (`plan`), the calls run at once, one per thread, each
/// on an inference replica of the model at one thread, instead of one after another with every layer split
/// between the threads: the threads then never wait for each other inside a forward pass (on that base, 2
/// threads sample 1.89× as fast as 1 this way, 1.39× with split layers; benchmarks/sampler/threads.py). Neither
/// changes a bit: a sample's output does not depend on the batch around it nor on the thread count.
public final class NativeSamplerModel: SamplerModel {
    public let model: NativeModel
    var nullLabels: [Int32] = []
    /// Samples per model call, at most.
    let chunk: Int
    /// One inference replica per worker (built at the first split batch), each at one thread.
    private var replicas: [NativeModel] = []
    /// The inference activations of one chunk, in bytes (on the Fashion-MNIST base, 17 samples: 20-25 % faster
    /// sampling than whole batches of 250 on an AVX-512 Xeon; 4 and 250 samples were slower).
    static let chunkBytes = 8 << 20
    /// At least this many samples per call, so that a large model's products still have rows for every thread;
    /// and per worker, before a batch is split between workers.
    static let minChunk = 4

    /// - Parameter chunk: samples per model call; nil sizes chunks by `chunkBytes` (tests pass small ones).
    public init(_ model: NativeModel, chunk: Int? = nil) {
        self.model = model
        let perSample = max(1, model.activationFloats(batch: 1, training: false))   // floats (Int.max if unknown)
        self.chunk = max(1, chunk ?? max(Self.minChunk, Self.chunkBytes / MemoryLayout<Float>.size / perSample))
    }

    /// How a batch is evaluated: `calls` model calls of nearly equal size (call i covers samples
    /// batch·i/calls ..< batch·(i+1)/calls, at most `chunk` of them), run by `workers` threads at once. With more
    /// than one thread and at least `minChunk` samples per thread the calls are a multiple of the threads, so
    /// that every worker gets the same share; otherwise one worker runs them in turn with every layer split.
    static func plan(batch: Int, chunk: Int, threads: Int) -> (calls: Int, workers: Int) {
        let calls = (batch + chunk - 1) / chunk
        guard threads > 1, batch / threads >= minChunk else { return (calls, 1) }
        return (min(batch, (calls + threads - 1) / threads * threads), threads)
    }

    public func evaluate(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int, dim: Int,
                  out: UnsafeMutablePointer<Float>) throws {
        if y == nil, nullLabels.count < batch { nullLabels = [Int32](repeating: Int32(model.numClasses), count: batch) }
        // More workers than cores would only add replicas (a thread count is a bound, and may be INT32_MAX).
        let (calls, workers) = Self.plan(batch: batch, chunk: chunk, threads: min(model.threads, Parallel.coreCount))
        if workers > 1, replicas.count != workers {
            replicas = try (0..<workers).map { _ in try model.inferenceReplica(threads: 1) }
        }
        try nullLabels.withUnsafeBufferPointer { null in
            let labels = y ?? null.baseAddress!
            func call(_ i: Int, on m: NativeModel) throws {
                let lo = batch * i / calls, n = batch * (i + 1) / calls - lo
                try m.forward(x: x + lo * dim, t: t + lo, y: labels + lo, batch: n, out: out + lo * dim,
                              dropout: nil, saveForBackward: false)
            }
            if workers == 1 {
                for i in 0..<calls { try call(i, on: model) }
                return
            }
            // A worker stops at its first error; the first worker's error (in worker order) is thrown.
            var errors = [Error?](repeating: nil, count: workers)
            errors.withUnsafeMutableBufferPointer { errors in
                Parallel.forDynamicRanges(calls, threads: workers, grain: 1) { w, range in
                    guard errors[w] == nil else { return }
                    do { for i in range { try call(i, on: replicas[w]) } } catch { errors[w] = error }
                }
            }
            if let e = errors.lazy.compactMap({ $0 }).first { throw e }
        }
    }
}
