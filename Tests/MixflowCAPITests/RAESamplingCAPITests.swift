import CMixflow
import Foundation
import Mixflow
import Testing

// RAE sampling through the C API with a native DiT^DH: autoguidance whose guide is the main model is exactly
// unguided sampling at any scale, with equal labels; and the PNG grid writer's validation and layout.

/// A tiny custom DiT^DH with every tensor set to non-trivial values (the official init zeroes the output layers).
func busyDiTDH(seed: UInt64) throws -> UnsafeMutablePointer<mixflow_model> {
    var p = ditdhParams(tinyDiTDHShape); p.seed = seed
    let m = try #require(makeModel(p))
    for i in 0..<mixflow_model_num_tensors(m) {
        var name: UnsafePointer<CChar>?; var shape = [Int64](repeating: 0, count: 8); var ndim: Int32 = 0; var trainable: Int32 = 0
        #expect(mixflow_model_tensor_info(m, i, &name, &shape, &ndim, &trainable) == MIXFLOW_OK)
        guard trainable != 0 else { continue }   // keep pos_embed, W and the RoPE tables
        let count = shape.prefix(Int(ndim)).reduce(1, *)
        let values = (0..<Int(count)).map { Float(sin(Double($0 * 3 + Int(i) * 7) + Double(seed))) * 0.2 }
        #expect(mixflow_model_set_tensor(m, name, values, shape, ndim) == MIXFLOW_OK)
    }
    return m
}

@Test(arguments: [0.0, 1.0, 1.42, 4.0, -1.5] as [Float])
func nativeAutoguidanceWithItselfIsUnguidedSampling(scale: Float) throws {
    let m = try busyDiTDH(seed: 3)
    defer { mixflow_model_free(m) }
    let rae: (inout mixflow_sampler_params) -> Void = {
        $0.method = MIXFLOW_SAMPLER_EULER; $0.convention = MIXFLOW_CONVENTION_RAE; $0.num_steps = 8; $0.time_shift = 2
        $0.null_class = 3
    }
    let plain = try #require(makeSampler(rae))
    let auto = try #require(makeSampler { rae(&$0); $0.guidance = MIXFLOW_GUIDANCE_AUTO; $0.guidance_scale = scale })
    defer { mixflow_sampler_free(plain); mixflow_sampler_free(auto) }
    let n = 7, dim = 4 * 4 * 4
    var y = [Int32](repeating: 0, count: n)
    #expect(mixflow_equal_labels(Int64(n), 3, 11, &y) == MIXFLOW_OK)
    var counts = [0, 0, 0]
    for l in y { counts[Int(l)] += 1 }
    #expect(counts.allSatisfy { $0 == 2 || $0 == 3 } && counts.reduce(0, +) == 7)   // floor(7/3) or + 1
    let noise = (0..<(n * dim)).map { Float(cos(Double($0) * 0.7)) }
    var a = [Float](repeating: 0, count: n * dim), b = a
    var nfeA: Int64 = 0, nfeB: Int64 = 0
    #expect(mixflow_sample_model(plain, m, nil, noise, Int64(n), Int64(dim), y, 0, &a, nil, &nfeA) == MIXFLOW_OK)
    #expect(mixflow_sample_model(auto, m, m, noise, Int64(n), Int64(dim), y, 0, &b, nil, &nfeB) == MIXFLOW_OK)
    #expect(a == b && nfeA == 7 && nfeB == 7)
    #expect(a != noise)
}

