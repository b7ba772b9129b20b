// libFuzzer entry for the IDX reader (plain and gzip): every input is parsed from memory with IDXArray and,
// when it parses, converted to float32 and, for integer types, to int32 labels. Any outcome other than an
// array or a MixflowError (a crash, an ASan report, a leak, a timeout, an allocation beyond the limits) is a
// finding. Built and run by scripts/fuzz.sh idx.
import MixflowCore
import MixflowEval

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        let a = try IDXArray(bytes: Array(UnsafeBufferPointer(start: data, count: size)), name: "input")
        var f = [Float](repeating: 0, count: a.count)
        try f.withUnsafeMutableBufferPointer { try a.readFloat(into: $0.baseAddress!, scaling: .none) }
        if a.type.isInteger {
            var y = [Int32](repeating: 0, count: a.count)
            try y.withUnsafeMutableBufferPointer { try a.readInt32(into: $0.baseAddress!) }
        }
    } catch is MixflowError {
    } catch {
        fatalError("non-MixflowError thrown: \(error)")
    }
    return 0
}
