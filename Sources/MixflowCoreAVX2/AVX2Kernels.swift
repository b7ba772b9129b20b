import MixflowCore
#if canImport(Glibc)
import Glibc
#endif

/// The Gaussian and transport kernels of MixflowCore compiled for AVX2 (this module is built with
/// `-target-cpu haswell`, Package.swift), used only when the CPU and the OS support it.
///
/// The code is MixflowCore's `GaussianKernel`, specialised here for `AVX2ISA`: the same float32
/// multiplies and adds in the same order, so the output is bit-identical to the baseline path (Swift never
/// contracts a multiply and an add into an FMA; objdump of the release library shows no vfmadd). Only the
/// vector width and the Philox layout differ. The bit-identity tests run both paths.
public enum AVX2Kernels {
    /// True when this process may run the AVX2 path: an x86-64 build, a CPU and kernel that expose every
    /// feature `-target-cpu haswell` lets the compiler use, and MIXFLOW_DISABLE_AVX2 not set to 1.
    public static let isAvailable: Bool = {
        #if arch(x86_64) && os(Linux)
        if let v = getenv("MIXFLOW_DISABLE_AVX2"), String(cString: v) == "1" { return false }
        return cpuFlags().isSuperset(of: ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm", "popcnt", "sse4_2"])
        #else
        return false
        #endif
    }()

    /// `GaussianKernel.affineSpan` for AVX2. Call only when `isAvailable`.
    public static func affineSpan(
        x1: UnsafePointer<Float>, xIn: UnsafeMutablePointer<Float>, target: UnsafeMutablePointer<Float>,
        noise: UnsafeMutablePointer<Float>?, start: Int, count: Int, c: AffineNoiseCoefficients,
        noiseStream: RandomStream, perturbationStream: RandomStream
    ) -> Bool {
        precondition(isAvailable, "AVX2Kernels used on a CPU without AVX2")
        return GaussianKernel.affineSpan(AVX2ISA.self, x1: x1, xIn: xIn, target: target, noise: noise, start: start,
                                         count: count, c: c, noiseStream: noiseStream, perturbationStream: perturbationStream)
    }

    /// `GaussianKernel.fill` for AVX2. Call only when `isAvailable`.
    public static func fill(_ out: UnsafeMutablePointer<Float>, count: Int, stream: RandomStream, start: Int) {
        precondition(isAvailable, "AVX2Kernels used on a CPU without AVX2")
        GaussianKernel.fill(AVX2ISA.self, out, count: count, stream: stream, start: start)
    }

    /// `GaussianKernel.boxMuller` and `sinCosTurns24` for AVX2 (for the bit-identity tests).
    package static func boxMuller(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> (SIMD8<Float>, SIMD8<Float>) {
        GaussianKernel.boxMuller(AVX2ISA.self, a, b)
    }
    package static func sinCosTurns24(_ k: SIMD8<UInt32>) -> (sin: SIMD8<Float>, cos: SIMD8<Float>) {
        GaussianKernel.sinCosTurns24(AVX2ISA.self, k)
    }
}

/// The AVX2 instruction-set tag: eight 64-bit Philox lanes fit in 256-bit registers.
enum AVX2ISA: KernelISA {
    static var wideVectorRegisters: Bool { true }
}

#if os(Linux)
/// The feature flags the kernel reports for the first CPU in /proc/cpuinfo (empty if unreadable). Linux
/// clears AVX flags when the OS does not save the YMM state, so their presence means they are usable.
func cpuFlags() -> Set<String> {
    guard let f = fopen("/proc/cpuinfo", "r") else { return [] }
    defer { fclose(f) }
    var line: UnsafeMutablePointer<CChar>? = nil
    var cap = 0
    defer { free(line) }
    while getline(&line, &cap, f) > 0 {
        guard let line else { break }
        let s = String(cString: line)
        if s.hasPrefix("flags"), let colon = s.firstIndex(of: ":") {
            return Set(s[s.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
        }
    }
    return []
}
#endif
