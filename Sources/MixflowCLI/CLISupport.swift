#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import MixflowCore
import MixflowEval
import MixflowMethod

/// Wall-clock time since creation, printed as "1m23s".
struct Stopwatch: CustomStringConvertible {
    let start = Stopwatch.now()
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
    var seconds: Double { Stopwatch.now() - start }
    var description: String { format(seconds) }
}

func format(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 60 ? "\(s / 60)m\(s % 60 < 10 ? "0" : "")\(s % 60)s" : "\(s)s"
}

/// A one-line progress bar with an ETA on stderr (so that stdout can be piped), redrawn in place on a terminal
/// (plain lines otherwise).
final class Progress {
    let label: String, total: Int
    let watch = Stopwatch()
    var first: Int?
    var lastDraw = 0.0
    let tty = isatty(2) != 0

    init(label: String, total: Int) { self.label = label; self.total = total }

    func update(_ done: Int, note: String) {
        if first == nil { first = done - 1 }
        let t = watch.seconds
        guard done == total || t - lastDraw > (tty ? 0.2 : 10) else { return }
        lastDraw = t
        let rate = Double(done - (first ?? 0)) / max(t, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 30, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\(label) [\(bar)] \(done)/\(total)  \(note)  elapsed \(format(t)), eta \(format(eta))"
        fputs(tty ? "\r\(line)\u{1B}[K" : line + "\n", stderr)
    }

    func finish() { if tty { fputs("\n", stderr) } }
}

/// Fails validation unless `path` is a readable file; `option` names the command-line option it came from.
func requireFile(_ path: String, _ option: String) throws {
    guard access(path, R_OK) == 0 else { throw ValidationError("\(option): cannot read \(path)") }
}

/// Fails validation unless `value` is in `range`; the message names the command-line option.
func requireRange<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ option: String) throws {
    guard range.contains(value) else {
        throw ValidationError("\(option) must be in [\(range.lowerBound), \(range.upperBound)], got \(value)")
    }
}

/// The sampler methods the commands accept, by name.
let samplerMethods: [String: SamplerMethod] = ["euler": .euler, "heun": .heun, "midpoint": .midpoint, "rk4": .rk4,
                                               "dopri5": .dopri5]

/// Left-aligned first column, right-aligned others.
func formatTable(_ rows: [[String]]) -> String {
    guard let columns = rows.map(\.count).max() else { return "" }
    let widths = (0..<columns).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { c, cell in
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return c == 0 ? cell + pad : pad + cell
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

/// `x` with `digits` decimals (no Foundation in this tool).
func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (abs(x) * p).rounded()
    let whole = Int(r / p), frac = Int(r.truncatingRemainder(dividingBy: p))
    var f = "\(frac)"
    while f.count < digits { f = "0" + f }
    return (x < 0 && r != 0 ? "-" : "") + "\(whole)" + (digits > 0 ? "." + f : "")
}

/// A relative path to a file shipped in the repository (share/featnet, models/...): as given when it exists from
/// the working directory, else under $MIXFLOW_ROOT, else under the nearest ancestor folder of the executable
/// that has it, as `<folder>/<path>` (the repository it was built in: <root>/.build/<triple>/<config>/mixflow-cli)
/// or `<folder>/share/mixflow/<path>` (an install: <prefix>/bin/mixflow with the repository's models/ and share/
/// files in <prefix>/share/mixflow, share/featnet as featnet; see scripts/install.sh), so the defaults work from
/// any directory.
func repositoryPath(_ path: String) -> String {
    guard !path.hasPrefix("/"), access(path, F_OK) != 0 else { return path }
    var roots: [String] = []
    if let env = getenv("MIXFLOW_ROOT") { roots.append(String(cString: env)) }
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if length > 0 {
        let exe = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var parts = exe.split(separator: "/", omittingEmptySubsequences: false)
        while parts.count > 1 {
            parts.removeLast()
            roots.append(parts.joined(separator: "/"))
        }
    }
    let installed = path.hasPrefix("share/") ? String(path.dropFirst("share/".count)) : path
    for root in roots {
        for candidate in ["\(root)/\(path)", "\(root)/share/mixflow/\(installed)"] where access(candidate, F_OK) == 0 {
            return candidate
        }
    }
    return path
}

/// The images of an IDX file as float32 in [-1, 1] (x / 127.5 - 1), in file order.
func readImages(_ path: String) throws -> [Float] {
    let file = try IDXArray(path: path)
    try MemoryBudget.check(file.count, elementSize: MemoryLayout<Float>.size, "\(path) as float32 (\(file.shape))")
    var x = [Float](repeating: 0, count: file.count)
    try x.withUnsafeMutableBufferPointer { try file.readFloat(into: $0.baseAddress!, scaling: .symmetric) }
    return x
}

/// Creates the output folders `folders` and the folders of the output files `files` (with their missing
/// parents, like `mkdir -p`) and checks that each is writable: called first thing, so a bad output path is
/// refused before any work instead of after a training run.
func prepareOutputs(folders: [String] = [], files: [String?] = []) throws {
    let all = folders + files.compactMap { $0 }.map { path in
        path.lastIndex(of: "/").map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
    }
    for folder in all {
        var prefix = folder.hasPrefix("/") ? "/" : ""
        for part in folder.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw ValidationError("cannot create the output folder \(prefix): \(String(cString: strerror(errno)))")
            }
            prefix += "/"
        }
        var st = stat()
        guard stat(folder, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw ValidationError("the output folder \(folder) is not a folder")
        }
        guard access(folder, W_OK) == 0 else {
            throw ValidationError("the output folder \(folder) is not writable: \(String(cString: strerror(errno)))")
        }
    }
}
