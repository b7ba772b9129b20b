import CMixflow
import Mixflow
import Testing

@Test func versionQueriesAgreeWithTheHeaderMacros() {
    #expect(mixflow_abi_version() == UInt32(MIXFLOW_ABI_VERSION))
    #expect(String(cString: mixflow_version()!) == MIXFLOW_VERSION_STRING)
    #expect(mixflow_version_number() == UInt32(MIXFLOW_VERSION_MAJOR * 10000 + MIXFLOW_VERSION_MINOR * 100 + MIXFLOW_VERSION_PATCH))
    #expect(String(cString: mixflow_status_name(MIXFLOW_ERR_CALLBACK)!) == "MIXFLOW_ERR_CALLBACK")
    #expect(String(cString: mixflow_status_name(mixflow_status(rawValue: 77))!) == "MIXFLOW_ERR_UNKNOWN")
}

@Test func defaultParamsAreTheDocumentedDefaults() {
    let p = defaultTransportParams()
    #expect(p.struct_size == UInt32(MemoryLayout<mixflow_transport_params>.size))
    #expect(p.path == MIXFLOW_PATH_LINEAR && p.convention == MIXFLOW_CONVENTION_SIT)
    #expect(p.prediction == MIXFLOW_PREDICTION_VELOCITY && p.time_dist == MIXFLOW_TIME_DIST_BETA21)
    #expect(p.gamma == 0.8 && p.train_eps == -1 && p.time_shift == 1 && p.input_perturbation == 0)
}

@Test func paramsFillersValidateTheirArguments() {
    var p = mixflow_transport_params()
    #expect(mixflow_transport_default_params(nil, 56) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_default_params: out must not be NULL")
    #expect(mixflow_transport_default_params(&p, 8) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("struct_size must be between 56 and 60, got 8"))
    #expect(mixflow_transport_default_params(&p, 64) == MIXFLOW_ERR_ABI_MISMATCH)
    #expect(mixflow_transport_preset_params(nil, 0, &p, 56) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_preset_params: name must not be NULL")
    #expect(mixflow_transport_preset_params("dit", 0, &p, 56) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("preset must be \"sit\", \"rae\" or \"repa\", got \"dit\""))
    #expect(mixflow_transport_preset_params("rae", -1, &p, 56) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_transport_preset_params("RAE", 768 * 256, &p, 56) == MIXFLOW_OK)
    #expect(abs(p.time_shift - 6.9282032) < 1e-6 && p.gamma == 0.4 && p.convention == MIXFLOW_CONVENTION_RAE)
}

@Test func createRejectsBadParams() {
    var h: UnsafeMutablePointer<mixflow_transport>? = UnsafeMutablePointer(bitPattern: 0x1234)
    #expect(mixflow_transport_create(nil, &h) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(h == nil)   // *out is cleared first
    var p = defaultTransportParams()
    #expect(mixflow_transport_create(&p, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_create: out must not be NULL")
    let cases: [(String, (inout mixflow_transport_params) -> Void)] = [
        ("params->gamma must be in [0, 1], got 1.5", { $0.gamma = 1.5 }),
        ("params->gamma must be in [0, 1], got inf", { $0.gamma = .infinity }),
        ("params->path has unknown value 9", { $0.path = mixflow_path(rawValue: 9) }),
        ("params->time_dist has unknown value -3", { $0.time_dist = mixflow_time_dist(rawValue: UInt32(bitPattern: -3)) }),
        ("params->time_shift must be >= 1 (1 = no shift), got 0.0", { $0.time_shift = 0 }),
        ("params->logit_normal_std must be > 0, got nan", { $0.logit_normal_std = .nan }),
        ("params->num_threads must be >= 0 (0 = all cores), got -1", { $0.num_threads = -1 }),
        ("params->mixture has unknown value 2", { $0.mixture = mixflow_mixture(rawValue: 2) }),
    ]
    for (message, edit) in cases {
        p = defaultTransportParams()
        edit(&p)
        #expect(mixflow_transport_create(&p, &h) == MIXFLOW_ERR_INVALID_ARGUMENT)
        #expect(lastError() == "mixflow_transport_create: " + message)
        #expect(h == nil)
    }
    p = defaultTransportParams()
    p.struct_size = 4096
    #expect(mixflow_transport_create(&p, &h) == MIXFLOW_ERR_ABI_MISMATCH)
}

@Test func aCallerBuiltBeforeTheMixtureFieldGetsTheSlowedMixture() {
    // The first layout ended at num_threads (56 bytes); its callers must keep working, with SLOWED.
    var p = defaultTransportParams()
    p.mixture = MIXFLOW_MIXTURE_UNIFORM     // beyond the old caller's struct: must be ignored
    p.struct_size = 56
    var h: UnsafeMutablePointer<mixflow_transport>?
    #expect(mixflow_transport_create(&p, &h) == MIXFLOW_OK)
    defer { mixflow_transport_free(h) }
    var q = mixflow_transport_params()
    #expect(mixflow_transport_get_params(h, &q, UInt32(MemoryLayout<mixflow_transport_params>.size)) == MIXFLOW_OK)
    #expect(q.mixture == MIXFLOW_MIXTURE_SLOWED)
    p.struct_size = UInt32(MemoryLayout<mixflow_transport_params>.size)
    var u: UnsafeMutablePointer<mixflow_transport>?
    #expect(mixflow_transport_create(&p, &u) == MIXFLOW_OK)
    defer { mixflow_transport_free(u) }
    #expect(mixflow_transport_get_params(u, &q, UInt32(MemoryLayout<mixflow_transport_params>.size)) == MIXFLOW_OK)
    #expect(q.mixture == MIXFLOW_MIXTURE_UNIFORM)
}

