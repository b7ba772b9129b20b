#if canImport(Glibc)
import Glibc
#endif

/// The instruction-set levels libmixflow's C kernels are built for (the GEMM, Sources/CGemm). The levels give
/// the same bits; only the speed differs, so the level is chosen once per process: the best the CPU supports
/// and the environment allows.
public enum ISALevel: Int32, CaseIterable, Comparable, Sendable {
    case portable = 0, avx2 = 1, avx512 = 2

    public var name: String { ["portable", "avx2", "avx512"][Int(rawValue)] }

    public static func < (a: ISALevel, b: ISALevel) -> Bool { a.rawValue < b.rawValue }

    /// The highest level the environment allows: MIXFLOW_DISABLE_AVX512=1 lowers to AVX2, MIXFLOW_DISABLE_AVX2=1
    /// to portable (it disables AVX-512 too). For tests and for checking the lower paths on a big machine.
    public static let allowed: ISALevel = {
        func disabled(_ name: String) -> Bool { getenv(name).map { String(cString: $0) == "1" } ?? false }
        return disabled("MIXFLOW_DISABLE_AVX2") ? .portable : disabled("MIXFLOW_DISABLE_AVX512") ? .avx2 : .avx512
    }()

    /// The highest allowed level for which `supported` holds (portable always does).
    public static func best(_ supported: (ISALevel) -> Bool) -> ISALevel {
        allCases.reversed().first { $0 <= allowed && supported($0) } ?? .portable
    }
}

/// The CPU's name as the kernel reports it ("model name" in /proc/cpuinfo), or the architecture.
public let cpuModelName: String = {
    #if os(Linux)
    if let f = fopen("/proc/cpuinfo", "r") {
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0, let l = line {
            let s = String(cString: l)
            if s.hasPrefix("model name"), let colon = s.firstIndex(of: ":") {
                return s[s.index(after: colon)...].trimmingCharacters(in: " \t\n")
            }
        }
    }
    #endif
    #if arch(x86_64)
    return "x86-64"
    #elseif arch(arm64)
    return "arm64"
    #else
    return "unknown"
    #endif
}()

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
