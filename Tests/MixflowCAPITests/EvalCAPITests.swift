import CMixflow
#if canImport(Glibc)
import Glibc
#endif
import Mixflow
import Testing

// Bad input through the C API of data and evaluation: every pointer NULL, bad sizes, NaN/Inf, handles of the
// wrong kind, with the exact status and message.

private let shareDir: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)   // Tests/MixflowCAPITests/EvalCAPITests.swift
    return parts.joined(separator: "/") + "/share/featnet"
}()
private let netPath = shareDir + "/fmnist-cnn.mxfnet"
private let statsPath = shareDir + "/fmnist-test-stats.mxfstat"
private let labelsPath = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

private func writeTemp(_ name: String, _ bytes: [UInt8]) -> String {
    let path = "/tmp/mixflow-eval-\(getpid())-\(name)"
    let f = fopen(path, "wb")!
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, f) }
    fclose(f)
    return path
}

@Test func idxEntryPointsValidateTheirArguments() {
    var h: UnsafeMutablePointer<mixflow_idx>? = UnsafeMutablePointer(bitPattern: 0x10)
    #expect(mixflow_idx_load(nil, &h) == MIXFLOW_ERR_INVALID_ARGUMENT && h == nil)
    #expect(lastError() == "mixflow_idx_load: path must not be NULL")
    #expect(mixflow_idx_load("/tmp/x", nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_idx_load: out must not be NULL")
    #expect(mixflow_idx_load("/nonexistent.idx", &h) == MIXFLOW_ERR_IO && h == nil)
    #expect(lastError() == "mixflow_idx_load: /nonexistent.idx: cannot open: No such file or directory")
    let bad = writeTemp("bad.idx", [0, 0, 8, 1, 0, 0, 0, 3, 1, 2])
    defer { unlink(bad) }
    #expect(mixflow_idx_load(bad, &h) == MIXFLOW_ERR_FORMAT)
    #expect(lastError() == "mixflow_idx_load: \(bad): dims [3] need 11 bytes but the file has 10 (truncated at byte offset 10)")

    let good = writeTemp("good.idx", [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 51, 102, 153, 204, 255])
    defer { unlink(good) }
    #expect(mixflow_idx_load(good, &h) == MIXFLOW_OK)
    defer { mixflow_idx_free(h) }
    var dtype = mixflow_idx_dtype(rawValue: 0), ndim: Int32 = 0
    var shape = [Int64](repeating: 0, count: 2)
    #expect(mixflow_idx_info(h, &dtype, &ndim, &shape, 2) == MIXFLOW_OK)
    #expect(dtype == MIXFLOW_IDX_DTYPE_UINT8 && ndim == 2 && shape == [2, 3])
    #expect(mixflow_idx_info(h, nil, nil, &shape, 1) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_idx_info: shape_capacity must be >= ndim = 2, got 1")
    #expect(mixflow_idx_info(nil, &dtype, &ndim, nil, 0) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_idx_info: idx must not be NULL")

    var f = [Float](repeating: 0, count: 6)
    #expect(mixflow_idx_read_f32(h, MIXFLOW_PIXEL_SCALING_SYMMETRIC, &f, 6) == MIXFLOW_OK)
    #expect(f == [-1, Float(51) / 127.5 - 1, Float(102) / 127.5 - 1, Float(153) / 127.5 - 1, Float(204) / 127.5 - 1, 1])
    #expect(mixflow_idx_read_f32(h, MIXFLOW_PIXEL_SCALING_UNIT, &f, 5) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_idx_read_f32: count must be the number of elements 6 (shape [2, 3]), got 5")
    #expect(mixflow_idx_read_f32(h, mixflow_pixel_scaling(rawValue: 7), &f, 6) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_idx_read_f32: scaling has unknown value 7")
    #expect(mixflow_idx_read_f32(h, MIXFLOW_PIXEL_SCALING_NONE, nil, 6) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_idx_read_f32: out must not be NULL")
    var raw = [UInt8](repeating: 0, count: 6)
    #expect(mixflow_idx_read_raw(h, &raw, 6) == MIXFLOW_OK && raw == [0, 51, 102, 153, 204, 255])
    #expect(mixflow_idx_read_raw(h, &raw, -1) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_idx_read_raw: out_bytes must be 6 (6 elements of 1 bytes), got -1")
    var labels = [Int32](repeating: 0, count: 6)
    #expect(mixflow_idx_read_i32(h, &labels, 6) == MIXFLOW_OK && labels == [0, 51, 102, 153, 204, 255])
    #expect(mixflow_idx_read_i32(h, &labels, 0) == MIXFLOW_ERR_INVALID_ARGUMENT)

    // A handle of another kind is refused, not crashed on.
    let tr = makeTransport()
    defer { mixflow_transport_free(tr) }
    #expect(mixflow_idx_info(UnsafeMutableRawPointer(tr!).assumingMemoryBound(to: mixflow_idx.self), &dtype, &ndim, nil, 0)
            == MIXFLOW_ERR_INVALID_HANDLE)
    mixflow_idx_free(nil)
}

