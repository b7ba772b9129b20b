#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MixflowCore

// Thin, checked wrappers over the POSIX calls the file formats need. Foundation is not used anywhere in
// the library (it would add ~40 MB to a static build), so paths are plain Strings.

/// The message of the current errno.
func errnoMessage(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// The canonical absolute path of an existing file or folder (symlinks followed), or nil.
func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

/// The folder part of a path ("." for a bare name), without touching the file system.
func parentFolder(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

/// The last component of a path.
func baseName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}

/// A path handed in by a caller: UTF-8, non-empty, no NUL (a NUL would silently cut the path at the C layer).
func checkedPath(_ path: String, _ what: String) throws -> String {
    guard !path.isEmpty else { throw MixflowError.invalidArgument("\(what) must not be empty") }
    guard !path.utf8.contains(0) else { throw MixflowError.invalidArgument("\(what) must not contain a NUL byte") }
    return path
}

/// An open read-only file descriptor of a regular file, closed on deinit.
final class ReadableFile {
    let fd: Int32
    let size: Int64
    let path: String

    /// Opens `path` read-only. `noFollow` refuses a symlink as the last component (used after realpath, so a
    /// link swapped in between the check and the open is refused instead of followed).
    init(_ path: String, noFollow: Bool = false) throws {
        self.path = path
        // O_NONBLOCK: a FIFO would block the open until a writer appears; it is refused after fstat instead.
        let flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (noFollow ? O_NOFOLLOW : 0)
        let fd = open(path, flags)
        guard fd >= 0 else { throw MixflowError.io("\(path): cannot open: \(errnoMessage())") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let m = errnoMessage(); close(fd)
            throw MixflowError.io("\(path): cannot stat: \(m)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw MixflowError.io("\(path): not a regular file")
        }
        self.fd = fd
        self.size = Int64(st.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset` into `destination` (pread loop: partial reads and EINTR).
    func read(into destination: UnsafeMutableRawPointer, count: Int, at offset: Int64) throws {
        var done = 0
        while done < count {
            let n = pread(fd, destination + done, count - done, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw MixflowError.io("\(path): read of \(count) bytes at byte offset \(offset) failed: \(errnoMessage())")
            }
            if n == 0 {
                throw MixflowError.format("\(path): file ended at byte offset \(offset + Int64(done)), "
                                          + "expected \(count) bytes from byte offset \(offset)")
            }
            done += n
        }
    }
}

/// Writes all of `bytes` to `fd` (write loop: partial writes and EINTR).
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    guard var p = bytes.baseAddress else { return }
    var left = bytes.count
    while left > 0 {
        let n = write(fd, p, left)
        if n < 0 {
            if errno == EINTR { continue }
            throw MixflowError.io("\(path): write failed: \(errnoMessage())")
        }
        p += n
        left -= n
    }
}
