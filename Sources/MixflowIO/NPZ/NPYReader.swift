#if canImport(Glibc)
import Glibc
#endif
import MixflowCore

/// Reads a float32 .npy file (numpy's format 1.0–3.0, dtype '<f4', C order) with bounded work: the header is at
/// most 64 KiB, every dimension and the element count are range- and overflow-checked, and the file size must be
/// exactly header + 4·count before any data is read. Anything else is refused with `.format`.
public enum NPYReader {
    /// - Returns: the shape and the values (row-major).
    /// - Throws: `.io` (cannot open or read), `.format` (not such a file, or more than `maxElements` values).
    public static func readFloat32(path: String, maxElements: Int = 1 << 32) throws -> (shape: [Int], values: [Float]) {
        let file = try ReadableFile(try checkedPath(path, "path"))
        var magic = [UInt8](repeating: 0, count: 10)
        guard file.size >= 10 else { throw MixflowError.format("\(path): \(file.size) bytes, too short for a .npy file") }
        try magic.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: 10, at: 0) }
        guard magic[0..<6] == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59], (1...3).contains(magic[6]) else {
            throw MixflowError.format("\(path): not a .npy file (magic or version)")
        }
        var headerStart = 10, headerLength = Int(magic[8]) | Int(magic[9]) << 8
        if magic[6] >= 2 {
            guard file.size >= 12 else { throw MixflowError.format("\(path): truncated .npy header") }
            var more = [UInt8](repeating: 0, count: 2)
            try more.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: 2, at: 10) }
            headerLength |= Int(more[0]) << 16 | Int(more[1]) << 24
            headerStart = 12
        }
        guard headerLength <= 1 << 16, Int64(headerStart + headerLength) <= file.size else {
            throw MixflowError.format("\(path): .npy header of \(headerLength) bytes does not fit the file (64 KiB at most)")
        }
        var header = [UInt8](repeating: 0, count: headerLength)
        try header.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: headerLength, at: Int64(headerStart)) }
        let text = String(decoding: header, as: UTF8.self).filter { !$0.isWhitespace }
        guard text.contains("'descr':'<f4'") || text.contains("'descr':'=f4'") else {
            throw MixflowError.format("\(path): dtype must be float32 ('<f4'), header \(text.prefix(120))")
        }
        guard text.contains("'fortran_order':False") else {
            throw MixflowError.format("\(path): arrays must be in C order (fortran_order False)")
        }
        guard let open = text.firstRange(of: "'shape':("), let close = text[open.upperBound...].firstIndex(of: ")") else {
            throw MixflowError.format("\(path): the .npy header has no shape")
        }
        var shape: [Int] = [], count = 1
        for part in text[open.upperBound..<close].split(separator: ",") {
            guard let d = Int(part), d >= 0, d <= maxElements else {
                throw MixflowError.format("\(path): shape entry \"\(part)\" is not a dimension in [0, \(maxElements)]")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maxElements else {
                throw MixflowError.format("\(path): more than \(maxElements) values")
            }
            shape.append(d); count = product
        }
        let dataStart = Int64(headerStart + headerLength)
        guard file.size - dataStart == Int64(count) * 4 else {
            throw MixflowError.format("\(path): shape \(shape) needs \(count * 4) data bytes, the file has \(file.size - dataStart)")
        }
        var values = [Float](repeating: 0, count: count)
        if count > 0 { try values.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: count * 4, at: dataStart) } }
        return (shape, values)
    }
}
