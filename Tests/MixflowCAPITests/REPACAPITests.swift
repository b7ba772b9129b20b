#if canImport(Glibc)
import Glibc
#endif
import CMixflow
import Foundation
import Mixflow
import Testing

// mixflow_trainer_step_features on REPA's SiT: the fixture Tests/Fixtures/repa/tiny_one_encoder (REPA's official
// state-dict names, non-zero weights everywhere) is written to an ONNX file with the C tensor writer and loaded
// with mixflow_model_load_onnx. The alignment term's value and gradients are checked against REPA's official code
// in REPAFixtureTests.swift (native) and bindings/python/tests/test_repa.py (through the library, torch
// reference); here the C entry point's contract, through properties of REPA's loss that hold whatever the
// transport draws: proj = mean −cos(z, z̃) is odd in the features z and blind to their scale, |proj| <= 1, and
// λ·proj is added to the denoising loss whose gradient is unchanged.

private let repaFixture = "tiny_one_encoder"

/// A REPA model loaded from the fixture's weights (no metadata: the architecture comes from the shapes).
private func loadREPA(_ ts: [String: Data], _ shapes: [String: [Int64]]) throws -> UnsafeMutablePointer<mixflow_model>? {
    var template = Array("/tmp/mixflow-repa-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var w: UnsafeMutablePointer<mixflow_tensor_writer>?
    #expect(mixflow_tensor_writer_create(dir + "/repa.onnx", -1, &w) == MIXFLOW_OK)
    for name in shapes.keys.sorted() where name.hasPrefix("param:") {
        let shape = shapes[name]!
        #expect(mixflow_tensor_writer_add(w, String(name.dropFirst(6)), floats(ts[name]!), shape, Int32(shape.count)) == MIXFLOW_OK)
    }
    #expect(mixflow_tensor_writer_finish(w) == MIXFLOW_OK)
    mixflow_tensor_writer_free(w)
    var lp = mixflow_model_load_params()
    #expect(mixflow_model_load_default_params(&lp, UInt32(MemoryLayout<mixflow_model_load_params>.size)) == MIXFLOW_OK)
    lp.heads = 2; lp.num_threads = 1
    var m: UnsafeMutablePointer<mixflow_model>?
    #expect(mixflow_model_load_onnx(dir + "/repa.onnx", &lp, &m) == MIXFLOW_OK, "\(lastError())")
    return m
}

/// What the gradient hook saw.
private final class Captured { var grads: [Float] = [] }

/// One step of a fresh REPA trainer (presets "repa", seed 5) on the fixture's batch: its loss and the gradient
/// the hook received (before clipping and the update). `features` nil calls `mixflow_trainer_step` when
/// `plain`, else `mixflow_trainer_step_features` with NULL.
private func firstStep(_ ts: [String: Data], _ shapes: [String: [Int64]], features: [Float]?, plain: Bool = false,
                       projCoeff: Double = 0.5) throws -> (loss: Float, grads: [Float], withoutFeatures: Int32) {
    let m = try #require(try loadREPA(ts, shapes))
    defer { mixflow_model_free(m) }
    var x1 = floats(ts["x"]!)
    var y = ts["y"]!.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    let (tr, trainer) = presetTrainer(m, "repa", dim: Int64(x1.count / y.count)) {
        $0.seed = 5; $0.num_threads = 1; $0.proj_coeff = projCoeff
    }
    defer { mixflow_trainer_free(trainer); mixflow_transport_free(tr) }
    #expect(trainer != nil)
    let captured = Captured()
    let hook: mixflow_gradient_fn = { user, g, count, _ in
        Unmanaged<Captured>.fromOpaque(user!).takeUnretainedValue().grads = Array(UnsafeBufferPointer(start: g, count: Int(count)))
        return 0
    }
    #expect(mixflow_trainer_set_gradient_hook(trainer, hook, Unmanaged.passUnretained(captured).toOpaque()) == MIXFLOW_OK)
    var loss: Float = 0
    let b = Int64(y.count)
    if plain {
        #expect(mixflow_trainer_step(trainer, &x1, &y, b, 0, &loss) == MIXFLOW_OK)
    } else if var z = features {
        let size = Int64(z.count) / b
        #expect(mixflow_trainer_step_features(trainer, &x1, &y, &z, size, b, 0, &loss) == MIXFLOW_OK, "\(lastError())")
    } else {
        #expect(mixflow_trainer_step_features(trainer, &x1, &y, nil, 0, b, 0, &loss) == MIXFLOW_OK)
    }
    return (loss, captured.grads, mixflow_trainer_trained_without_features(trainer))
}

/// The flat-buffer ranges of the projectors' tensors (the buffer follows the tensor order).
private func projectorRanges(_ ts: [String: Data], _ shapes: [String: [Int64]]) throws -> [Range<Int>] {
    let m = try #require(try loadREPA(ts, shapes))
    defer { mixflow_model_free(m) }
    var name: UnsafePointer<CChar>?, shape = [Int64](repeating: 0, count: 4), ndim: Int32 = 0
    var ranges: [Range<Int>] = [], offset = 0
    for i in 0..<mixflow_model_num_tensors(m) {
        #expect(mixflow_model_tensor_info(m, i, &name, &shape, &ndim, nil) == MIXFLOW_OK)
        let n = Int(shape.prefix(Int(ndim)).reduce(1, *))
        if String(cString: name!).hasPrefix("projectors.") { ranges.append(offset..<(offset + n)) }
        offset += n
    }
    #expect(offset == Int(mixflow_model_num_params(m)))
    return ranges
}

@Test func stepFeaturesAddsREPAsAlignmentTermThroughTheCAPI() throws {
    let (_, ts, shapes) = try loadFixture(repaFixture, folder: "repa")
    let z = floats(ts["z0"]!)                  // [B, tokens, z_dim]: the fixture's target features
    let none = try firstStep(ts, shapes, features: nil)
    let plain = try firstStep(ts, shapes, features: nil, plain: true)
    let with = try firstStep(ts, shapes, features: z)
    let negated = try firstStep(ts, shapes, features: z.map { -$0 })
    let scaled = try firstStep(ts, shapes, features: z.map { 3 * $0 })
    let off = try firstStep(ts, shapes, features: z, projCoeff: 0)
    // NULL features are mixflow_trainer_step, bit for bit; a model with projectors then says so.
    #expect(none.loss == plain.loss && none.grads == plain.grads)
    #expect(none.withoutFeatures == 1 && plain.withoutFeatures == 1 && with.withoutFeatures == 0)
    // loss = denoise + 0.5·proj, |proj| <= 1, proj odd in z and blind to its scale.
    let lambdaProj = with.loss - none.loss
    #expect(lambdaProj != 0 && abs(lambdaProj) <= 0.5)
    #expect(abs((with.loss + negated.loss) - 2 * none.loss) <= 1e-5)
    #expect(abs(scaled.loss - with.loss) <= 1e-5)
    // λ = proj_coeff: 0 turns the term off.
    #expect(off.loss == none.loss && off.grads == none.grads)
    // Gradients: the projectors get one only from the alignment term; the term's gradient is odd in z.
    let projectors = try projectorRanges(ts, shapes)
    #expect(!projectors.isEmpty)
    for r in projectors {
        #expect(none.grads[r].allSatisfy { $0 == 0 })
        #expect(with.grads[r].contains { $0 != 0 })
    }
    let scale = with.grads.map(abs).max()!
    let odd = zip(zip(with.grads, negated.grads), none.grads).map { abs($0.0 + $0.1 - 2 * $1) }.max()!
    #expect(odd <= 1e-5 * scale, "g(z) + g(−z) − 2 g(none): \(odd) (scale \(scale))")
    #expect(zip(with.grads, none.grads).map { abs($0 - $1) }.max()! > 1e-3 * scale)
}

@Test func stepFeaturesIsValidatedThroughTheCAPI() throws {
    let (_, ts, shapes) = try loadFixture(repaFixture, folder: "repa")
    let m = try #require(try loadREPA(ts, shapes))
    defer { mixflow_model_free(m) }
    let tokens = 4, zDim = 6
    #expect(mixflow_model_feature_size(m) == Int64(tokens * zDim))
    let (tr, trainer) = presetTrainer(m, "repa", dim: 192)
    defer { mixflow_trainer_free(trainer); mixflow_transport_free(tr) }
    #expect(trainer != nil)
    var x1 = floats(ts["x"]!), y = ts["y"]!.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    var z = floats(ts["z0"]!), loss: Float = 0
    let b = Int64(y.count), fs = Int64(tokens * zDim)
    #expect(mixflow_trainer_step_features(trainer, &x1, &y, &z, fs - 1, b, 0, &loss) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("feature_size"), "\(lastError())")
    #expect(mixflow_trainer_step_features(trainer, &x1, &y, nil, fs, b, 0, &loss) == MIXFLOW_ERR_INVALID_ARGUMENT)
    z[5] = .nan
    #expect(mixflow_trainer_step_features(trainer, &x1, &y, &z, fs, b, 0, &loss) == MIXFLOW_ERR_INVALID_ARGUMENT)
    // Nothing trained: the refused calls left the step count at 0, and a good call still works.
    z[5] = 0.5
    #expect(mixflow_trainer_step_features(trainer, &x1, &y, &z, fs, b, 0, &loss) == MIXFLOW_OK && loss.isFinite)
    // A model without projectors refuses features.
    let sit = try #require(makeModel(tinyModelParams()))
    defer { mixflow_model_free(sit) }
    #expect(mixflow_model_feature_size(sit) == 0)
    var sitTrainer: UnsafeMutablePointer<mixflow_trainer>?, sitTransport: UnsafeMutablePointer<mixflow_transport>?
    var stp = defaultTransportParams(), srp = mixflow_trainer_params()
    #expect(mixflow_transport_create(&stp, &sitTransport) == MIXFLOW_OK)
    defer { mixflow_transport_free(sitTransport) }
    #expect(mixflow_trainer_default_params(&srp, UInt32(MemoryLayout<mixflow_trainer_params>.size)) == MIXFLOW_OK)
    #expect(mixflow_trainer_create(sit, sitTransport, &srp, &sitTrainer) == MIXFLOW_OK)
    defer { mixflow_trainer_free(sitTrainer) }
    var sx = [Float](repeating: 0.1, count: 2 * 32), sy: [Int32] = [0, 1], sz: [Float] = [1, 2]
    #expect(mixflow_trainer_step_features(sitTrainer, &sx, &sy, &sz, 1, 2, 0, &loss) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_trainer_step_features(sitTrainer, &sx, &sy, nil, 0, 2, 0, &loss) == MIXFLOW_OK)
    #expect(mixflow_trainer_trained_without_features(sitTrainer) == 0)
}
