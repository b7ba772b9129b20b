"""The `mixflow` command line: sample (PNG grid + ADM .npz) and slowflow on a trainer checkpoint."""
import csv
import io
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

import mixflow

ROOT = Path(__file__).resolve().parents[3]
CLI = ROOT / ".build" / "release" / "mixflow-cli"
pytestmark = pytest.mark.skipif(not CLI.exists(), reason="build with `swift build -c release` first")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    m = mixflow.Model.create(None, depth=2, hidden=32, heads=4, patch=4, input_size=8, in_channels=1,
                             num_classes=3, learn_sigma=False)
    tr = mixflow.Trainer(m, mixflow.Transport(gamma=0.0, time_dist="uniform"), lr=1e-3, ema=0.5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        tr.step(rng.standard_normal((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 8))
    path = tmp_path_factory.mktemp("cli") / "ckpt.mixflow"
    tr.save(path)
    return path


def read_png(path):
    """A minimal independent PNG decoder (8-bit grey, filter 0) using Python's zlib."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 0)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, width + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:]


def test_sample_writes_consistent_npz_and_png(checkpoint, tmp_path):
    npz, png = tmp_path / "s.npz", tmp_path / "g.png"
    r = subprocess.run([CLI, "sample", "--checkpoint", checkpoint, "--n", "5", "--steps", "10", "--method", "euler",
                        "--npz", npz, "--grid", png], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    images = np.load(npz)["arr_0"]
    assert images.shape == (5, 8, 8, 1) and images.dtype == np.uint8
    grid = read_png(png)
    assert grid.shape == (2 + 10, 2 + 5 * 10)
    for k in range(5):     # image k sits at column 2 + 10k, row 2
        assert np.array_equal(grid[2:10, 2 + 10 * k:10 + 10 * k], images[k, :, :, 0])


def test_slowflow_reports_statistics_and_gamma(checkpoint, tmp_path):
    out = tmp_path / "sf.csv"
    r = subprocess.run([CLI, "slowflow", "--checkpoint", checkpoint, "--n", "16", "--steps", "8", "--method", "euler",
                        "--csv", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 8 and float(rows[-1]["t"]) == 1.0
    gamma = [float(line.split(":")[-1]) for line in r.stdout.splitlines() if line.startswith("suggested gamma (endpoint")]
    assert len(gamma) == 1 and 0.0 <= gamma[0] <= 1.0 and r.stdout.strip().splitlines()[-1].startswith("advice: ")


def test_bad_arguments_fail_cleanly(checkpoint, tmp_path):
    r = subprocess.run([CLI, "sample", "--checkpoint", checkpoint, "--method", "leapfrog"], capture_output=True, text=True)
    assert r.returncode != 0 and "--method must be auto or one of" in r.stderr
    bad = tmp_path / "bad.mixflow"
    bad.write_bytes(b"not a checkpoint")
    r = subprocess.run([CLI, "sample", "--checkpoint", bad, "--npz", tmp_path / "x.npz"], capture_output=True, text=True)
    assert r.returncode != 0 and "bad magic" in r.stderr


def write_idx(path, array):
    import gzip
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def tiny_posttrain_setup(tmp_path):
    """A tiny SiT checkpoint after one step, 64 random IDX images; returns the posttrain command without --steps."""
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (64, 28, 28)))
    write_idx(data / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 64))
    m = mixflow.Model.create(None, depth=1, hidden=32, heads=2, patch=7, input_size=28, in_channels=1,
                             num_classes=10, learn_sigma=False)
    tr = mixflow.Trainer(m, mixflow.Transport(gamma=0.0, time_dist="uniform"), lr=1e-3, ema=0.5)
    tr.step(rng.standard_normal((4, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 4))
    tr.save(tmp_path / "base.mixflow")
    return [CLI, "posttrain", "--base", tmp_path / "base.mixflow", "--data", data, "--featnet", ROOT / "share" / "featnet",
            "--out", tmp_path / "out", "--batch", "4", "--eval-samples", "12", "--eval-steps", "3", "--eval-methods", "euler"]


def test_posttrain_runs_end_to_end_on_a_tiny_model(tmp_path):
    args = tiny_posttrain_setup(tmp_path) + ["--steps", "3"]
    out = tmp_path / "out"
    num_params = mixflow.Trainer.resume(tmp_path / "base.mixflow").ema_model().num_params
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("lower is better.")[1].split("\nwrote")[0]
    assert all(name in table for name in ("base", "standard", "mixflow"))
    # Progress bars go to stderr: stdout holds only results, so it can be piped.
    assert "elapsed" in r.stderr and "elapsed" not in r.stdout and "[#" not in r.stdout
    # gamma is the nearest-data suggest_gamma, printed with the other two definitions.
    used = [line for line in r.stdout.splitlines() if line.endswith("<- used")]
    assert len(used) == 1 and "nearest-data" in used[0]
    assert f"gamma = {used[0].split(': ')[1].split()[0]}" in r.stdout
    for f in ("mixflow.onnx", "base-samples.png", "standard-samples.png", "mixflow-samples.png", "slowflow-endpoint.csv",
              "slowflow-nearest-data.csv", "slowflow-noise-level.csv", "standard.mixflow", "mixflow.mixflow"):
        assert (out / f).exists(), f
    # The post-trained ONNX is a runnable model: it loads natively.
    assert mixflow.Model.from_onnx(out / "mixflow.onnx").num_params == num_params
    # Rerunning resumes from the checkpoints (no further steps) and reproduces the table.
    r2 = subprocess.run(args, capture_output=True, text=True)
    assert r2.returncode == 0 and r2.stdout.split("lower is better.")[1].split("\nwrote")[0] == table


def test_every_option_is_validated_before_any_work(tmp_path):
    """Bad values fail at once (nothing printed on stdout, no output folder), name the CLI option, show the
    subcommand's usage, and negative numbers parse as values."""
    args = tiny_posttrain_setup(tmp_path)
    for extra, message in ((["--eval-steps", "1"], "--eval-steps must be a comma-separated list of grid sizes in [2, 1000000], got 1"),
                           (["--gamma", "2"], "--gamma must be in [0, 1] or auto, got 2"),
                           (["--gamma", "-0.1"], "--gamma must be in [0, 1] or auto, got -0.1"),
                           (["--steps", "0"], "--steps must be in [1, 10000000], got 0"),
                           (["--lr", "-1e-4"], "--lr must be a finite number >= 0, got -0.0001"),
                           (["--ema", "1.5"], "--ema must be in [0.0, 1.0], got 1.5"),
                           (["--eval-methods", "euler,leapfrog"], "--eval-methods must be a comma-separated list of"),
                           (["--base", tmp_path / "missing.onnx"], "--base: cannot read")):
        r = subprocess.run(args + extra, capture_output=True, text=True)
        assert r.returncode != 0 and message in r.stderr, (extra, r.stderr)
        assert "Usage: mixflow posttrain" in r.stderr and r.stdout == "", (extra, r.stdout)
        assert not (tmp_path / "out").exists()
    base = ROOT / "models" / "fmnist-base" / "base.onnx"
    for extra, message in ((["--steps", "0"], "--steps must be in [1, 1000000], got 0"),
                           (["--scale", "-1.5", "--n", "-3"], "--n must be in [1, 2147483647], got -3"),
                           (["--guidance-interval", "0.5,0.1"], "--guidance-interval must be \"lo,hi\" with lo <= hi"),
                           (["--depth-to-space", "0"], "--depth-to-space must be in [1, 64], got 0")):
        r = subprocess.run([CLI, "sample", "--checkpoint", base, *extra], capture_output=True, text=True)
        assert r.returncode != 0 and message in r.stderr and "Usage: mixflow sample" in r.stderr, (extra, r.stderr)
    r = subprocess.run([CLI, "slowflow", "--checkpoint", base, "--coverage", "-0.5"], capture_output=True, text=True)
    assert r.returncode != 0 and "--coverage must be in (0, 1], got -0.5" in r.stderr and "Usage: mixflow slowflow" in r.stderr


def test_version_names_the_library_abi_and_gemm():
    header = (ROOT / "include" / "mixflow_types.h").read_text()
    version = header.split('#define MIXFLOW_VERSION_STRING "')[1].split('"')[0]
    abi = header.split("#define MIXFLOW_ABI_VERSION ")[1].split()[0]
    r = subprocess.run([CLI, "--version"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"mixflow {version} (ABI {abi})"
    assert any(l.startswith("gemm: ") for l in lines) and any(l.startswith("openblas: ") for l in lines)


def test_posttrain_ctrl_c_saves_and_a_rerun_resumes(tmp_path):
    import signal
    import time
    args = tiny_posttrain_setup(tmp_path) + ["--gamma", "0.1"]
    proc = subprocess.Popen(args + ["--steps", "1000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("base:")          # line-buffered: printed before training starts
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted during post-training" in out
    done = mixflow.Trainer.resume(tmp_path / "out" / "standard.mixflow").step_count
    assert 0 < done < 1000000
    assert mixflow.Trainer.resume(tmp_path / "out" / "mixflow.mixflow").step_count == 0
    # The rerun continues both runs from their checkpoints and finishes.
    r = subprocess.run(args + ["--steps", str(done + 2)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert mixflow.Trainer.resume(tmp_path / "out" / "standard.mixflow").step_count == done + 2
    assert mixflow.Trainer.resume(tmp_path / "out" / "mixflow.mixflow").step_count == done + 2


def test_posttrain_refuses_to_resume_another_configuration(tmp_path):
    args = tiny_posttrain_setup(tmp_path) + ["--steps", "2"]
    assert subprocess.run(args + ["--gamma", "0.1"], capture_output=True, text=True).returncode == 0
    r = subprocess.run(args + ["--gamma", "0.3"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "mixflow.mixflow is a run with gamma 0.1" in r.stderr and "use another --out" in r.stderr


def _value(stdout, prefix):
    line = next(l for l in stdout.splitlines() if l.startswith(prefix))
    return float(line.split(": ")[-1].split()[0])


def test_eval_matches_an_independent_computation_on_the_same_samples(tmp_path):
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from eval_reference import forward_numpy, frechet_sqrtm, kid_numpy, load_net, stats
    common = ["--checkpoint", ROOT / "models" / "fmnist-base" / "base.onnx", "--n", "200", "--method", "euler",
              "--steps", "4", "--seed", "3"]
    r = subprocess.run([CLI, "eval", *common, "--kid-subsets", "4", "--kid-subset-size", "50"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    fd, kid, acc = (_value(r.stdout, p) for p in ("FD (", "KID x 1e3", "class accuracy"))
    # The same samples and labels, written by `sample`, scored by numpy/scipy from the formulas.
    s = subprocess.run([CLI, "sample", *common, "--latents", tmp_path / "x.npy", "--save-labels", tmp_path / "y.npy"],
                       capture_output=True, text=True)
    assert s.returncode == 0, s.stderr
    x, y = np.load(tmp_path / "x.npy"), np.load(tmp_path / "y.npy")
    images = mixflow.to_uint8(x).astype(np.float32).reshape(200, -1) / 127.5 - 1      # the uint8 round trip
    feats, logits = forward_numpy(load_net(ROOT / "share" / "featnet" / "fmnist-cnn.mxfnet"), images)
    ref_mean, ref_cov, _ = mixflow.load_reference_stats()
    assert fd == pytest.approx(frechet_sqrtm(*stats(feats), ref_mean, ref_cov), rel=1e-3)
    assert acc == pytest.approx(np.mean(logits.argmax(1) == y), abs=1e-4)
    real = mixflow.FeatureNet().features(mixflow.fashion_mnist("test")[0].reshape(10000, -1)).astype(np.float64)
    rms = np.sqrt(np.mean(real ** 2))
    assert kid == pytest.approx(1e3 * kid_numpy(feats / rms, real / rms, 4, 50, 3)[0], rel=1e-3, abs=2e-3)


def test_eval_rejects_bad_input():
    base = ROOT / "models" / "fmnist-base" / "base.onnx"
    for extra, message in ((["--kid-subset-size", "1"], "--kid-subset-size must be in [2, 8], got 1"),
                           (["--kid-subsets", "0"], "--kid-subsets must be in [1, 100000], got 0"),
                           (["--data", "/nonexistent"], "--data: cannot read /nonexistent/t10k-images-idx3-ubyte.gz")):
        r = subprocess.run([CLI, "eval", "--checkpoint", base, "--n", "8", "--steps", "3", *extra], capture_output=True, text=True)
        assert r.returncode != 0 and message in r.stderr, (extra, r.stderr)


def test_slowflow_reference_option(tmp_path):
    base = ROOT / "models" / "fmnist-base" / "base.onnx"
    common = [CLI, "slowflow", "--checkpoint", base, "--n", "16", "--steps", "5", "--method", "euler"]
    rows = {}
    for ref in ("endpoint", "nearest-data", "noise-level"):
        r = subprocess.run(common + ["--reference", ref, "--data-points", "500", "--csv", tmp_path / f"{ref}.csv"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert f"suggested gamma ({ref}, coverage 0.95)" in r.stdout
        rows[ref] = np.loadtxt(tmp_path / f"{ref}.csv", delimiter=",", skiprows=1)
    # Same trajectory, different ground truths: the endpoint definition ends exactly on time, nearest-data does not.
    assert rows["endpoint"][-1, 4] == pytest.approx(1.0) and rows["nearest-data"][-1, 4] < 0.99
    bad = subprocess.run(common + ["--reference", "nearest"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--reference must be endpoint, nearest-data or noise-level" in bad.stderr


@pytest.mark.parametrize("base", ["fmnist-base/base.onnx", "fmnist-lagging/small-1k.onnx"])
def test_slowflow_advice_rests_on_the_endpoint_lag(base):
    """Whatever --reference shows, the advice is the endpoint lag of the same trajectories; checked against the
    library's slow_flow_lag of the same base sampled in Python (other noise, so within sampling error), on the
    shipped base (runs ahead, near the data: MixFlow expected to hurt) and the shipped lagging one (expected to help)."""
    import re
    base = ROOT / "models" / base
    r = subprocess.run([CLI, "slowflow", "--checkpoint", base, "--n", "64", "--steps", "10", "--method", "euler",
                        "--reference", "nearest-data", "--data-points", "500"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    advice = [line for line in r.stdout.splitlines() if line.startswith("advice:")]
    assert len(advice) == 1
    pct, median = re.search(r"(\d+) % of \(sample, t\) pairs slowed, median m/t ([0-9.]+)", advice[0]).groups()
    model = mixflow.Model.from_onnx(base)
    noise = np.random.default_rng(3).standard_normal((64, 1, 28, 28)).astype(np.float32)
    sf = mixflow.slow_flow(lambda x, t, y: model.forward(x, t, y), noise, steps=10, method="euler", reference="endpoint",
                           y=np.arange(64) % 10, null_class=10)
    lag = mixflow.slow_flow_lag(sf)
    assert abs(int(pct) / 100 - lag.slowed) < 0.12 and abs(float(median) - lag.median_ratio) < 0.02
    gamma = float(r.stdout.split("suggested gamma (nearest-data, coverage 0.95): ")[1].split()[0])
    assert f"nearest-data suggest_gamma {gamma:.2f}" in advice[0]
    helps = mixflow.slow_flow_outlook(lag, gamma)
    # The advice's nearest-data gamma is the 95 %-coverage one the rule was measured with, whatever --coverage says.
    r50 = subprocess.run([CLI, "slowflow", "--checkpoint", base, "--n", "64", "--steps", "10", "--method", "euler",
                          "--reference", "nearest-data", "--data-points", "500", "--coverage", "0.5"], capture_output=True, text=True)
    assert r50.returncode == 0 and [line for line in r50.stdout.splitlines() if line.startswith("advice:")] == advice
    assert helps == ("fmnist-lagging" in str(base))   # the shipped base runs ahead and sits near the data
    assert ("MixFlow is expected to help" in advice[0]) == helps and ("MixFlow is expected to hurt" in advice[0]) == (not helps)
    # Without the nearest-data measurement a path that does not lag leaves the question open.
    r = subprocess.run([CLI, "slowflow", "--checkpoint", base, "--n", "16", "--steps", "5", "--method", "euler"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and ("measure with --reference nearest-data" in r.stdout) == (not lag.lags)


@pytest.mark.parametrize("velocity", [0.0, 0.5, 2.0])
def test_slowflow_advice_on_constant_velocity_fields(tmp_path, velocity):
    """A SiT whose weights are zero except the final bias outputs the constant velocity c. Its Euler path from x0
    is x0 + t*c, which is exactly the interpolation at m = t between x0 and its endpoint x0 + c: for c != 0 the
    path does not lag (no pair slowed, median m/t 1) and the samples sit far from the data (pixels in [-1, 1]
    shifted by c), so the advice is "undecided", with the threshold of slow_flow_outlook_rule; for c = 0 the
    samples never leave the noise (m = 0 everywhere): the path lags and MixFlow is "expected to help"."""
    import re
    m = mixflow.Model.create(None, depth=1, hidden=32, heads=2, patch=7, input_size=28, in_channels=1, num_classes=10)
    state = {k: np.zeros_like(v) for k, v in m.state_dict().items()}
    state["final_layer.linear.bias"][:] = velocity
    m.load_state_dict(state)
    m.save_onnx(tmp_path / "constant.onnx")
    r = subprocess.run([CLI, "slowflow", "--checkpoint", tmp_path / "constant.onnx", "--n", "32", "--steps", "10",
                        "--method", "euler", "--reference", "nearest-data", "--data-points", "500"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    advice = [line for line in r.stdout.splitlines() if line.startswith("advice:")]
    assert len(advice) == 1
    pct, median = re.search(r"(\d+) % of \(sample, t\) pairs slowed, median m/t ([0-9.]+)", advice[0]).groups()
    gamma = float(r.stdout.split("suggested gamma (nearest-data, coverage 0.95): ")[1].split()[0])
    rule = mixflow.slow_flow_outlook_rule()
    if velocity == 0:
        assert (pct, median) == ("100", "0.000")
        assert advice[0].startswith("advice: MixFlow is expected to help")
        lo, hi = rule.helpful_gamma
        assert f"gamma {lo:.1f}-{hi:.1f}" in advice[0]
    else:
        assert (pct, median) == ("0", "1.000") and gamma >= rule.far_from_data
        assert mixflow.slow_flow_outlook(mixflow.slowflow.Lag(0.0, 1.0, False), gamma) is None
        assert advice[0].startswith("advice: undecided: the path does not lag but the samples sit far from the data")
        assert f"nearest-data suggest_gamma {gamma:.2f}, at least {rule.far_from_data:.1f}" in advice[0]


# ---- RAE sampling of a DiT^DH: RAE grid, equal labels, autoguidance, depth-to-space, converted checkpoints ----

@pytest.fixture(scope="module")
def ditdh_checkpoint(tmp_path_factory):
    """Two tiny DiT^DH trainer checkpoints (main and a weaker guide) on a 16x2x2 latent, MixFlow-RAE preset."""
    folder = tmp_path_factory.mktemp("cli-rae")
    rng = np.random.default_rng(0)
    paths = []
    for name, seed, steps in (("main", 0, 3), ("guide", 1, 1)):
        m = mixflow.Model.create("DiTDH", depth=1, hidden=16, heads=2, head_depth=1, head_hidden=24, head_heads=2,
                                 input_size=2, in_channels=16, num_classes=3, seed=seed)
        tr = mixflow.Trainer(m, mixflow.Transport.preset("rae", latent_shape=(16, 2, 2)), preset="rae", lr=1e-2,
                             final_lr=1e-2, ema=0.5)
        for _ in range(steps):
            tr.step(rng.standard_normal((8, 16, 2, 2)).astype(np.float32), rng.integers(0, 3, 8))
        paths.append(folder / f"{name}.mixflow")
        tr.save(paths[-1])
    return paths


def run_cli(*args):
    r = subprocess.run([CLI, "sample", *map(str, args)], capture_output=True, text=True)
    return r


def line(stdout, prefix):
    return next(s for s in stdout.splitlines() if s.startswith(prefix))


def test_ditdh_samples_on_the_rae_grid_with_equal_labels(ditdh_checkpoint, tmp_path):
    main, _ = ditdh_checkpoint
    r = run_cli("--checkpoint", main, "--n", 7, "--npz", tmp_path / "a.npz",     # labels: auto = equal for RAE
                "--latents", tmp_path / "z.npy", "--save-labels", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    # The checkpoint's transport (rae convention, shift 1 for 64 floats) picks RAE's grid and Euler.
    assert "rae convention, shift 1.0000 (checkpoint)" in line(r.stdout, "transport:")
    assert line(r.stdout, "grid:") == "grid: rae, 50 points (49 steps) from t = 1.000000 to 0.001000, method euler"
    assert line(r.stdout, "NFE:") == "NFE: 49"
    assert line(r.stdout, "labels:").startswith("labels: equal, ")
    counts = [int(c) for c in line(r.stdout, "labels:").split(":")[-1].split()]
    assert sorted(counts) == [2, 2, 3] and sum(counts) == 7          # floor(7/3) or + 1 per class
    assert np.load(tmp_path / "a.npz")["arr_0"].shape == (7, 2, 2, 16)
    # The raw float32 latents and the labels: the .npz is their uint8 image under RAE's rule clamp(x, 0, 1)·255.
    z, y = np.load(tmp_path / "z.npy"), np.load(tmp_path / "y.npy")
    assert z.dtype == np.float32 and z.shape == (7, 16, 2, 2) and y.dtype == np.int32
    assert np.array_equal(np.bincount(y, minlength=3), counts)
    assert np.array_equal(mixflow.to_uint8(z, "rae"), np.load(tmp_path / "a.npz")["arr_0"])
    # Random labels: seeded (two runs agree), and a new seed changes them.
    runs = [run_cli("--checkpoint", main, "--n", 30, "--label-sampling", "random", "--seed", s, "--steps", 3) for s in (5, 5, 6)]
    assert all(x.returncode == 0 for x in runs), runs[0].stderr
    labels = [line(x.stdout, "labels:") for x in runs]
    assert labels[0] == labels[1] != labels[2]


def test_autoguidance_with_the_main_model_as_guide_is_unguided_sampling(ditdh_checkpoint, tmp_path):
    main, guide = ditdh_checkpoint
    base = ["--checkpoint", main, "--n", 5, "--steps", 6, "--label-sampling", "equal"]
    r = run_cli(*base, "--npz", tmp_path / "plain.npz")
    assert r.returncode == 0, r.stderr
    for scale in ("1.42", "3.5", "-1"):
        r = run_cli(*base, "--guidance", "auto", f"--scale={scale}", "--guide-checkpoint", main, "--npz", tmp_path / "self.npz")
        assert r.returncode == 0, r.stderr
        assert line(r.stdout, "guidance:").startswith("guidance: auto")
        assert np.array_equal(np.load(tmp_path / "self.npz")["arr_0"], np.load(tmp_path / "plain.npz")["arr_0"])
    # A real (different) guide changes the samples; --guide-checkpoint alone selects autoguidance.
    r = run_cli(*base, "--scale", "1.42", "--guide-checkpoint", guide, "--npz", tmp_path / "ag.npz")
    assert r.returncode == 0, r.stderr
    assert line(r.stdout, "guidance:").startswith("guidance: auto") and "scale 1.42" in r.stdout
    assert not np.array_equal(np.load(tmp_path / "ag.npz")["arr_0"], np.load(tmp_path / "plain.npz")["arr_0"])
    # CFG with a guidance interval runs too (null class = num_classes).
    r = run_cli(*base, "--guidance", "cfg", "--scale", "2", "--guidance-interval", "0.2,0.8")
    assert r.returncode == 0 and "guidance: cfg, scale 2.0, interval [0.2, 0.8]" in r.stdout, r.stderr


def test_depth_to_space_is_pytorchs_pixel_shuffle(ditdh_checkpoint, tmp_path):
    main, _ = ditdh_checkpoint
    args = ["--checkpoint", main, "--n", 4, "--steps", 4]
    r1 = run_cli(*args, "--npz", tmp_path / "latent.npz")
    r2 = run_cli(*args, "--npz", tmp_path / "pixels.npz", "--depth-to-space", 4, "--grid", tmp_path / "g.png")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    latent = np.load(tmp_path / "latent.npz")["arr_0"].transpose(0, 3, 1, 2)          # NHWC -> NCHW [4, 16, 2, 2]
    pixels = np.load(tmp_path / "pixels.npz")["arr_0"]
    assert pixels.shape == (4, 8, 8, 1)
    assert np.array_equal(pixels[..., 0], mixflow.pixel_shuffle(latent, 4)[:, 0])
    assert read_png(tmp_path / "g.png").shape == (2 + 10, 2 + 4 * 10)


def test_converted_ditdh_without_transport_metadata_gets_the_rae_recipe(ditdh_checkpoint, tmp_path):
    main, _ = ditdh_checkpoint
    onnx = tmp_path / "dit.onnx"
    mixflow.Trainer.resume(main).ema_model().save_onnx(onnx, graph=False)    # like python -m mixflow.convert: no transport.*
    r = run_cli("--checkpoint", onnx, "--n", 2, "--steps", 50, "--time-shift", 6.928203)
    assert r.returncode == 0, r.stderr
    assert "rae convention" in r.stdout and "assumed: RAE preset for a DiT^DH" in r.stdout
    # RAE's 256 px grid: shifted(0.001) = 0.006887 (docs/exactness.md §4.1).
    assert line(r.stdout, "grid:") == "grid: rae, 50 points (49 steps) from t = 1.000000 to 0.006887, method euler"


def test_sit_sampling_keeps_its_defaults(checkpoint):
    r = run_cli("--checkpoint", checkpoint, "--n", 3, "--steps", 5)
    assert r.returncode == 0, r.stderr
    assert line(r.stdout, "grid:") == "grid: sit, 5 points (4 steps) from t = 0.000000 to 1.000000, method heun"
    assert line(r.stdout, "labels:") == "labels: cycle, per-class counts: 1 1 1"
    assert line(r.stdout, "NFE:") == "NFE: 8"


@pytest.mark.parametrize("args, message", [
    (["--guidance", "auto"], "--guidance auto needs --guide-checkpoint"),
    (["--label-sampling", "uniform"], "--label-sampling must be auto, cycle, random or equal, got uniform"),
    (["--guidance", "classifier"], "--guidance must be none, cfg or auto, got classifier"),
    (["--guidance-interval", "0.5"], "--guidance-interval must be \"lo,hi\" with lo <= hi, got 0.5"),
    (["--convention", "ddpm"], "--convention must be auto, sit, rae or repa, got ddpm"),
    (["--time-shift", "0.5"], "--time-shift must be >= 1, got 0.5"),
    (["--depth-to-space", "3", "--npz", "/tmp/never.npz"], "--depth-to-space 3 needs channels divisible by 9, the model has 16"),
    (["--guidance", "none", "--guide-checkpoint", "x.mixflow"], "--guide-checkpoint is only used with --guidance auto"),
])
def test_bad_rae_sampling_arguments_fail_cleanly(ditdh_checkpoint, args, message):
    r = run_cli("--checkpoint", ditdh_checkpoint[0], "--n", 2, "--steps", 3, *args)
    assert r.returncode != 0 and message in r.stderr, r.stderr


def test_rae_sampling_does_not_depend_on_the_thread_count(ditdh_checkpoint, tmp_path):
    main, guide = ditdh_checkpoint
    out = []
    for threads in (1, 2):
        path = tmp_path / f"z{threads}.npy"
        r = run_cli("--checkpoint", main, "--guide-checkpoint", guide, "--scale", "1.42", "--n", 5, "--steps", 8,
                    "--label-sampling", "equal", "--threads", threads, "--latents", path)
        assert r.returncode == 0, r.stderr
        out.append(np.load(path))
    assert np.array_equal(out[0], out[1])