@Test func metricEntryPointsValidateTheirArguments() {
    var fd = 0.0, mean = 0.0
    let a: [Float] = [0, 1, 2, 3, 4, 5], nan: [Float] = [0, 1, .nan, 3, 4, 5]
    #expect(mixflow_frechet_distance_compute(nil, 3, a, 3, 2, &fd) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_frechet_distance_compute: features_a must not be NULL")
    #expect(mixflow_frechet_distance_compute(a, 1, a, 3, 2, &fd) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_frechet_distance_compute: n_a must be >= 2 (a covariance needs two samples), got 1")
    #expect(mixflow_frechet_distance_compute(a, 3, a, 3, 0, &fd) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_frechet_distance_compute: dim must be > 0, got 0")
    #expect(mixflow_frechet_distance_compute(a, 3, nan, 3, 2, &fd) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_frechet_distance_compute: features_b[2] is nan; every element must be finite")
    #expect(mixflow_frechet_distance_compute(a, Int64.max, a, 3, 2, &fd) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("overflows a 64-bit size"))
    #expect(mixflow_frechet_distance_compute(a, 3, a, 3, 2, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_frechet_distance_compute(a, 3, a, 3, 2, &fd) == MIXFLOW_OK && abs(fd) < 1e-9)

    let m: [Double] = [0, 0], c: [Double] = [1, 0, 0, .infinity]
    #expect(mixflow_frechet_distance_from_stats(m, c, m, c, 2, &fd) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_frechet_distance_from_stats: cov_a[3] is inf; every element must be finite")
    #expect(mixflow_frechet_distance_from_stats(m, nil, m, c, 2, &fd) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_frechet_distance_from_stats: cov_a must not be NULL")

    var outMean = [Double](repeating: 0, count: 2), outCov = [Double](repeating: 0, count: 4)
    #expect(mixflow_feature_stats_compute(a, 3, 2, &outMean, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_feature_stats_compute: out_cov must not be NULL")
    #expect(mixflow_feature_stats_compute(a, 3, 2, &outMean, &outCov) == MIXFLOW_OK)
    #expect(outMean == [2, 3] && outCov == [4, 4, 4, 4])   // rows (0,1), (2,3), (4,5)

    #expect(mixflow_kid_compute(a, 3, a, 3, 2, 10, 4, 0, &mean, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_kid_compute: subset_size must be in [2, min(n_a, n_b, 100000) = 3], got 4")
    #expect(mixflow_kid_compute(a, 3, a, 3, 2, 0, 2, 0, &mean, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_kid_compute: num_subsets must be in [1, 100000], got 0")
    #expect(mixflow_kid_compute(a, 3, nan, 3, 2, 1, 2, 0, &mean, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_kid_compute: features_b[2] is nan; every element must be finite")
    #expect(mixflow_kid_compute(a, 3, a, 3, 2, 1, 2, 0, nil, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_kid_compute: out_mean must not be NULL")
    var se = 0.0
    #expect(mixflow_kid_compute(a, 3, a, 3, 2, 1, 3, 0, &mean, &se, nil) == MIXFLOW_OK && se.isNaN)

    #expect(mixflow_feature_stats_load(statsPath, 64, &outMean, &outCov, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_feature_stats_load: dim must be the file's dimension 128 (\(statsPath)), got 64")
    let junk = writeTemp("junk.mxfstat", Array("MXFSTAT1".utf8) + [2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])
    defer { unlink(junk) }
    #expect(mixflow_feature_stats_load(junk, 2, &outMean, &outCov, nil) == MIXFLOW_ERR_FORMAT)
    #expect(lastError() == "mixflow_feature_stats_load: \(junk): dim 2 needs 72 bytes but the file has 24")
}

