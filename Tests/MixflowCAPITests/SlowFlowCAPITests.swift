import CMixflow
import Mixflow
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Test func slowFlowMeasureComputesAndValidates() {
    // One sample, dim 2: x0 = (1, 0), end = (0, 1); the middle state (0.5, 0.5) is the Linear interpolant at 0.5.
    var t: [Double] = [0, 0.5, 1]
    var traj: [Float] = [1, 0, 0.5, 0.5, 0, 1], x0: [Float] = [1, 0]
    var outT = [Double](repeating: 0, count: 3), outM = outT
    let ok = mixflow_slow_flow_measure(MIXFLOW_SLOW_FLOW_ENDPOINT, MIXFLOW_PATH_LINEAR, MIXFLOW_CONVENTION_SIT, &t, 3, &traj, &x0,
                                       1, 2, nil, 0, &outT, &outM)
    #expect(ok == MIXFLOW_OK && outT == t && outM.enumerated().allSatisfy { abs($0.element - t[$0.offset]) < 1e-12 })
    func call(_ ref: mixflow_slow_flow_reference = MIXFLOW_SLOW_FLOW_ENDPOINT, path: mixflow_path = MIXFLOW_PATH_LINEAR,
              t tv: [Double]? = nil, k: Int64 = 3, traj trv: [Float]? = nil, batch: Int64 = 1) -> mixflow_status {
        var tt = tv ?? t, tr = trv ?? traj, xx = x0, ot = outT, om = outM
        return mixflow_slow_flow_measure(ref, path, MIXFLOW_CONVENTION_SIT, &tt, k, &tr, &xx, batch, 2, nil, 1, &ot, &om)
    }
    let cases: [(String, () -> mixflow_status)] = [
        ("reference has unknown value 7", { call(mixflow_slow_flow_reference(rawValue: 7)) }),
        ("path has unknown value 3", { call(path: mixflow_path(rawValue: 3)) }),
        ("num_times must be > 0, got 0", { call(k: 0) }),
        ("batch must be > 0, got -1", { call(batch: -1) }),
        ("data must not be NULL for reference nearestData", { call(MIXFLOW_SLOW_FLOW_NEAREST_DATA) }),
        ("t[1] is 1.5; every element must be in [0.0, 1.0]", { call(t: [0, 1.5, 1]) }),
        ("trajectory[2] is nan; every element must be finite", { var bad = traj; bad[2] = .nan; return call(traj: bad) }),
    ]
    for (message, c) in cases {
        #expect(c() == MIXFLOW_ERR_INVALID_ARGUMENT)
        #expect(lastError() == "mixflow_slow_flow_measure: " + message)
    }
    #expect(mixflow_slow_flow_measure(MIXFLOW_SLOW_FLOW_ENDPOINT, MIXFLOW_PATH_LINEAR, MIXFLOW_CONVENTION_SIT, &t, 3, &traj, &x0,
                                      1, 2, nil, 0, &outT, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_slow_flow_measure: out_m must not be NULL")
}

@Test func slowFlowStatsGammaAndExport() throws {
    var t: [Double] = [0, 0.5]
    var m: [Double] = [0, 0.35, 0, 0.35]   // 2 samples, both at ratio 0.7 at t = 0.5
    var stats = [Double](repeating: 0, count: 2 * Int(MIXFLOW_SLOW_FLOW_NUM_COLUMNS))
    #expect(mixflow_slow_flow_stats(&t, &m, 2, 2, &stats) == MIXFLOW_OK)
    #expect(abs(stats[14 + 9] - 0.7) < 1e-12 && stats[14 + 13] == 1 && stats[7].isNaN)
    var gamma = 0.0
    #expect(mixflow_slow_flow_suggest_gamma(&t, &m, 2, 2, 0.95, &gamma) == MIXFLOW_OK && abs(gamma - 0.3) < 1e-12)
    #expect(mixflow_slow_flow_suggest_gamma(&t, &m, 2, 2, 1.5, &gamma) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_slow_flow_suggest_gamma: coverage must be in (0, 1], got 1.5")
    #expect(mixflow_slow_flow_suggest_gamma(&t, &m, 2, 2, 0.95, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    m[1] = .nan
    #expect(mixflow_slow_flow_stats(&t, &m, 2, 2, &stats) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_slow_flow_stats: m[1] is nan; every element must be in [0.0, 1.0]")
    m[1] = 0.35
    let path = "/tmp/mixflow-slowflow-\(getpid()).csv"
    #expect(mixflow_slow_flow_export(path, MIXFLOW_EXPORT_CSV, MIXFLOW_SLOW_FLOW_ENDPOINT, &t, &m, 2, 2) == MIXFLOW_OK)
    let text = try #require(readText(path))
    #expect(text.hasPrefix("t,mean_m,q05_m") && text.split(separator: "\n").count == 3)
    #expect(mixflow_slow_flow_export(path, mixflow_export_format(rawValue: 9), MIXFLOW_SLOW_FLOW_ENDPOINT, &t, &m, 2, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_slow_flow_export("/nonexistent-dir/x.csv", MIXFLOW_EXPORT_JSON, MIXFLOW_SLOW_FLOW_ENDPOINT, &t, &m, 2, 2) == MIXFLOW_ERR_IO)
    #expect(lastError().hasPrefix("mixflow_slow_flow_export: /nonexistent-dir/x.csv: cannot create a temporary file"))
    unlink(path)
}

@Test func samplesConvertWithEachCodebasesRuleAndWriteAnNpz() throws {
    // One 2-channel 1×2 image, NCHW: channel 0 = [−1, 0.999], channel 1 = [0.5, 2].
    var x: [Float] = [-1, 0.999, 0.5, 2]
    var out = [UInt8](repeating: 0, count: 4)
    #expect(mixflow_samples_to_uint8(MIXFLOW_CONVENTION_SIT, &x, 1, 2, 1, 2, &out) == MIXFLOW_OK)
    #expect(out == [0, 191, 255, 255])            // 127.5x + 128: 0.5 → 191.75 → 191; 0.999 → 255.37 → 255
    #expect(mixflow_samples_to_uint8(MIXFLOW_CONVENTION_RAE, &x, 1, 2, 1, 2, &out) == MIXFLOW_OK)
    #expect(out == [0, 127, 254, 255])            // clamp(x,0,1)·255: 0.5 → 127.5 → 127; 0.999 → 254.7 → 254
    #expect(mixflow_samples_to_uint8(MIXFLOW_CONVENTION_REPA, &x, 1, 2, 1, 2, &out) == MIXFLOW_OK)
    #expect(out == [0, 191, 254, 255])            // 255(x+1)/2: 0.5 → 191.25; 0.999 → 254.87
    #expect(mixflow_samples_to_uint8(mixflow_convention(rawValue: 5), &x, 1, 2, 1, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_samples_to_uint8(MIXFLOW_CONVENTION_SIT, &x, 1, 0, 1, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    let path = "/tmp/mixflow-npz-\(getpid()).npz"
    #expect(mixflow_samples_write_npz(path, &out, 1, 1, 2, 2) == MIXFLOW_OK)
    let bytes = try #require(readBytes(path))
    #expect(Array(bytes[0..<4]) == [0x50, 0x4B, 0x03, 0x04])
    #expect(String(decoding: bytes, as: UTF8.self).contains("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 2, 2), }"))
    #expect(mixflow_samples_write_npz(nil, &out, 1, 1, 2, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_samples_write_npz(path, nil, 1, 1, 2, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    unlink(path)
}

func readBytes(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

func readText(_ path: String) -> String? { readBytes(path).map { String(decoding: $0, as: UTF8.self) } }
