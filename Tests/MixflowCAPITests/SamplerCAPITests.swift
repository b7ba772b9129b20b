import CMixflow
import Mixflow
import Testing
#if canImport(Glibc)
import Glibc
#endif

func defaultSamplerParams() -> mixflow_sampler_params {
    var p = mixflow_sampler_params()
    precondition(mixflow_sampler_default_params(&p, UInt32(MemoryLayout<mixflow_sampler_params>.size)) == MIXFLOW_OK)
    return p
}

func makeSampler(_ edit: (inout mixflow_sampler_params) -> Void = { _ in }) -> UnsafeMutablePointer<mixflow_sampler>? {
    var p = defaultSamplerParams()
    edit(&p)
    var h: UnsafeMutablePointer<mixflow_sampler>?
    return mixflow_sampler_create(&p, &h) == MIXFLOW_OK ? h : nil
}

/// v = 1 − x·0 (constant velocity 1 in the SiT convention): Euler from z over [0, 1] ends at z + 1 exactly.
let constantVelocity: mixflow_model_fn = { _, batch, dim, _, _, _, out in
    for i in 0..<Int(batch * dim) { out![i] = 1 }
    return 0
}
/// Returns the code stored at user_data on its second call.
let failingModel: mixflow_model_fn = { user, batch, dim, _, _, _, out in
    let state = user!.assumingMemoryBound(to: Int32.self)
    state[1] += 1
    if state[1] == 2 { return state[0] }
    for i in 0..<Int(batch * dim) { out![i] = 0 }
    return 0
}
let nanModel: mixflow_model_fn = { _, batch, dim, _, _, _, out in
    for i in 0..<Int(batch * dim) { out![i] = i == 1 ? .nan : 0 }
    return 0
}

@Test func samplerDefaultParamsAreTheDocumentedDefaults() {
    let p = defaultSamplerParams()
    #expect(p.struct_size == 112 && p.method == MIXFLOW_SAMPLER_HEUN && p.num_steps == 50 && p.sample_eps == -1)
    #expect(p.last_step == MIXFLOW_LAST_STEP_MEAN && p.last_step_size == 0.04 && p.null_class == 1000 && p.guidance_scale == 1)
    var q = mixflow_sampler_params()
    #expect(mixflow_sampler_default_params(nil, 112) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sampler_default_params: out must not be NULL")
    #expect(mixflow_sampler_default_params(&q, 16) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_sampler_default_params(&q, 200) == MIXFLOW_ERR_ABI_MISMATCH)
}

@Test func samplerCreateRejectsBadParams() {
    var h: UnsafeMutablePointer<mixflow_sampler>? = UnsafeMutablePointer(bitPattern: 0x10)
    #expect(mixflow_sampler_create(nil, &h) == MIXFLOW_ERR_INVALID_ARGUMENT && h == nil)
    var p = defaultSamplerParams()
    #expect(mixflow_sampler_create(&p, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    let cases: [(mixflow_status, String, (inout mixflow_sampler_params) -> Void)] = [
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->method has unknown value 42", { $0.method = mixflow_sampler_method(rawValue: 42) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->guidance has unknown value -1", { $0.guidance = mixflow_guidance(rawValue: UInt32(bitPattern: -1)) }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->num_steps must be in [2, 1000000], got 1", { $0.num_steps = 1 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->atol must be > 0, got nan", { $0.atol = .nan }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->time_shift must be >= 1 (1 = no shift), got 0.5", { $0.time_shift = 0.5 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->guidance_scale must be finite, got inf", { $0.guidance_scale = .infinity }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->channels must be > 0 when guided_channels > 0, got 0", { $0.guided_channels = 3 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->guidance_t_min must be <= guidance_t_max (both finite), got 0.9 and 0.1",
         { $0.guidance_t_min = 0.9; $0.guidance_t_max = 0.1 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->eps_scale_base + eps_scale_slope * n must be > 0 for n in [0, 1], got base 1.0, slope -2.0",
         { $0.eps_scale_slope = -2 }),
        (MIXFLOW_ERR_UNSUPPORTED, "method: RAE's SDE sampler is unused and buggy in the official code (docs/exactness.md §2.3); use an ODE method with the RAE convention",
         { $0.convention = MIXFLOW_CONVENTION_RAE; $0.method = MIXFLOW_SAMPLER_SDE_EULER }),
    ]
    for (status, message, edit) in cases {
        p = defaultSamplerParams()
        edit(&p)
        #expect(mixflow_sampler_create(&p, &h) == status)
        #expect(lastError() == "mixflow_sampler_create: " + message)
        #expect(h == nil)
    }
    p = defaultSamplerParams(); p.struct_size = 4096
    #expect(mixflow_sampler_create(&p, &h) == MIXFLOW_ERR_ABI_MISMATCH)
}

