import MixflowCore
@testable import MixflowEval
import Testing

// Every prefix and many single-byte corruptions of valid files: each must either parse or throw a
// MixflowError.format naming the file, never trap or allocate what the file merely claims.

private func parsesOrFormatError(_ body: () throws -> Void) -> Bool {
    do { try body(); return true } catch let MixflowError.format(m) { return m.hasPrefix("f: ") } catch { return false }
}

@Test func everyTruncationAndByteFlipOfAnIDXFileIsHandled() {
    let plain = idxBytes(type: 8, dims: [3, 4, 5], payload: (0..<60).map { UInt8($0 * 3) })
    let gz = gzip(plain)
    for bytes in [plain, gz] {
        for cut in 0..<bytes.count {
            #expect(parsesOrFormatError { _ = try IDXArray(bytes: Array(bytes[0..<cut]), name: "f") }, "cut at \(cut)")
        }
        var state: UInt64 = 1
        for position in 0..<bytes.count {
            for _ in 0..<4 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                var mutated = bytes
                mutated[position] ^= UInt8(truncatingIfNeeded: state >> 56) | 1
                // A flip in the payload of a plain file is valid data; anything else must be caught.
                #expect(parsesOrFormatError { _ = try IDXArray(bytes: mutated, name: "f") }, "byte \(position) flipped")
            }
        }
    }
}

@Test func everyTruncationOfANetFileIsAFormatError() {
    let bytes = TinyNet(seed: 3).bytes()
    for cut in 0..<bytes.count {
        let thrown: Bool
        do { _ = try FeatureNet(bytes: Array(bytes[0..<cut]), name: "f"); thrown = false }
        catch let MixflowError.format(m) { thrown = m.hasPrefix("f: ") } catch { thrown = false }
        #expect(thrown, "cut at \(cut)")
    }
}
