import CMixflow
import MixflowCore
import MixflowEval

// The quality metric: "FD (Fashion-MNIST classifier features)" (never FID: the features come from our own
// small classifier, not Inception), KID on the same features, and conditional accuracy.

// MARK: - Feature net

/// Loads a feature network (the shipped one is share/featnet/fmnist-cnn.mxfnet; its layout is documented
/// in scripts/train-featnet.py and Sources/MixflowEval/FeatureNet.swift). Free it with `mixflow_featnet_free`.
///
/// - Parameters:
///   - path: UTF-8 file path. out: receives the new handle; set to NULL on failure.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL), `MIXFLOW_ERR_IO` or `MIXFLOW_ERR_FORMAT`
///   (bad magic, sizes that disagree with the file length, non-finite weights; the message gives the offset).
@c public func mixflow_featnet_load(
    _ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_featnet>?>?
) -> mixflow_status {
    capi("mixflow_featnet_load") {
        let out = try require(out, "out")
        out.pointee = nil
        let net = try FeatureNet(path: try string(path, "path"))
        out.pointee = Handle.make(net, kind: .featnet, as: mixflow_featnet.self)
    }
}

/// Frees a feature network. NULL is a no-op.
@c public func mixflow_featnet_free(_ net: UnsafeMutablePointer<mixflow_featnet>?) {
    Handle.free(net, kind: .featnet)
}

/// The network's sizes: input (784 for Fashion-MNIST), feature (128) and class (10) counts; each output
/// may be NULL.
///
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_HANDLE` (NULL or another kind of handle).
@c public func mixflow_featnet_info(
    _ net: UnsafeMutablePointer<mixflow_featnet>?, _ out_input_dim: UnsafeMutablePointer<Int64>?,
    _ out_feature_dim: UnsafeMutablePointer<Int64>?, _ out_num_classes: UnsafeMutablePointer<Int64>?
) -> mixflow_status {
    capi("mixflow_featnet_info") {
        let n = try Handle.get(net, kind: .featnet, "net", as: FeatureNet.self)
        out_input_dim?.pointee = Int64(n.inputDim)
        out_feature_dim?.pointee = Int64(n.featureDim)
        out_num_classes?.pointee = Int64(n.numClasses)
    }
}

/// Computes the features (the penultimate ReLU activations) of `n` images: im2col + sgemm in chunks of 32
/// images spread over all cores (libmixflow's own threads; OpenBLAS itself runs single-threaded). The result
/// does not depend on the thread count or on how a set is split into calls.
///
/// - Parameters:
///   - images: [n, dim], finite, scaled to [-1, 1] (`x / 127.5 - 1`, see `MIXFLOW_PIXEL_SCALING_SYMMETRIC`).
///   - n: > 0. dim: must equal the network's input size (784).
///   - out_features: [n, feature_dim].
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_featnet_features(
    _ net: UnsafeMutablePointer<mixflow_featnet>?, _ images: UnsafePointer<Float>?, _ n: Int64, _ dim: Int64,
    _ out_features: UnsafeMutablePointer<Float>?
) -> mixflow_status {
    capi("mixflow_featnet_features") {
        let (fn, images, count) = try netInput(net, images, n, dim)
        fn.forward(images: images, count: count, features: try require(out_features, "out_features"), logits: nil)
    }
}

/// Classifies `n` images: the logits and/or the predicted class (argmax; ties go to the lowest index).
///
/// - Parameters:
///   - images: [n, dim], finite, in [-1, 1]. n: > 0. dim: the network's input size.
///   - out_logits: [n, num_classes], may be NULL. out_classes: [n], may be NULL.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_featnet_classify(
    _ net: UnsafeMutablePointer<mixflow_featnet>?, _ images: UnsafePointer<Float>?, _ n: Int64, _ dim: Int64,
    _ out_logits: UnsafeMutablePointer<Float>?, _ out_classes: UnsafeMutablePointer<Int32>?
) -> mixflow_status {
    capi("mixflow_featnet_classify") {
        let (fn, images, count) = try netInput(net, images, n, dim)
        fn.classify(images: images, count: count, logits: out_logits, classes: out_classes)
    }
}

/// Conditional accuracy: the fraction of images the network assigns to their label. For class-conditional
/// samples, pass the classes they were generated for; on the real test set this is the test accuracy.
///
/// - Parameters:
///   - images: [n, dim], finite, in [-1, 1]. labels: [n], each in [0, num_classes). n: > 0.
///   - out_accuracy: receives a value in [0, 1].
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf, label out of range) or
///   `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_featnet_accuracy(
    _ net: UnsafeMutablePointer<mixflow_featnet>?, _ images: UnsafePointer<Float>?,
    _ labels: UnsafePointer<Int32>?, _ n: Int64, _ dim: Int64, _ out_accuracy: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_featnet_accuracy") {
        let (fn, images, count) = try netInput(net, images, n, dim)
        let labels = try require(labels, "labels")
        let out = try require(out_accuracy, "out_accuracy")
        for i in 0..<count where labels[i] < 0 || Int(labels[i]) >= fn.numClasses {
            throw MixflowError.invalidArgument("labels[\(i)] must be in [0, \(fn.numClasses)), got \(labels[i])")
        }
        out.pointee = fn.accuracy(images: images, labels: labels, count: count)
    }
}

