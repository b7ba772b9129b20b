import CMixflow
import MixflowCore
import MixflowIO
import MixflowMethod

// MARK: - Slow Flow

/// A checked copy of a caller's doubles, allocated before `p` is read (a size whose copy cannot exist is refused
/// before the caller's buffer is touched).
func finiteDoubles(_ p: UnsafePointer<Double>, _ n: Int, _ name: String, range: ClosedRange<Double>? = nil) throws -> ScratchBuffer<Double> {
    let v = try ScratchBuffer(n, repeating: 0.0, "a copy of \(name) (\(n) values)")
    v.base.update(from: p, count: n)
    if let i = v.buffer.firstIndex(where: { !$0.isFinite || !(range?.contains($0) ?? true) }) {
        let expected = range.map { "in [\($0.lowerBound), \($0.upperBound)]" } ?? "finite"
        throw MixflowError.invalidArgument("\(name)[\(i)] is \(v[i]); every element must be \(expected)")
    }
    return v
}

/// Measures the Slow Flow of a sampled trajectory: for each sample and grid time, the time m (paper
/// convention, 0 = noise, 1 = data) of the nearest ground-truth interpolation (see
/// `mixflow_slow_flow_reference`). Linear path: closed-form projection clamped to [0, 1]; GVP/VP: a 65-point
/// scan refined by golden-section search. Nearest data uses one sgemm per grid time (float32 inner products).
///
/// - Parameters:
///   - t: [num_times] the trajectory's times in `convention` (from `mixflow_sampler_timesteps`), in [0, 1].
///   - trajectory: [num_times, batch, dim] (from `mixflow_sample`). noise: [batch, dim], the starting noise x0.
///   - data: [num_data, dim]; required for NEAREST_DATA and NOISE_LEVEL, otherwise may be NULL.
///   - out_t: [num_times] the times in the paper's convention. out_m: [batch, num_times].
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, unknown enum, NaN/Inf, t outside
///   [0, 1], sizes beyond 2^31 − 1 for the BLAS call).
@c public func mixflow_slow_flow_measure(
    _ reference: mixflow_slow_flow_reference, _ path: mixflow_path, _ convention: mixflow_convention,
    _ t: UnsafePointer<Double>?, _ num_times: Int64, _ trajectory: UnsafePointer<Float>?, _ noise: UnsafePointer<Float>?,
    _ batch: Int64, _ dim: Int64, _ data: UnsafePointer<Float>?, _ num_data: Int64,
    _ out_t: UnsafeMutablePointer<Double>?, _ out_m: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_slow_flow_measure") {
        let ref = try convertEnum(reference.rawValue, "reference", SlowFlowReference.self)
        let p = try convertEnum(path.rawValue, "path", InterpolationPath.self)
        let c = try convertEnum(convention.rawValue, "convention", TimeConvention.self)
        let k = try dimension(num_times, "num_times")
        let (b, d, n) = try matrixShape(batch, dim)
        let total = try checkedCount([num_times, batch, dim], "trajectory")   // before t is read: bounds num_times
        let times = try finiteDoubles(try require(t, "t"), k, "t", range: 0...1)
        let traj = try require(trajectory, "trajectory"), x0 = try require(noise, "noise")
        let outT = try require(out_t, "out_t"), outM = try require(out_m, "out_m")
        var dataCount = 0
        if ref != .endpoint {
            guard let data else { throw MixflowError.invalidArgument("data must not be NULL for reference \(ref)") }
            dataCount = try dimension(num_data, "num_data")
            let dn = try checkedCount([num_data, dim], "data")
            try requireFinite(UnsafeBufferPointer(start: data, count: dn), "data")
            guard num_data < Int64(Int32.max), batch < Int64(Int32.max), dim < Int64(Int32.max) else {
                throw MixflowError.invalidArgument("num_data, batch and dim must be < 2^31 for the BLAS call")
            }
        }
        try requireFinite(UnsafeBufferPointer(start: traj, count: total), "trajectory")
        try requireFinite(UnsafeBufferPointer(start: x0, count: n), "noise")
        let r = try times.withBuffer {
            try SlowFlow.measure(reference: ref, path: p, convention: c, times: $0, trajectory: traj, noise: x0,
                                 batch: b, dim: d, data: ref == .endpoint ? nil : data, numData: dataCount)
        }
        for i in 0..<k { outT[i] = r.t[i] }
        for i in 0..<(b * k) { outM[i] = r.m[i] }
    }
}

