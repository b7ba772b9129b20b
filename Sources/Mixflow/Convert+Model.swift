import CMixflow
import MixflowCore
import MixflowModels

/// The first released size of mixflow_model_params (ABI 1); the DiT^DH fields were appended after it.
let modelParamsMinimumSize = 88

/// Which architecture a model handle holds, with its validated shape.
enum ModelShape {
    case sit(SiTConfig)
    case ditdh(DiTDHConfig)
    case repa(REPAConfig)

    func make(seed: UInt64, threads: Int) throws -> NativeModel {
        switch self {
        case .sit(let c): return try SiTModel(c, seed: seed, threads: threads)
        case .ditdh(let c): return try DiTDHModel(c, seed: seed, threads: threads)
        case .repa(let c): return try REPAModel(c, seed: seed, threads: threads)
        }
    }

    /// The shape of an existing model (a resumed trainer's, a loaded file's).
    init(of model: NativeModel) {
        if let d = model as? DiTDHModel {
            self = .ditdh(d.config)
        } else if let r = model as? REPAModel {
            self = .repa(r.config)
        } else {
            self = .sit((model as! SiTModel).config)
        }
    }

    /// The arch string a handle reports for a model it did not create by name: "DiTDH" and "REPA-SiT" name the
    /// custom-shape architectures, "" a SiT (mixflow_model_get_params).
    var customArch: String {
        switch self {
        case .sit: return ""
        case .ditdh: return "DiTDH"
        case .repa: return "REPA-SiT"
        }
    }
}

/// A validated mixflow_model_params: the model shape plus what the handle needs besides it.
struct ModelSettings {
    var shape: ModelShape
    var arch: String
    var seed: UInt64
    var threads: Int

    static let defaultArch = "SiT-XL/2"

    init(shape: ModelShape, arch: String, seed: UInt64, threads: Int) {
        self.shape = shape; self.arch = arch; self.seed = seed; self.threads = threads
    }

