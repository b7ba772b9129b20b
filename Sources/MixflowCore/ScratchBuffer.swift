#if canImport(Glibc)
import Glibc
#endif

/// Working memory the library allocates for itself with a size a caller chose (a batch, a number of grid
/// times): the one fallible allocation. Swift's own allocations (`Array(repeating:count:)`, `.allocate`) trap
/// when malloc fails, which would take the host process down; here the byte count is checked for overflow and
/// against `MemoryBudget`, and a NULL from malloc becomes `.outOfMemory` with a message.
///
/// Allocate it before reading the caller's buffers, so that a claimed size whose scratch cannot exist is refused
/// before any work. The memory is freed when the last reference goes away: code that works through `base` keeps
/// the buffer referenced until it is done (`withExtendedLifetime`, or a later use of the buffer itself).
public final class ScratchBuffer<Element: BitwiseCopyable> {
    public let base: UnsafeMutablePointer<Element>
    public let count: Int

    /// - Throws: `.outOfMemory` naming `what` when `count` elements do not fit the budget or malloc fails.
    public init(_ count: Int, repeating value: Element, _ what: @autoclosure () -> String) throws {
        precondition(count >= 0, "ScratchBuffer: negative count")   // sizes are validated before; a bug otherwise
        try MemoryBudget.check(count, elementSize: MemoryLayout<Element>.stride, what())
        let bytes = count * MemoryLayout<Element>.stride   // no overflow: checked above
        // posix_memalign: 64-byte lines for the SIMD kernels; max(_, 1) so that 0 elements still give a pointer.
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, max(bytes, 1)) == 0, let raw else {
            throw MixflowError.outOfMemory("\(what()) needs \(bytes) bytes; the allocation failed")
        }
        base = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        base.initialize(repeating: value, count: count)
        self.count = count
    }

    deinit { free(base) }

    public var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: base, count: count) }

    /// Runs `body` on the memory, keeping the buffer alive until it returns.
    public func withBuffer<R>(_ body: (UnsafeMutableBufferPointer<Element>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(buffer) }
    }

    public subscript(i: Int) -> Element {
        get { base[i] }
        set { base[i] = newValue }
    }
}
