import CMixflow
import MixflowCore
import MixflowTLS

// The single boundary between C callers and the Swift core (mlx-c's try/catch): clears the error, runs
// the body, and maps MixflowError to a status and a message "function: message".

func capi(_ function: StaticString, _ body: () throws -> Void) -> mixflow_status {
    mfx_clear_error()
    do {
        try body()
        return MIXFLOW_OK
    } catch let error as MixflowError {
        setLastError("\(function): \(error.message)")
        return status(of: error)
    } catch {
        setLastError("\(function): internal error: \(error)")
        return MIXFLOW_ERR_INTERNAL
    }
}

func setLastError(_ message: String) {
    var m = message
    m.withUTF8 { bytes in
        bytes.withMemoryRebound(to: CChar.self) { mfx_set_error($0.baseAddress, $0.count) }
    }
}

func status(of error: MixflowError) -> mixflow_status {
    switch error {
    case .invalidArgument: return MIXFLOW_ERR_INVALID_ARGUMENT
    case .invalidHandle: return MIXFLOW_ERR_INVALID_HANDLE
    case .outOfMemory: return MIXFLOW_ERR_OUT_OF_MEMORY
    case .io: return MIXFLOW_ERR_IO
    case .format: return MIXFLOW_ERR_FORMAT
    case .unsupported: return MIXFLOW_ERR_UNSUPPORTED
    case .callback: return MIXFLOW_ERR_CALLBACK
    case .cancelled: return MIXFLOW_ERR_CANCELLED
    case .abiMismatch: return MIXFLOW_ERR_ABI_MISMATCH
    case .internal: return MIXFLOW_ERR_INTERNAL
    }
}

// MARK: - Argument checks (messages name the argument and what was expected)

func require<T>(_ pointer: UnsafePointer<T>?, _ name: String) throws -> UnsafePointer<T> {
    guard let pointer else { throw MixflowError.invalidArgument("\(name) must not be NULL") }
    return pointer
}

func require<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
    guard let pointer else { throw MixflowError.invalidArgument("\(name) must not be NULL") }
    return pointer
}

/// A positive dimension that fits in Int.
func dimension(_ value: Int64, _ name: String) throws -> Int {
    guard value > 0 else { throw MixflowError.invalidArgument("\(name) must be > 0, got \(value)") }
    return Int(value)
}

/// batch × dim with an overflow check; returns (batch, dim, count).
func matrixShape(_ batch: Int64, _ dim: Int64) throws -> (Int, Int, Int) {
    let b = try dimension(batch, "batch"), d = try dimension(dim, "dim")
    let n = try checkedCount([batch, dim], "batch x dim")
    return (b, d, n)
}

func string(_ pointer: UnsafePointer<CChar>?, _ name: String) throws -> String {
    let p = try require(pointer, name)
    return String(cString: p)
}

// MARK: - Versioned params structs

/// Reads a caller's params struct of `struct_size` bytes into a fully defaulted Swift copy.
/// Fields beyond the caller's size keep their defaults (an older caller); a larger size means the caller
/// was built against a newer header, which this library cannot honour.
func readParams<T>(_ pointer: UnsafePointer<T>?, _ name: String, defaults: T, minimumSize: Int) throws -> T {
    let p = try require(pointer, name)
    let size = Int(UnsafeRawPointer(p).load(as: UInt32.self))
    guard size <= MemoryLayout<T>.size else {
        throw MixflowError.abiMismatch("\(name)->struct_size is \(size) but this libmixflow knows \(MemoryLayout<T>.size) bytes; "
                                       + "the caller was built against a newer mixflow.h")
    }
    guard size >= minimumSize else {
        throw MixflowError.invalidArgument("\(name)->struct_size must be between \(minimumSize) and \(MemoryLayout<T>.size), got \(size); "
                                           + "fill the struct with its _default_params function")
    }
    var value = defaults
    withUnsafeMutableBytes(of: &value) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: size))
    }
    return value
}

/// Writes `value` into a caller's struct of `structSize` bytes (a prefix for an older caller).
func writeParams<T>(_ value: T, to pointer: UnsafeMutablePointer<T>?, _ name: String, structSize: UInt32,
                    minimumSize: Int) throws {
    let p = try require(pointer, name)
    let size = Int(structSize)
    guard size <= MemoryLayout<T>.size else {
        throw MixflowError.abiMismatch("struct_size is \(size) but this libmixflow knows \(MemoryLayout<T>.size) bytes; "
                                       + "the caller was built against a newer mixflow.h")
    }
    guard size >= minimumSize else {
        throw MixflowError.invalidArgument("struct_size must be between \(minimumSize) and \(MemoryLayout<T>.size), got \(size)")
    }
    var copy = value
    withUnsafeMutableBytes(of: &copy) { src in
        src.storeBytes(of: UInt32(size), as: UInt32.self)
        UnsafeMutableRawPointer(p).copyMemory(from: src.baseAddress!, byteCount: size)
    }
}
