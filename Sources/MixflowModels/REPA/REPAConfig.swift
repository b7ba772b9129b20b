import MixflowCore

/// The shape of REPA's SiT (github.com/sihyun-yu/REPA, models/sit.py): a SiT without the learn_sigma half
/// (out_channels = in_channels) whose residual stream after block `encoderDepth` feeds one projector MLP per
/// target encoder: Linear(D, projectorDim) → SiLU → Linear(projectorDim, projectorDim) → SiLU →
/// Linear(projectorDim, z_dim), applied to every token. The model time is REPA's: noise at t = 1.
public struct REPAConfig: NativeModelConfig, Equatable, Sendable {
    public var sit: SiTConfig
    /// Blocks before the projectors read the tokens (official default 8).
    public var encoderDepth: Int
    /// Width of the projectors' hidden layers (official 2048).
    public var projectorDim: Int
    /// One output width per target encoder (official [768], DINOv2-B/14).
    public var zDims: [Int]

    public init(sit: SiTConfig, encoderDepth: Int = 8, projectorDim: Int = 2048, zDims: [Int] = [768]) {
        var s = sit
        s.learnSigma = false
        self.sit = s; self.encoderDepth = encoderDepth; self.projectorDim = projectorDim; self.zDims = zDims
    }

    /// "REPA-SiT-XL/2", "REPA-SiT-L/2", "REPA-SiT-B/2" (and /4, /8; case-insensitive).
    public static func named(_ name: String, inputSize: Int = 32, inChannels: Int = 4, numClasses: Int = 1000,
                             encoderDepth: Int = 8, zDims: [Int] = [768]) throws -> REPAConfig {
        guard name.uppercased().hasPrefix("REPA-"), !name.uppercased().hasPrefix("REPA-SIT-S") else {
            throw MixflowError.invalidArgument("arch must be one of REPA-SiT-{B,L,XL}/{2,4,8}, got \"\(name)\"")
        }
        let sit = try SiTConfig.named(String(name.dropFirst(5)), inputSize: inputSize, inChannels: inChannels,
                                      numClasses: numClasses, learnSigma: false)
        return REPAConfig(sit: sit, encoderDepth: encoderDepth, zDims: zDims)
    }

    /// Checks every constraint; messages name the fields as the C params struct does.
    public func validate() throws {
        try sit.validate()
        guard !sit.learnSigma else { throw MixflowError.invalidArgument("learn_sigma must be 0 for REPA's SiT") }
        try checkRange(encoderDepth, "encoder_depth", max: sit.depth)
        try checkRange(projectorDim, "projector_dim")
        try checkRange(zDims.count, "number of z_dims", max: 16)
        for z in zDims { try checkRange(z, "z_dims", max: 1 << 16) }
        try checkParameterCount(SiTParameterTable.count(sit) + projectorParameters)
    }

    public var inChannels: Int { sit.inChannels }
    public var inputSize: Int { sit.inputSize }
    public var numClasses: Int { sit.numClasses }
    public var sampleSize: Int { sit.sampleSize }
    public var classDropout: Float { sit.classDropout }

    /// Floats of all projectors.
    public var projectorParameters: Int {
        let d = sit.hidden, p = projectorDim
        return zDims.reduce(0) { $0 + (p * d + p) + (p * p + p) + ($1 * p + $1) }
    }

    /// Floats of the target features of one sample: Σ_k tokens · z_dims[k] (encoder-major in a batch).
    public var featureSize: Int { sit.tokens * zDims.reduce(0, +) }

    public var metadata: [(key: String, value: String)] {
        sit.metadata.map { $0.key == "model.arch" ? ("model.arch", "REPA-SiT") : $0 }
            + [("model.encoder_depth", "\(encoderDepth)"), ("model.projector_dim", "\(projectorDim)"),
               ("model.z_dims", zDims.map(String.init).joined(separator: ","))]
    }

    /// Parses `metadata` (model.arch "REPA-SiT").
    /// - Throws: `.format` for a missing or malformed key or a shape that fails `validate`.
    public init(metadata meta: [(key: String, value: String)]) throws {
        let m = ModelMetadata(meta)
        try m.expectArch("REPA-SiT")
        let sit = try SiTConfig(metadata: meta.map { $0.key == "model.arch" ? ("model.arch", "SiT") : $0 })
        let z = (m.value("z_dims") ?? "").split(separator: ",").map { Int($0) }
        guard !z.isEmpty, z.allSatisfy({ $0 != nil }) else {
            throw MixflowError.format("model.z_dims is missing or not a comma-separated list of integers")
        }
        self.init(sit: sit, encoderDepth: try m.int("encoder_depth"), projectorDim: try m.int("projector_dim"),
                  zDims: z.map { $0! })
        guard !sit.learnSigma else { throw MixflowError.format("model.learn_sigma must be 0 for REPA-SiT") }
        let config = self
        try ModelMetadata.validated { try config.validate() }
    }
}