@Test func featnetEntryPointsValidateTheirArguments() throws {
    var net: UnsafeMutablePointer<mixflow_featnet>? = UnsafeMutablePointer(bitPattern: 0x10)
    #expect(mixflow_featnet_load(nil, &net) == MIXFLOW_ERR_INVALID_ARGUMENT && net == nil)
    let notNet = writeTemp("notnet", Array("MXFNET01".utf8) + [0, 0, 0, 0])
    defer { unlink(notNet) }
    #expect(mixflow_featnet_load(notNet, &net) == MIXFLOW_ERR_FORMAT)
    #expect(lastError() == "mixflow_featnet_load: \(notNet): bad magic at byte offset 0: expected \"MXFNET02\" (a libmixflow feature net)")
    guard mixflow_featnet_load(netPath, &net) == MIXFLOW_OK else { Issue.record("\(netPath): \(lastError())"); return }
    defer { mixflow_featnet_free(net) }
    var input: Int64 = 0, feature: Int64 = 0, classes: Int64 = 0
    #expect(mixflow_featnet_info(net, &input, &feature, &classes) == MIXFLOW_OK && input == 784 && feature == 128 && classes == 10)
    var images = [Float](repeating: 0, count: 2 * 784), out = [Float](repeating: 0, count: 2 * 128)
    #expect(mixflow_featnet_features(net, images, 2, 783, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_featnet_features: dim must be the network's input size 784, got 783")
    #expect(mixflow_featnet_features(net, images, 0, 784, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_featnet_features: n must be > 0, got 0")
    #expect(mixflow_featnet_features(net, images, 2, 784, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_featnet_features: out_features must not be NULL")
    images[900] = .infinity
    #expect(mixflow_featnet_features(net, images, 2, 784, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_featnet_features: images[900] is inf; every element must be finite")
    images[900] = 0
    var accuracy = 0.0
    let labels: [Int32] = [3, 10]
    #expect(mixflow_featnet_accuracy(net, images, labels, 2, 784, &accuracy) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_featnet_accuracy: labels[1] must be in [0, 10), got 10")
    #expect(mixflow_featnet_classify(net, images, 2, 784, nil, nil) == MIXFLOW_OK)
    #expect(mixflow_featnet_info(nil, nil, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_featnet_info: net must not be NULL")
    var idx: UnsafeMutablePointer<mixflow_idx>?
    if mixflow_idx_load(labelsPath, &idx) == MIXFLOW_OK {
        defer { mixflow_idx_free(idx) }
        let wrongKind = UnsafeMutableRawPointer(idx!).assumingMemoryBound(to: mixflow_featnet.self)
        #expect(mixflow_featnet_info(wrongKind, &input, nil, nil) == MIXFLOW_ERR_INVALID_HANDLE)
        #expect(lastError() == "mixflow_featnet_info: net is not a live FeatureNet handle")
    }
}
