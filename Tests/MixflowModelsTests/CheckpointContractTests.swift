import Testing
#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowMethod
@testable import MixflowModels

// Contract gaps of issue 12 item 10: one value per metadata key, and a resume takes this process's thread count.

@Test func duplicateMetadataKeysAreNeitherWrittenNorRead() throws {
    let dupes = Checkpoint(metadata: [("gamma", "0.8"), ("gamma", "0.4")], sections: [("params", [1])])
    #expect(throws: MixflowError.invalidArgument("checkpoint metadata key \"gamma\" appears twice; a reader could not tell which value holds")) {
        try dupes.write(to: temporaryPath("dupes.mixflow"))
    }
    // A file written by someone else: keys "ga" and "gb" patched to "ga" twice, with the checksum recomputed.
    let path = temporaryPath("patched.mixflow")
    try Checkpoint(metadata: [("ga", "0.8"), ("gb", "0.4")], sections: [("params", [1])]).write(to: path)
    var bytes = readAll(path)
    let at = bytes.indices.first { bytes[$0] == UInt8(ascii: "g") && bytes[$0 + 1] == UInt8(ascii: "b") }!
    bytes[at + 1] = UInt8(ascii: "a")
    var hash = FNV1a()
    bytes[0..<(bytes.count - 8)].withUnsafeBytes { hash.add($0) }
    withUnsafeBytes(of: hash.value.littleEndian) { for (i, b) in $0.enumerated() { bytes[bytes.count - 8 + i] = b } }
    writeAll(path, bytes)
    #expect(throws: MixflowError.format("\(path): metadata key \"ga\" appears twice")) { try Checkpoint.read(from: path) }
}

@Test func resumeUsesTheGivenThreadCountForTheTransportToo() throws {
    let path = temporaryPath("threads.mixflow")
    try makeTrainer(threads: 1).save(to: path)
    let resumed = try Trainer.resume(from: path, threads: 3) { _ in ToyModel(dim: 48) }
    #expect(resumed.config.threads == 3)
    #expect(resumed.transport.config.threads == 3)
}

private func readAll(_ path: String) -> [UInt8] {
    let f = fopen(path, "rb")!
    defer { fclose(f) }
    var out = [UInt8](), buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n == 0 { return out }
        out += buf[0..<n]
    }
}

private func writeAll(_ path: String, _ bytes: [UInt8]) {
    let f = fopen(path, "wb")!
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}