/// Per-grid-time statistics of a measurement: `MIXFLOW_SLOW_FLOW_NUM_COLUMNS` values per time (see the macro).
///
/// - Parameters: t: [num_times] paper-convention times in [0, 1]; m: [batch, num_times] in [0, 1];
///   out_stats: [num_times, MIXFLOW_SLOW_FLOW_NUM_COLUMNS].
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf, values outside [0, 1]).
@c public func mixflow_slow_flow_stats(
    _ t: UnsafePointer<Double>?, _ m: UnsafePointer<Double>?, _ batch: Int64, _ num_times: Int64,
    _ out_stats: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_slow_flow_stats") {
        let (times, ms, b) = try slowFlowInputs(t, m, batch, num_times)
        let out = try require(out_stats, "out_stats")
        let rows = try withExtendedLifetime((times, ms)) { try SlowFlowStatistics(t: times.buffer, m: ms.buffer, batch: b).rows }
        for (i, row) in rows.enumerated() { for (j, v) in row.enumerated() { out[i * row.count + j] = v } }
    }
}

/// The γ whose MixFlow mixture interval [(1 − γ)t, t] covers `coverage` of the measured slowed times, pooled
/// over samples and grid times with t > 0: γ = 1 − Q_{1−coverage}(min(1, m/t)), clamped to [0, 1]
/// (0 when nothing is slowed). See docs/slow-flow.md.
///
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN, coverage outside (0, 1],
///   no grid time with t > 0).
@c public func mixflow_slow_flow_suggest_gamma(
    _ t: UnsafePointer<Double>?, _ m: UnsafePointer<Double>?, _ batch: Int64, _ num_times: Int64,
    _ coverage: Double, _ out_gamma: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_slow_flow_suggest_gamma") {
        let (times, ms, b) = try slowFlowInputs(t, m, batch, num_times)
        let out = try require(out_gamma, "out_gamma")
        out.pointee = try withExtendedLifetime((times, ms)) {
            try SlowFlowStatistics.suggestGamma(t: times.buffer, m: ms.buffer, batch: b, coverage: coverage)
        }
    }
}

/// How much the measured path lags, pooled over samples and grid times with t > 0 (the last one skipped when
/// `exclude_final` is non-zero: under the endpoint definition it is the end point itself): the fraction of pairs
/// with m < t − 10⁻³, the median of m/t, and whether that is a lag (fraction > 0.5 and median < 1: 1, else 0).
/// `mixflow slowflow` advises from the endpoint lag; see docs/slow-flow.md.
///
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN, no grid time left to measure).
@c public func mixflow_slow_flow_lag(
    _ t: UnsafePointer<Double>?, _ m: UnsafePointer<Double>?, _ batch: Int64, _ num_times: Int64,
    _ exclude_final: Int32, _ out_slowed_fraction: UnsafeMutablePointer<Double>?, _ out_median_ratio: UnsafeMutablePointer<Double>?,
    _ out_lags: UnsafeMutablePointer<Int32>?
) -> mixflow_status {
    capi("mixflow_slow_flow_lag") {
        let (times, ms, b) = try slowFlowInputs(t, m, batch, num_times)
        let slowed = try require(out_slowed_fraction, "out_slowed_fraction")
        let median = try require(out_median_ratio, "out_median_ratio")
        let lags = try require(out_lags, "out_lags")
        let lag = try withExtendedLifetime((times, ms)) {
            try SlowFlowStatistics.lag(t: times.buffer, m: ms.buffer, batch: b, excludingFinal: exclude_final != 0)
        }
        slowed.pointee = lag.slowed
        median.pointee = lag.medianRatio
        lags.pointee = lag.lags ? 1 : 0
    }
}

