#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowIO
import Testing

// What a kill in the middle of a save leaves on disk. The kill itself is exercised by scripts/kill-test.py
// (real SIGKILLs at random moments); here the states it can leave are built step by step.

private func writePair(_ path: String, value: Float, count: Int = 64) throws -> OnnxWriter {
    let w = try OnnxWriter(path: path, externalThreshold: 0)
    let v = [Float](repeating: value, count: count)
    try v.withUnsafeBufferPointer { try w.add("w", dims: [Int64(count)], data: $0) }
    return w
}

@Test func aKillBetweenTheTwoRenamesLeavesThePreviousPairLoadable() throws {
    let tmp = TempFolder()
    let path = tmp.file("m.onnx")
    try writePair(path, value: 1).finish()
    // The second save is killed after its data file was put in place, before the model was.
    let second = try writePair(path, value: 2)
    try second.dataFile!.commit()
    second.modelFile.discard()
    #expect(try OnnxReader(path: path).read("w") == [Float](repeating: 1, count: 64))
    // The next complete save replaces the pair and removes what the killed one left.
    try writePair(path, value: 3).finish()
    #expect(try OnnxReader(path: path).read("w") == [Float](repeating: 3, count: 64))
    #expect(listing(tmp.path).count == 2)
}

@Test func aDataFileFromAnotherSaveIsRefused() throws {
    let a = TempFolder(), b = TempFolder()
    try writePair(a.file("m.onnx"), value: 1).finish()
    try writePair(b.file("m.onnx"), value: 2).finish()
    #expect(listing(a.path) == ["m.onnx", "m.onnx.data"])
    // Same name, same size, another save: a copy gone wrong.
    writeBytes(a.file("m.onnx.data"), readBytes(b.file("m.onnx.data")))
    do {
        _ = try OnnxReader(path: a.file("m.onnx"))
        Issue.record("accepted a data file from another save")
    } catch MixflowError.format(let m) {
        #expect(m.contains("another save"))
    }
}

@Test func repeatedSavesKeepOneDataFileAndNoTemporaries() throws {
    let tmp = TempFolder()
    for k in 0..<5 {
        try writePair(tmp.file("m.onnx"), value: Float(k)).finish()
        #expect(listing(tmp.path).count == 2)
        #expect(try OnnxReader(path: tmp.file("m.onnx")).read("w") == [Float](repeating: Float(k), count: 64))
    }
    // Without external data the last data file goes too.
    let w = try OnnxWriter(path: tmp.file("m.onnx"), externalThreshold: -1)
    try [Float(7)].withUnsafeBufferPointer { try w.add("w", dims: [1], data: $0) }
    try w.finish()
    #expect(listing(tmp.path) == ["m.onnx"])
}

@Test func anUnfinishedSaveHasNoNameOnDisk() throws {
    let tmp = TempFolder()
    let s = try AtomicFile.Stream(path: tmp.file("x.bin"))
    try s.write([1, 2, 3])
    // O_TMPFILE: a process killed here leaves nothing behind.
    #expect(listing(tmp.path).isEmpty)
    try s.commit()
    #expect(listing(tmp.path) == ["x.bin"] && readBytes(tmp.file("x.bin")) == [1, 2, 3])
}

@Test func temporariesOfKilledSavesAreRemovedByTheNextSave() throws {
    let tmp = TempFolder()
    // What killed saves leave where O_TMPFILE is unsupported (a pid that does not exist), and what earlier
    // versions left; a live process's temporary (ours) is kept.
    let dead = Int32.max - 1
    writeBytes(tmp.file(".x.bin.tmp-\(dead)-a1b2c3"), [0])
    writeBytes(tmp.file("x.bin.tmp-\(dead)-12345"), [0])
    writeBytes(tmp.file(".x.bin.tmp-\(getpid())-live"), [0])
    writeBytes(tmp.file(".y.bin.tmp-\(dead)-other"), [0])
    let s = try AtomicFile.Stream(path: tmp.file("x.bin"), unnamed: false)
    try s.write(Array("new".utf8))
    try s.commit()
    #expect(listing(tmp.path) == [".x.bin.tmp-\(getpid())-live", ".y.bin.tmp-\(dead)-other", "x.bin"])
    #expect(readBytes(tmp.file("x.bin")) == Array("new".utf8))
}
