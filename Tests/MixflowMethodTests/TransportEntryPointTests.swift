import Testing
import MixflowCore
@testable import MixflowMethod

// γ (and every real transport parameter) is one number whichever entry point gave it (issue 12 item 11): the
// CLI passes the Double 0.8, C and Python pass the float 0.8f, and both must draw the same m.

@Test func gammaFromTheCLIAndFromAFloat32DrawTheSameSlowedTimes() throws {
    var cli = TransportConfig(), c = TransportConfig()
    cli.gamma = 0.8
    c.gamma = Double(Float(0.8))                         // what mixflow_transport_params.gamma carries
    cli.timeShift = (768.0 * 256 / 4096).squareRoot()     // the RAE shift, computed in Double by the preset
    c.timeShift = Double(Float(cli.timeShift))
    let a = try Transport(cli), b = try Transport(c)
    #expect(a.config == b.config)
    #expect(a.config.gamma == 0.8 && a.config.keyValues.contains { $0.key == "transport.gamma" && $0.value == "0.8" })
    var differ = 0
    for i in 0..<20_000 where a.times(seed: 7, step: 3, sample: UInt32(i)) != b.times(seed: 7, step: 3, sample: UInt32(i)) {
        differ += 1
    }
    #expect(differ == 0)
}