    init(c p: mixflow_model_params) throws {
        let archName = try withUnsafeBytes(of: p.arch) { raw in
            guard let end = raw.firstIndex(of: 0) else {
                throw MixflowError.invalidArgument("params->arch must be NUL-terminated within \(MIXFLOW_MODEL_ARCH_SIZE) bytes")
            }
            return String(decoding: raw[..<end], as: UTF8.self)
        }
        arch = archName
        func nonNegative(_ v: Int32, _ name: String) throws -> Int {
            guard v >= 0 else { throw MixflowError.invalidArgument("params->\(name) must be >= 0, got \(v)") }
            return Int(v)
        }
        let custom = (depth: try nonNegative(p.depth, "depth"), hidden: try nonNegative(p.hidden, "hidden"),
                      heads: try nonNegative(p.heads, "heads"), patch: try nonNegative(p.patch, "patch"))
        let head = (depth: try nonNegative(p.head_depth, "head_depth"), hidden: try nonNegative(p.head_hidden, "head_hidden"),
                    heads: try nonNegative(p.head_heads, "head_heads"))
        guard p.reserved0 == 0 else { throw MixflowError.invalidArgument("params->reserved0 must be 0, got \(p.reserved0)") }
        guard p.learn_sigma == 0 || p.learn_sigma == 1 else {
            throw MixflowError.invalidArgument("params->learn_sigma must be 0 or 1, got \(p.learn_sigma)")
        }
        guard p.num_threads >= 0 else {
            throw MixflowError.invalidArgument("params->num_threads must be >= 0 (0 = all cores), got \(p.num_threads)")
        }
        guard p.class_dropout.isFinite, p.class_dropout >= 0, p.class_dropout < 1 else {
            throw MixflowError.invalidArgument("params->class_dropout must be in [0, 1), got \(p.class_dropout)")
        }
        let input = try nonNegative(p.input_size, "input_size"), channels = try nonNegative(p.in_channels, "in_channels")
        let classes = try nonNegative(p.num_classes, "num_classes")
        func rethrowPrefixed<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let MixflowError.invalidArgument(m) { throw MixflowError.invalidArgument("params->" + m) }
        }
        if arch.uppercased().hasPrefix("REPA-SIT-") {
            // REPA's SiT by name (REPA-SiT-XL/2 …): official encoder_depth 8, projector 2048, one 768-wide encoder.
            guard custom == (0, 0, 0, 0), head == (0, 0, 0), p.learn_sigma == 0 else {
                throw MixflowError.invalidArgument("params->depth, hidden, heads, patch, head_* and learn_sigma must be 0 for \"\(arch)\"")
            }
            var c = try rethrowPrefixed { try REPAConfig.named(archName, inputSize: input, inChannels: channels, numClasses: classes) }
            c.sit.classDropout = p.class_dropout
            try rethrowPrefixed { try c.validate() }
            shape = .repa(c)
        } else if DiTDHConfig.isDiTDH(arch) {
            var c: DiTDHConfig
            if arch.uppercased() == "DITDH" {
                guard custom.patch <= 1 else {
                    throw MixflowError.invalidArgument("params->patch must be 0 or 1 for DiT^DH (patch size 1), got \(custom.patch)")
                }
                c = DiTDHConfig(encoderDepth: custom.depth, encoderHidden: custom.hidden, encoderHeads: custom.heads,
                                headDepth: head.depth, headHidden: head.hidden, headHeads: head.heads,
                                inputSize: input, inChannels: channels, numClasses: classes)
            } else {
                guard custom == (0, 0, 0, 0), head == (0, 0, 0) else {
                    throw MixflowError.invalidArgument("params->depth, hidden, heads, patch and head_* must be 0 when params->arch names a model "
                                                       + "(arch \"\(arch)\")")
                }
                c = try rethrowPrefixed { try DiTDHConfig.named(archName, inputSize: input, inChannels: channels, numClasses: classes) }
            }
            c.classDropout = p.class_dropout
            try rethrowPrefixed { try c.validate() }
            shape = .ditdh(c)
        } else {
            guard head == (0, 0, 0) else {
                throw MixflowError.invalidArgument("params->head_depth, head_hidden and head_heads are for DiT^DH and must be 0 for a SiT "
                                                   + "(got \(head.depth), \(head.hidden), \(head.heads))")
            }
            var c: SiTConfig
            if arch.isEmpty {
                c = SiTConfig(depth: custom.depth, hidden: custom.hidden, heads: custom.heads, patch: custom.patch,
                              inputSize: input, inChannels: channels, numClasses: classes, learnSigma: p.learn_sigma == 1)
            } else {
                guard custom == (0, 0, 0, 0) else {
                    throw MixflowError.invalidArgument("params->depth, hidden, heads and patch must be 0 when params->arch is set "
                                                       + "(got \(custom.depth), \(custom.hidden), \(custom.heads), \(custom.patch) with arch \"\(arch)\")")
                }
                c = try rethrowPrefixed {
                    try SiTConfig.named(archName, inputSize: input, inChannels: channels, numClasses: classes, learnSigma: p.learn_sigma == 1)
                }
            }
            c.classDropout = p.class_dropout
            try rethrowPrefixed { try c.validate() }
            shape = .sit(c)
        }
        seed = p.seed
        threads = Int(p.num_threads)
    }

    /// The defaults: official SiT-XL/2 on 32×32×4 latents (256 px), 1000 classes, learn_sigma, seed 0.
    static var defaults: mixflow_model_params {
        var p = mixflow_model_params()
        p.struct_size = UInt32(MemoryLayout<mixflow_model_params>.size)
        withUnsafeMutableBytes(of: &p.arch) { raw in
            for (i, ch) in defaultArch.utf8.enumerated() { raw[i] = ch }
        }
        p.input_size = 32; p.in_channels = 4; p.num_classes = 1000; p.learn_sigma = 1
        p.class_dropout = 0.1; p.num_threads = 0; p.seed = 0
        return p
    }

    /// Back to the C struct (what mixflow_model_get_params reports).
    var c: mixflow_model_params {
        var p = ModelSettings.defaults
        withUnsafeMutableBytes(of: &p.arch) { raw in
            for i in 0..<raw.count { raw[i] = 0 }
            for (i, ch) in arch.utf8.enumerated() { raw[i] = ch }
        }
        switch shape {
        case .sit(let config):
            if arch.isEmpty {
                p.depth = Int32(config.depth); p.hidden = Int32(config.hidden); p.heads = Int32(config.heads); p.patch = Int32(config.patch)
            }
            p.input_size = Int32(config.inputSize); p.in_channels = Int32(config.inChannels)
            p.num_classes = Int32(config.numClasses); p.learn_sigma = config.learnSigma ? 1 : 0
            p.class_dropout = config.classDropout
        case .ditdh(let config):
            if arch.uppercased() == "DITDH" {
                p.depth = Int32(config.encoderDepth); p.hidden = Int32(config.encoderHidden); p.heads = Int32(config.encoderHeads)
                p.patch = 1
                p.head_depth = Int32(config.headDepth); p.head_hidden = Int32(config.headHidden); p.head_heads = Int32(config.headHeads)
            }
            p.input_size = Int32(config.inputSize); p.in_channels = Int32(config.inChannels)
            p.num_classes = Int32(config.numClasses); p.learn_sigma = 0
            p.class_dropout = config.classDropout
        case .repa(let config):
            let sit = config.sit
            if !arch.uppercased().hasPrefix("REPA-SIT-") {
                p.depth = Int32(sit.depth); p.hidden = Int32(sit.hidden); p.heads = Int32(sit.heads); p.patch = Int32(sit.patch)
            }
            p.input_size = Int32(sit.inputSize); p.in_channels = Int32(sit.inChannels)
            p.num_classes = Int32(sit.numClasses); p.learn_sigma = 0
            p.class_dropout = sit.classDropout
        }
        p.num_threads = Int32(threads); p.seed = seed
        return p
    }
}
