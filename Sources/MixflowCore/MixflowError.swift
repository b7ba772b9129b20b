/// Errors thrown by every core API whose input comes from outside the library.
///
/// The C layer maps each case to one `mixflow_status` and copies the message into the thread's
/// last-error buffer, so messages name the argument, the value received and the value expected.
public enum MixflowError: Error, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case invalidHandle(String)
    case outOfMemory(String)
    case io(String)
    case format(String)
    case unsupported(String)
    case callback(String)
    case cancelled(String)
    case abiMismatch(String)
    case `internal`(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .invalidHandle(let m), .outOfMemory(let m), .io(let m), .format(let m),
             .unsupported(let m), .callback(let m), .cancelled(let m), .abiMismatch(let m), .internal(let m):
            return m
        }
    }

    public var description: String { message }
}

// MARK: - Validation helpers shared by every layer

/// Checks that every element of `values` is finite; the message names `name` and the first bad index.
public func requireFinite(_ values: UnsafeBufferPointer<Float>, _ name: String) throws {
    // A SIMD scan: x - x is 0 for finite x and NaN for NaN/Inf, so one pass finds both.
    let n = values.count
    guard let base = values.baseAddress else { return }
    var i = 0
    var bad = SIMD16<Float>(repeating: 0), bad1 = bad, bad2 = bad, bad3 = bad
    let raw = UnsafeRawPointer(base)
    // Four independent accumulators: one chain would be bound by the add latency, not by memory.
    while i + 64 <= n {
        let v0 = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        let v1 = raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
        let v2 = raw.loadUnaligned(fromByteOffset: (i + 32) * 4, as: SIMD16<Float>.self)
        let v3 = raw.loadUnaligned(fromByteOffset: (i + 48) * 4, as: SIMD16<Float>.self)
        bad += v0 - v0; bad1 += v1 - v1; bad2 += v2 - v2; bad3 += v3 - v3
        i += 64
    }
    bad += bad1 + bad2 + bad3
    while i + 16 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        bad += v - v
        i += 16
    }
    var tailBad: Float = 0
    while i < n { tailBad += base[i] - base[i]; i += 1 }
    if bad.sum().isNaN || tailBad.isNaN {
        let index = values.firstIndex(where: { !$0.isFinite }) ?? -1
        throw MixflowError.invalidArgument("\(name)[\(index)] is \(values[max(index, 0)]); every element must be finite")
    }
}

/// Multiplies positive sizes with an overflow check (sizes come from callers and must never wrap).
public func checkedCount(_ dims: [Int64], _ name: String, allowEmpty: Bool = false) throws -> Int {
    var total: Int64 = 1
    for (k, d) in dims.enumerated() {
        guard d > 0 || (allowEmpty && d == 0) else {
            throw MixflowError.invalidArgument("\(name) dimension \(k) must be \(allowEmpty ? ">= 0" : "> 0"), got \(d)")
        }
        let (p, overflow) = total.multipliedReportingOverflow(by: d)
        // Keep the byte count of a float32 buffer representable too.
        guard !overflow, p <= Int64.max / 8 else {
            throw MixflowError.invalidArgument("\(name) has \(dims) elements, which overflows a 64-bit size")
        }
        total = p
    }
    return Int(total)
}

/// A number for an error message, printed as the caller wrote it: a Double that came from a C float
/// prints as that float ("1.7", not "1.7000000476837158").
public func describe(_ x: Double) -> String {
    let f = Float(x)
    return Double(f) == x || x.isNaN ? "\(f)" : "\(x)"
}