private func netInput(_ net: UnsafeMutablePointer<mixflow_featnet>?, _ images: UnsafePointer<Float>?, _ n: Int64,
                      _ dim: Int64) throws -> (FeatureNet, UnsafePointer<Float>, Int) {
    let fn = try Handle.get(net, kind: .featnet, "net", as: FeatureNet.self)
    let images = try require(images, "images")
    let count = try dimension(n, "n")
    guard dim == Int64(fn.inputDim) else {
        throw MixflowError.invalidArgument("dim must be the network's input size \(fn.inputDim), got \(dim)")
    }
    let total = try checkedCount([n, dim], "n x dim")
    try requireFinite(UnsafeBufferPointer(start: images, count: total), "images")
    return (fn, images, count)
}

// MARK: - Statistics and distances

/// The mean [dim] and covariance [dim, dim] (row-major, divisor n - 1, as numpy's `cov(rowvar=False)`) of a
/// feature set, accumulated in float64.
///
/// - Parameters:
///   - features: [n, dim], finite. n: >= 2. dim: in [1, 8192].
///   - out_mean: [dim]. out_cov: [dim, dim].
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, n < 2, bad size, NaN/Inf).
@c public func mixflow_feature_stats_compute(
    _ features: UnsafePointer<Float>?, _ n: Int64, _ dim: Int64,
    _ out_mean: UnsafeMutablePointer<Double>?, _ out_cov: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_feature_stats_compute") {
        let stats = try featureStats(features, n, dim, "features", "n")
        let mean = try require(out_mean, "out_mean"), cov = try require(out_cov, "out_cov")
        mean.update(from: stats.mean, count: stats.dim)
        cov.update(from: stats.covariance, count: stats.dim * stats.dim)
    }
}

/// Loads precomputed reference statistics (share/featnet/fmnist-test-stats.mxfstat holds the shipped net's
/// features of the 10k Fashion-MNIST test images), so an evaluation does not recompute them.
///
/// - Parameters:
///   - path: UTF-8 path. dim: must equal the file's dimension (the feature net's feature_dim, 128).
///   - out_mean: [dim]. out_cov: [dim, dim]. out_count: the number of samples they came from; may be NULL.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, dim mismatch), `MIXFLOW_ERR_IO` or
///   `MIXFLOW_ERR_FORMAT`.
@c public func mixflow_feature_stats_load(
    _ path: UnsafePointer<CChar>?, _ dim: Int64, _ out_mean: UnsafeMutablePointer<Double>?,
    _ out_cov: UnsafeMutablePointer<Double>?, _ out_count: UnsafeMutablePointer<Int64>?
) -> mixflow_status {
    capi("mixflow_feature_stats_load") {
        let path = try string(path, "path")
        let mean = try require(out_mean, "out_mean"), cov = try require(out_cov, "out_cov")
        _ = try dimension(dim, "dim")
        let stats = try FeatureStats(path: path)
        guard Int64(stats.dim) == dim else {
            throw MixflowError.invalidArgument("dim must be the file's dimension \(stats.dim) (\(path)), got \(dim)")
        }
        mean.update(from: stats.mean, count: stats.dim)
        cov.update(from: stats.covariance, count: stats.dim * stats.dim)
        out_count?.pointee = Int64(stats.count)
    }
}

