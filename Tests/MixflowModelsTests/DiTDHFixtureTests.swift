import Foundation
import Testing
@testable import MixflowModels

// Conformance against Tests/Fixtures/ditdh/*, written by an independent PyTorch re-implementation of DiT^DH
// from docs/exactness.md §6 (Tests/Fixtures/make_ditdh_fixtures.py, float64 reference on float32 weights and inputs).

let ditdhFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/ditdh")

extension Fixture {
    var ditdhConfig: DiTDHConfig {
        DiTDHConfig(encoderDepth: config["depth"]!, encoderHidden: config["hidden"]!, encoderHeads: config["heads"]!,
                    headDepth: config["head_depth"]!, headHidden: config["head_hidden"]!, headHeads: config["head_heads"]!,
                    inputSize: config["input"]!, inChannels: config["channels"]!, numClasses: config["classes"]!)
    }
}

@Test(arguments: ["tiny", "tiny_identity"])
func ditdhMatchesTheTorchReference(_ name: String) throws {
    let fx = try Fixture(name, directory: ditdhFixtures)
    let model = try DiTDHModel(fx.ditdhConfig, seed: 0, threads: 2)
    #expect(model.table.sProjW == nil ? name == "tiny_identity" : name == "tiny")
    try expectMatchesDenoisingFixture(fx, model)
}

/// The fixed tables the model computes at init against the generator's float64 numpy tables: 1e-6 absolute
/// (float32 rounding of values in [−1, 1], plus the float32 angle the official code forms).
@Test(arguments: ["tiny", "tiny_identity"])
func fixedTablesEqualTheReference(_ name: String) throws {
    let fx = try Fixture(name, directory: ditdhFixtures)
    let model = try DiTDHModel(fx.ditdhConfig, seed: 9)
    let tb = model.table
    for k in [tb.posEmbed, tb.encCos, tb.encSin, tb.decCos, tb.decSin] {
        let e = tb.entries[k]
        let ref = try #require(fx.floats["param:" + e.name])
        var worst: Float = 0
        for i in 0..<e.count { worst = max(worst, abs(model.params[e.offset + i] - ref[i])) }
        #expect(worst <= 1e-6, "\(e.name): max error \(worst)")
    }
}
