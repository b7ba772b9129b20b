import CMixflow
import Mixflow
import Testing

// Values a caller can pass that once made the library trap (integer overflow) or index out of bounds instead of
// returning a status (issue 12). Each call must come back with a status and a message.

@Test func firstSampleNearTheTopOfUInt64IsRefusedNotATrap() {
    let tr = makeTransport()!
    defer { mixflow_transport_free(tr) }
    var x1: [Float] = [0.5, -1, 2, 0]
    var xIn = [Float](repeating: 0, count: 4), t: [Float] = [0, 0], target = [Float](repeating: 0, count: 4)
    for first: UInt64 in [UInt64.max, UInt64.max - 1, 1 << 63, (1 << 32) - 1] {
        #expect(mixflow_transport_prepare(tr, &x1, 2, 2, 0, 0, first, &xIn, &t, nil, nil, &target) == MIXFLOW_ERR_INVALID_ARGUMENT)
        #expect(lastError() == "mixflow_transport_prepare: first_sample + batch must be <= 2^32, got \(first) + 2")
    }
    #expect(mixflow_transport_prepare(tr, &x1, 2, 2, 0, 0, (1 << 32) - 2, &xIn, &t, nil, nil, &target) == MIXFLOW_OK)

    let model = makeModel(tinyModelParams())!
    defer { mixflow_model_free(model) }
    var params = mixflow_trainer_params()
    #expect(mixflow_trainer_default_params(&params, UInt32(MemoryLayout<mixflow_trainer_params>.size)) == MIXFLOW_OK)
    var trainer: UnsafeMutablePointer<mixflow_trainer>?
    #expect(mixflow_trainer_create(model, tr, &params, &trainer) == MIXFLOW_OK)
    defer { mixflow_trainer_free(trainer) }
    var data = [Float](repeating: 0.25, count: 2 * 32), y: [Int32] = [0, 1]
    #expect(mixflow_trainer_step(trainer, &data, &y, 2, UInt64.max, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_trainer_step: first_sample + batch must be <= 2^32, got \(UInt64.max) + 2")
    #expect(mixflow_trainer_step_count(trainer) == 0)
}

@Test func samplerBatchesBeyond2To32AreRefusedNotATrap() {
    // batch 2^32 + 1 with dim 1: a valid size for the size check, and UInt32.max − batch used to trap.
    let euler = makeSampler { $0.method = MIXFLOW_SAMPLER_EULER; $0.num_steps = 2 }!
    defer { mixflow_sampler_free(euler) }
    var x: [Float] = [0], v: [Float] = [0], out: [Float] = [0]
    let huge: Int64 = (1 << 32) + 1
    #expect(mixflow_sampler_step(euler, &v, 0, &x, huge, 1, 0, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sampler_step: first_sample + batch must be <= 2^32, got 0 + \(huge)")
    #expect(mixflow_sample(euler, constantVelocity, nil, nil, nil, &x, huge, 1, nil, 0, &out, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sample: first_sample + batch must be <= 2^32, got 0 + \(huge)")
    let model = makeModel(tinyModelParams())!
    defer { mixflow_model_free(model) }
    // dim must be the model's 32; batch 2^32 + 1 rows of 32 floats is still a representable size.
    #expect(mixflow_sample_model(euler, model, nil, &x, huge, 32, nil, 0, &out, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sample_model: first_sample + batch must be <= 2^32, got 0 + \(huge)")
    #expect(mixflow_sample(euler, constantVelocity, nil, nil, nil, &x, 1, 1, nil, UInt64.max, &out, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
}

@Test func trainerPresetIgnoresTheWindowExceptForRAEAndNeverOverflows() {
    var p = mixflow_trainer_params()
    let size = UInt32(MemoryLayout<mixflow_trainer_params>.size)
    #expect(mixflow_trainer_preset_params("sit", Int64.max, 0, &p, size) == MIXFLOW_OK)
    #expect(mixflow_trainer_preset_params("repa", Int64.min, Int64.min, &p, size) == MIXFLOW_OK)
    #expect(mixflow_trainer_preset_params("rae", Int64.max, Int64.max, &p, size) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_trainer_preset_params: decay_start/decay_end must satisfy 0 <= decay_start < decay_end, "
            + "got \(Int64.max), \(Int64.max)")
    #expect(mixflow_trainer_preset_params("rae", Int64.max - 1, Int64.max, &p, size) == MIXFLOW_OK)
    #expect(p.decay_start == Int64.max - 1 && p.decay_end == Int64.max)
}

// ---- contract gaps (issue 12 item 10) ----

@Test func lossChecksTheTimesItIsGivenAndWritesNothingWhenItFails() {
    let tr = makeTransport()!       // velocity prediction: the loss does not need t
    defer { mixflow_transport_free(tr) }
    var pred: [Float] = [1, 2, 3, 4], target: [Float] = [0, 0, 0, 0], t: [Float] = [0.5, .nan], m: [Float] = [0.5, 0.5]
    var perSample: [Float] = [-7, -7], mean: Float = -7, grad = [Float](repeating: -7, count: 4)
    #expect(mixflow_transport_loss(tr, &pred, &target, &t, &m, 2, 2, &perSample, &mean, &grad) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_loss: t[1] is nan; every element must be finite")
    t[1] = 0.5
    pred[3] = 3e38; target[3] = -3e38   // finite inputs whose squared difference overflows
    #expect(mixflow_transport_loss(tr, &pred, &target, &t, &m, 2, 2, &perSample, &mean, &grad) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_transport_loss: the loss of sample 1 overflows float range")
    #expect(perSample == [-7, -7] && mean == -7 && grad == [Float](repeating: -7, count: 4))
    // grad aliasing pred: a failure leaves pred as it was
    let before = pred
    let aliased = pred.withUnsafeMutableBufferPointer { p in
        mixflow_transport_loss(tr, p.baseAddress, &target, nil, nil, 2, 2, nil, nil, p.baseAddress)
    }
    #expect(aliased == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(pred == before)
    pred[3] = 4; target[3] = 0
    #expect(mixflow_transport_loss(tr, &pred, &target, &t, &m, 2, 2, &perSample, &mean, &grad) == MIXFLOW_OK)
    #expect(perSample == [2.5, 12.5] && mean == 7.5 && grad == [0.5, 1, 1.5, 2])
}

@Test func anInPlaceStepNamesTheInputThatIsNotFinite() {
    let s = makeSampler { $0.method = MIXFLOW_SAMPLER_EULER; $0.num_steps = 5 }!
    defer { mixflow_sampler_free(s) }
    var x: [Float] = [0.5, .infinity], v: [Float] = [1, 2]
    func inPlace() -> mixflow_status {
        x.withUnsafeMutableBufferPointer { p in mixflow_sampler_step(s, &v, 0, p.baseAddress, 1, 2, 0, p.baseAddress) }
    }
    #expect(inPlace() == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sampler_step: x[1] is inf; every element must be finite")
    x = [0.5, 1]; v = [1, .nan]
    #expect(inPlace() == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_sampler_step: model_output[1] is nan; every element must be finite")
}