/// The Fréchet distance between two Gaussians, `|m_a - m_b|^2 + tr S_a + tr S_b - 2 tr (S_a^1/2 S_b S_a^1/2)^1/2`,
/// in float64 through symmetric eigendecompositions (LAPACK dsyev; no general matrix square root). With
/// feature-net statistics this is "FD (Fashion-MNIST classifier features)". Covariances are symmetrised.
/// Eigenvalues below `dim · DBL_EPSILON · λ_max` count as 0, so features that are constant in both sets (dead
/// ReLU units) add nothing instead of round-off noise.
///
/// - Parameters:
///   - mean_a, mean_b: [dim], finite. cov_a, cov_b: [dim, dim], finite. dim: in [1, 8192].
///   - out_fd: receives the distance (>= 0 up to round-off).
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad dim, NaN/Inf) or `MIXFLOW_ERR_INTERNAL`
///   (the eigenvalue iteration did not converge).
@c public func mixflow_frechet_distance_from_stats(
    _ mean_a: UnsafePointer<Double>?, _ cov_a: UnsafePointer<Double>?,
    _ mean_b: UnsafePointer<Double>?, _ cov_b: UnsafePointer<Double>?, _ dim: Int64,
    _ out_fd: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_frechet_distance_from_stats") {
        let d = try dimension(dim, "dim")
        guard d <= 8192 else { throw MixflowError.invalidArgument("dim must be <= 8192, got \(dim)") }
        let out = try require(out_fd, "out_fd")
        func read(_ p: UnsafePointer<Double>?, _ name: String, _ count: Int) throws -> [Double] {
            let buffer = UnsafeBufferPointer(start: try require(p, name), count: count)
            if let bad = buffer.firstIndex(where: { !$0.isFinite }) {
                throw MixflowError.invalidArgument("\(name)[\(bad)] is \(buffer[bad]); every element must be finite")
            }
            return Array(buffer)
        }
        let a = FeatureStats(dim: d, count: 0, mean: try read(mean_a, "mean_a", d), covariance: try read(cov_a, "cov_a", d * d))
        let b = FeatureStats(dim: d, count: 0, mean: try read(mean_b, "mean_b", d), covariance: try read(cov_b, "cov_b", d * d))
        out.pointee = try FrechetDistance.distance(a, b)
    }
}

/// The Fréchet distance between the Gaussian fits of two feature sets (`mixflow_feature_stats_compute` on
/// each, then `mixflow_frechet_distance_from_stats`). Compare methods only at the same n, reference set and
/// feature net: the estimate is biased upwards at small n.
///
/// - Parameters:
///   - features_a: [n_a, dim], finite. features_b: [n_b, dim], finite. n_a, n_b: >= 2. dim: in [1, 8192].
///   - out_fd: receives the distance.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf) or `MIXFLOW_ERR_INTERNAL`.
@c public func mixflow_frechet_distance_compute(
    _ features_a: UnsafePointer<Float>?, _ n_a: Int64, _ features_b: UnsafePointer<Float>?, _ n_b: Int64,
    _ dim: Int64, _ out_fd: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_frechet_distance_compute") {
        let out = try require(out_fd, "out_fd")
        let a = try featureStats(features_a, n_a, dim, "features_a", "n_a")
        let b = try featureStats(features_b, n_b, dim, "features_b", "n_b")
        out.pointee = try FrechetDistance.distance(a, b)
    }
}

