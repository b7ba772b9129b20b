import MixflowCore

/// The shape of a DiT^DH (RAE stage-2 "DiT with DDT head", docs/exactness.md §6.1): an encoder of `encoderDepth`
/// LightningDDT blocks of width `encoderHidden` conditioned per sample, and a wide head of `headDepth` blocks of
/// width `headHidden` conditioned per token, on a square `inChannels`-channel latent with patch size 1.
/// Flags fixed as in every released config: SwiGLU, RoPE, RMSNorm, shift on, no qk-norm, pos_embed on.
public struct DiTDHConfig: Equatable, Sendable {
    public var encoderDepth: Int
    public var encoderHidden: Int
    public var encoderHeads: Int
    public var headDepth: Int
    public var headHidden: Int
    public var headHeads: Int
    public var inputSize: Int
    public var inChannels: Int
    public var numClasses: Int
    /// Probability that a training label is replaced by the null class (official 0.1).
    public var classDropout: Float

    public init(encoderDepth: Int, encoderHidden: Int, encoderHeads: Int, headDepth: Int, headHidden: Int,
                headHeads: Int, inputSize: Int = 16, inChannels: Int = 768, numClasses: Int = 1000,
                classDropout: Float = 0.1) {
        self.encoderDepth = encoderDepth; self.encoderHidden = encoderHidden; self.encoderHeads = encoderHeads
        self.headDepth = headDepth; self.headHidden = headHidden; self.headHeads = headHeads
        self.inputSize = inputSize; self.inChannels = inChannels; self.numClasses = numClasses
        self.classDropout = classDropout
    }

    /// "DiTDH-XL" (1152/28/16 + 2048/2/16) or "DiTDH-S" (384/12/6 + 2048/2/16), case-insensitive; the
    /// official latent is 768 channels at 16×16 (256 px) or 32×32 (512 px).
    public static func named(_ name: String, inputSize: Int = 16, inChannels: Int = 768,
                             numClasses: Int = 1000) throws -> DiTDHConfig {
        let sizes: [String: (Int, Int, Int)] = ["DITDH-XL": (28, 1152, 16), "DITDH-S": (12, 384, 6)]
        guard let s = sizes[name.uppercased()] else {
            throw MixflowError.invalidArgument("arch must be DiTDH-XL or DiTDH-S, got \"\(name)\"")
        }
        return DiTDHConfig(encoderDepth: s.0, encoderHidden: s.1, encoderHeads: s.2, headDepth: 2, headHidden: 2048,
                           headHeads: 16, inputSize: inputSize, inChannels: inChannels, numClasses: numClasses)
    }

    /// Whether `name` names a DiT^DH ("DiTDH", "DiTDH-XL", "DiTDH-S", any case).
    public static func isDiTDH(_ name: String) -> Bool { name.uppercased().hasPrefix("DITDH") }

    public var tokens: Int { inputSize * inputSize }
    public var depth: Int { encoderDepth + headDepth }
    /// SwiGLU hidden width int(2/3 · int(4D)) (truncated: 3072 for 1152, 1024 for 384, 5461 for 2048).
    public static func swigluHidden(_ d: Int) -> Int { (2 * (4 * d)) / 3 }
    public var encoderSwiGLU: Int { DiTDHConfig.swigluHidden(encoderHidden) }
    public var headSwiGLU: Int { DiTDHConfig.swigluHidden(headHidden) }
    /// s_projector is Identity (no state-dict entries) when the two widths are equal.
    public var hasProjector: Bool { encoderHidden != headHidden }
    /// Elements of one input (and one output) sample, C·H·W.
    public var sampleSize: Int { inChannels * inputSize * inputSize }

    /// Block l's width, heads and SwiGLU width (encoder blocks first).
    func block(_ l: Int) -> (d: Int, heads: Int, hidden: Int) {
        l < encoderDepth ? (encoderHidden, encoderHeads, encoderSwiGLU) : (headHidden, headHeads, headSwiGLU)
    }

    /// Checks every constraint; messages name the fields of the C params struct.
    public func validate() throws {
        try checkRange(encoderDepth, "depth", max: 1024)
        try checkRange(encoderHidden, "hidden")
        try checkRange(encoderHeads, "heads", max: encoderHidden)
        try checkRange(headDepth, "head_depth", max: 1024)
        try checkRange(headHidden, "head_hidden")
        try checkRange(headHeads, "head_heads", max: headHidden)
        try checkRange(inputSize, "input_size", max: 4096)
        try checkRange(inChannels, "in_channels", max: 4096)
        try checkRange(numClasses, "num_classes", max: 1 << 24)
        for (d, h, name) in [(encoderHidden, encoderHeads, ""), (headHidden, headHeads, "head_")] {
            // RoPE needs whole (θ, θ) pairs in each half of a head: head_dim % 4 == 0.
            guard d % h == 0, (d / h) % 4 == 0 else {
                throw MixflowError.invalidArgument("\(name)hidden / \(name)heads must be a multiple of 4 (2-D RoPE), got \(name)hidden \(d) and \(name)heads \(h)")
            }
        }
        guard encoderHidden % 4 == 0 else {
            throw MixflowError.invalidArgument("hidden must be a multiple of 4 (2-D sin-cos embedding), got \(encoderHidden)")
        }
        try checkClassDropout(classDropout)
        try checkParameterCount(DiTDHParameterTable.count(self))
    }
}