@Test func timestepsUseTheTwoCallForm() {
    let s = makeSampler { $0.convention = MIXFLOW_CONVENTION_RAE; $0.time_shift = Float(48.0.squareRoot()); $0.method = MIXFLOW_SAMPLER_EULER }!
    defer { mixflow_sampler_free(s) }
    var count: Int64 = 0
    #expect(mixflow_sampler_timesteps(s, nil, 0, &count) == MIXFLOW_OK && count == 50)
    var t = [Double](repeating: 0, count: 50)
    #expect(mixflow_sampler_timesteps(s, &t, 10, &count) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sampler_timesteps: capacity must be >= 50 (the number of timesteps), got 10")
    #expect(mixflow_sampler_timesteps(s, &t, 50, &count) == MIXFLOW_OK)
    #expect(t[0] == 1 && abs(t[49] - 0.006887) < 1e-6)
    #expect(mixflow_sampler_timesteps(s, &t, 50, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_sampler_timesteps(nil, &t, 50, &count) == MIXFLOW_ERR_INVALID_ARGUMENT)
    let tr = makeTransport()!
    defer { mixflow_transport_free(tr) }
    #expect(mixflow_sampler_timesteps(OpaquePointer(tr).map { UnsafeMutablePointer<mixflow_sampler>($0) }, &t, 50, &count) == MIXFLOW_ERR_INVALID_HANDLE)
}

@Test func sampleRunsACallbackAndValidatesEveryArgument() {
    let s = makeSampler { $0.method = MIXFLOW_SAMPLER_EULER; $0.num_steps = 5 }!
    defer { mixflow_sampler_free(s) }
    var noise: [Float] = [0.5, -1, 2, 0]
    var out = [Float](repeating: 0, count: 4), traj = [Float](repeating: 0, count: 20)
    var nfe: Int64 = 0
    #expect(mixflow_sample(s, constantVelocity, nil, nil, nil, &noise, 2, 2, nil, 0, &out, &traj, &nfe) == MIXFLOW_OK)
    #expect(out == [1.5, 0, 3, 1] && nfe == 4 && Array(traj[0..<4]) == noise && Array(traj[16..<20]) == out)
    #expect(lastError() == "")
    // out_x may alias noise
    var inplace = noise
    let status = inplace.withUnsafeMutableBufferPointer { p in
        mixflow_sample(s, constantVelocity, nil, nil, nil, p.baseAddress, 2, 2, nil, 0, p.baseAddress, nil, nil)
    }
    #expect(status == MIXFLOW_OK && inplace == out)
    let bad: [(String, () -> mixflow_status)] = [
        ("sampler must not be NULL", { mixflow_sample(nil, constantVelocity, nil, nil, nil, &noise, 2, 2, nil, 0, &out, nil, nil) }),
        ("model must not be NULL", { mixflow_sample(s, nil, nil, nil, nil, &noise, 2, 2, nil, 0, &out, nil, nil) }),
        ("noise must not be NULL", { mixflow_sample(s, constantVelocity, nil, nil, nil, nil, 2, 2, nil, 0, &out, nil, nil) }),
        ("batch must be > 0, got 0", { mixflow_sample(s, constantVelocity, nil, nil, nil, &noise, 0, 2, nil, 0, &out, nil, nil) }),
        ("dim must be > 0, got -2", { mixflow_sample(s, constantVelocity, nil, nil, nil, &noise, 2, -2, nil, 0, &out, nil, nil) }),
        ("batch x dim has [4611686018427387904, 4] elements, which overflows a 64-bit size",
         { mixflow_sample(s, constantVelocity, nil, nil, nil, &noise, 1 << 62, 4, nil, 0, &out, nil, nil) }),
        ("out_x must not be NULL", { mixflow_sample(s, constantVelocity, nil, nil, nil, &noise, 2, 2, nil, 0, nil, nil, nil) }),
        ("first_sample + batch must be <= 2^32, got 4294967295 + 2",
         { mixflow_sample(s, constantVelocity, nil, nil, nil, &noise, 2, 2, nil, 4294967295, &out, nil, nil) }),
    ]
    for (message, call) in bad {
        #expect(call() == MIXFLOW_ERR_INVALID_ARGUMENT)
        #expect(lastError() == "mixflow_sample: " + message)
    }
    noise[2] = .nan
    #expect(mixflow_sample(s, constantVelocity, nil, nil, nil, &noise, 2, 2, nil, 0, &out, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sample: noise[2] is nan; every element must be finite")
}