private func featureStats(_ features: UnsafePointer<Float>?, _ n: Int64, _ dim: Int64, _ name: String,
                          _ nName: String) throws -> FeatureStats {
    let f = try require(features, name)
    guard n >= 2 else { throw MixflowError.invalidArgument("\(nName) must be >= 2 (a covariance needs two samples), got \(n)") }
    let d = try dimension(dim, "dim")
    // The d x d float64 matrices of the distance stay under 512 MB each.
    guard d <= 8192 else { throw MixflowError.invalidArgument("dim must be <= 8192, got \(dim)") }
    let total = try checkedCount([n, dim], "\(nName) x dim")
    try requireFinite(UnsafeBufferPointer(start: f, count: total), name)
    return FeatureStats(features: f, count: Int(n), dim: d)
}

/// KID on the same features: the unbiased MMD² with the cubic polynomial kernel `k(x, y) = (x·y / dim + 1)^3`,
/// averaged over `num_subsets` random subsets of `subset_size` rows drawn without replacement from each set,
/// in float64. Unbiased at small n (cheap intermediate checks with 1-2k samples); can be slightly negative.
/// The draws are a pure function of `seed` (Philox4x32-10; the exact rule is in Sources/MixflowEval/KID.swift),
/// so results are identical on every run and thread count. The command line reports KID on features divided by
/// the reference RMS (docs/exactness.md §7.3); a caller who wants those units scales both sets by that factor.
///
/// - Parameters:
///   - features_a: [n_a, dim], finite. features_b: [n_b, dim], finite. dim: > 0.
///   - num_subsets: in [1, 100000]. subset_size: in [2, min(n_a, n_b, 100000)]; dim: at most 65536.
///   - seed: any 64-bit value.
///   - out_mean: the mean over subsets. out_std_error: the sample standard deviation of the subset values
///     over √num_subsets (NaN when num_subsets = 1); may be NULL. out_subset_values: [num_subsets]; may be NULL.
/// - Returns: `MIXFLOW_OK` or `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, bad size, NaN/Inf).
@c public func mixflow_kid_compute(
    _ features_a: UnsafePointer<Float>?, _ n_a: Int64, _ features_b: UnsafePointer<Float>?, _ n_b: Int64,
    _ dim: Int64, _ num_subsets: Int64, _ subset_size: Int64, _ seed: UInt64,
    _ out_mean: UnsafeMutablePointer<Double>?, _ out_std_error: UnsafeMutablePointer<Double>?,
    _ out_subset_values: UnsafeMutablePointer<Double>?
) -> mixflow_status {
    capi("mixflow_kid_compute") {
        let a = try require(features_a, "features_a"), b = try require(features_b, "features_b")
        let na = try dimension(n_a, "n_a"), nb = try dimension(n_b, "n_b"), d = try dimension(dim, "dim")
        let mean = try require(out_mean, "out_mean")
        guard (1...100_000).contains(num_subsets) else {
            throw MixflowError.invalidArgument("num_subsets must be in [1, 100000], got \(num_subsets)")
        }
        guard subset_size >= 2 && subset_size <= Int64(min(na, nb, 100_000)) else {
            throw MixflowError.invalidArgument("subset_size must be in [2, min(n_a, n_b, 100000) = \(min(na, nb, 100_000))], got \(subset_size)")
        }
        guard d <= 65536 else { throw MixflowError.invalidArgument("dim must be <= 65536, got \(dim)") }
        try requireFinite(UnsafeBufferPointer(start: a, count: try checkedCount([n_a, dim], "n_a x dim")), "features_a")
        try requireFinite(UnsafeBufferPointer(start: b, count: try checkedCount([n_b, dim], "n_b x dim")), "features_b")
        let r = KID.compute(a: a, countA: na, b: b, countB: nb, dim: d, numSubsets: Int(num_subsets),
                            subsetSize: Int(subset_size), seed: seed)
        mean.pointee = r.mean
        out_std_error?.pointee = r.standardError
        out_subset_values?.update(from: r.subsetValues, count: r.subsetValues.count)
    }
}
