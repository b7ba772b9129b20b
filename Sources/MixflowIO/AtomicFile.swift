#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MixflowCore

/// A file written atomically: the bytes go to a temporary file in the destination's folder (same file
/// system, so the rename is atomic), which is fsynced, renamed over the destination, and the folder fsynced.
/// Readers see either the old file or the complete new one, never a half-written file. If `commit` is not
/// reached (an error, a thrown write), the temporary file is removed.
public final class AtomicFile {
    public let path: String
    let tempPath: String
    var fd: Int32
    var committed = false
    /// Bytes written so far (the offset of the next write).
    public private(set) var offset: Int64 = 0

    /// Creates the temporary file next to `path`.
    /// - Throws: `MixflowError.invalidArgument` for an empty path, `.io` if the folder is not writable.
    public init(path: String) throws {
        self.path = try checkedPath(path, "path")
        let folder = parentFolder(path)
        // A dot-name keeps the temporary out of casual listings; mkstemp makes it unique and mode 0600.
        var template = Array("\(folder)/.\(baseName(path)).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw MixflowError.io("\(path): cannot create a temporary file in \(folder): \(errnoMessage())") }
        self.fd = fd
        self.tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        // Group/world-readable like a file written with open(…, 0666) under the usual umask 022.
        _ = fchmod(fd, 0o644)
    }

    deinit { if !committed { discard() } }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw MixflowError.internal("\(path): write after commit or discard") }
        try writeAll(fd, bytes, path: tempPath)
        offset += Int64(bytes.count)
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Makes the new contents durable and visible under `path`.
    public func commit() throws {
        guard fd >= 0 else { throw MixflowError.internal("\(path): commit after commit or discard") }
        guard fsync(fd) == 0 else {
            let m = errnoMessage(); discard()
            throw MixflowError.io("\(path): fsync failed: \(m)")
        }
        close(fd)
        fd = -1
        guard rename(tempPath, path) == 0 else {
            let m = errnoMessage(); unlink(tempPath)
            throw MixflowError.io("\(path): cannot rename the temporary file into place: \(m)")
        }
        committed = true
        // The rename is durable only once the folder entry is on disk.
        let dir = open(parentFolder(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }

    /// Abandons the write and removes the temporary file (idempotent).
    public func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !committed { unlink(tempPath) }
        committed = true  // nothing left to clean up
    }
}