/// Whether MixFlow post-training is expected to beat standard post-training (results/regimes): `endpoint_lags`
/// is the verdict of `mixflow_slow_flow_lag` on the endpoint measurement (0 or 1), `nearest_data_gamma` the
/// nearest-data suggest_gamma, or a negative value when not measured. `out_outlook`: 1 expected to help (the path
/// lags; at γ 0.4-0.8), 0 expected to hurt (no lag, nearest-data γ below 0.3), -1 undecided (no lag, and the
/// nearest-data γ not measured or at least 0.3, where MixFlow helped one base and hurt another). See docs/slow-flow.md.
///
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, endpoint_lags not 0/1, γ NaN or above 1).
@c public func mixflow_slow_flow_outlook(
    _ endpoint_lags: Int32, _ nearest_data_gamma: Double, _ out_outlook: UnsafeMutablePointer<Int32>?
) -> mixflow_status {
    capi("mixflow_slow_flow_outlook") {
        let out = try require(out_outlook, "out_outlook")
        guard endpoint_lags == 0 || endpoint_lags == 1 else { throw MixflowError.invalidArgument("endpoint_lags must be 0 or 1, got \(endpoint_lags)") }
        guard !nearest_data_gamma.isNaN, nearest_data_gamma <= 1 else {
            throw MixflowError.invalidArgument("nearest_data_gamma must be in [0, 1] (negative: not measured), got \(nearest_data_gamma)")
        }
        out.pointee = MixFlowOutlook(endpointLags: endpoint_lags == 1,
                                     nearestDataGamma: nearest_data_gamma < 0 ? nil : nearest_data_gamma).rawValue
    }
}

/// The constants of `mixflow_slow_flow_outlook`'s rule, so that a caller can say what the advice means:
/// `out_helpful_gamma_min`..`out_helpful_gamma_max` is the γ range at which MixFlow helped where it helped (the
/// range "expected to help" refers to), `out_far_from_data` the nearest-data suggest_gamma from which samples
/// count as far from the data (no lag and at least this: undecided). Any output may be NULL (not written).
///
/// - Returns: `MIXFLOW_OK`.
@c public func mixflow_slow_flow_outlook_rule(
    _ out_helpful_gamma_min: UnsafeMutablePointer<Double>?, _ out_helpful_gamma_max: UnsafeMutablePointer<Double>?,
    _ out_far_from_data: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_slow_flow_outlook_rule") {
        out_helpful_gamma_min?.pointee = MixFlowOutlook.helpfulGamma.lowerBound
        out_helpful_gamma_max?.pointee = MixFlowOutlook.helpfulGamma.upperBound
        out_far_from_data?.pointee = MixFlowOutlook.farFromData
    }
}

/// Writes the statistics as CSV (header row = column names) or JSON, atomically (temporary file, fsync, rename).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, unknown enum, NaN) or `MIXFLOW_ERR_IO`.
@c public func mixflow_slow_flow_export(
    _ path: UnsafePointer<CChar>?, _ format: mixflow_export_format, _ reference: mixflow_slow_flow_reference,
    _ t: UnsafePointer<Double>?, _ m: UnsafePointer<Double>?, _ batch: Int64, _ num_times: Int64
) -> mixflow_status {
    capi("mixflow_slow_flow_export") {
        let file = try string(path, "path")
        let ref = try convertEnum(reference.rawValue, "reference", SlowFlowReference.self)
        guard format.rawValue <= 1 else { throw MixflowError.invalidArgument("format has unknown value \(Int32(bitPattern: format.rawValue))") }
        let (times, ms, b) = try slowFlowInputs(t, m, batch, num_times)
        let stats = try withExtendedLifetime((times, ms)) { try SlowFlowStatistics(t: times.buffer, m: ms.buffer, batch: b) }
        let names = ["endpoint", "nearest_data", "noise_level"]
        let text = format == MIXFLOW_EXPORT_CSV ? stats.csv() : stats.json(reference: names[Int(ref.rawValue)])
        try AtomicFile.write(to: file) { try $0.write(text) }
    }
}

