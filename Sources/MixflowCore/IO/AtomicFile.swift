#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that readers see either the old content or the complete new one, never a mix:
/// write a temporary file in the same folder, fsync it, rename it over the destination, fsync the folder.
/// A crash at any point leaves the previous file intact (at worst a stray `.tmp-*` file remains).
public enum AtomicFile {
    /// Calls `produce` with a writer, then commits. If `produce` throws, the destination is untouched.
    public static func write(to path: String, _ produce: (inout FileWriter) throws -> Void) throws {
        guard !path.isEmpty else { throw MixflowError.invalidArgument("path must not be empty") }
        let folder = directory(of: path)
        let temp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MixflowError.io("\(path): cannot create a temporary file in \(folder): \(errnoString())") }
        var writer = FileWriter(fd: fd, path: path)
        do {
            try produce(&writer)
            guard fsync(fd) == 0 else { throw MixflowError.io("\(path): fsync failed: \(errnoString())") }
            guard close(fd) == 0 else { writer.closed = true; throw MixflowError.io("\(path): close failed: \(errnoString())") }
            writer.closed = true
            guard rename(temp, path) == 0 else { throw MixflowError.io("\(path): rename failed: \(errnoString())") }
        } catch {
            if !writer.closed { close(fd) }
            unlink(temp)
            throw error
        }
        // Make the rename itself durable.
        let dfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
}

/// Sequential writer over a file descriptor (used inside `AtomicFile.write`).
public struct FileWriter {
    let fd: Int32
    let path: String
    var closed = false
    public private(set) var offset: Int = 0

    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw MixflowError.io("\(path): write failed at byte \(offset + done): \(errnoString())")
            }
            done += n
        }
        offset += done
    }

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
