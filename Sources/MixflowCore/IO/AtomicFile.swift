#if canImport(Glibc)
import Glibc
#endif

/// Writes a file atomically: a temporary file in the same folder, fsync, then rename over the target, so a
/// reader sees either the old file or the complete new one, never a torn write.
public final class AtomicFile {
    public let path: String
    let tempPath: String
    let fd: Int32
    private var finished = false
    public private(set) var offset: UInt64 = 0

    public init(path: String) throws {
        guard !path.isEmpty else { throw MixflowError.invalidArgument("path must not be empty") }
        self.path = path
        var template = Array((path + ".tmp.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw MixflowError.io("\(path): cannot create a temporary file next to it: \(String(cString: strerror(errno)))") }
        self.fd = fd
        self.tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    deinit {
        if !finished { close(fd); unlink(tempPath) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw MixflowError.io("\(path): write failed at byte \(offset + UInt64(done)): \(String(cString: strerror(errno)))")
            }
            done += n
        }
        offset += UInt64(bytes.count)
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Overwrites bytes already written at `at` (for headers patched after streaming, e.g. a CRC).
    public func patch(_ bytes: [UInt8], at: UInt64) throws {
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(at)) }
        guard n == bytes.count else { throw MixflowError.io("\(path): patch at byte \(at) failed: \(String(cString: strerror(errno)))") }
    }

    /// fsync and rename over the target.
    public func commit() throws {
        guard fsync(fd) == 0 else { throw MixflowError.io("\(path): fsync failed: \(String(cString: strerror(errno)))") }
        close(fd)
        finished = true
        guard rename(tempPath, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(tempPath)
            throw MixflowError.io("\(path): rename failed: \(message)")
        }
    }

    /// Writes a whole string atomically.
    public static func write(_ text: String, to path: String) throws {
        let file = try AtomicFile(path: path)
        try file.write(Array(text.utf8))
        try file.commit()
    }
}