@Test func prepareValidatesEveryArgument() {
    let tr = makeTransport()!
    defer { mixflow_transport_free(tr) }
    var x = [Float](repeating: 0.5, count: 12)
    var xin = [Float](repeating: 0, count: 12), tg = xin, nz = xin
    var t = [Float](repeating: 0, count: 3), m = t
    #expect(mixflow_transport_prepare(tr, &x, 3, 4, 0, 0, 0, &xin, &t, &m, &nz, &tg) == MIXFLOW_OK)
    #expect(lastError() == "")
    #expect(mixflow_transport_prepare(nil, &x, 3, 4, 0, 0, 0, &xin, &t, &m, &nz, &tg) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_prepare: transport must not be NULL")
    #expect(mixflow_transport_prepare(tr, nil, 3, 4, 0, 0, 0, &xin, &t, &m, &nz, &tg) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_prepare: x1 must not be NULL")
    #expect(mixflow_transport_prepare(tr, &x, 3, 4, 0, 0, 0, nil, &t, &m, &nz, &tg) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_transport_prepare(tr, &x, 3, 4, 0, 0, 0, &xin, nil, &m, &nz, &tg) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_transport_prepare(tr, &x, 3, 4, 0, 0, 0, &xin, &t, &m, &nz, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_transport_prepare(tr, &x, 3, 4, 0, 0, 0, &xin, &t, nil, nil, &tg) == MIXFLOW_OK)
    #expect(mixflow_transport_prepare(tr, &x, 0, 4, 0, 0, 0, &xin, &t, &m, &nz, &tg) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_prepare: batch must be > 0, got 0")
    #expect(mixflow_transport_prepare(tr, &x, 3, -4, 0, 0, 0, &xin, &t, &m, &nz, &tg) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_prepare: dim must be > 0, got -4")
    #expect(mixflow_transport_prepare(tr, &x, 1 << 40, 1 << 40, 0, 0, 0, &xin, &t, &m, &nz, &tg) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("overflows"))
    x[7] = .nan
    #expect(mixflow_transport_prepare(tr, &x, 3, 4, 0, 0, 0, &xin, &t, &m, &nz, &tg) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_prepare: x1[1, 3] is nan; every element must be finite")
}

@Test func lossValidatesAndComputesTheMean() {
    let tr = makeTransport()!
    defer { mixflow_transport_free(tr) }
    var pred: [Float] = [1, 2, 3, 4], target: [Float] = [0, 0, 0, 0]
    var per = [Float](repeating: 0, count: 2), grad = [Float](repeating: 0, count: 4)
    var mean: Float = 0
    #expect(mixflow_transport_loss(tr, &pred, &target, nil, nil, 2, 2, &per, &mean, &grad) == MIXFLOW_OK)
    // Independent arithmetic: per-sample (1+4)/2, (9+16)/2; mean 7.5; grad 2(p−t)/4.
    #expect(per == [2.5, 12.5] && mean == 7.5 && grad == [0.5, 1, 1.5, 2])
    #expect(mixflow_transport_loss(tr, nil, &target, nil, nil, 2, 2, &per, &mean, &grad) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_loss: pred must not be NULL")
    #expect(mixflow_transport_loss(tr, &pred, nil, nil, nil, 2, 2, &per, &mean, &grad) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_transport_loss(tr, &pred, &target, nil, nil, 2, 0, &per, &mean, &grad) == MIXFLOW_ERR_INVALID_ARGUMENT)
    pred[3] = .infinity
    #expect(mixflow_transport_loss(tr, &pred, &target, nil, nil, 2, 2, &per, &mean, &grad) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_loss: pred[1, 1] is inf; every element must be finite")
    // A weighted score loss needs the times.
    let score = makeTransport { $0.prediction = MIXFLOW_PREDICTION_SCORE }!
    defer { mixflow_transport_free(score) }
    pred[3] = 4
    #expect(mixflow_transport_loss(score, &pred, &target, nil, nil, 2, 2, &per, &mean, &grad) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("t must not be NULL"))
}

@Test func handlesOfTheWrongKindAreRejected() {
    let bogus = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
    bogus.initialize(repeating: 0xDEAD_BEEF, count: 4)
    defer { bogus.deallocate() }
    let fake = UnsafeMutableRawPointer(bogus).assumingMemoryBound(to: mixflow_transport.self)
    var t0 = 0.0, t1 = 0.0
    #expect(mixflow_transport_training_interval(fake, &t0, &t1) == MIXFLOW_ERR_INVALID_HANDLE)
    #expect(lastError() == "mixflow_transport_training_interval: transport is not a live Transport handle")
    mixflow_transport_free(fake)   // ignored, no crash
    mixflow_transport_free(nil)
    let tr = makeTransport()!
    #expect(mixflow_transport_training_interval(tr, &t0, &t1) == MIXFLOW_OK && t0 == 0 && t1 == 1)
    #expect(mixflow_transport_training_interval(tr, nil, &t1) == MIXFLOW_ERR_INVALID_ARGUMENT)
    mixflow_transport_free(tr)
}

@Test func getParamsRoundTrips() {
    let tr = makeTransport { $0.gamma = 0.25; $0.convention = MIXFLOW_CONVENTION_REPA; $0.time_dist = MIXFLOW_TIME_DIST_LOGIT_NORMAL; $0.logit_normal_mean = 0.5 }!
    defer { mixflow_transport_free(tr) }
    var p = mixflow_transport_params()
    #expect(mixflow_transport_get_params(tr, &p, 56) == MIXFLOW_OK)
    #expect(p.gamma == 0.25 && p.convention == MIXFLOW_CONVENTION_REPA && p.logit_normal_mean == 0.5)
    #expect(p.time_dist == MIXFLOW_TIME_DIST_LOGIT_NORMAL)
}
