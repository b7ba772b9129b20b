#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
import MixflowModels

/// The processes of one `mixflow` job: one process without a launcher, or the ranks `mpirun -n N` started.
/// Every rank runs the same commands in the same order; this type holds what differs (rank 0 writes the
/// outputs) and every collective the commands make, each a no-op in a single process. All ranks must call
/// the collectives at the same points, in the same order (MPI's rule): the commands' control flow depends only
/// on the options and on values every rank agrees on (the step counter, the agreed interrupt flag).
final class Cluster {
    nonisolated(unsafe) static var current = Cluster(mpi: nil, rank: 0, size: 1)

    let mpi: OpenMPI?
    let rank: Int, size: Int
    var isRoot: Bool { rank == 0 }
    var isDistributed: Bool { mpi != nil }

    private init(mpi: OpenMPI?, rank: Int, size: Int) { self.mpi = mpi; self.rank = rank; self.size = size }

    /// The launcher's world size from its environment (Open MPI's mpirun, PMIx or PMI, e.g. srun), or nil when
    /// no launcher started this process.
    static func launcherWorldSize() -> Int? {
        for name in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
            if let v = getenv(name), let n = Int(String(cString: v)) { return n }
        }
        return getenv("PMIX_RANK") != nil || getenv("PMI_RANK") != nil ? 0 : nil
    }

    /// Joins the MPI job when an MPI launcher started this process with more than one rank; otherwise stays a
    /// single process and never loads MPI. Ranks other than 0 print nothing on stdout (errors still go to
    /// stderr, prefixed with the rank).
    static func start() throws {
        guard let launched = launcherWorldSize(), launched != 1 else { return }
        let mpi = try OpenMPI()
        let (rank, size) = try mpi.start()
        current = Cluster(mpi: mpi, rank: rank, size: size)
        // A launcher of another MPI would make every rank a singleton that trains alone and overwrites the others' files.
        if launched > 1 && size != launched {
            throw MixflowError.unsupported("the launcher started \(launched) ranks but MPI reports \(size): launch with the mpirun of the MPI that MIXFLOW_MPI_LIB (default libmpi.so.40, Open MPI) names")
        }
        if rank != 0 { _ = freopen("/dev/null", "w", stdout) }
    }

    /// The worker threads per rank: `requested`, or (0) the cores divided among the ranks on this machine.
    func threads(_ requested: Int) -> Int {
        guard requested == 0, isDistributed else { return requested }
        let local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE").flatMap { Int(String(cString: $0)) } ?? size
        return max(1, Parallel.coreCount / max(1, local))
    }

    /// This rank's rows of a batch of `count` rows, [start, start + count): the first `count % size` ranks take
    /// one row more.
    func slice(of count: Int) -> (start: Int, count: Int) {
        let base = count / size, extra = count % size
        return (rank * base + min(rank, extra), base + (rank < extra ? 1 : 0))
    }

    /// Every rank's slice sizes (rank order).
    func sliceCounts(of count: Int) -> [Int] {
        (0..<size).map { r in count / size + (r < count % size ? 1 : 0) }
    }

    /// The global mean of per-rank means: each rank's `values` (a mean over its `rows` of `total` rows) are
    /// weighted by rows / total and summed over the ranks, in place. With one rank it leaves them untouched.
    func averageGradients(_ values: UnsafeMutablePointer<Float>, count: Int, rows: Int, total: Int) {
        guard let mpi else { return }
        let weight = Float(Double(rows) / Double(total))
        for i in 0..<count { values[i] *= weight }
        mpi.allreduce(values, count: count, type: mpi.float, elementSize: 4, op: mpi.sum)
    }

    /// The sum of `value` over the ranks.
    func sum(_ value: Double) -> Double {
        guard let mpi else { return value }
        var v = value
        mpi.allreduce(&v, count: 1, type: mpi.double, elementSize: 8, op: mpi.sum)
        return v
    }

    /// Whether any rank got SIGINT/SIGTERM; when one did, every rank's `interrupted` is set, so all stop together.
    func agreeInterrupted() -> Bool {
        guard let mpi else { return interrupted != 0 }
        var flag = Double(interrupted)
        mpi.allreduce(&flag, count: 1, type: mpi.double, elementSize: 8, op: mpi.max)
        if flag != 0 { interrupted = 1 }
        return flag != 0
    }

    /// Throws on every rank unless all ranks hold the same `values` (e.g. a step counter and a weight checksum):
    /// replicas that disagree would silently train different models.
    func checkSame(_ values: [UInt64], _ what: String) throws {
        guard let mpi else { return }
        var lo = values, hi = values
        mpi.allreduce(&lo, count: lo.count, type: mpi.uint64, elementSize: 8, op: mpi.min)
        mpi.allreduce(&hi, count: hi.count, type: mpi.uint64, elementSize: 8, op: mpi.max)
        guard lo == hi else {
            throw MixflowError.invalidArgument("the \(size) ranks disagree on \(what) (\(lo) vs \(hi) at least): every rank must read the same files (a shared --out folder, the same base model and data)")
        }
    }

    /// Rank 0's value of `value`, on every rank.
    func broadcast(_ value: Double) -> Double {
        guard let mpi else { return value }
        var v = value
        mpi.bcast(&v, bytes: 8, root: 0)
        return v
    }

    /// Gathers every rank's slice `local` (its `slice(of: total)` rows of `width` floats) on rank 0 in rank order:
    /// the whole [total, width] array on rank 0, nil on the others.
    func gather(_ local: [Float], total: Int, width: Int) throws -> [Float]? {
        guard let mpi else { return local }
        guard total <= Int(Int32.max) else {   // MPI counts rows in int
            throw MixflowError.invalidArgument("at most \(Int32.max) samples can be gathered across ranks, got \(total)")
        }
        let counts = sliceCounts(of: total)
        var offsets = [Int32](repeating: 0, count: size)
        for r in 1..<size { offsets[r] = offsets[r - 1] + Int32(counts[r - 1]) }
        var all = [Float](repeating: 0, count: isRoot ? total * width : 0)
        local.withUnsafeBytes { l in
            all.withUnsafeMutableBytes { a in
                mpi.gatherRows(l.baseAddress, rows: local.count / max(1, width), rowBytes: width * 4, into: a.baseAddress,
                               counts: counts.map { Int32($0) }, offsets: offsets, root: 0)
            }
        }
        return isRoot ? all : nil
    }

    /// Ends the job on success or after an agreed interrupt: MPI_Finalize on every rank.
    func finish() { mpi?.finalize() }

    /// Ends the whole job after an error on this rank (the others may be waiting in a collective): prints the
    /// message with the rank and aborts every rank with `code`.
    func abort(message: String, code: Int32) -> Never {
        fputs("mixflow\(mpi != nil ? " (rank \(rank) of \(size))" : ""): \(message)\n", stderr)
        fflush(stderr)
        mpi?.abort(code: code == 0 ? 1 : code)
        exit(code == 0 ? 1 : code)
    }
}

extension Trainer {
    /// A 64-bit checksum (FNV-1a over 64-bit words) of the weights and the EMA weights: equal on every rank
    /// while the replicas hold the same bits.
    func checksum() -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ p: UnsafeRawPointer, _ bytes: Int) {
            for i in 0..<(bytes / 8) { h = (h ^ p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* 0x100_0000_01b3 }
            for i in (bytes / 8 * 8)..<bytes { h = (h ^ UInt64(p.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01b3 }
        }
        mix(model.parameters, model.parameterCount * 4)
        ema.withUnsafeBytes { if let b = $0.baseAddress { mix(b, $0.count) } }
        return h
    }
}
