#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowIO
import Testing

// Debian libonnx-testdata as an oracle: Tests/Fixtures/onnx/conformance.tsv holds numpy_helper.to_array's
// values (as float32 digests) for every tensor .pb and every initializer, made by make_conformance.py.
let conformanceRoot = "/usr/share/libonnx-testdata/data"
let haveTestData = access(conformanceRoot + "/node", R_OK) == 0

@Test(.enabled(if: haveTestData, "apt-get install libonnx-testdata"))
func libonnxTestdataReadsLikeNumpyHelper() throws {
    let rows = tsvRows(fixtureRoot + "/conformance.tsv")
    var models = 0, initializers = 0, pbs = 0
    var current: (path: String, reader: OnnxReader)?
    for row in rows {
        switch row[0] {
        case "model":
            let r = try OnnxReader(path: conformanceRoot + "/" + row[1])
            #expect(r.tensors.count == Int(row[2])!, "\(row[1])")
            current = (row[1], r)
            models += 1
        case "init":
            let r = try #require(current?.path == row[1] ? current?.reader : nil)
            let i = try #require(r.index(of: row[2]), "\(row[1]): \(row[2])")
            try check(r, i, type: row[3], dims: row[4], digest: row[5], "\(row[1]): \(row[2])")
            initializers += 1
        case "pb":
            let r = try OnnxReader(path: conformanceRoot + "/" + row[1], kind: .tensorProto)
            #expect(r.tensors.count == 1)
            try check(r, 0, type: row[2], dims: row[3], digest: row[4], row[1])
            pbs += 1
        default:
            Issue.record("unknown row kind \(row[0])")
        }
    }
    // The counts of the Debian 1.12.0-2 data (docs/exactness.md §8): a silently empty manifest must fail.
    #expect(models == 1072 && initializers == 98 && pbs == 3154)
}

private func check(_ r: OnnxReader, _ i: Int, type: String, dims: String, digest: String, _ what: String) throws {
    let t = r.tensors[i]
    #expect(t.dataType == Int32(type)!, "\(what)")
    #expect(dimsText(t.dims) == dims, "\(what)")
    if digest == "-" {
        #expect(!t.isConvertibleToFloat, "\(what)")
        return
    }
    var values = [Float](repeating: 0, count: t.count)
    try values.withUnsafeMutableBufferPointer { try r.read(i, into: $0) }
    #expect(fnv(values) == digest, "\(what)")
}
