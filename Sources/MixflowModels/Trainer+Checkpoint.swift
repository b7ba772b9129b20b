import MixflowCore
import MixflowMethod

extension Trainer {
    /// Saves model, EMA, AdamW moments, step counter and every configuration, atomically.
    public func save(to path: String, extraMetadata: [(key: String, value: String)] = []) throws {
        var meta: [(key: String, value: String)] = [
            ("format", "libmixflow-trainer"), ("step", "\(step)"), ("seed", "\(config.seed)"),
            ("optimizer.step", "\(optimizer.step)"),
            ("optimizer.beta1", "\(config.optimizer.beta1)"),
            ("optimizer.beta2", "\(config.optimizer.beta2)"), ("optimizer.eps", "\(config.optimizer.eps)"),
            ("optimizer.weight_decay", "\(config.optimizer.weightDecay)"), ("ema.decay", "\(config.emaDecay)"),
            ("clip.max_norm", config.maxGradNorm.map { "\($0)" } ?? "none"),
            ("repa.proj_coeff", "\(config.alignmentWeight)"),
        ]
        switch config.schedule {
        case .constant(let lr): meta += [("schedule", "constant"), ("schedule.lr", "\(lr)")]
        case .linearDecay(let lr, let final, let start, let end, let warmup):
            meta += [("schedule", "linear"), ("schedule.lr", "\(lr)"), ("schedule.final_lr", "\(final)"), ("schedule.decay_start", "\(start)"),
                     ("schedule.decay_end", "\(end)"), ("schedule.warmup", "\(warmup)")]
        }
        meta += transport.config.keyValues + model.architectureMetadata + extraMetadata
        let n = model.parameterCount
        var sections: [(name: String, values: [Float])] = [("params", Array(UnsafeBufferPointer(start: model.parameters, count: n)))]
        if !ema.isEmpty { sections.append(("ema", ema)) }
        sections += [("adam_m", optimizer.m), ("adam_v", optimizer.v)]
        try Checkpoint(metadata: meta, sections: sections).write(to: path)
    }

    /// Rebuilds a trainer from a checkpoint: `makeModel` builds the architecture from the metadata; the
    /// weights, EMA, moments and step are restored so training continues bit-identically. `parameterCount`
    /// (the architecture's size, computed without allocating) is checked against the weights the file holds
    /// before `makeModel` runs, so metadata cannot make the reader allocate a model the file does not carry.
    public static func resume(from path: String, threads: Int = 0,
                              parameterCount: (([(key: String, value: String)]) throws -> Int)? = nil,
                              makeModel: ([(key: String, value: String)]) throws -> TrainableModel) throws -> Trainer {
        let ck = try Checkpoint.read(from: path)
        guard ck.value("format") == "libmixflow-trainer" else {
            throw MixflowError.format("\(path): not a trainer checkpoint (format = \(ck.value("format") ?? "missing"))")
        }
        func number(_ k: String) throws -> Double {
            guard let s = ck.value(k), let d = Double(s) else { throw MixflowError.format("\(path): metadata \(k) is missing or not a number") }
            return d
        }
        func integer(_ k: String) throws -> Int {
            guard let s = ck.value(k), let d = Int(s), d >= 0 else { throw MixflowError.format("\(path): metadata \(k) is missing or not a count") }
            return d
        }
        var config = TrainerConfig()
        guard let seed = ck.value("seed").flatMap(UInt64.init) else { throw MixflowError.format("\(path): metadata seed is missing") }
        config.seed = seed
        config.threads = threads
        config.optimizer.beta1 = try number("optimizer.beta1")
        config.optimizer.beta2 = try number("optimizer.beta2")
        config.optimizer.eps = try number("optimizer.eps")
        config.optimizer.weightDecay = try number("optimizer.weight_decay")
        config.emaDecay = try number("ema.decay")
        config.maxGradNorm = ck.value("clip.max_norm") == "none" ? nil : try number("clip.max_norm")
        if ck.value("repa.proj_coeff") != nil { config.alignmentWeight = try number("repa.proj_coeff") }   // absent before REPA
        if ck.value("schedule") == "linear" {
            config.schedule = .linearDecay(base: try number("schedule.lr"), final: try number("schedule.final_lr"),
                                           decayStart: try integer("schedule.decay_start"), decayEnd: try integer("schedule.decay_end"),
                                           warmup: try integer("schedule.warmup"))
        } else {
            config.schedule = .constant(try number("schedule.lr"))
        }
        var transportConfig = try TransportConfig(keyValues: ck.metadata, validating: false)
        transportConfig.threads = threads   // a thread count belongs to this process, not to the file
        let transport: Transport
        do { transport = try Transport(transportConfig) }   // validates the transport once
        catch let MixflowError.invalidArgument(m) { throw MixflowError.format("\(path): transport: \(m)") }
        if let parameterCount {
            let n: Int
            do { n = try parameterCount(ck.metadata) } catch let MixflowError.invalidArgument(m) { throw MixflowError.format("\(path): \(m)") }
            let held = ck.section("params")?.count ?? 0
            guard n == held else {
                throw MixflowError.format("\(path): the architecture in its metadata has \(n) parameters, its params section \(held)")
            }
        }
        let model = try makeModel(ck.metadata)
        let n = model.parameterCount
        func restore(_ name: String) throws -> [Float] {
            guard let s = ck.section(name) else { throw MixflowError.format("\(path): section \(name) is missing") }
            guard s.count == n else { throw MixflowError.format("\(path): section \(name) has \(s.count) floats, the model has \(n)") }
            return s
        }
        let params = try restore("params")
        params.withUnsafeBufferPointer { model.parameters.update(from: $0.baseAddress!, count: n) }
        let trainer: Trainer
        do { trainer = try Trainer(model: model, transport: transport, config: config) }   // validates config once
        catch let MixflowError.invalidArgument(m) { throw MixflowError.format("\(path): \(m)") }
        if config.emaDecay > 0 { trainer.ema = try restore("ema") }
        trainer.optimizer.m = try restore("adam_m")
        trainer.optimizer.v = try restore("adam_v")
        trainer.optimizer.step = try integer("optimizer.step")
        trainer.step = try integer("step")
        return trainer
    }
}