@Test func callbackFailuresAndNaNStopSamplingWithContext() {
    let s = makeSampler { $0.method = MIXFLOW_SAMPLER_EULER; $0.num_steps = 5 }!
    defer { mixflow_sampler_free(s) }
    var noise: [Float] = [0.5, -1], out: [Float] = [0, 0]
    var state: [Int32] = [-3, 0]
    #expect(mixflow_sample(s, failingModel, &state, nil, nil, &noise, 1, 2, nil, 0, &out, nil, nil) == MIXFLOW_ERR_CALLBACK)
    #expect(lastError() == "mixflow_sample: model returned -3 at step 1 (t = 0.25)")
    #expect(mixflow_sample(s, nanModel, nil, nil, nil, &noise, 1, 2, nil, 0, &out, nil, nil) == MIXFLOW_ERR_CALLBACK)
    #expect(lastError() == "mixflow_sample: model produced a non-finite value at step 0 (t = 0.0): output[1] is nan; every element must be finite")
    let cfg = makeSampler { $0.guidance = MIXFLOW_GUIDANCE_CFG; $0.guidance_scale = 1.5 }!
    defer { mixflow_sampler_free(cfg) }
    #expect(mixflow_sample(cfg, constantVelocity, nil, nil, nil, &noise, 1, 2, nil, 0, &out, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sample: y must not be NULL with MIXFLOW_GUIDANCE_CFG")
    let auto = makeSampler { $0.guidance = MIXFLOW_GUIDANCE_AUTO }!
    defer { mixflow_sampler_free(auto) }
    #expect(mixflow_sample(auto, constantVelocity, nil, nil, nil, &noise, 1, 2, nil, 0, &out, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sample: guide_model must not be NULL with MIXFLOW_GUIDANCE_AUTO")
}

@Test func stepValidatesAndAdvances() {
    let s = makeSampler { $0.method = MIXFLOW_SAMPLER_EULER; $0.num_steps = 5 }!
    defer { mixflow_sampler_free(s) }
    var x: [Float] = [0.5, -1], v: [Float] = [1, 2], out: [Float] = [0, 0]
    #expect(mixflow_sampler_step(s, &v, 0, &x, 1, 2, 0, &out) == MIXFLOW_OK && out == [0.75, -0.5])
    #expect(mixflow_sampler_step(s, &v, 4, &x, 1, 2, 0, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sampler_step: index must be in [0, 3], got 4")
    #expect(mixflow_sampler_step(s, nil, 0, &x, 1, 2, 0, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_sampler_step(s, &v, 0, nil, 1, 2, 0, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_sampler_step(s, &v, 0, &x, 1, 2, 0, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    v[0] = .infinity
    #expect(mixflow_sampler_step(s, &v, 0, &x, 1, 2, 0, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sampler_step: model_output[0] is inf; every element must be finite")
    let heun = makeSampler()!
    defer { mixflow_sampler_free(heun) }
    #expect(mixflow_sampler_step(heun, &x, 0, &x, 1, 2, 0, &out) == MIXFLOW_ERR_UNSUPPORTED)
}

