import CMixflow
import MixflowTLS
import MixflowModels
#if canImport(Glibc)
import Glibc
#endif

/// The library version as "MAJOR.MINOR.PATCH" (static storage; never NULL).
@c public func mixflow_version() -> UnsafePointer<CChar>? {
    versionString
}

/// The library version as MAJOR * 10000 + MINOR * 100 + PATCH (compare with `MIXFLOW_VERSION_NUMBER`).
@c public func mixflow_version_number() -> UInt32 {
    UInt32(MIXFLOW_VERSION_MAJOR * 10000 + MIXFLOW_VERSION_MINOR * 100 + MIXFLOW_VERSION_PATCH)
}

/// The ABI version of this library; a caller built with a different `MIXFLOW_ABI_VERSION` must not use it.
@c public func mixflow_abi_version() -> UInt32 {
    UInt32(MIXFLOW_ABI_VERSION)
}

/// The calling thread's last error message: "" after a success, never NULL. It names the function, the
/// argument, the value received and the value expected. Valid until this thread's next fallible call.
@c public func mixflow_last_error() -> UnsafePointer<CChar>? {
    mfx_get_error()
}

/// The name of a status ("MIXFLOW_ERR_FORMAT"), or "MIXFLOW_ERR_UNKNOWN" for a value outside the enum.
/// Static storage; never NULL.
@c public func mixflow_status_name(_ status: mixflow_status) -> UnsafePointer<CChar>? {
    let index = Int(status.rawValue)
    return index < statusNames.count ? statusNames[index] : unknownStatusName
}

// Static C strings, allocated once for the life of the process.
private let versionString: UnsafePointer<CChar> = cString(MIXFLOW_VERSION_STRING)
private let statusNames: [UnsafePointer<CChar>] = [
    "MIXFLOW_OK", "MIXFLOW_ERR_INVALID_ARGUMENT", "MIXFLOW_ERR_INVALID_HANDLE", "MIXFLOW_ERR_OUT_OF_MEMORY",
    "MIXFLOW_ERR_IO", "MIXFLOW_ERR_FORMAT", "MIXFLOW_ERR_UNSUPPORTED", "MIXFLOW_ERR_CALLBACK",
    "MIXFLOW_ERR_CANCELLED", "MIXFLOW_ERR_ABI_MISMATCH", "MIXFLOW_ERR_INTERNAL",
].map(cString)
private let unknownStatusName = cString("MIXFLOW_ERR_UNKNOWN")

private func cString(_ s: String) -> UnsafePointer<CChar> {
    UnsafePointer(strdup(s)!)
}

/// What libmixflow computes with in this process, as "key: value" lines (static storage; never NULL): `cpu`,
/// `gemm` (libmixflow's own GEMM and its instruction-set path), `gemm paths`, `threads`, `openblas` (its
/// kernel; used only for float64 metrics and LAPACK) and the builds of the other kernels. For logs and for
/// quoting next to performance figures; the keys may grow, never change meaning.
@c public func mixflow_blas_info() -> UnsafePointer<CChar>? {
    blasInfoString
}

private let blasInfoString: UnsafePointer<CChar> = cString(ComputeInfo.text)
