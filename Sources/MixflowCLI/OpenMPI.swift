#if canImport(Glibc)
import Glibc
#endif
import MixflowCore

/// The few MPI calls the command line makes, resolved at run time from Open MPI's `libmpi.so.40` with
/// dlopen, so that neither `mixflow-cli` nor `libmixflow.so` has a load-time MPI dependency: without a launcher
/// nothing MPI is ever loaded, and a machine without MPI runs the tool unchanged.
///
/// Open MPI's handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, ...) are the addresses of exported globals
/// (`ompi_mpi_comm_world`, `ompi_mpi_float`, `ompi_mpi_op_sum`; mpi.h's `OMPI_PREDEFINED_GLOBAL`), stable across
/// Open MPI 3, 4 and 5 (soname libmpi.so.40). Other MPIs (MPICH's integer handles) are refused with a message.
/// Errors inside MPI keep Open MPI's default handler, MPI_ERRORS_ARE_FATAL: a failed call aborts the whole job.
struct OpenMPI {
    typealias Handle = UnsafeMutableRawPointer
    let comm: Handle, float: Handle, double: Handle, byte: Handle, uint64: Handle, sum: Handle, max: Handle, min: Handle

    private let initThread: @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?, Int32,
                                            UnsafeMutablePointer<Int32>) -> Int32
    private let commRank: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    private let commSize: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    private let allreduceFn: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer, Int32, Handle, Handle, Handle) -> Int32
    private let bcastFn: @convention(c) (UnsafeMutableRawPointer, Int32, Handle, Int32, Handle) -> Int32
    private let gathervFn: @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, UnsafePointer<Int32>?,
                                           UnsafePointer<Int32>?, Handle, Int32, Handle) -> Int32
    private let typeContiguous: @convention(c) (Int32, Handle, UnsafeMutablePointer<Handle?>) -> Int32
    private let typeCommit: @convention(c) (UnsafeMutablePointer<Handle?>) -> Int32
    private let typeFree: @convention(c) (UnsafeMutablePointer<Handle?>) -> Int32
    private let abortFn: @convention(c) (Handle, Int32) -> Int32
    private let finalizeFn: @convention(c) () -> Int32

    /// mpi.h: MPI_IN_PLACE is `(void *) 1`; MPI_THREAD_FUNNELED is 1 (only the main thread calls MPI).
    static let inPlace = UnsafeRawPointer(bitPattern: 1)
    static let threadFunneled: Int32 = 1

    /// Loads the library (MIXFLOW_MPI_LIB, default libmpi.so.40) and resolves every symbol, or says why not.
    init() throws {
        let name = getenv("MIXFLOW_MPI_LIB").map { String(cString: $0) } ?? "libmpi.so.40"
        // RTLD_GLOBAL: Open MPI's own plugins (mca_*.so) resolve libmpi's symbols from the global scope.
        guard let lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw MixflowError.unsupported("launched by an MPI launcher, but \(name) (Open MPI) cannot be loaded: \(why). "
                           + "Install Open MPI (Debian: openmpi-bin), or set MIXFLOW_MPI_LIB to its libmpi.so")
        }
        func symbol<T>(_ s: String, as _: T.Type = T.self) throws -> T {
            guard let p = dlsym(lib, s) else {
                throw MixflowError.unsupported("\(name) has no symbol \(s): mixflow speaks Open MPI's ABI only (run it with Open MPI's mpirun)")
            }
            return unsafeBitCast(p, to: T.self)
        }
        comm = try symbol("ompi_mpi_comm_world"); float = try symbol("ompi_mpi_float"); double = try symbol("ompi_mpi_double")
        byte = try symbol("ompi_mpi_byte"); uint64 = try symbol("ompi_mpi_uint64_t")
        sum = try symbol("ompi_mpi_op_sum"); max = try symbol("ompi_mpi_op_max"); min = try symbol("ompi_mpi_op_min")
        initThread = try symbol("MPI_Init_thread"); commRank = try symbol("MPI_Comm_rank"); commSize = try symbol("MPI_Comm_size")
        allreduceFn = try symbol("MPI_Allreduce"); bcastFn = try symbol("MPI_Bcast"); gathervFn = try symbol("MPI_Gatherv")
        typeContiguous = try symbol("MPI_Type_contiguous"); typeCommit = try symbol("MPI_Type_commit")
        typeFree = try symbol("MPI_Type_free"); abortFn = try symbol("MPI_Abort"); finalizeFn = try symbol("MPI_Finalize")
    }

    /// MPI_Init_thread (funneled); returns (rank, size) in MPI_COMM_WORLD.
    func start() throws -> (rank: Int, size: Int) {
        var provided: Int32 = 0, rank: Int32 = 0, size: Int32 = 0
        guard initThread(nil, nil, Self.threadFunneled, &provided) == 0 else { throw MixflowError.io("MPI_Init_thread failed") }
        _ = commRank(comm, &rank)
        _ = commSize(comm, &size)
        return (Int(rank), Int(size))
    }

    /// In-place MPI_Allreduce of `count` elements, in pieces below Int32.max elements.
    func allreduce(_ buffer: UnsafeMutableRawPointer, count: Int, type: Handle, elementSize: Int, op: Handle) {
        var done = 0
        while done < count {
            let piece = Swift.min(count - done, Int(Int32.max))
            _ = allreduceFn(Self.inPlace, buffer + done * elementSize, Int32(piece), type, op, comm)
            done += piece
        }
    }

    func bcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        _ = bcastFn(buffer, Int32(bytes), byte, Int32(root), comm)
    }

    /// MPI_Gatherv of whole rows of `rowBytes` bytes (a contiguous datatype, so the counts are rows, not bytes).
    func gatherRows(_ local: UnsafeRawPointer?, rows: Int, rowBytes: Int, into out: UnsafeMutableRawPointer?,
                    counts: [Int32], offsets: [Int32], root: Int) {
        var row: Handle?
        _ = typeContiguous(Int32(rowBytes), byte, &row)
        _ = typeCommit(&row)
        counts.withUnsafeBufferPointer { c in
            offsets.withUnsafeBufferPointer { o in
                _ = gathervFn(local, Int32(rows), row!, out, c.baseAddress, o.baseAddress, row!, Int32(root), comm)
            }
        }
        _ = typeFree(&row)
    }

    func abort(code: Int32) -> Never {
        _ = abortFn(comm, code)
        _exit(code)
    }

    func finalize() { _ = finalizeFn() }
}
