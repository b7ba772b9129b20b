#if canImport(Glibc)
import Glibc
#endif

/// The one check made before an allocation whose size a file declares (a data set, a decompressed stream):
/// a declared size beyond what this process may hold is refused with `.outOfMemory` and a message, instead
/// of a trap inside the allocator or the kernel's OOM killer taking the host process down.
public enum MemoryBudget {
    /// What this process may allocate: the smallest of physical memory and the address-space and data-segment
    /// limits (`ulimit -v`, `-d`). `MIXFLOW_MEMORY_LIMIT_MB` lowers it (tests; a shared host).
    public static var bytes: Int {
        var limit = sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
        if limit <= 0 { limit = Int.max }
        for resource in [RLIMIT_AS, RLIMIT_DATA] {
            var r = rlimit()
            if getrlimit(__rlimit_resource_t(resource.rawValue), &r) == 0 && r.rlim_cur != rlim_t.max {
                limit = min(limit, Int(clamping: r.rlim_cur))  // (RLIM_INFINITY is all ones)
            }
        }
        if let env = getenv("MIXFLOW_MEMORY_LIMIT_MB"), let mb = Int(String(cString: env)), mb > 0 {
            limit = min(limit, mb << 20)
        }
        return limit
    }

    /// Throws `.outOfMemory` when `count` elements of `elementSize` bytes do not fit the budget.
    public static func check(_ count: Int, elementSize: Int = 1, _ what: @autoclosure () -> String) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: elementSize)
        let budget = Self.bytes
        guard !overflow, bytes <= budget else {
            throw MixflowError.outOfMemory("\(what()) needs \(overflow ? "more than \(Int.max)" : "\(bytes)") bytes, "
                + "more than this process may allocate (\(budget) bytes: physical memory, ulimit -v/-d, MIXFLOW_MEMORY_LIMIT_MB)")
        }
    }
}
