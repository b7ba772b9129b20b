internal import CKernels
import MixflowCore

/// The instruction-set builds of the C model kernels (Sources/CKernels: GELU, SiLU/SwiGLU, softmax,
/// LayerNorm/RMSNorm + adaLN, column sums, AdamW, EMA). The builds compile one source and give the same bits
/// (see mixflow_kernels.h); only the speed differs, so the choice is made once per process, by the same policy
/// as the GEMM's (`ISALevel`: MIXFLOW_DISABLE_AVX512=1 / MIXFLOW_DISABLE_AVX2=1 lower it).
public enum ModelKernels {
    /// True when this CPU and OS can run the model kernels' `level` build.
    public static func supports(_ level: ISALevel) -> Bool { mfx_kernels_supported(level.rawValue) != 0 }

    /// The build the models use.
    public static let level: ISALevel = ISALevel.best(supports)
}

/// The selected build's number, as the C kernels take it.
var kernelISA: Int32 { ModelKernels.level.rawValue }
