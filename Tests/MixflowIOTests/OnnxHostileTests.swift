#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowIO
import Testing

// Hostile inputs: each must give a clear MixflowError (kind + message fragment), never a crash, an
// out-of-folder read or an unbounded allocation. Also run under `swift test --sanitize=address`.

@Test func hostileFixturesGiveClearErrors() {
    let rows = tsvRows(fixtureRoot + "/hostile.tsv")
    #expect(rows.count == 23)
    for row in rows {
        let (file, kind, fragment) = (row[0], row[1], row[2])
        do {
            let r = try OnnxReader(path: fixtureRoot + "/" + file)
            let e = readAll(r)
            Issue.record("\(file) opened; read gave \(String(describing: e))")
        } catch let e as MixflowError {
            #expect(kindName(e) == kind, "\(file): \(e)")
            #expect(e.message.contains(fragment), "\(file): \(e.message)")
            #expect(e.message.contains(file), "\(file): the message names the file: \(e.message)")
        } catch {
            Issue.record("\(file): unexpected \(error)")
        }
    }
}

@Test func symlinksOutOfTheFolderAreRefused() throws {
    let tmp = TempFolder()
    let outside = TempFolder()
    writeBytes(outside.file("w.bin"), [UInt8](repeating: 7, count: 64))
    mkdir(tmp.file("m"), 0o755)
    // The model references "w.bin" (external, 4 floats); make w.bin a link to a file outside the folder.
    let model = modelReferencingWBin(in: tmp)
    symlink(outside.file("w.bin"), tmp.file("m/w.bin"))
    #expect { try OnnxReader(path: model) } throws: { e in
        (e as? MixflowError).map { kindName($0) == "format" && $0.message.contains("outside the model's folder") } ?? false
    }
    // A link to a directory outside, then a file through it.
    unlink(tmp.file("m/w.bin"))
    symlink(outside.path, tmp.file("m/w.bin"))
    #expect(throws: MixflowError.self) { try OnnxReader(path: model) }
    // A link that stays inside the folder is fine.
    unlink(tmp.file("m/w.bin"))
    writeBytes(tmp.file("m/real.bin"), [UInt8](repeating: 0, count: 64))
    symlink("real.bin", tmp.file("m/w.bin"))
    let r = try OnnxReader(path: model)
    #expect(try r.read("w") == [0, 0, 0, 0])
}

/// Copies templates/ext_w4/model.onnx (one external float tensor "w" [4] at location "w.bin", no data file)
/// into tmp/m/, for the test to place w.bin itself.
private func modelReferencingWBin(in tmp: TempFolder) -> String {
    mkdir(tmp.file("m"), 0o755)
    let path = tmp.file("m/model.onnx")
    writeBytes(path, readBytes(fixtureRoot + "/templates/ext_w4/model.onnx"))
    return path
}

// MARK: - Truncated and corrupted copies of good files

/// Opens (and, if that succeeds, reads everything from) a file; any outcome but a MixflowError of the
/// expected kinds is a failure. Returns whether it opened.
@discardableResult
private func survives(_ path: String, _ what: String) -> Bool {
    do {
        let r = try OnnxReader(path: path)
        if let e = readAll(r) { #expect(["format", "io", "unsupported"].contains(kindName(e)), "\(what): \(e)") }
        return true
    } catch let e as MixflowError {
        #expect(["format", "io", "unsupported"].contains(kindName(e)), "\(what): \(e)")
        #expect(!e.message.isEmpty)
        return false
    } catch {
        Issue.record("\(what): \(error)")
        return false
    }
}

@Test(arguments: ["good/raw.onnx", "good/typed.onnx", "good/ext_single/model.onnx", "good/ext_multi/model.onnx"])
func everyTruncationIsAnErrorNotACrash(fixture: String) {
    let tmp = TempFolder()
    let bytes = readBytes(fixtureRoot + "/" + fixture)
    // Keep the external files next to the truncated model.
    let folder = parentFolder(fixtureRoot + "/" + fixture)
    for name in ["model.onnx.data", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "half", "double"] {
        if access(folder + "/" + name, R_OK) == 0 { writeBytes(tmp.file(name), readBytes(folder + "/" + name)) }
    }
    var opened = 0
    for cut in 0..<bytes.count {
        writeBytes(tmp.file("model.onnx"), Array(bytes.prefix(cut)))
        if survives(tmp.file("model.onnx"), "\(fixture) cut at \(cut)") { opened += 1 }
    }
    // Most prefixes end inside a field; the few that end on a field boundary are valid smaller models.
    #expect(opened < bytes.count / 4, "\(fixture): \(opened) of \(bytes.count) prefixes parsed")
}

@Test func truncatedExternalDataIsAnError() {
    let tmp = TempFolder()
    let src = fixtureRoot + "/good/ext_single/"
    writeBytes(tmp.file("model.onnx"), readBytes(src + "model.onnx"))
    let data = readBytes(src + "model.onnx.data")
    for cut in stride(from: 0, to: data.count, by: 7) {
        writeBytes(tmp.file("model.onnx.data"), Array(data.prefix(cut)))
        #expect(!survives(tmp.file("model.onnx"), "data cut at \(cut)"))
    }
}

@Test(arguments: ["good/raw.onnx", "good/typed.onnx", "good/ext_single/model.onnx"])
func corruptedBytesNeverCrash(fixture: String) {
    let tmp = TempFolder()
    let bytes = readBytes(fixtureRoot + "/" + fixture)
    let folder = parentFolder(fixtureRoot + "/" + fixture)
    if access(folder + "/model.onnx.data", R_OK) == 0 {
        writeBytes(tmp.file("model.onnx.data"), readBytes(folder + "/model.onnx.data"))
    }
    // Every byte position, three damage patterns each: inverted, zeroed, and 0xFF (a huge varint continuation).
    for i in 0..<bytes.count {
        for pattern in [{ (b: UInt8) in ~b }, { _ in 0 }, { _ in 0xFF }] as [(UInt8) -> UInt8] {
            var copy = bytes
            copy[i] = pattern(copy[i])
            writeBytes(tmp.file("model.onnx"), copy)
            survives(tmp.file("model.onnx"), "\(fixture) byte \(i)")
        }
    }
}

@Test func fifosAreRefusedWithoutBlocking() throws {
    let tmp = TempFolder()
    // A FIFO as the model and as the external-data file: opening either for reading would block forever.
    mkfifo(tmp.file("fifo.onnx"), 0o600)
    #expect(throws: MixflowError.io("\(tmp.file("fifo.onnx")): not a regular file")) { try OnnxReader(path: tmp.file("fifo.onnx")) }
    let model = modelReferencingWBin(in: tmp)
    mkfifo(tmp.file("m/w.bin"), 0o600)
    #expect { try OnnxReader(path: model) } throws: { e in
        (e as? MixflowError).map { kindName($0) == "io" && $0.message.contains("not a regular file") } ?? false
    }
}

@Test func nonFilesAndMissingFilesAreIOErrors() {
    let tmp = TempFolder()
    #expect(throws: MixflowError.io("\(tmp.path): not a regular file")) { try OnnxReader(path: tmp.path) }
    #expect { try OnnxReader(path: tmp.file("missing.onnx")) } throws: { e in
        (e as? MixflowError).map { kindName($0) == "io" && $0.message.contains("cannot open") } ?? false
    }
    #expect(throws: MixflowError.invalidArgument("path must not be empty")) { try OnnxReader(path: "") }
    #expect(throws: MixflowError.self) { try OnnxReader(path: tmp.file("no/such/folder/m.onnx")) }
}
