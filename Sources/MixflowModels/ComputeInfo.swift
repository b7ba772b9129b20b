import MixflowCore
import MixflowCoreAVX2

/// What this process computes with: the CPU, the GEMM and its instruction-set path, OpenBLAS (float64 metrics
/// only), the thread policy and the builds of the other kernels. One place, read by `mixflow_blas_info()`,
/// `mixflow.blas_info()` and `mixflow --version`; every performance figure should quote it.
public enum ComputeInfo {
    /// (key, value) pairs in a fixed order; keys are lower-case words, values one line each.
    public static var entries: [(key: String, value: String)] {
        let paths = BLAS.Path.allCases.filter(BLAS.supports).map(\.name).joined(separator: " ")
        return [
            ("cpu", cpuModelName),
            ("gemm", "libmixflow \(BLAS.path.name) (\(BLAS.tile(BLAS.path).rows)x\(BLAS.tile(BLAS.path).cols) tile; one FMA chain per element, the same bits on every path)"),
            ("gemm paths", "\(paths) (supported here; MIXFLOW_DISABLE_AVX512=1 / MIXFLOW_DISABLE_AVX2=1 lower the choice)"),
            ("threads", "libmixflow's own workers; a GEMM is cut along its longer side into one run of whole register tiles per worker, each one single-threaded call"),
            ("openblas", "core \(BLAS.openBLASCore), 1 thread (float64 FD/KID and LAPACK only)"),
            ("transport kernels", AVX2Kernels.isAvailable ? "avx2" : "baseline"),
            ("model kernels", "\(ModelKernels.level.name) (GELU, softmax, norms, AdamW, EMA; the same bits on every build)"),
        ]
    }

    /// The entries as "key: value" lines.
    public static var text: String { entries.map { "\($0.key): \($0.value)" }.joined(separator: "\n") }
}