/// Forwards to a native model through the C API: the callback route to the same network.
let forwardingModel: mixflow_model_fn = { user, batch, _, x, t, y, out in
    let m = user!.assumingMemoryBound(to: UnsafeMutablePointer<mixflow_model>.self).pointee
    var labels = [Int32](repeating: 3, count: Int(batch))   // NULL y = the null class (3 for the tiny model)
    if let y { for i in 0..<Int(batch) { labels[i] = y[i] } }
    return Int32(mixflow_model_forward(m, x, t, labels, batch, out).rawValue)
}

@Test(arguments: [MIXFLOW_GUIDANCE_NONE, MIXFLOW_GUIDANCE_CFG, MIXFLOW_GUIDANCE_AUTO])
func nativeModelSamplingEqualsTheCallbackRoute(guidance: mixflow_guidance) throws {
    var models: [UnsafeMutablePointer<mixflow_model>] = []
    for seed in [1, 2] as [UInt64] {
        var p = tinyModelParams(); p.seed = seed
        let m = try #require(makeModel(p))
        // Give every tensor non-trivial values (the official init zeroes the output layers).
        for i in 0..<mixflow_model_num_tensors(m) {
            var name: UnsafePointer<CChar>?; var shape = [Int64](repeating: 0, count: 8); var ndim: Int32 = 0
            #expect(mixflow_model_tensor_info(m, i, &name, &shape, &ndim, nil) == MIXFLOW_OK)
            let count = shape.prefix(Int(ndim)).reduce(1, *)
            let values = (0..<Int(count)).map { Float(sin(Double($0 + Int(i) * 7 + Int(seed)))) * 0.2 }
            #expect(mixflow_model_set_tensor(m, name, values, shape, ndim) == MIXFLOW_OK)
        }
        models.append(m)
    }
    defer { models.forEach { mixflow_model_free($0) } }
    let s = makeSampler { $0.method = MIXFLOW_SAMPLER_SDE_HEUN; $0.num_steps = 6; $0.seed = 3; $0.guidance = guidance
        $0.guidance_scale = 1.5; $0.null_class = 3; $0.channels = 2; $0.guided_channels = guidance == MIXFLOW_GUIDANCE_CFG ? 1 : 0 }!
    defer { mixflow_sampler_free(s) }
    let noise = (0..<64).map { Float(cos(Double($0))) }   // 2 samples × 2×4×4
    var y: [Int32] = [0, 2]
    var viaNative = [Float](repeating: 0, count: 64), viaCallback = viaNative
    var nfeNative: Int64 = 0, nfeCallback: Int64 = 0
    #expect(mixflow_sample_model(s, models[0], models[1], noise, 2, 32, &y, 0, &viaNative, nil, &nfeNative) == MIXFLOW_OK)
    var main = models[0], guide = models[1]
    #expect(mixflow_sample(s, forwardingModel, &main, forwardingModel, &guide, noise, 2, 32, &y, 0, &viaCallback, nil, &nfeCallback) == MIXFLOW_OK)
    #expect(viaNative == viaCallback && nfeNative == nfeCallback && nfeNative == 11)
    #expect(viaNative != noise)
    // Validation specific to native models.
    #expect(mixflow_sample_model(s, models[0], nil, noise, 2, 30, &y, 0, &viaNative, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sample_model: dim must be 32 (in_channels x input_size^2 of model), got 30")
    y[1] = 9
    #expect(mixflow_sample_model(s, models[0], models[1], noise, 2, 32, &y, 0, &viaNative, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sample_model: y[1] must be in [0, 3] (3 = null class), got 9")
    #expect(mixflow_sample_model(s, nil, nil, noise, 2, 32, &y, 0, &viaNative, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
}

