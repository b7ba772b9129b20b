import Foundation
import Testing
@testable import MixflowModels

// Conformance against Tests/Fixtures/sit/*, written by an independent PyTorch re-implementation of the
// official SiT (Tests/Fixtures/make_sit_fixtures.py, float64 reference on float32 weights and inputs).

extension Fixture {
    var sitConfig: SiTConfig {
        SiTConfig(depth: config["depth"]!, hidden: config["hidden"]!, heads: config["heads"]!, patch: config["patch"]!,
                  inputSize: config["input"]!, inChannels: config["channels"]!, numClasses: config["classes"]!,
                  learnSigma: config["learn_sigma"]! != 0)
    }
}

@Test(arguments: ["tiny_sigma", "tiny_nosigma"])
func sitMatchesTheTorchReference(_ name: String) throws {
    let fx = try Fixture(name)
    try expectMatchesDenoisingFixture(fx, try SiTModel(fx.sitConfig, seed: 0, threads: 2))
}

@Test func posEmbedEqualsTheReferenceTable() throws {
    // The fixture's pos_embed comes from the generator's numpy sin-cos (first half = column index).
    let fx = try Fixture("tiny_sigma")
    let model = try SiTModel(fx.sitConfig, seed: 3)
    let ref = fx.floats["param:pos_embed"]!
    let e = model.table.entries[0]
    for i in 0..<e.count { #expect(abs(model.params[e.offset + i] - ref[i]) <= 1e-6) }
}
