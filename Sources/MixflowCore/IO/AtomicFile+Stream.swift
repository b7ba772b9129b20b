#if canImport(Glibc)
import Glibc
#endif

extension AtomicFile {
    /// The same atomic write as `AtomicFile.write(to:_:)`, for writes that span many calls (the ONNX writer
    /// streams each external tensor to its data file as the caller adds it, so a closure cannot hold the
    /// whole write): a temporary file in the destination's folder, then fsync, rename and folder fsync on
    /// `commit`. Readers see the old file or the complete new one. If `commit` is never reached (an error, the
    /// object released), the temporary file is removed and the destination is untouched.
    public final class Stream {
        public let path: String
        let tempPath: String
        var fd: Int32
        var done = false
        /// Bytes written so far (the offset of the next write).
        public private(set) var offset: Int64 = 0

        /// Creates the temporary file next to `path`.
        /// - Throws: `MixflowError.invalidArgument` for an empty path, `.io` if the folder is not writable.
        public init(path: String) throws {
            guard !path.isEmpty, !path.utf8.contains(0) else {
                throw MixflowError.invalidArgument("path must be non-empty and NUL-free")
            }
            self.path = path
            let folder = AtomicFile.directory(of: path)
            let name = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
            // A dot-name keeps the temporary out of casual listings; mkstemp makes it unique (mode 0600).
            var template = Array("\(folder)/.\(name).tmp-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else {
                throw MixflowError.io("\(path): cannot create a temporary file in \(folder): \(errnoString())")
            }
            self.fd = fd
            self.tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            _ = fchmod(fd, 0o644)  // as open(..., 0666) under the usual umask 022
        }

        deinit { discard() }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard fd >= 0 else { throw MixflowError.internal("\(path): write after commit or discard") }
            guard var p = bytes.baseAddress else { return }
            var left = bytes.count
            while left > 0 {
                let n = Glibc.write(fd, p, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw MixflowError.io("\(path): write failed at byte \(offset): \(errnoString())")
                }
                p += n
                left -= n
                offset += Int64(n)
            }
        }

        public func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }

        /// Makes the new contents durable and visible under `path`.
        public func commit() throws {
            guard fd >= 0 else { throw MixflowError.internal("\(path): commit after commit or discard") }
            let synced = fsync(fd) == 0
            let message = errnoString()
            close(fd)
            fd = -1
            guard synced else {
                discard()
                throw MixflowError.io("\(path): fsync failed: \(message)")
            }
            guard rename(tempPath, path) == 0 else {
                let m = errnoString()
                discard()
                throw MixflowError.io("\(path): cannot rename the temporary file into place: \(m)")
            }
            done = true
            // The rename is durable only once the folder entry is on disk.
            let dir = open(AtomicFile.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dir >= 0 {
                _ = fsync(dir)
                close(dir)
            }
        }

        /// Abandons the write and removes the temporary file (idempotent; a no-op after `commit`).
        public func discard() {
            if fd >= 0 {
                close(fd)
                fd = -1
            }
            if !done { unlink(tempPath) }
            done = true
        }
    }
}
