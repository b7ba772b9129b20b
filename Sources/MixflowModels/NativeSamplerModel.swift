import MixflowMethod

/// A native libmixflow model as a sampler model: no callback, no copy of the model output. Labels are
/// validated by the caller (the C API checks them once per call); a NULL `y` means unconditional (the null class).
public final class NativeSamplerModel: SamplerModel {
    public let model: NativeModel
    var nullLabels: [Int32] = []
    public init(_ model: NativeModel) { self.model = model }

    public func evaluate(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int, dim: Int,
                  out: UnsafeMutablePointer<Float>) throws {
        if let y {
            try model.forward(x: x, t: t, y: y, batch: batch, out: out, dropout: nil, saveForBackward: false)
            return
        }
        if nullLabels.count < batch { nullLabels = [Int32](repeating: Int32(model.numClasses), count: batch) }
        try nullLabels.withUnsafeBufferPointer {
            try model.forward(x: x, t: t, y: $0.baseAddress!, batch: batch, out: out, dropout: nil, saveForBackward: false)
        }
    }
}

