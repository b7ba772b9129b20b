import MixflowCore
import Testing
@testable import MixflowMethod

/// The uniform-mixture ablation (m ~ U over the training interval, independent of t) next to MixFlow's
/// slowed mixture: same label t, different m; stored and restored with the configuration.
@Test(arguments: TimeConvention.allCases)
func uniformMixtureKeepsTAndDrawsMOverTheWholeInterval(convention: TimeConvention) throws {
    var config = TransportConfig()
    config.convention = convention
    config.gamma = 0.3
    let slowed = try Transport(config)
    config.mixture = .uniform
    let uniform = try Transport(config)
    let lo = uniform.interval.lowerBound, hi = uniform.interval.upperBound
    var below = 0, above = 0, sum = 0.0
    let n = 4000
    for i in 0..<n {
        let a = slowed.times(seed: 3, step: 2, sample: UInt32(i))
        let b = uniform.times(seed: 3, step: 2, sample: UInt32(i))
        #expect(a.t == b.t)
        #expect(Double(b.m) >= Float(lo).nextDown.asDouble && Double(b.m) <= Float(hi).nextUp.asDouble)
        // Noise levels: the uniform draw lands on both sides of t, the slowed one never at lower noise.
        let nt = convention.noiseLevel(Double(b.t)), nm = convention.noiseLevel(Double(b.m))
        if nm < nt { below += 1 } else { above += 1 }
        #expect(convention.noiseLevel(Double(a.m)) >= convention.noiseLevel(Double(a.t)) - 1e-6)
        sum += (Double(b.m) - lo) / (hi - lo)
    }
    #expect(below > n / 5 && above > n / 5)
    #expect(abs(sum / Double(n) - 0.5) < 0.02)          // mean of U[0, 1] within ~4 standard errors
}

@Test func mixtureIsStoredWithTheConfiguration() throws {
    var config = TransportConfig()
    config.mixture = .uniform
    let back = try TransportConfig(keyValues: config.keyValues)
    #expect(back == config)
    // A configuration written before the field existed reads back as the slowed mixture.
    let old = config.keyValues.filter { $0.key != "transport.mixture" }
    #expect(try TransportConfig(keyValues: old).mixture == .slowed)
    #expect(throws: MixflowError.self) { try TransportConfig(keyValues: [("transport.mixture", "sideways")]) }
}

private extension Float {
    var asDouble: Double { Double(self) }
}