@Test func nativeAutoguidanceWithAWeakerGuideExtrapolates() throws {
    let m = try busyDiTDH(seed: 3), g = try busyDiTDH(seed: 4)
    defer { mixflow_model_free(m); mixflow_model_free(g) }
    // One Euler step: x1 = x0 + Δτ · (G + w (M − G)); compare with the two forwards.
    let s = try #require(makeSampler {
        $0.method = MIXFLOW_SAMPLER_EULER; $0.convention = MIXFLOW_CONVENTION_RAE; $0.num_steps = 2
        $0.guidance = MIXFLOW_GUIDANCE_AUTO; $0.guidance_scale = 1.42; $0.null_class = 3
    })
    defer { mixflow_sampler_free(s) }
    let dim = 64
    let noise = (0..<(2 * dim)).map { Float(sin(Double($0))) }
    var y: [Int32] = [1, 2], x = [Float](repeating: 0, count: 2 * dim)
    #expect(mixflow_sample_model(s, m, g, noise, 2, Int64(dim), &y, 0, &x, nil, nil) == MIXFLOW_OK)
    var t: [Float] = [1, 1], vm = x, vg = x
    #expect(mixflow_model_forward(m, noise, &t, &y, 2, &vm) == MIXFLOW_OK)
    #expect(mixflow_model_forward(g, noise, &t, &y, 2, &vg) == MIXFLOW_OK)
    let dt = Float(0.001) - 1   // RAE grid with 2 points, no shift: 1 → 0.001
    for i in 0..<(2 * dim) {
        let expected = noise[i] + dt * (vg[i] + 1.42 * (vm[i] - vg[i]))
        // Float rounding of the guided combination and of the step: a few ulps of values of order 1.
        #expect(abs(x[i] - expected) <= 1e-5 * max(1, abs(expected)))
    }
}

@Test func pngGridWriterValidatesAndWritesTheGrid() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mixflow-png-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("g.png").path
    var px = [UInt8](repeating: 7, count: 5 * 4 * 3)   // 5 grey images of 4x3
    let cases: [(mixflow_status, String, () -> mixflow_status)] = [
        (MIXFLOW_ERR_INVALID_ARGUMENT, "mixflow_samples_write_png: path must not be NULL", { mixflow_samples_write_png(nil, &px, 5, 4, 3, 1, 2) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "mixflow_samples_write_png: images must not be NULL", { mixflow_samples_write_png(path, nil, 5, 4, 3, 1, 2) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "mixflow_samples_write_png: images dimension 0 must be > 0, got 0", { mixflow_samples_write_png(path, &px, 0, 4, 3, 1, 2) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "mixflow_samples_write_png: images dimension 2 must be > 0, got -3", { mixflow_samples_write_png(path, &px, 5, 4, -3, 1, 2) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "mixflow_samples_write_png: channels must be 1 or 3, got 2", { mixflow_samples_write_png(path, &px, 5, 4, 3, 2, 2) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "mixflow_samples_write_png: columns must be > 0, got 0", { mixflow_samples_write_png(path, &px, 5, 4, 3, 1, 0) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "mixflow_samples_write_png: images has [4611686018427387904, 4, 3, 1] elements, which overflows a 64-bit size",
         { mixflow_samples_write_png(path, &px, 1 << 62, 4, 3, 1, 2) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "mixflow_samples_write_png: the grid of 1 x 1 images of 4 x 16777216 is larger than 2^24 pixels on a side",
         { mixflow_samples_write_png(path, &px, 1, 4, 1 << 24, 1, 2) }),
    ]
    for (status, message, call) in cases {
        #expect(call() == status)
        #expect(lastError() == message)
    }
    #expect(mixflow_samples_write_png("/nonexistent-dir/g.png", &px, 5, 4, 3, 1, 2) == MIXFLOW_ERR_IO)
    #expect(!FileManager.default.fileExists(atPath: path))
    for i in px.indices { px[i] = UInt8(i) }
    #expect(mixflow_samples_write_png(path, &px, 5, 4, 3, 1, 2) == MIXFLOW_OK)
    #expect(lastError() == "")
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    // IHDR: width = 2 columns x (3 + 2) + 2 = 12, height = 3 rows x (4 + 2) + 2 = 20, 8-bit grey.
    #expect(Array(bytes[16..<26]) == [0, 0, 0, 12, 0, 0, 0, 20, 8, 0])
    // More columns than images: one row.
    #expect(mixflow_samples_write_png(path, &px, 5, 4, 3, 1, 100) == MIXFLOW_OK)
    let one = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(Array(one[16..<24]) == [0, 0, 0, 27, 0, 0, 0, 8])
}