private func slowFlowInputs(_ t: UnsafePointer<Double>?, _ m: UnsafePointer<Double>?, _ batch: Int64,
                            _ numTimes: Int64) throws -> (ScratchBuffer<Double>, ScratchBuffer<Double>, Int) {
    let tp = try require(t, "t"), mp = try require(m, "m")
    let k = try dimension(numTimes, "num_times")
    let (b, _, n) = try matrixShape(batch, numTimes)
    return (try finiteDoubles(tp, k, "t", range: 0...1), try finiteDoubles(mp, n, "m", range: 0...1), b)
}

// MARK: - Samples as ADM .npz

/// Converts decoded images to uint8 with a codebase's rule (SiT: clamp(127.5x + 128), RAE: clamp(x, 0, 1)·255,
/// REPA: clamp(255(x + 1)/2); all truncated) and NCHW → NHWC.
///
/// - Parameters: x: [batch, channels, height, width]; out: [batch, height, width, channels] uint8.
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, unknown convention).
@c public func mixflow_samples_to_uint8(
    _ convention: mixflow_convention, _ x: UnsafePointer<Float>?, _ batch: Int64, _ channels: Int64, _ height: Int64,
    _ width: Int64, _ out: UnsafeMutablePointer<UInt8>?
) -> mixflow_status {
    capi("mixflow_samples_to_uint8") {
        let c = try convertEnum(convention.rawValue, "convention", TimeConvention.self)
        let x = try require(x, "x"), out = try require(out, "out")
        _ = try checkedCount([batch, channels, height, width], "x")
        ImageQuantization.toNHWC(x, n: Int(batch), c: Int(channels), h: Int(height), w: Int(width), convention: c, out: out)
    }
}

/// Writes uint8 images [batch, height, width, channels] (NHWC, as `mixflow_samples_to_uint8` makes them) as one PNG
/// grid of `columns` columns with a 2-pixel white border (8-bit grey for 1 channel, RGB for 3; stored deflate
/// blocks, no compression), atomically (temporary file in the same folder, fsync, rename).
///
/// - Parameters:
///   - path: UTF-8 file name. images: [batch, height, width, channels] uint8, channels 1 or 3.
///   - columns: images per grid row, >= 1 (more than batch means one row).
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, size <= 0, channels not 1 or 3, columns <= 0, a
///   grid over 2^24 pixels on a side) or `MIXFLOW_ERR_IO` (with the path).
@c public func mixflow_samples_write_png(
    _ path: UnsafePointer<CChar>?, _ images: UnsafePointer<UInt8>?, _ batch: Int64, _ height: Int64, _ width: Int64,
    _ channels: Int64, _ columns: Int64
) -> mixflow_status {
    capi("mixflow_samples_write_png") {
        let file = try string(path, "path")
        let images = try require(images, "images")
        _ = try checkedCount([batch, height, width, channels], "images")
        guard channels == 1 || channels == 3 else { throw MixflowError.invalidArgument("channels must be 1 or 3, got \(channels)") }
        guard columns > 0 else { throw MixflowError.invalidArgument("columns must be > 0, got \(columns)") }
        let g = try PNG.grid(bytes: images, count: Int(batch), height: Int(height), width: Int(width), channels: Int(channels),
                             columns: Int(min(columns, batch)))
        try PNG.write(path: file, pixels: g.pixels, width: g.width, height: g.height, channels: Int(channels))
    }
}

/// Writes uint8 images [batch, height, width, channels] as an ADM-suite `.npz` (`arr_0`, stored zip with
/// Zip64 records like `numpy.savez`), atomically (temporary file in the same folder, fsync, rename).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size) or `MIXFLOW_ERR_IO` (with the path).
@c public func mixflow_samples_write_npz(
    _ path: UnsafePointer<CChar>?, _ images: UnsafePointer<UInt8>?, _ batch: Int64, _ height: Int64, _ width: Int64,
    _ channels: Int64
) -> mixflow_status {
    capi("mixflow_samples_write_npz") {
        let file = try string(path, "path")
        let images = try require(images, "images")
        _ = try checkedCount([batch, height, width, channels], "images")
        try NPZWriter.write(path: file, shape: [Int(batch), Int(height), Int(width), Int(channels)]) { offset, buffer in
            buffer.baseAddress!.update(from: images + offset, count: buffer.count)
        }
    }
}
