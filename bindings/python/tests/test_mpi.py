"""Data parallelism on MPI (Open MPI on loopback, oversubscribed, as root in CI): the `mixflow` CLI, the C example
and the Python example under `mpirun -n 2` and `-n 3` (an uneven split) give bit-identical replicas and the
single-process result up to float summation order; samples split across ranks are byte-identical to one
process's; a failing rank ends the job with a message instead of hanging; libmixflow.so never needs MPI.
About two minutes on 2 busy cores."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mixflow
from test_cli import CLI, ROOT, tiny_posttrain_setup

MPIRUN = shutil.which("mpirun")
pytestmark = [pytest.mark.skipif(MPIRUN is None, reason="Open MPI is not installed (scripts/install-deps.sh)"),
              pytest.mark.skipif(not CLI.exists(), reason="build with `swift build -c release` first")]
LIBRARY = ROOT / ".build" / "release" / "libmixflow.so"
# Root is allowed (CI), more ranks than cores, shared memory between ranks and loopback for the launcher only.
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1",
           "OMPI_MCA_btl": "self,vader", "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
           "OMPI_MCA_oob_tcp_if_include": "lo"}
TIMEOUT = 240   # every job ends well before this; a hang fails the test instead of blocking CI


def mpirun(n, *args, **kwargs):
    return subprocess.run([MPIRUN, "-n", str(n), *map(str, args)], env=os.environ | MPI_ENV, capture_output=True,
                          text=True, timeout=TIMEOUT, **kwargs)


def single(*args):
    """The same program in one process, without a launcher."""
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=TIMEOUT)


def weights(path):
    t = mixflow.Trainer.resume(path)
    return t.step_count, np.concatenate([v.ravel() for v in t.model.state_dict().values()])


def assert_same_training(path, reference):
    """Same step and the same weights up to summation order: every weight within 1e-5 of the largest one.
    (A per-entry relative test would be wrong: AdamW divides each entry by its own gradient magnitude, which
    magnifies rounding where a gradient is near zero.)"""
    (step, w), (ref_step, ref) = weights(path), weights(reference)
    assert step == ref_step
    assert np.abs(w - ref).max() <= 1e-5 * np.abs(ref).max(), np.abs(w - ref).max() / np.abs(ref).max()


def test_libmixflow_and_the_cli_have_no_mpi_dependency():
    for binary in (LIBRARY, CLI):
        needed = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
        assert "NEEDED" in needed and "mpi" not in needed.lower(), binary
        assert "mpi" not in subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    # Without a launcher the CLI never loads MPI (an unloadable library is not noticed) ...
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI"))} | {"MIXFLOW_MPI_LIB": "/nonexistent/libmpi.so"}
    r = subprocess.run([CLI, "sample", "--checkpoint", ROOT / "models/fmnist-base/base.onnx", "--n", "2", "--steps", "2"],
                       env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    # ... and under a launcher it says why it cannot run instead of training alone.
    r = subprocess.run([CLI, "sample", "--checkpoint", ROOT / "models/fmnist-base/base.onnx", "--n", "2"],
                       env=env | {"OMPI_COMM_WORLD_SIZE": "2"}, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode != 0 and "/nonexistent/libmpi.so (Open MPI) cannot be loaded" in r.stderr


@pytest.fixture(scope="module")
def posttrain(tmp_path_factory):
    """The tiny posttrain setup (batch 8), and its single-process result after 4 steps of both runs."""
    tmp = tmp_path_factory.mktemp("posttrain")
    args = tiny_posttrain_setup(tmp)[1:]      # without the CLI; a repeated option's last value wins
    command = lambda out, steps: [*args, "--out", out, "--batch", 8, "--gamma", 0.1, "--steps", steps]  # noqa: E731
    r = single(CLI, *command(tmp / "one", 4))
    assert r.returncode == 0, r.stderr
    return tmp, command


@pytest.mark.parametrize("ranks", [2, 3])
def test_cli_posttrain_matches_one_process(posttrain, ranks):
    tmp, command = posttrain
    out = tmp / f"ranks{ranks}"
    r = mpirun(ranks, CLI, *command(out, 4))
    assert r.returncode == 0, r.stderr
    assert f"{ranks} ranks x" in r.stdout and r.stdout.count("FD (Fashion-MNIST") == 1   # rank 0 prints, once
    for run in ("standard", "mixflow"):
        assert_same_training(out / f"{run}.mixflow", tmp / "one" / f"{run}.mixflow")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp / "one").iterdir())


def test_cli_posttrain_resumed_with_another_rank_count(posttrain):
    tmp, command = posttrain
    out = tmp / "resumed"
    assert mpirun(2, CLI, *command(out, 2)).returncode == 0
    assert weights(out / "mixflow.mixflow")[0] == 2
    r = mpirun(3, CLI, *command(out, 4))
    assert r.returncode == 0, r.stderr
    for run in ("standard", "mixflow"):
        assert_same_training(out / f"{run}.mixflow", tmp / "one" / f"{run}.mixflow")


def test_cli_ranks_that_do_not_hold_the_same_weights_stop(posttrain, tmp_path):
    """Rank 1 starts from another base model: the replica check refuses to train two different models."""
    tmp, command = posttrain
    m = mixflow.Model.create(None, depth=1, hidden=32, heads=2, patch=7, input_size=28, in_channels=1, num_classes=10,
                             learn_sigma=False, seed=1)     # the base's architecture, other weights
    mixflow.Trainer(m, mixflow.Transport(gamma=0.0, time_dist="uniform"), lr=1e-3, ema=0.5).save(tmp_path / "other.mixflow")
    args = command(tmp_path / "out", 2)
    args_other = [tmp_path / "other.mixflow" if str(a) == str(tmp / "base.mixflow") else a for a in args]
    r = mpirun(1, CLI, *args, ":", "-n", 1, CLI, *args_other)
    assert r.returncode != 0
    assert "ranks disagree on the starting step and weights" in r.stderr


def test_cli_sigterm_on_one_rank_saves_once_and_stops_every_rank(posttrain, tmp_path):
    tmp, command = posttrain
    out = tmp_path / "out"
    proc = subprocess.Popen([MPIRUN, "-n", "2", CLI, *map(str, command(out, 1000000))], env=os.environ | MPI_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("base:")
    time.sleep(1.0)
    ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(ranks) == 2
    os.kill(int(ranks[1]), signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, stderr
    assert "interrupted during post-training" in stdout
    done = weights(out / "standard.mixflow")[0]
    assert 0 < done < 1000000 and weights(out / "mixflow.mixflow")[0] == 0
    r = mpirun(3, CLI, *command(out, done + 2))
    assert r.returncode == 0, r.stderr
    assert weights(out / "standard.mixflow")[0] == weights(out / "mixflow.mixflow")[0] == done + 2


def test_cli_ctrl_c_on_mpirun_saves_and_stops(posttrain, tmp_path):
    """mpirun turns Ctrl-C into SIGTERM for every rank and SIGKILLs them odls_base_sigkill_timeout seconds later
    (default 1; mpirun then waits about twice that even when the ranks exit sooner)."""
    tmp, command = posttrain
    out = tmp_path / "out"
    proc = subprocess.Popen([MPIRUN, "-n", "2", CLI, *map(str, command(out, 1000000))],
                            env=os.environ | MPI_ENV | {"OMPI_MCA_odls_base_sigkill_timeout": "5"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("base:")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode != 0 and "interrupted during post-training" in stdout, stderr
    assert weights(out / "standard.mixflow")[0] > 0 and weights(out / "mixflow.mixflow")[0] == 0


@pytest.mark.parametrize("ranks", [2, 3])
def test_cli_sample_split_across_ranks_is_byte_identical(tmp_path, ranks):
    base = ROOT / "models" / "fmnist-base" / "base.onnx"
    outputs = {}
    for name, run in (("one", single), ("split", lambda *a: mpirun(ranks, *a))):
        (tmp_path / name).mkdir()
        files = [tmp_path / name / f"samples.{ext}" for ext in ("npz", "npy", "labels.npy", "png")]
        r = run(CLI, "sample", "--checkpoint", base, "--n", "11", "--steps", "4", "--method", "heun", "--scale", "1.5",
                "--label-sampling", "random", "--npz", files[0], "--latents", files[1], "--save-labels", files[2],
                "--grid", files[3])
        assert r.returncode == 0, r.stderr
        outputs[name] = (r.stdout.replace(str(tmp_path / name), "DIR"), [f.read_bytes() for f in files])
    assert outputs["split"] == outputs["one"]


def test_cli_eval_split_across_ranks_scores_the_same_samples():
    args = ["eval", "--checkpoint", ROOT / "models" / "fmnist-base" / "base.onnx", "--n", "40", "--steps", "3",
            "--method", "euler", "--kid-subsets", "3", "--kid-subset-size", "20"]
    one, split = single(CLI, *args), mpirun(2, CLI, *args)
    assert one.returncode == 0 and split.returncode == 0, split.stderr
    assert split.stdout == one.stdout


def test_a_bad_file_on_one_rank_ends_the_job_with_a_message(tmp_path):
    bad = tmp_path / "bad.mixflow"
    bad.write_bytes(b"not a checkpoint")
    good = ROOT / "models" / "fmnist-base" / "base.onnx"
    r = mpirun(1, CLI, "sample", "--checkpoint", good, "--n", "8", ":", "-n", 1, CLI, "sample", "--checkpoint", bad, "--n", "8")
    assert r.returncode != 0
    assert "mixflow (rank 1 of 2)" in r.stderr and "bad magic" in r.stderr


def test_a_killed_rank_ends_the_job(posttrain, tmp_path):
    tmp, command = posttrain
    proc = subprocess.Popen([MPIRUN, "-n", "2", CLI, *map(str, command(tmp_path / "out", 1000000))],
                            env=os.environ | MPI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("base:")
    time.sleep(1.0)
    os.kill(int(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()[1]),
            signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT)
    assert proc.returncode not in (0, None)


@pytest.fixture(scope="module")
def c_example(tmp_path_factory):
    """examples/c/posttrain_mpi built with mpicc, and its single-process run (a small SiT from scratch, 4 steps)."""
    r = subprocess.run(["make", "-C", ROOT / "examples" / "c", "mpi"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    binary, tmp = ROOT / "examples" / "c" / "build" / "posttrain_mpi", tmp_path_factory.mktemp("c")
    r = single(binary, tmp / "one.mixflow", 4, "-")
    assert r.returncode == 0, r.stderr
    return binary, tmp


@pytest.mark.parametrize("ranks", [2, 3])
def test_c_example_matches_one_process(c_example, ranks):
    binary, tmp = c_example
    r = mpirun(ranks, binary, tmp / f"ranks{ranks}.mixflow", 4, "-")
    assert r.returncode == 0, r.stderr
    assert "replicas bit-identical: yes" in r.stdout
    assert_same_training(tmp / f"ranks{ranks}.mixflow", tmp / "one.mixflow")


def test_c_example_resumed_with_another_rank_count(c_example):
    binary, tmp = c_example
    assert mpirun(2, binary, tmp / "resumed.mixflow", 2, "-").returncode == 0
    r = mpirun(3, binary, tmp / "resumed.mixflow", 4, "-")
    assert r.returncode == 0 and "from step 2 to 4" in r.stdout, r.stderr
    assert_same_training(tmp / "resumed.mixflow", tmp / "one.mixflow")


@pytest.mark.parametrize("ranks", [2, 3])
def test_python_example_on_mpi4py(ranks):
    pytest.importorskip("mpi4py")
    r = mpirun(ranks, sys.executable, ROOT / "examples" / "python" / "data_parallel.py", 3)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "replicas bit-identical: True" in r.stdout


def test_python_example_resumed_with_another_rank_count(tmp_path):
    pytest.importorskip("mpi4py")
    example, checkpoint = ROOT / "examples" / "python" / "data_parallel.py", tmp_path / "dp.mixflow"
    assert mpirun(2, sys.executable, example, 2, checkpoint).returncode == 0
    assert mixflow.Trainer.resume(checkpoint).step_count == 2
    r = mpirun(3, sys.executable, example, 4, checkpoint)   # continues to step 4; checks against one process from 0
    assert r.returncode == 0, r.stdout + r.stderr
    assert mixflow.Trainer.resume(checkpoint).step_count == 4
