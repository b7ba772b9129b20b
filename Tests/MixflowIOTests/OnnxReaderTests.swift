import MixflowCore
@testable import MixflowIO
import Testing

// Expected values come from onnx.numpy_helper.to_array (pip onnx) via Tests/Fixtures/onnx/make_fixtures.py.

@Test func fixturesReadLikeNumpyHelper() throws {
    let rows = tsvRows(fixtureRoot + "/expected.tsv")
    #expect(rows.count == 22)
    var readers: [String: OnnxReader] = [:]
    for row in rows {
        let (file, name, type, dims, digest) = (row[0], row[1], Int32(row[2])!, row[3], row[4])
        let r = try readers[file] ?? OnnxReader(path: fixtureRoot + "/" + file)
        readers[file] = r
        let i = try #require(r.index(of: name), "\(file): \(name)")
        #expect(r.tensors[i].dataType == type)
        #expect(dimsText(r.tensors[i].dims) == dims, "\(file): \(name)")
        #expect(fnv(try r.read(name)) == digest, "\(file): \(name)")
    }
}

@Test func storageKindsAreReported() throws {
    let raw = try OnnxReader(path: fixtureRoot + "/good/raw.onnx")
    #expect(raw.tensors[raw.index(of: "W")!].storage == .raw(byteCount: 48))
    #expect(raw.tensors[raw.index(of: "b")!].storage == .typed)
    #expect(raw.tensors[raw.index(of: "empty")!].storage == .empty)
    #expect(raw.tensors[raw.index(of: "scalar")!].dims == [] && raw.tensors[raw.index(of: "scalar")!].count == 1)
    #expect(try raw.read("b") == [0.5, -1.25, 2.0])
    let ext = try OnnxReader(path: fixtureRoot + "/good/ext_single/model.onnx")
    guard case .external(let e) = ext.tensors[ext.index(of: "blocks.0.attn.qkv.bias")!].storage else {
        Issue.record("expected external storage"); return
    }
    #expect(e.location == "model.onnx.data" && e.length == 64 && e.path.hasSuffix("/good/ext_single/model.onnx.data"))
}

@Test func metadataIsReadAsBytes() throws {
    let r = try OnnxReader(path: fixtureRoot + "/good/raw.onnx")
    #expect(r.metadataValue("mixflow.arch") == Array("SiT-S/2".utf8))
    #expect(r.metadataValue("note") == Array("café".utf8))
    #expect(r.metadataValue("missing") == nil)
    #expect(r.metadata.count == 3 && r.numNodes == 0)
}

@Test func readRejectsAWrongBufferSize() throws {
    let r = try OnnxReader(path: fixtureRoot + "/good/raw.onnx")
    var small = [Float](repeating: 0, count: 11)
    #expect(throws: MixflowError.invalidArgument("tensor \"W\" has 12 elements (dims [4, 3]), the buffer holds 11")) {
        try small.withUnsafeMutableBufferPointer { try r.read(r.index(of: "W")!, into: $0) }
    }
    #expect(throws: MixflowError.self) { try r.read("nope") }
}

@Test func externalDataThatShrankAfterOpenIsAnError() throws {
    let tmp = TempFolder()
    let src = fixtureRoot + "/good/ext_single/"
    writeBytes(tmp.file("model.onnx"), readBytes(src + "model.onnx"))
    let data = readBytes(src + "model.onnx.data")
    writeBytes(tmp.file("model.onnx.data"), data)
    let r = try OnnxReader(path: tmp.file("model.onnx"))
    writeBytes(tmp.file("model.onnx.data"), Array(data.prefix(100)))
    let e = readAll(r)
    #expect(e.map(kindName) == "format")
    #expect(e?.message.contains("too short") == true)
}

@Test func unconvertibleTypesAreRefusedBeforeAllocating() throws {
    // A FLOAT8E4M3FN (17) tensor whose dims claim 2^40 elements over 1 raw byte: open succeeds (the type is
    // never read), reading must say "unsupported" without trying to allocate 4 TiB.
    let r = try OnnxReader(path: fixtureRoot + "/hostile/float8_huge.onnx")
    #expect(r.tensors[0].dataType == 17 && !r.tensors[0].isConvertibleToFloat)
    #expect { try r.read("w") } throws: { e in
        (e as? MixflowError).map { kindName($0) == "unsupported" && $0.message.contains("FLOAT8E4M3FN (17)") } ?? false
    }
}
