import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Splits work across worker threads. Work items are contiguous ranges; callers arrange that the result
/// does not depend on how ranges are cut (per-sample randomness, fixed reduction blocks), which is what
/// keeps every result bit-identical for any thread count.
public enum Parallel {
    /// Number of online cores (at least 1).
    public static let coreCount: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// Resolves a caller's thread request: 0 means all cores.
    public static func threads(_ requested: Int) -> Int {
        requested <= 0 ? coreCount : requested
    }

    /// Calls `body` on disjoint ranges covering 0..<count, using up to `threads` threads.
    /// Ranges are never smaller than `grain` items (except the last), so tiny jobs stay on one thread.
    public static func forRanges(_ count: Int, threads: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = max(1, min(threads, (count + max(grain, 1) - 1) / max(grain, 1)))
        if parts == 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = count * p / parts, hi = count * (p + 1) / parts
                if lo < hi { body(lo..<hi) }
            }
        }
    }

    /// Calls `body` on disjoint ranges of `grain` items (the last may be shorter) covering 0..<count,
    /// handed out one at a time from a shared counter to up to `threads` threads. Unlike `forRanges`, a
    /// thread that runs faster (say, on a core not shared with another process) takes more of the work.
    /// Which thread runs a range varies from call to call, so `body` must make each item's result
    /// independent of that (per-item outputs, reductions in a fixed order afterwards).
    public static func forDynamicRanges(_ count: Int, threads: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        forDynamicRanges(count, threads: threads, grain: grain) { _, range in body(range) }
    }

    /// As above, and `body` also gets the index of the worker running the range (0..<threads): one worker's
    /// ranges run one after another on one thread, so per-worker state (scratch, a model replica) needs no lock.
    public static func forDynamicRanges(_ count: Int, threads: Int, grain: Int,
                                        _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
        guard count > 0 else { return }
        let grain = max(grain, 1)
        let parts = max(1, min(threads, (count + grain - 1) / grain))
        if parts == 1 { body(0, 0..<count); return }
        let next = WorkCounter()
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: parts) { worker in
                while true {
                    let lo = next.value.wrappingAdd(grain, ordering: .relaxed).oldValue
                    if lo >= count { break }
                    body(worker, lo..<min(lo + grain, count))
                }
            }
        }
    }
}

/// The shared next-item counter of `Parallel.forDynamicRanges`.
final class WorkCounter: Sendable {
    let value = Atomic<Int>(0)
}
