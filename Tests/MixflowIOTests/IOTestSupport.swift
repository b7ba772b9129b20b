#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowIO

/// Tests/Fixtures/onnx, found from this file's path (no Foundation, no resource bundle).
let fixtureRoot: String = {
    let file = "\(#filePath)"           // …/Tests/MixflowIOTests/IOTestSupport.swift
    return parentFolder(parentFolder(file)) + "/Fixtures/onnx"
}()

/// Rows of a generated TSV, without its `#` comment lines.
func tsvRows(_ path: String) -> [[String]] {
    guard let f = fopen(path, "r") else { fatalError("missing fixture \(path); run its generator") }
    defer { fclose(f) }
    var rows: [[String]] = []
    var line: UnsafeMutablePointer<CChar>?
    var cap = 0
    while getline(&line, &cap, f) > 0 {
        var s = String(cString: line!)
        if s.hasSuffix("\n") { s.removeLast() }
        if s.hasPrefix("#") || s.isEmpty { continue }
        rows.append(s.split(separator: "\t", omittingEmptySubsequences: false).map(String.init))
    }
    free(line)
    return rows
}

/// FNV-1a-64 over float32 words with every NaN as 0x7fc00000: the same digest as make_fixtures.fnv_f32.
func fnv(_ values: [Float]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for v in values {
        let w = v.isNaN ? 0x7FC0_0000 : v.bitPattern
        h = (h ^ UInt64(w)) &* 0x100_0000_01B3
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

func dimsText(_ dims: [Int64]) -> String { dims.map(String.init).joined(separator: ",") }

/// A fresh temporary folder, removed (recursively) by `remove`.
final class TempFolder {
    let path: String
    init() {
        var template = Array("/tmp/mixflow-io-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }
    deinit { remove() }
    func remove() {
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("rm"), strdup("-rf"), strdup(path), nil]
        var pid: pid_t = 0
        if posix_spawnp(&pid, "rm", nil, nil, &argv, environ) == 0 {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        for a in argv { free(a) }
    }
    func file(_ name: String) -> String { path + "/" + name }
}

func readBytes(_ path: String) -> [UInt8] {
    let f = try! ReadableFile(path)
    var out = [UInt8](repeating: 0, count: Int(f.size))
    try! out.withUnsafeMutableBytes { try f.read(into: $0.baseAddress!, count: $0.count, at: 0) }
    return out
}

func writeBytes(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0, "cannot write \(path)")
    bytes.withUnsafeBytes { try! writeAll(fd, $0, path: path) }
    close(fd)
}

/// Reads every convertible tensor of a reader (what a caller would do), returning the first error.
@discardableResult
func readAll(_ r: OnnxReader) -> MixflowError? {
    for (i, t) in r.tensors.enumerated() where t.isConvertibleToFloat {
        var buf = [Float](repeating: 0, count: t.count)
        do { try buf.withUnsafeMutableBufferPointer { try r.read(i, into: $0) } } catch let e as MixflowError {
            return e
        } catch { return .internal("\(error)") }
    }
    return nil
}

func kindName(_ e: MixflowError) -> String {
    switch e {
    case .format: return "format"
    case .io: return "io"
    case .unsupported: return "unsupported"
    case .invalidArgument: return "invalidArgument"
    default: return "other"
    }
}
