import Foundation
import Testing
@testable import MixflowIO
import MixflowCore

// NPYReader against numpy's format as NPZWriter writes it (itself checked against numpy in the Python tests),
// and hostile headers refused with .format before any data is read.

@Test func npyReaderReadsWhatNumpyFormatHolds() throws {
    let path = NSTemporaryDirectory() + "/mixflow-npy-\(getpid()).npy"
    defer { unlink(path) }
    let values: [Float] = (0..<24).map { Float($0) * 0.5 - 3 }
    try NPZWriter.writeNPY(path: path, shape: [2, 3, 4], values: values)
    let r = try NPYReader.readFloat32(path: path)
    #expect(r.shape == [2, 3, 4] && r.values == values)
}

@Test func npyReaderRefusesHostileFiles() throws {
    let path = NSTemporaryDirectory() + "/mixflow-npy-bad-\(getpid()).npy"
    defer { unlink(path) }
    func write(_ header: String, data: Int) throws {
        var h = Array(header.utf8)
        while (10 + h.count + 1) % 64 != 0 { h.append(0x20) }
        h.append(0x0A)
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h
        bytes += [UInt8](repeating: 0, count: data)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
    for (header, data) in [("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16),
                           ("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8),
                           ("{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 4), }", 8),
                           ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8),
                           ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 8)] {
        try write(header, data: data)
        #expect(throws: MixflowError.self) { _ = try NPYReader.readFloat32(path: path) }
    }
}
