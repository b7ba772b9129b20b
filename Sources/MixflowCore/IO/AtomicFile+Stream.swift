#if canImport(Glibc)
import Glibc
#endif

extension AtomicFile {
    /// The atomic write itself, for writes that span many calls (the ONNX writer streams each external tensor
    /// to its data file as the caller adds it, so a closure cannot hold the whole write).
    ///
    /// The new contents go to a file with no name (Linux `O_TMPFILE`), so a process killed mid-write leaves
    /// nothing behind; `commit` fsyncs it, gives it a name (`linkat`) and renames that name over `path`, then
    /// fsyncs the folder. Where `O_TMPFILE` is unsupported (other kernels, some file systems) the temporary
    /// file gets a name from the start, `.<name>.tmp-<pid>-XXXXXX`; a later save of the same file removes
    /// those whose process is gone (`sweepStaleTemporaries`). Readers see the old file or the complete new one.
    /// If `commit` is never reached (an error, the object released) the destination is untouched.
    public final class Stream {
        public let path: String
        /// The temporary's name when it has one from the start (the fallback), else nil.
        var tempPath: String?
        let replaceExisting: Bool
        var fd: Int32
        var done = false
        /// Bytes written so far (the offset of the next write).
        public private(set) var offset: Int64 = 0

        /// Creates the temporary file next to `path`, after removing temporaries that killed saves of `path`
        /// left behind. With `replaceExisting` false, `commit` refuses to overwrite an existing `path`.
        /// `unnamed: false` forces the named fallback (tests).
        /// - Throws: `MixflowError.invalidArgument` for an empty path, `.io` if the folder is not writable.
        public init(path: String, replaceExisting: Bool = true, unnamed: Bool = true) throws {
            guard !path.isEmpty, !path.utf8.contains(0) else {
                throw MixflowError.invalidArgument("path must be non-empty and NUL-free")
            }
            self.path = path
            self.replaceExisting = replaceExisting
            let folder = AtomicFile.directory(of: path)
            AtomicFile.sweepStaleTemporaries(of: path)
            var fd: Int32 = -1
            if unnamed && AtomicFile.oTmpfile != 0 {
                fd = open(folder, AtomicFile.oTmpfile | O_WRONLY | O_CLOEXEC, 0o644)
                // These three mean "no O_TMPFILE on this kernel or file system": fall back to a named file.
                if fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL {
                    throw MixflowError.io("\(path): cannot create a temporary file in \(folder): \(errnoString())")
                }
            }
            if fd < 0 {
                var template = Array("\(AtomicFile.temporaryPrefix(of: path))\(getpid())-XXXXXX".utf8CString)
                fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
                guard fd >= 0 else {
                    throw MixflowError.io("\(path): cannot create a temporary file in \(folder): \(errnoString())")
                }
                tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fchmod(fd, 0o644)  // as open(..., 0666) under the usual umask 022
            }
            self.fd = fd
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
            defer { discard() }
            guard fsync(fd) == 0 else { throw MixflowError.io("\(path): fsync failed: \(errnoString())") }
            if tempPath == nil {
                // Name the unnamed file. linkat cannot replace an existing name, so a replacing commit links
                // a unique temporary name and renames it (a kill in between leaves a name the next save sweeps).
                let target = replaceExisting ? "\(AtomicFile.temporaryPrefix(of: path))\(getpid())-\(UInt64.random(in: 0...UInt64.max))" : path
                guard linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, target, AT_SYMLINK_FOLLOW) == 0 else {
                    throw MixflowError.io("\(path): cannot name the new file: \(errnoString())")
                }
                if replaceExisting { tempPath = target } else { done = true }
            }
            if let temp = tempPath, !done {
                if !replaceExisting {
                    // link fails with EEXIST instead of replacing.
                    guard link(temp, path) == 0 else { throw MixflowError.io("\(path): cannot put the new file in place: \(errnoString())") }
                    unlink(temp)
                } else {
                    guard rename(temp, path) == 0 else {
                        throw MixflowError.io("\(path): cannot rename the temporary file into place: \(errnoString())")
                    }
                }
                done = true
            }
            AtomicFile.syncFolder(of: path)
        }

        /// Abandons the write and removes the temporary file (idempotent; a no-op after `commit`).
        public func discard() {
            if fd >= 0 {
                close(fd)
                fd = -1
            }
            if !done, let temp = tempPath { unlink(temp) }
            done = true
        }
    }

    /// Linux's O_TMPFILE (`__O_TMPFILE | O_DIRECTORY`; glibc hides it from Swift, which does not define
    /// _GNU_SOURCE). __O_TMPFILE is 0o20000000 on x86-64 and arm64; elsewhere the named fallback is used.
    #if os(Linux) && (arch(x86_64) || arch(arm64))
    static let oTmpfile: Int32 = 0o20000000 | O_DIRECTORY
    #else
    static let oTmpfile: Int32 = 0
    #endif

    /// Temporaries of `path` are `.<name>.tmp-<pid>-<unique>` in its folder.
    static func temporaryPrefix(of path: String) -> String {
        let folder = directory(of: path)
        return "\(folder)/.\(baseName(of: path)).tmp-"
    }

    static func baseName(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
    }

    /// Removes the temporaries of `path` whose writing process no longer exists (killed saves). A temporary
    /// of a live process (a concurrent save) is left alone. Best effort: errors are ignored.
    public static func sweepStaleTemporaries(of path: String) {
        // (`<name>.tmp-<pid>-<n>` without the dot: what earlier versions of this library named them.)
        let prefixes = ["." + baseName(of: path) + ".tmp-", baseName(of: path) + ".tmp-"]
        forEachEntry(in: directory(of: path)) { name in
            guard let prefix = prefixes.first(where: { name.hasPrefix($0) }) else { return }
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid > 0 else { return }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink("\(directory(of: path))/\(name)") }
        }
    }

    /// Calls `body` with the name of every entry of `folder` (not "." or "..").
    public static func forEachEntry(in folder: String, _ body: (String) -> Void) {
        guard let dir = opendir(folder) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            // Read d_name in place up to its NUL: a record can be shorter than sizeof(dirent) (d_reclen), so
            // copying the whole 256-byte d_name field reads past the end of readdir's buffer.
            let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { body(name) }
        }
    }

    /// Makes a rename or link in `path`'s folder durable.
    static func syncFolder(of path: String) {
        let dir = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }
}
