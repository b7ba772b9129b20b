internal import OnnxShim

/// One graph node as stored: op type and value names (byte strings decoded leniently; they are only compared).
public struct OnnxNode: Equatable {
    public let opType: String
    public let inputs: [String]
    public let outputs: [String]
}

extension OnnxReader {
    /// The graph's nodes in file order (empty for a pure tensor file). The protobuf parse already bounded
    /// their number and sizes by the file's size.
    public func nodes() -> [OnnxNode] {
        (0..<Int64(numNodes)).compactMap { i in
            var op: UnsafePointer<CChar>?
            var opLen = 0
            var nIn: Int32 = 0, nOut: Int32 = 0
            guard mfx_onnx_node_at(model, i, &op, &opLen, &nIn, &nOut) == MFX_ONNX_OK else { return nil }
            func value(_ output: Int32, _ k: Int32) -> String {
                var p: UnsafePointer<CChar>?
                var n = 0
                guard mfx_onnx_node_value(model, i, output, k, &p, &n) == MFX_ONNX_OK else { return "" }
                return String(decoding: Self.bytes(p, n), as: UTF8.self)
            }
            return OnnxNode(opType: String(decoding: Self.bytes(op, opLen), as: UTF8.self),
                            inputs: (0..<nIn).map { value(0, $0) }, outputs: (0..<nOut).map { value(1, $0) })
        }
    }
}
