/// One tensor of the flat parameter vector, under its official PyTorch state-dict name and shape.
public struct ParameterEntry: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    /// Offset in floats into the flat parameter (and gradient) buffer.
    public let offset: Int
    public let count: Int
    /// false for fixed buffers (pos_embed, RoPE tables): stored in the state dict, never given a gradient.
    public let trainable: Bool
}

/// Named tensors packed back to back in one flat float buffer, in the order they are added: the builder every
/// architecture's parameter table is made with, so a checkpoint maps one to one and the optimiser and a
/// gradient all-reduce see a single contiguous vector.
public struct ParameterLayout: Sendable {
    public private(set) var entries: [ParameterEntry] = []
    /// Total floats.
    public private(set) var count = 0
    private var byName: [String: Int] = [:]

    public init() {}

    /// Appends a tensor and returns its entry index.
    @discardableResult
    public mutating func add(_ name: String, _ shape: [Int], trainable: Bool = true) -> Int {
        let n = shape.reduce(1, *)
        entries.append(ParameterEntry(name: name, shape: shape, offset: count, count: n, trainable: trainable))
        byName[name] = entries.count - 1
        count += n
        return entries.count - 1
    }

    public func index(of name: String) -> Int? { byName[name] }

    /// The trainable entries merged into as few contiguous ranges as possible (what the optimiser updates).
    public var trainableRanges: [Range<Int>] {
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
}
