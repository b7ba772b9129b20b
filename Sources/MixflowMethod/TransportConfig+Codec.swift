import MixflowCore

/// `key=value` text form of a transport configuration, for checkpoints and ONNX metadata.
extension TransportConfig {
    public var keyValues: [(key: String, value: String)] {
        var kv: [(String, String)] = [
            ("transport.path", "\(path)"), ("transport.convention", "\(convention)"),
            ("transport.prediction", "\(prediction)"), ("transport.loss_weight", "\(lossWeight)"),
            ("transport.target_time", "\(targetTime)"), ("transport.gamma", "\(gamma)"),
            ("transport.train_eps", trainEps.map { "\($0)" } ?? "official"), ("transport.time_shift", "\(timeShift)"),
            ("transport.input_perturbation", "\(inputPerturbation)"), ("transport.mixture", "\(mixture)"),
        ]
        switch timeDistribution {
        case .uniform: kv.append(("transport.time_dist", "uniform"))
        case .beta21: kv.append(("transport.time_dist", "beta21"))
        case .logitNormal(let mean, let std):
            kv.append(("transport.time_dist", "logit_normal"))
            kv.append(("transport.logit_normal_mean", "\(mean)"))
            kv.append(("transport.logit_normal_std", "\(std)"))
        }
        return kv.map { (key: $0.0, value: $0.1) }
    }

    /// Parses `keyValues`; unknown keys are ignored, missing ones keep their defaults, bad values throw.
    public init(keyValues: [(key: String, value: String)], validating: Bool = true) throws {
        self.init()
        func value(_ k: String) -> String? { keyValues.last(where: { $0.key == "transport." + k })?.value }
        func number(_ k: String) throws -> Double? {
            guard let s = value(k) else { return nil }
            guard let d = Double(s) else { throw MixflowError.format("transport.\(k) is not a number: \"\(s)\"") }
            return d
        }
        func choice<E: CaseIterable>(_ k: String, _ type: E.Type) throws -> E? {
            guard let s = value(k) else { return nil }
            guard let e = E.allCases.first(where: { "\($0)" == s }) else {
                throw MixflowError.format("transport.\(k) has unknown value \"\(s)\"")
            }
            return e
        }
        path = try choice("path", InterpolationPath.self) ?? path
        convention = try choice("convention", TimeConvention.self) ?? convention
        prediction = try choice("prediction", Prediction.self) ?? prediction
        lossWeight = try choice("loss_weight", LossWeight.self) ?? lossWeight
        targetTime = try choice("target_time", TargetTime.self) ?? targetTime
        mixture = try choice("mixture", Mixture.self) ?? mixture
        gamma = try number("gamma") ?? gamma
        if let e = value("train_eps"), e != "official" { trainEps = try number("train_eps") }
        timeShift = try number("time_shift") ?? timeShift
        inputPerturbation = try number("input_perturbation") ?? inputPerturbation
        switch value("time_dist") {
        case nil, "beta21": timeDistribution = .beta21
        case "uniform": timeDistribution = .uniform
        case "logit_normal":
            timeDistribution = .logitNormal(mean: try number("logit_normal_mean") ?? 0, std: try number("logit_normal_std") ?? 1)
        case let other?: throw MixflowError.format("transport.time_dist has unknown value \"\(other)\"")
        }
        // `validating` false: the caller hands the config to `Transport`, which validates it (once).
        if validating { try validateAsFileContent() }
    }

    /// `validate`, reporting a bad value as file content (`.format`, "transport: …").
    public func validateAsFileContent() throws {
        do { try validate() } catch let MixflowError.invalidArgument(m) { throw MixflowError.format("transport: " + m) }
    }
}
