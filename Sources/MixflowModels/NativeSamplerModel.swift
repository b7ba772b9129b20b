import MixflowMethod

/// A native libmixflow model as a sampler model: no callback, no copy of the model output. Labels are
/// validated by the caller (the C API checks them once per call); a NULL `y` means unconditional (the null class).
///
/// A batch is evaluated in chunks of samples whose activations fit in a core's caches (`chunkBytes`): every
/// layer of a whole sampling batch would otherwise stream its tensors through memory (on the Fashion-MNIST
/// base, 250 samples, the elementwise kernels and the bias copies spent a third of a step waiting on it).
/// Chunking changes no bit: a sample's output does not depend on the batch around it.
public final class NativeSamplerModel: SamplerModel {
    public let model: NativeModel
    var nullLabels: [Int32] = []
    /// Samples per model call.
    let chunk: Int
    /// The inference activations of one chunk, in bytes (on the Fashion-MNIST base, 17 samples: 20-25 % faster
    /// sampling than whole batches of 250 on an AVX-512 Xeon; 4 and 250 samples were slower).
    static let chunkBytes = 8 << 20
    /// At least this many samples per call, so that a large model's products still have rows for every thread.
    static let minChunk = 4

    /// - Parameter chunk: samples per model call; nil sizes chunks by `chunkBytes` (tests pass small ones).
    public init(_ model: NativeModel, chunk: Int? = nil) {
        self.model = model
        let perSample = max(1, model.activationFloats(batch: 1, training: false))   // floats (Int.max if unknown)
        self.chunk = max(1, chunk ?? max(Self.minChunk, Self.chunkBytes / MemoryLayout<Float>.size / perSample))
    }

    public func evaluate(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int, dim: Int,
                  out: UnsafeMutablePointer<Float>) throws {
        if y == nil, nullLabels.count < batch { nullLabels = [Int32](repeating: Int32(model.numClasses), count: batch) }
        try nullLabels.withUnsafeBufferPointer { null in
            let labels = y ?? null.baseAddress!
            for lo in stride(from: 0, to: batch, by: chunk) {
                let n = min(chunk, batch - lo)
                try model.forward(x: x + lo * dim, t: t + lo, y: labels + lo, batch: n, out: out + lo * dim,
                                  dropout: nil, saveForBackward: false)
            }
        }
    }
}
