import MixflowCore
import Testing
@testable import MixflowModels

@Test func sitXL2StateDictMatchesSpecAppendixA() throws {
    let table = SiTParameterTable(try SiTConfig.named("SiT-XL/2"))
    #expect(table.entries.count == 292)
    #expect(table.count == 675_129_632)
    #expect(table.count - table.entries[0].count == 674_834_720)
    let head: [(String, [Int])] = [
        ("pos_embed", [1, 256, 1152]), ("x_embedder.proj.weight", [1152, 4, 2, 2]), ("x_embedder.proj.bias", [1152]),
        ("t_embedder.mlp.0.weight", [1152, 256]), ("t_embedder.mlp.0.bias", [1152]),
        ("t_embedder.mlp.2.weight", [1152, 1152]), ("t_embedder.mlp.2.bias", [1152]),
        ("y_embedder.embedding_table.weight", [1001, 1152]),
        ("blocks.0.attn.qkv.weight", [3456, 1152]), ("blocks.0.attn.qkv.bias", [3456]),
        ("blocks.0.attn.proj.weight", [1152, 1152]), ("blocks.0.attn.proj.bias", [1152]),
        ("blocks.0.mlp.fc1.weight", [4608, 1152]), ("blocks.0.mlp.fc1.bias", [4608]),
        ("blocks.0.mlp.fc2.weight", [1152, 4608]), ("blocks.0.mlp.fc2.bias", [1152]),
        ("blocks.0.adaLN_modulation.1.weight", [6912, 1152]), ("blocks.0.adaLN_modulation.1.bias", [6912]),
        ("blocks.1.attn.qkv.weight", [3456, 1152]),
    ]
    for (i, (name, shape)) in head.enumerated() {
        #expect(table.entries[i].name == name && table.entries[i].shape == shape)
    }
    let tail: [(String, [Int])] = [
        ("blocks.27.adaLN_modulation.1.bias", [6912]),
        ("final_layer.linear.weight", [32, 1152]), ("final_layer.linear.bias", [32]),
        ("final_layer.adaLN_modulation.1.weight", [2304, 1152]), ("final_layer.adaLN_modulation.1.bias", [2304]),
    ]
    for (k, (name, shape)) in tail.enumerated() {
        let e = table.entries[table.entries.count - tail.count + k]
        #expect(e.name == name && e.shape == shape)
    }
    // Packed back to back in order; only pos_embed is fixed.
    var offset = 0
    for e in table.entries {
        #expect(e.offset == offset && e.count == e.shape.reduce(1, *))
        offset += e.count
        #expect(e.trainable == (e.name != "pos_embed"))
    }
    #expect(table.index(of: "blocks.13.mlp.fc2.bias") == SiTParameterTable.block(13, SiTParameterTable.fc2B))
}

@Test(arguments: [("SiT-S/2", 32_963_360), ("SiT-B/2", 130_512_416), ("SiT-L/2", 458_102_816),
                  ("SiT-XL/2", 675_129_632), ("SiT-XL/4", 675_074_432), ("SiT-XL/8", 675_683_072)])
func parameterCountsMatchSpecTable(_ name: String, _ expected: Int) throws {
    let c = try SiTConfig.named(name)
    #expect(SiTParameterTable(c).count == expected)
    #expect(SiTParameterTable.count(c) == expected)
}

@Test func learnSigmaFalseHalvesTheFinalLinear() throws {
    let t = SiTParameterTable(try SiTConfig.named("SiT-XL/2", learnSigma: false))
    #expect(t.entries[t.final(SiTParameterTable.finalLinW)].shape == [16, 1152])
    #expect(t.entries[t.final(SiTParameterTable.finalLinB)].shape == [16])
}

@Test func configNamesAndConstraintsAreValidated() throws {
    #expect(try SiTConfig.named("sit-b-4").patch == 4)
    for bad in ["SiT-M/2", "SiT-XL/3", "DiT-XL/2", "SiT-XL", ""] {
        #expect(throws: MixflowError.self) { try SiTConfig.named(bad) }
    }
    let bad: [SiTConfig] = [
        SiTConfig(depth: 1, hidden: 30, heads: 4, patch: 2),             // hidden % heads
        SiTConfig(depth: 1, hidden: 6, heads: 3, patch: 2),              // hidden % 4
        SiTConfig(depth: 1, hidden: 8, heads: 2, patch: 3, inputSize: 8), // input % patch
        SiTConfig(depth: 0, hidden: 8, heads: 2, patch: 2),
        SiTConfig(depth: 1, hidden: 8, heads: 2, patch: 2, numClasses: 0),
    ]
    for c in bad { #expect(throws: MixflowError.self) { try c.validate() } }
}
