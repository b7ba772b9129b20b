// libFuzzer entry for the trainer checkpoint reader: every input is written as a file and resumed with
// Trainer.resume (Checkpoint.read: header, sizes, hash; then the metadata: optimiser, schedule, transport and
// the architecture the model is rebuilt from, and the sections checked against it). Any outcome other than a
// trainer or a MixflowError (a crash, an ASan report, a leak, a timeout, an allocation beyond the limits) is
// a finding. A mutant would almost never keep a valid hash, so for inputs of even length the last
// 8 bytes are replaced by the hash of the rest (what a hostile writer would do): those reach the metadata and
// the model rebuild; odd lengths exercise the checksum. Built and run by scripts/fuzz.sh checkpoint.
#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
import MixflowModels

private let folder: String = String(cString: getenv("MIXFLOW_FUZZ_DIR") ?? strdup("/tmp"))
private let path = folder + "/input.mixflow"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if size >= 8 && size % 2 == 0 {
        var hash = FNV1a()
        bytes.withUnsafeBytes { hash.add(UnsafeRawBufferPointer(rebasing: $0[0..<(size - 8)])) }
        withUnsafeBytes(of: hash.value.littleEndian) { for k in 0..<8 { bytes[size - 8 + k] = $0[k] } }
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path)") }
    var done = 0
    while done < size {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, size - done) }
        if n <= 0 { fatalError("write failed") }
        done += n
    }
    close(fd)
    do {
        let trainer = try Trainer.resume(from: path, threads: 1, parameterCount: nativeParameterCount) {
            try nativeModel(fromMetadata: $0, threads: 1)
        }
        _ = trainer.step
    } catch is MixflowError {
    } catch {
        fatalError("non-MixflowError thrown: \(error)")
    }
    return 0
}
