import MixflowCore

/// SiT as a `TrainableModel`: the trainer optimises every trainable table entry (pos_embed is fixed).
extension SiTModel: TrainableModel {
    public var parameterCount: Int { table.count }
    public var trainableRanges: [Range<Int>] {
        // Merge adjacent trainable entries into as few ranges as possible.
        var ranges: [Range<Int>] = []
        for e in table.entries where e.trainable {
            if let last = ranges.last, last.upperBound == e.offset {
                ranges[ranges.count - 1] = last.lowerBound..<(e.offset + e.count)
            } else {
                ranges.append(e.offset..<(e.offset + e.count))
            }
        }
        return ranges
    }
    public var parameters: UnsafeMutablePointer<Float> { params }
    public var gradients: UnsafeMutablePointer<Float> { grads }
    public var sampleDim: Int { config.sampleSize }

    public var architectureMetadata: [(key: String, value: String)] { config.metadata }

    /// Rebuilds the architecture from `architectureMetadata` (weights are loaded separately).
    public static func fromMetadata(_ meta: [(key: String, value: String)], threads: Int = 0) throws -> SiTModel {
        try SiTModel(try SiTConfig(metadata: meta), seed: 0, threads: threads)
    }

    public func forwardTraining(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int,
                                seed: UInt64, step: UInt64, firstSample: UInt64, out: UnsafeMutablePointer<Float>) throws {
        let dropout = LabelDropout(seed: seed, step: step, firstSample: firstSample)
        if let y {
            try forward(x: x, t: t, y: y, batch: batch, out: out, dropout: dropout)
        } else {
            let null = [Int32](repeating: Int32(config.numClasses), count: batch)
            try forward(x: x, t: t, y: null, batch: batch, out: out, dropout: dropout)
        }
    }

    public func backward(gradOutput: UnsafePointer<Float>) throws {
        zeroGradients()
        try backward(dout: gradOutput, batch: lastBatch)
    }
}
