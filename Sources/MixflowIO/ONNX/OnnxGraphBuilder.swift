#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
internal import OnnxShim

/// Appends computation nodes to an `OnnxWriter`'s graph (default domain, opset 17), naming every
/// intermediate value freshly so callers only think in values. Small constants become `Constant` nodes, not
/// initializers, so a model file's initializers are exactly its weights (an importer then sees no extras).
final class OnnxGraphBuilder {
    enum Attribute {
        case int(Int64), ints([Int64]), float(Float)
    }

    let writer: OnnxWriter
    private var counter = 0
    private var int64Constants: [[Int64]: String] = [:]

    init(_ writer: OnnxWriter) { self.writer = writer }

    func fresh(_ hint: String) -> String {
        counter += 1
        return "\(hint)_\(counter)"
    }

    /// Adds `op(inputs)` with `outputs` fresh results (named after `hint`, or exactly `named`) and returns their names.
    @discardableResult
    func node(_ op: String, _ inputs: [String], outputs: Int = 1, hint: String? = nil, named: [String]? = nil,
              attrs attributes: [(String, Attribute)] = []) throws -> [String] {
        let names = named ?? (0..<outputs).map { _ in fresh(hint ?? op.lowercased()) }
        try withCStrings(inputs) { ins in
            try withCStrings(names) { outs in
                try check(mfx_onnx_writer_add_node(writer.writer, op, ins, Int32(ins.count), outs, Int32(outs.count)), op)
            }
        }
        for (name, value) in attributes {
            let rc: Int32
            switch value {
            case .int(let v): rc = mfx_onnx_writer_attr_int(writer.writer, name, v)
            case .ints(let v): rc = v.withUnsafeBufferPointer { mfx_onnx_writer_attr_ints(writer.writer, name, $0.baseAddress, Int32($0.count)) }
            case .float(let v): rc = mfx_onnx_writer_attr_float(writer.writer, name, v)
            }
            try check(rc, "\(op).\(name)")
        }
        return names
    }

    /// Single-output shorthand.
    func op(_ op: String, _ inputs: String..., hint: String? = nil, attrs: [(String, Attribute)] = []) throws -> String {
        try node(op, inputs, hint: hint, attrs: attrs)[0]
    }

    /// An INT64 constant (shapes, axes, split sizes); identical values share one node.
    func int64(_ values: [Int64]) throws -> String {
        if let name = int64Constants[values] { return name }
        let name = fresh("const_i64")
        try values.withUnsafeBufferPointer { v in
            var dims = [Int64(values.count)]
            try check(mfx_onnx_writer_add_constant(writer.writer, name, OnnxDataType.int64, &dims, 1, v.baseAddress,
                                                   Int64(values.count)), "constant")
        }
        int64Constants[values] = name
        return name
    }

    /// A FLOAT constant of shape `dims` ([] = scalar).
    func float(_ values: [Float], dims: [Int64] = []) throws -> String {
        let name = fresh("const_f32")
        try values.withUnsafeBufferPointer { v in
            try dims.withUnsafeBufferPointer { d in
                try check(mfx_onnx_writer_add_constant(writer.writer, name, OnnxDataType.float, d.baseAddress,
                                                       Int32(dims.count), v.baseAddress, Int64(values.count)), "constant")
            }
        }
        return name
    }

    /// Declares a graph input or output; a negative dim is the symbolic batch dimension.
    func value(_ name: String, output: Bool, dataType: Int32, dims: [Int64]) throws {
        try dims.withUnsafeBufferPointer { d in
            try check(mfx_onnx_writer_add_value(writer.writer, output ? 1 : 0, name, dataType, d.baseAddress,
                                                Int32(dims.count)), "graph value \"\(name)\"")
        }
    }

    private func check(_ rc: Int32, _ what: String) throws {
        guard rc != MFX_ONNX_OK else { return }
        throw OnnxReader.shimError(rc, "\(writer.path): graph node \(what): shim error \(rc)")
    }
}

/// Runs `body` with NUL-terminated copies of `strings` (valid only inside it).
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) throws -> R) throws -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    guard !copies.contains(where: { $0 == nil }) else { throw MixflowError.outOfMemory("graph node names") }
    return try body(copies.map { UnsafePointer($0) })
}
