import Testing
#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowModels

func temporaryPath(_ name: String) -> String {
    let dir = "/tmp/mixflow-tests-\(getpid())"
    mkdir(dir, 0o755)
    return "\(dir)/\(name)"
}

func sample() -> Checkpoint {
    Checkpoint(metadata: [("arch", "SiT-S/2"), ("step", "1234"), ("gamma", "0.8")],
               sections: [("params", [1, 2, 3, .pi]), ("ema", [0.5, -0.25, 7, 1e-30]), ("empty", [])])
}

@Test func checkpointRoundTripsBitForBit() throws {
    let path = temporaryPath("roundtrip.mixflow")
    try sample().write(to: path)
    let back = try Checkpoint.read(from: path)
    #expect(back == sample())
    #expect(back.value("step") == "1234" && back.section("ema")! == [0.5, -0.25, 7, 1e-30])
}

@Test func streamingHashDoesNotDependOnChunking() {
    let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 37) }
    var whole = FNV1a()
    bytes.withUnsafeBytes { whole.add($0) }
    for split in [1, 3, 7, 8, 13, 500, 999] {
        var parts = FNV1a()
        bytes.withUnsafeBytes { b in
            parts.add(UnsafeRawBufferPointer(rebasing: b[0..<split]))
            parts.add(UnsafeRawBufferPointer(rebasing: b[split...]))
        }
        #expect(parts.value == whole.value)
    }
}

@Test func everyTruncationAndCorruptionIsAFormatError() throws {
    let path = temporaryPath("good.mixflow")
    try sample().write(to: path)
    let fd = open(path, O_RDONLY)
    var st = stat(); fstat(fd, &st)
    var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
    _ = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    close(fd)
    let bad = temporaryPath("bad.mixflow")
    func attempt(_ content: [UInt8]) -> MixflowError? {
        let f = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = content.withUnsafeBytes { write(f, $0.baseAddress, $0.count) }
        close(f)
        do { _ = try Checkpoint.read(from: bad); return nil } catch let e as MixflowError { return e } catch { return .internal("\(error)") }
    }
    for cut in 0..<bytes.count {
        guard case .format = attempt(Array(bytes[..<cut])) else { Issue.record("truncation at \(cut) not caught"); continue }
    }
    for position in stride(from: 0, to: bytes.count, by: 3) {
        var corrupted = bytes
        corrupted[position] ^= 0x5A
        guard case .format = attempt(corrupted) else { Issue.record("corruption at \(position) not caught"); continue }
    }
    guard case .format = attempt(bytes + [0]) else { Issue.record("appended byte not caught"); return }
    // A header that announces a huge section must fail before allocating it.
    var huge = bytes
    let countOffset = 13 + 4 + 4 + "arch=SiT-S/2\nstep=1234\ngamma=0.8\n".utf8.count + 4 + 4 + 6
    for k in 0..<8 { huge[countOffset + k] = 0xFF }
    guard case .format(let message) = attempt(huge) else { Issue.record("huge section not caught"); return }
    #expect(message.contains("more than the file holds"))
}

@Test func missingFilesAreIOErrorsAndFailedWritesLeaveTheOldFile() throws {
    #expect(throws: MixflowError.self) { try Checkpoint.read(from: "/nonexistent/x.mixflow") }
    let path = temporaryPath("keep.mixflow")
    try sample().write(to: path)
    var broken = sample()
    broken.metadata.append(("bad\nkey", "x"))
    #expect(throws: MixflowError.self) { try broken.write(to: path) }
    #expect(try Checkpoint.read(from: path) == sample())
    #expect(throws: MixflowError.self) { try sample().write(to: "/nonexistent-dir/x.mixflow") }
}