@Test func samplerGetParamsRoundTripsAndFreeIgnoresNull() {
    let s = makeSampler { $0.method = MIXFLOW_SAMPLER_DOPRI5; $0.rtol = 1e-4; $0.seed = 77; $0.guided_channels = 3; $0.channels = 4 }!
    defer { mixflow_sampler_free(s) }
    var p = mixflow_sampler_params()
    #expect(mixflow_sampler_get_params(s, &p, 112) == MIXFLOW_OK)
    #expect(p.method == MIXFLOW_SAMPLER_DOPRI5 && p.rtol == 1e-4 && p.seed == 77 && p.guided_channels == 3 && p.sample_eps == -1)
    #expect(mixflow_sampler_get_params(nil, &p, 112) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_sampler_get_params(s, nil, 112) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_sampler_get_params(s, &p, 4) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_sampler_get_params(s, &p, 1000) == MIXFLOW_ERR_ABI_MISMATCH)
    mixflow_sampler_free(nil)
}

@Test func slowFlowHelpersRejectNullAndBadSizes() {
    var t: [Double] = [0, 1], m: [Double] = [0, 1], out = [Double](repeating: 0, count: 28), g = 0.0
    #expect(mixflow_slow_flow_stats(nil, &m, 1, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_slow_flow_stats: t must not be NULL")
    #expect(mixflow_slow_flow_stats(&t, nil, 1, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_slow_flow_stats(&t, &m, 1, 2, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_slow_flow_stats(&t, &m, 0, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_slow_flow_stats(&t, &m, 1, -2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_slow_flow_suggest_gamma(&t, &m, 1, 2, .nan, &g) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_slow_flow_export(nil, MIXFLOW_EXPORT_CSV, MIXFLOW_SLOW_FLOW_ENDPOINT, &t, &m, 1, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_slow_flow_export("/tmp/x.csv", MIXFLOW_EXPORT_CSV, mixflow_slow_flow_reference(rawValue: 4), &t, &m, 1, 2)
            == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_slow_flow_export: reference has unknown value 4")
    var px: [Float] = [0]; var u8: [UInt8] = [0]
    #expect(mixflow_samples_to_uint8(MIXFLOW_CONVENTION_SIT, nil, 1, 1, 1, 1, &u8) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_samples_to_uint8(MIXFLOW_CONVENTION_SIT, &px, 1, 1, 1, 1, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_samples_write_npz("/tmp/x.npz", &u8, 1, -1, 1, 1) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_samples_write_npz("/nonexistent-dir/x.npz", &u8, 1, 1, 1, 1) == MIXFLOW_ERR_IO)
}

@Test func equalLabelsThroughTheCAPI() {
    var out = [Int32](repeating: -1, count: 2000)
    #expect(mixflow_equal_labels(2000, 1000, 3, &out) == MIXFLOW_OK)
    var c = [Int](repeating: 0, count: 1000)
    for l in out { c[Int(l)] += 1 }
    #expect(c.allSatisfy { $0 == 2 })
    var again = [Int32](repeating: 0, count: 2000)
    #expect(mixflow_equal_labels(2000, 1000, 3, &again) == MIXFLOW_OK && again == out)
    #expect(mixflow_equal_labels(2000, 1000, 3, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_equal_labels: out_labels must not be NULL")
    #expect(mixflow_equal_labels(0, 1000, 3, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_equal_labels: n must be in [1, 2147483647], got 0")
    #expect(mixflow_equal_labels(-5, 1000, 3, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_equal_labels(Int64(1) << 40, 1000, 3, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_equal_labels: n must be in [1, 2147483647], got 1099511627776")
    #expect(mixflow_equal_labels(10, -1, 3, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_equal_labels: num_classes must be in [1, 16777216], got -1")
    #expect(mixflow_equal_labels(10, 1 << 25, 3, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
}
