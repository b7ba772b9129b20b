#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowIO
import Testing

// The writer's output is checked against pip onnx (numpy_helper.to_array) in
// bindings/python/tests/test_tensor_file.py; here: layout decisions, atomicity and argument checks.

@Test func writerSplitsInlineAndExternalAtTheThreshold() throws {
    let tmp = TempFolder()
    let w = try OnnxWriter(path: tmp.file("m.onnx"), externalThreshold: 64)
    let big = (0..<40).map { Float($0) * 0.25 - 3 }, small: [Float] = [1, -2, .infinity]
    try big.withUnsafeBufferPointer { try w.add("blocks.0.attn.qkv.weight", dims: [5, 8], data: $0) }
    try small.withUnsafeBufferPointer { try w.add("b", dims: [3], data: $0) }
    try big.withUnsafeBufferPointer { try w.add("second", dims: [40], data: $0) }
    try w.setMetadata("mixflow.arch", "SiT-XL/2")
    // Nothing is visible before finish.
    #expect(access(tmp.file("m.onnx"), F_OK) != 0 && access(tmp.file("m.onnx.data"), F_OK) != 0)
    try w.finish()
    let r = try OnnxReader(path: tmp.file("m.onnx"))
    #expect(r.tensors.map(\.name) == ["blocks.0.attn.qkv.weight", "b", "second"])
    #expect(r.tensors[1].storage == .raw(byteCount: 12))
    guard case .external(let a) = r.tensors[0].storage, case .external(let b) = r.tensors[2].storage else {
        Issue.record("expected external storage"); return
    }
    // 160 bytes each; the second starts at the next 64-byte boundary.
    #expect(a.offset == 0 && a.length == 160 && b.offset == 192 && b.length == 160 && a.location == "m.onnx.data")
    #expect(try r.read("blocks.0.attn.qkv.weight") == big && r.read("second") == big && r.read("b") == small)
    #expect(r.metadataValue("mixflow.arch") == Array("SiT-XL/2".utf8))
    // Only the two final files remain: no temporaries.
    #expect(listing(tmp.path) == ["m.onnx", "m.onnx.data"])
}

@Test func negativeThresholdKeepsEverythingInline() throws {
    let tmp = TempFolder()
    let w = try OnnxWriter(path: tmp.file("m.onnx"), externalThreshold: -1)
    let v = [Float](repeating: 0.5, count: 1000)
    try v.withUnsafeBufferPointer { try w.add("x", dims: [10, 100], data: $0) }
    try w.finish()
    #expect(listing(tmp.path) == ["m.onnx"])
    #expect(try OnnxReader(path: tmp.file("m.onnx")).read("x") == v)
}

@Test func writerRejectsBadArgumentsAndLeavesNothingBehind() throws {
    let tmp = TempFolder()
    do {
        let w = try OnnxWriter(path: tmp.file("m.onnx"), externalThreshold: 0)
        let v: [Float] = [1, 2, 3, 4]
        try v.withUnsafeBufferPointer { try w.add("x", dims: [4], data: $0) }
        #expect(throws: MixflowError.invalidArgument("tensor \"x\" was already added")) {
            try v.withUnsafeBufferPointer { try w.add("x", dims: [4], data: $0) }
        }
        #expect(throws: MixflowError.invalidArgument("tensor \"y\" has shape [3] (3 elements), the buffer holds 4")) {
            try v.withUnsafeBufferPointer { try w.add("y", dims: [3], data: $0) }
        }
        #expect(throws: MixflowError.invalidArgument("tensor \"y\" shape dimension 0 must be > 0, got -4")) {
            try v.withUnsafeBufferPointer { try w.add("y", dims: [-4], data: $0) }
        }
        #expect(throws: MixflowError.invalidArgument("tensor name must be non-empty and NUL-free")) {
            try v.withUnsafeBufferPointer { try w.add("", dims: [4], data: $0) }
        }
        try w.setMetadata("k", "v")
        #expect(throws: MixflowError.invalidArgument("metadata key \"k\" was already set")) { try w.setMetadata("k", "w") }
        // Released without finish: the temporaries go away.
    }
    #expect(listing(tmp.path) == [])
    #expect(throws: MixflowError.self) { try OnnxWriter(path: tmp.file("no/such/dir/m.onnx"), externalThreshold: 0) }
}

@Test func atomicFileReplacesOrLeavesTheOldFile() throws {
    let tmp = TempFolder()
    writeBytes(tmp.file("f"), Array("old".utf8))
    do {
        let f = try AtomicFile.Stream(path: tmp.file("f"))
        try f.write(Array("half-writ".utf8))
        // Not committed: the old file is intact when the AtomicFile goes away.
    }
    #expect(readBytes(tmp.file("f")) == Array("old".utf8))
    let f = try AtomicFile.Stream(path: tmp.file("f"))
    try f.write(Array("new".utf8))
    try f.commit()
    #expect(readBytes(tmp.file("f")) == Array("new".utf8))
    #expect(listing(tmp.path) == ["f"])
    #expect(throws: MixflowError.self) { try f.write([1]) }
}

/// Sorted names in a folder, dot-files included (temporaries are dot-files).
func listing(_ path: String) -> [String] {
    guard let d = opendir(path) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}
