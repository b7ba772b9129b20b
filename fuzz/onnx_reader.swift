// libFuzzer entry for the ONNX reader: every input is written as model.onnx into a scratch folder that also
// holds small external-data files (the seeds' "model.onnx.data", "w.bin", ...), opened with OnnxReader
// (protobuf parse + all validation) and, when that succeeds, every convertible tensor is read and the SiT
// model import (ModelONNX.load: name matching, graph walk, shape inference, metadata) is run. Any outcome
// other than a value or a MixflowError (a crash, an ASan report, a leak, a timeout) is a finding.
// Built and run by scripts/fuzz.sh onnx; not part of the SwiftPM package.
#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
import MixflowIO

private let folder: String = String(cString: getenv("MIXFLOW_FUZZ_DIR") ?? strdup("/tmp"))
private let modelPath = folder + "/model.onnx"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let fd = open(modelPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(modelPath)") }
    var done = 0
    while done < size {
        let n = write(fd, data + done, size - done)
        if n <= 0 { fatalError("write failed") }
        done += n
    }
    close(fd)
    // The same bytes as a model and as a single TensorProto (.pb test data): both parsers see every input.
    for kind in [OnnxReader.Kind.model, .tensorProto] {
        do {
            let r = try OnnxReader(path: modelPath, kind: kind)
            for (i, t) in r.tensors.enumerated() where t.isConvertibleToFloat && t.count <= 1 << 22 {
                var buf = [Float](repeating: 0, count: t.count)
                do { try buf.withUnsafeMutableBufferPointer { try r.read(i, into: $0) } } catch is MixflowError {}
            }
            _ = r.metadataValue("mixflow.arch")
            if kind == .model { _ = try? ModelONNX.load(path: modelPath, heads: 4, threads: 1) }
        } catch is MixflowError {
        } catch {
            fatalError("non-MixflowError thrown: \(error)")
        }
    }
    return 0
}
