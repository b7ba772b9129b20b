import MixflowCore

/// The shape of a SiT model (docs/exactness.md §5.1): depth × hidden × heads transformer on p×p patches of a square
/// C-channel input, conditioned on a time t and a class label (null class id = numClasses).
public struct SiTConfig: Equatable, Sendable {
    public var depth: Int
    public var hidden: Int
    public var heads: Int
    public var patch: Int
    public var inputSize: Int
    public var inChannels: Int
    public var numClasses: Int
    /// Official default true: the output head has 2C channels of which only the first C are returned.
    public var learnSigma: Bool
    /// Probability that a training label is replaced by the null class (official 0.1).
    public var classDropout: Float
    /// MLP hidden width = mlpRatio × hidden (4 in every SiT).
    public var mlpRatio: Int = 4

    /// 2^32 floats (16 GiB of weights, as much again for gradients).
    public static let maxParameters = maxModelParameters

    public init(depth: Int, hidden: Int, heads: Int, patch: Int, inputSize: Int = 32, inChannels: Int = 4,
                numClasses: Int = 1000, learnSigma: Bool = true, classDropout: Float = 0.1) {
        self.depth = depth; self.hidden = hidden; self.heads = heads; self.patch = patch
        self.inputSize = inputSize; self.inChannels = inChannels; self.numClasses = numClasses
        self.learnSigma = learnSigma; self.classDropout = classDropout
    }

    /// The named configurations "SiT-S/2" … "SiT-XL/8" (case-insensitive; "SiT-XL-2" also accepted).
    public static func named(_ name: String, inputSize: Int = 32, inChannels: Int = 4, numClasses: Int = 1000,
                             learnSigma: Bool = true) throws -> SiTConfig {
        let upper = name.uppercased()
        let parts = upper.hasPrefix("SIT-")
            ? upper.dropFirst(4).split(whereSeparator: { $0 == "/" || $0 == "-" }).map(String.init) : []
        let sizes: [String: (Int, Int, Int)] = ["S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)]
        guard parts.count == 2, let size = sizes[parts[0]],
              let p = Int(parts[1]), [2, 4, 8].contains(p) else {
            throw MixflowError.invalidArgument("arch must be one of SiT-{S,B,L,XL}/{2,4,8}, got \"\(name)\"")
        }
        return SiTConfig(depth: size.0, hidden: size.1, heads: size.2, patch: p, inputSize: inputSize,
                         inChannels: inChannels, numClasses: numClasses, learnSigma: learnSigma)
    }

    public var gridSize: Int { inputSize / patch }
    public var tokens: Int { gridSize * gridSize }
    public var outChannels: Int { learnSigma ? 2 * inChannels : inChannels }
    public var patchFeatures: Int { inChannels * patch * patch }
    public var outFeatures: Int { patch * patch * outChannels }
    public var mlpHidden: Int { mlpRatio * hidden }
    public var headDim: Int { hidden / heads }
    /// Elements of one input (and one output) sample, C·H·W.
    public var sampleSize: Int { inChannels * inputSize * inputSize }

    /// Checks every constraint; messages name the field as the C params struct does.
    public func validate() throws {
        try checkRange(depth, "depth", max: 1024)
        try checkRange(hidden, "hidden")
        try checkRange(heads, "heads", max: hidden)
        try checkRange(patch, "patch", max: 64)
        try checkRange(inputSize, "input_size", max: 4096)
        try checkRange(inChannels, "in_channels", max: 4096)
        try checkRange(numClasses, "num_classes", max: 1 << 24)
        guard hidden % heads == 0 else {
            throw MixflowError.invalidArgument("hidden must be a multiple of heads, got hidden \(hidden) and heads \(heads)")
        }
        guard hidden % 4 == 0 else {
            throw MixflowError.invalidArgument("hidden must be a multiple of 4 (2-D sin-cos embedding), got \(hidden)")
        }
        guard inputSize % patch == 0 else {
            throw MixflowError.invalidArgument("input_size must be a multiple of patch, got input_size \(inputSize) and patch \(patch)")
        }
        try checkClassDropout(classDropout)
        // Each cap above keeps the count inside Int64; this bounds what one model may allocate.
        try checkParameterCount(SiTParameterTable.count(self))
    }
}
