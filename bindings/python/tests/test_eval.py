"""Data and evaluation against independent numpy/scipy references: the IDX reader, the feature CNN's forward,
"FD (Fashion-MNIST classifier features)", KID, conditional accuracy and the shipped reference statistics."""
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import mixflow
from eval_reference import (forward_numpy, frechet_eigen, frechet_sqrtm, idx_numpy, kid_numpy, load_net, philox,
                            stats)
from mixflow import metrics

ROOT = Path(__file__).resolve().parents[3]
SHARE = ROOT / "share" / "featnet"
DATA = Path("/usr/share/datasets/fashion-mnist")
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz"]
needs_data = pytest.mark.skipif(not all((DATA / f).is_file() for f in FILES),
                                reason="Fashion-MNIST is absent: apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def net():
    return mixflow.FeatureNet()


@pytest.fixture(scope="module")
def test_set():
    return mixflow.fashion_mnist("test")


# ---- IDX ----------------------------------------------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("name", FILES)
def test_load_idx_matches_numpy(name):
    ours, ref = mixflow.load_idx(DATA / name), idx_numpy(DATA / name)
    assert ours.dtype == np.uint8 and ours.shape == ref.shape and np.array_equal(ours, ref)


@needs_data
def test_fashion_mnist_scaling_is_the_documented_formula(test_set):
    x, y = test_set
    raw = idx_numpy(DATA / FILES[2])
    assert x.shape == (10000, 28, 28) and x.dtype == np.float32 and y.dtype == np.int32
    assert np.array_equal(x, raw.astype(np.float32) / np.float32(127.5) - np.float32(1))
    assert np.array_equal(y, idx_numpy(DATA / FILES[3]))
    assert np.array_equal(mixflow.load_idx(DATA / FILES[2], "unit"), raw.astype(np.float32) / np.float32(255))


@pytest.mark.parametrize("dtype,code", [(">i2", 11), (">i4", 12), (">f4", 13), (">f8", 14), (">i1", 9)])
def test_every_dtype_round_trips(tmp_path, dtype, code):
    native = np.dtype(dtype).newbyteorder("=")
    a = ((np.arange(24).reshape(2, 3, 4) - 7) * (1.5 if "f" in dtype else 1)).astype(native)
    blob = bytes([0, 0, code, 3]) + np.array(a.shape, ">u4").tobytes() + a.astype(dtype).tobytes()   # big-endian
    for name, data in (("a.idx", blob), ("a.idx.gz", gzip.compress(blob))):
        (tmp_path / name).write_bytes(data)
        got = mixflow.load_idx(tmp_path / name)
        assert got.dtype == native and np.array_equal(got, a)


def test_hostile_files_raise_format_errors_with_path_and_offset(tmp_path):
    blob = bytes([0, 0, 8, 2]) + np.array([4, 5], ">u4").tobytes() + bytes(range(20))
    gz = bytearray(gzip.compress(blob))
    cases = {
        "truncated.idx": (blob[:-3], "need 32 bytes but the file has 29 (truncated at byte offset 29)"),
        "magic.idx": (b"\x01" + blob[1:], "bad IDX magic at byte offset 0"),
        "overflow.idx": (bytes([0, 0, 8, 3]) + np.array([2**32 - 1] * 3, ">u4").tobytes(), "overflow"),
        "crc.gz": (bytes(gz[:-8]) + bytes([gz[-8] ^ 0xFF]) + bytes(gz[-7:]), "incorrect data check"),
        "cut.gz": (bytes(gz[:-10]), "offset"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(mixflow.FormatError) as e:
            mixflow.load_idx(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and message in str(e.value), str(e.value)
    with pytest.raises(mixflow.IOFailure):
        mixflow.load_idx(tmp_path / "missing.idx")


# ---- feature net --------------------------------------------------------------------------------------------
def test_sidecar_records_the_shipped_files():
    side = json.loads((SHARE / "fmnist-cnn.json").read_text())
    for key in ("weights", "reference_stats"):
        path = SHARE / side[key]["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == side[key]["sha256"]
    assert side["test_accuracy"] >= 0.88 and (SHARE / side["weights"]["file"]).stat().st_size < 2 * 1024 * 1024


def test_native_forward_matches_numpy(net):
    rng = np.random.default_rng(0)
    ref_net = load_net(metrics.default_featnet_path())
    if all((DATA / f).is_file() for f in FILES):
        x = mixflow.fashion_mnist("test")[0][:200].reshape(200, -1)
    else:
        x = rng.uniform(-1, 1, (200, 784)).astype(np.float32)
    feats, logits = forward_numpy(ref_net, x)
    # float32 sums of up to 3136 terms against a float64 reference: 1e-4 relative to the scale of each output.
    assert np.abs(net.features(x) - feats).max() <= 1e-4 * np.abs(feats).max()
    assert np.abs(net.logits(x) - logits).max() <= 1e-4 * np.abs(logits).max()
    # Rows are independent: any prefix, suffix or slice of the batch gives the same bits (an image's place in
    # its 32-image chunk and the chunk's size change; test_split_invariance_on_every_gemm_path runs this on
    # every GEMM instruction-set path).
    whole = net.features(x)
    assert np.array_equal(net.features(x[:77]), whole[:77])
    assert np.array_equal(net.features(x[:5]), whole[:5])
    assert np.array_equal(net.features(x[77:]), whole[77:])
    assert np.array_equal(net.features(x[13:50]), whole[13:50])
    assert np.array_equal(net.logits(x[:130]), net.logits(x)[:130])
    # uint8 images are scaled with the documented formula before the forward.
    u8 = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    assert np.array_equal(net.features(u8), net.features(u8.astype(np.float32) / np.float32(127.5) - np.float32(1)))


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        mixflow.fashion_mnist("test", root=tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        mixflow.fashion_mnist("validation")


@needs_data
def test_accuracy_on_the_whole_test_set(net, test_set):
    x, y = test_set
    acc = net.accuracy(x, y)
    side = json.loads((SHARE / "fmnist-cnn.json").read_text())
    assert acc >= 0.88
    assert abs(acc - side["test_accuracy"]) <= 0.002   # torch measured it at training time
    # Conditional accuracy is the agreement of the predicted classes (argmax of the logits) with the given ones.
    logits = net.logits(x)
    assert acc == np.mean(logits.argmax(1) == y)
    assert np.array_equal(net.classify(x[:1000]), logits[:1000].argmax(1))
    assert net.accuracy(x[:1000], np.roll(y[:1000], 1)) < 0.2


# ---- FD -----------------------------------------------------------------------------------------------------
def test_fd_matches_scipy_on_random_features():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((600, 16)).astype(np.float32)
    b = (rng.standard_normal((500, 16)) @ rng.standard_normal((16, 16)) * 0.5 + 0.3).astype(np.float32)
    m1, s1 = stats(a)
    m2, s2 = stats(b)
    ref = frechet_sqrtm(m1, s1, m2, s2)
    assert abs(frechet_eigen(m1, s1, m2, s2) - ref) <= 1e-8 * ref
    assert abs(mixflow.frechet_distance(a, b) - ref) <= 1e-8 * ref
    mean, cov = mixflow.feature_stats(a)
    assert np.allclose(mean, m1, rtol=0, atol=1e-12) and np.allclose(cov, s1, rtol=0, atol=1e-12)


@needs_data
def test_fd_matches_scipy_on_real_features(net):
    x, _ = mixflow.fashion_mnist("train")
    fa, fb = net.features(x[:3000]), net.features(x[3000:6000] + np.float32(0.05))
    (m1, s1), (m2, s2) = stats(fa), stats(fb)
    ours = mixflow.frechet_distance(fa, fb)
    # Some ReLU features are never active, so both covariances are singular. Exactly: those features add 0, and
    # the distance equals the one over the live features, where scipy's sqrtm is accurate.
    live = (np.diag(s1) > 0) | (np.diag(s2) > 0)
    assert 0 < live.sum() < 128
    ref = frechet_sqrtm(m1[live], s1[np.ix_(live, live)], m2[live], s2[np.ix_(live, live)])
    assert abs(mixflow.frechet_distance(fa[:, live], fb[:, live]) - ref) <= 1e-9 * ref
    assert abs(ours - ref) <= 1e-9 * ref
    # On the singular full matrices, scipy's sqrtm ("Matrix is singular" warning) and the unfloored numpy eigen
    # form carry round-off of order sqrt(eps * |S|) per dead direction: a few 1e-6 relative here.
    assert abs(ours - frechet_sqrtm(m1, s1, m2, s2)) <= 1e-5 * ours
    assert abs(ours - frechet_eigen(m1, s1, m2, s2)) <= 1e-5 * ours


@needs_data
def test_fd_sensitivity_ordering(net):
    """docs/exactness.md §7.2: real train 10k vs test 10k gives a small FD; Gaussian noise sigma 0.1 a much larger one."""
    x, _ = mixflow.fashion_mnist("train")
    x = x[:10000]
    ref = mixflow.load_reference_stats()[:2]
    real = mixflow.frechet_distance(net.features(x), ref)
    noisy = x + np.float32(0.1) * np.random.default_rng(0).standard_normal(x.shape, dtype=np.float32)
    noise = mixflow.frechet_distance(net.features(noisy), ref)
    assert real < 2.0 and noise > 10 * real, (real, noise)


@needs_data
def test_reference_stats_match_recomputation(net, test_set):
    mean, cov, count = mixflow.load_reference_stats()
    m2, c2 = mixflow.feature_stats(net.features(test_set[0]))
    assert count == 10000
    # torch (training time) and libmixflow (now) compute the float32 forward in different orders.
    assert np.abs(mean - m2).max() <= 1e-4 * np.abs(mean).max()
    assert np.abs(cov - c2).max() <= 1e-4 * np.abs(cov).max()
    assert mixflow.frechet_distance((mean, cov), (m2, c2)) < 1e-3


# ---- KID ----------------------------------------------------------------------------------------------------
def test_philox_reference_matches_random123():
    assert philox((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)


def test_kid_matches_numpy():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 8)).astype(np.float32)
    b = (rng.standard_normal((250, 8)) * 1.2 + 0.1).astype(np.float32)
    mean, se, values = mixflow.kid(a, b, num_subsets=7, subset_size=100, seed=2**40 + 3, return_subsets=True)
    ref_mean, ref_se, ref_values = kid_numpy(a, b, 7, 100, 2**40 + 3)
    assert np.allclose(values, ref_values, rtol=1e-9, atol=1e-12)
    assert abs(mean - ref_mean) <= 1e-9 * abs(ref_mean) and abs(se - ref_se) <= 1e-9 * ref_se
    assert mixflow.kid(a, b, 7, 100, seed=2**40 + 3)[0] == mean          # deterministic
    assert mixflow.kid(a, b, 7, 100, seed=1)[0] != mean


@needs_data
def test_kid_orders_real_and_noisy_sets(net, test_set):
    x, _ = mixflow.fashion_mnist("train")
    ref = net.features(test_set[0][:2000])
    rms = np.sqrt((ref.astype(np.float64) ** 2).mean())
    real = mixflow.kid(net.features(x[:2000]) / rms, ref / rms, 20, 1000)
    noisy = x[:2000] + np.float32(0.1) * np.random.default_rng(0).standard_normal(x[:2000].shape, dtype=np.float32)
    noise = mixflow.kid(net.features(noisy) / rms, ref / rms, 20, 1000)
    assert abs(real[0]) < 3 * real[1] + 1e-3 and noise[0] > real[0] + 10 * noise[1], (real, noise)


def test_split_invariance_on_every_gemm_path():
    """The batch-split check above in fresh processes on each GEMM path (AVX-512, AVX2, portable, as far as the
    CPU has them), and the features themselves bit-identical across the paths."""
    import hashlib, subprocess, sys, os
    code = ("import hashlib, numpy as np, mixflow\n"
            "net = mixflow.FeatureNet()\n"
            "x = np.random.default_rng(1).uniform(-1, 1, (70, 784)).astype(np.float32)\n"
            "w = net.features(x)\n"
            "assert all(np.array_equal(net.features(x[:n]), w[:n]) for n in (1, 31, 33, 69))\n"
            "assert all(np.array_equal(net.features(x[n:]), w[n:]) for n in (1, 13, 40))\n"
            "print(mixflow.blas_info()['gemm'].split()[1], hashlib.sha256(w.tobytes()).hexdigest())\n")
    seen = {}
    for disable in ({}, {"MIXFLOW_DISABLE_AVX512": "1"}, {"MIXFLOW_DISABLE_AVX2": "1"}):
        r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **disable), capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        path, digest = r.stdout.split()
        seen[path] = digest
    assert "portable" in seen and len(set(seen.values())) == 1, seen
