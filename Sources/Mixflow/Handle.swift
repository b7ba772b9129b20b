import MixflowCore

/// Opaque handles: a small malloc'd header {magic, object} whose address is the C pointer. The magic
/// identifies the kind, so passing a handle of another kind (or a freed one, best effort: the magic is
/// wiped on free) returns MIXFLOW_ERR_INVALID_HANDLE instead of crashing.
enum HandleKind: UInt64 {
    case transport = 0x4D46_5452_414E_5350  // "MFTRANSP"
    case model = 0x4D46_4D4F_4445_4C5F      // "MFMODEL_"
    case trainer = 0x4D46_5452_4149_4E52    // "MFTRAINR"
    case tensorFile = 0x4D46_5446_494C_4531  // "MFTFILE1"
    case tensorWriter = 0x4D46_5457_5249_5445  // "MFTWRITE"
    case sampler = 0x4D46_5341_4D50_4C52    // "MFSAMPLR"
    // ---- data and evaluation ----
    case idx = 0x4D46_4944_5841_5252        // "MFIDXARR"
    case featnet = 0x4D46_4645_4154_4E54    // "MFFEATNT"
    case dead = 0
}

struct HandleHeader {
    var magic: UInt64
    var object: Unmanaged<AnyObject>
}

enum Handle {
    static func make<P>(_ object: AnyObject, kind: HandleKind, as: P.Type) -> UnsafeMutablePointer<P> {
        let header = UnsafeMutablePointer<HandleHeader>.allocate(capacity: 1)
        header.initialize(to: HandleHeader(magic: kind.rawValue, object: Unmanaged.passRetained(object)))
        return UnsafeMutableRawPointer(header).bindMemory(to: P.self, capacity: 1)
    }

    static func get<T: AnyObject, P>(_ pointer: UnsafeMutablePointer<P>?, kind: HandleKind, _ name: String,
                                     as: T.Type) throws -> T {
        guard let pointer else { throw MixflowError.invalidArgument("\(name) must not be NULL") }
        let header = UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: HandleHeader.self)
        guard header.pointee.magic == kind.rawValue, let object = header.pointee.object.takeUnretainedValue() as? T else {
            throw MixflowError.invalidHandle("\(name) is not a live \(T.self) handle")
        }
        return object
    }

    /// Releases a handle; NULL and handles of another kind are ignored (free never fails).
    static func free<P>(_ pointer: UnsafeMutablePointer<P>?, kind: HandleKind) {
        guard let pointer else { return }
        let header = UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: HandleHeader.self)
        guard header.pointee.magic == kind.rawValue else { return }
        header.pointee.magic = HandleKind.dead.rawValue
        header.pointee.object.release()
        header.deallocate()
    }
}
