#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that readers see either the old content or the complete new one, never a mix: the
/// new bytes go to an unnamed (or, where unsupported, a hidden) temporary file in the same folder, which is
/// fsynced and renamed over the destination, then the folder is fsynced (see `AtomicFile.Stream`). A crash
/// at any point leaves the previous file intact and no temporary that a later save would not remove.
public enum AtomicFile {
    /// Calls `produce` with a writer, then commits. If `produce` throws, the destination is untouched.
    public static func write(to path: String, _ produce: (inout FileWriter) throws -> Void) throws {
        guard !path.isEmpty else { throw MixflowError.invalidArgument("path must not be empty") }
        var writer = FileWriter(stream: try Stream(path: path))
        do {
            try produce(&writer)
            try writer.stream.commit()
        } catch {
            writer.stream.discard()
            throw error
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
}

/// Sequential writer handed to the closure of `AtomicFile.write`.
public struct FileWriter {
    let stream: AtomicFile.Stream
    public var offset: Int { Int(stream.offset) }

    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws { try stream.write(bytes) }

    public mutating func write(_ string: String) throws {
        var s = string
        try s.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    public mutating func write<T>(floats: UnsafeBufferPointer<T>) throws {
        try write(UnsafeRawBufferPointer(floats))
    }

    public mutating func write<T: FixedWidthInteger>(littleEndian value: T) throws {
        var v = value.littleEndian
        try withUnsafeBytes(of: &v) { try write($0) }
    }
}

public func errnoString() -> String {
    String(cString: strerror(errno))
}
