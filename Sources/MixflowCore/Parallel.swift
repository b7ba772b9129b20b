import Dispatch
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
}
