internal import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// The instruction-set builds of the C model kernels (Sources/CKernels: GELU, SiLU/SwiGLU, softmax,
/// LayerNorm/RMSNorm + adaLN, AdamW, EMA). The builds compile one source and give the same bits (see
/// mixflow_kernels.h); only the speed differs, so the choice is made once per process.
public enum KernelBuild: Int32, CaseIterable, Sendable {
    case portable = 0, avx2 = 1, avx512 = 2

    public var name: String { ["portable", "avx2", "avx512"][Int(rawValue)] }

    /// True when this CPU and OS can run the build.
    public var isSupported: Bool { mfx_kernels_supported(rawValue) != 0 }

    /// The build the models use: the best the CPU supports, lowered by MIXFLOW_DISABLE_AVX512=1 (to AVX2)
    /// or MIXFLOW_DISABLE_AVX2=1 (to portable; it disables AVX-512 too).
    public static let selected: KernelBuild = {
        func disabled(_ name: String) -> Bool { getenv(name).map { String(cString: $0) == "1" } ?? false }
        if !disabled("MIXFLOW_DISABLE_AVX2") && !disabled("MIXFLOW_DISABLE_AVX512") && KernelBuild.avx512.isSupported {
            return .avx512
        }
        if !disabled("MIXFLOW_DISABLE_AVX2") && KernelBuild.avx2.isSupported { return .avx2 }
        return .portable
    }()
}

/// The selected build's number, as the C kernels take it.
var kernelISA: Int32 { KernelBuild.selected.rawValue }
