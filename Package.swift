// swift-tools-version:6.0
// libmixflow: MixFlow post-training and sampling for flow-matching image models, as a C-ABI shared library.
// Layers (dependencies point downward only): MixflowCore <- MixflowMethod <- MixflowModels <- MixflowIO <- Mixflow (the C API);
// MixflowEval (data and metrics) sits on MixflowCore alone. The map, module by module: docs/architecture.md §1.
import PackageDescription

// The Gaussian kernels' sqrt must lower to sqrtps, not to a per-lane sqrtss plus an errno-setting sqrtf call.
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-fno-math-errno"])]
// The same kernels compiled for AVX2 (selected at run time, bit-identical; see MixflowCoreAVX2). On other
// architectures the module builds for the baseline target and reports itself unavailable.
#if arch(x86_64)
let avx2Flags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell", "-Xcc", "-march=haswell", "-Xcc", "-fno-math-errno"])]
#else
let avx2Flags: [SwiftSetting] = kernelFlags
#endif

let package = Package(
    name: "mixflow",
    products: [
        .library(name: "mixflow", type: .dynamic, targets: ["Mixflow"]),
        .executable(name: "mixflow-cli", targets: ["MixflowCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // include/ holds the hand-written C types (mixflow_types.h) and the generated mixflow.h; the module map
        // exposes only mixflow_types.h, so the generated header is never imported back into Swift.
        .target(name: "CMixflow", path: ".", sources: ["Sources/CMixflow/layout_check.c"], publicHeadersPath: "include"),
        // The per-thread last-error buffer of the C layer (private: mfx_* symbols are not exported).
        .target(name: "MixflowTLS", path: "Sources/MixflowTLS"),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // ---- data and evaluation: system zlib for .gz IDX files (zlib1g-dev, in scripts/install-deps.sh) ----
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libmixflow's own single-precision GEMM (one FMA chain per element; AVX-512, AVX2 and portable paths
        // chosen at run time, bit-identical). -ffp-contract=off: the only fused operations are the explicit ones.
        .target(name: "CGemm", path: "Sources/CGemm", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        // Tensors-free numerics: errors, counter-based randomness, parallel loops, SIMD kernels, BLAS.
        .target(name: "MixflowCore", dependencies: ["CBLAS", "CGemm"], swiftSettings: kernelFlags),
        // MixflowCore's Gaussian/transport kernels specialised for AVX2, dispatched at run time.
        .target(name: "MixflowCoreAVX2", dependencies: ["MixflowCore"], swiftSettings: avx2Flags),
        // The method: paths, time conventions and distributions, the MixFlow transport.
        .target(name: "MixflowMethod", dependencies: ["MixflowCore", "MixflowCoreAVX2"]),
        // Models, optimiser and trainer: native SiT (and later DiT^DH), AdamW, EMA, gradient clipping.
        .target(name: "MixflowModels", dependencies: ["MixflowCore", "MixflowMethod", "MixflowCoreAVX2"]),
        // C++17 over Debian libonnx_proto/libprotobuf with a plain-C internal API (mfx_onnx_*, hidden by mixflow.map).
        // ONNX_ML=1 is mandatory: Debian ships only onnx-ml.pb.h (docs/architecture.md §3.2).
        .target(
            name: "OnnxShim", path: "Sources/OnnxShim",
            cxxSettings: [.define("ONNX_NAMESPACE", to: "onnx"), .define("ONNX_ML", to: "1")],
            linkerSettings: [.linkedLibrary("onnx_proto"), .linkedLibrary("protobuf")]
        ),
        // File formats: validated ONNX tensor I/O (external data included), atomic writes; SiT <-> ONNX
        // (checkpoint import/export and the runnable forward graph), hence the dependency on MixflowModels.
        .target(name: "MixflowIO", dependencies: ["MixflowCore", "MixflowModels", "OnnxShim", "CZlib"]),
        // ---- data and evaluation: IDX reader, the Fashion-MNIST feature net, FD / KID / conditional accuracy ----
        .target(name: "MixflowEval", dependencies: ["MixflowCore", "CBLAS", "CZlib"]),
        // THE C API: @c wrappers that validate, convert and delegate.
        .target(
            name: "Mixflow",
            dependencies: ["CMixflow", "MixflowTLS", "MixflowCore", "MixflowMethod", "MixflowModels", "MixflowIO", "MixflowEval"],
            // SONAME libmixflow.so.<MIXFLOW_VERSION_MAJOR>: scripts/install.sh installs libmixflow.so.X.Y.Z under it.
            linkerSettings: [.unsafeFlags([
                "-Xlinker", "-soname=libmixflow.so.0",
                "-Xlinker", "--version-script=\(Context.packageDirectory)/mixflow.map",
            ])]
        ),
        // The `mixflow` command line (post-train, sample, Slow Flow), built on the Swift core directly.
        .executableTarget(name: "MixflowCLI",
                          dependencies: ["CMixflow", "MixflowCore", "MixflowMethod", "MixflowModels", "MixflowIO", "MixflowEval",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "MixflowCoreTests", dependencies: ["MixflowCore", "MixflowCoreAVX2"]),
        .testTarget(name: "MixflowMethodTests", dependencies: ["MixflowMethod", "MixflowCoreAVX2"]),
        .testTarget(name: "MixflowModelsTests", dependencies: ["MixflowModels", "MixflowCore"]),
        .testTarget(name: "MixflowIOTests", dependencies: ["MixflowIO", "OnnxShim", "MixflowModels"]),
        .testTarget(name: "MixflowCAPITests", dependencies: ["Mixflow", "CMixflow"]),
        .testTarget(name: "MixflowEvalTests", dependencies: ["MixflowEval", "MixflowCore"]),
    ],
    // Swift 5 mode: the kernels share raw pointers across worker threads by design (disjoint ranges),
    // which Swift 6's Sendable checking cannot express without wrappers on every pointer.
    swiftLanguageModes: [.v5],
    cxxLanguageStandard: .cxx17
)
