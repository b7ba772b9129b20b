"""The kill test: SIGKILLs, at random moments, a process that saves in a loop, and checks after every kill
that what is on disk either loads as one complete save or is refused with the library's error, and that
temporaries and data files of earlier saves do not accumulate. Three writers:
  checkpoint  Trainer.save of a tiny SiT (one file)
  onnx        Model.save_onnx with external data (a model and its data file)
  convert     python -m mixflow.convert .npz -> .onnx with external data (the converter's path)
Each save of the loop writes different weights (a save counter k in them and in the metadata), so a file
from one save and a data file from another cannot pass for one save.
    python3 scripts/kill-test.py [--kills 12] [--seed S]          (CI: ~60 s)"""
import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bindings" / "python"))
import mixflow  # noqa: E402
from mixflow import convert  # noqa: E402
from mixflow.tensorfile import TensorFile  # noqa: E402

TINY = dict(depth=1, hidden=32, heads=2, patch=4, input_size=8, in_channels=1, num_classes=3, learn_sigma=False)

# Each child saves forever, printing "saved k" after save k is complete.
CHILDREN = {
    "checkpoint": """
import sys, numpy as np, mixflow
m = mixflow.Model.create(None, seed=0, num_threads=1, **TINY)
tr = mixflow.Trainer(m, mixflow.Transport(gamma=0.5), lr=1e-3, ema=0.9, num_threads=1)
rng = np.random.default_rng(0)
for k in range(1 << 30):
    tr.step(rng.standard_normal((2, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 2))
    tr.save(PATH)
    print("saved", tr.step, flush=True)
""",
    "onnx": """
import numpy as np, mixflow
m = mixflow.Model.create(None, seed=0, num_threads=1, **TINY)
names = list(m.state_dict())
for k in range(1 << 30):
    m.load_state_dict({n: np.full(v.shape, k + i / 1000, np.float32) for i, (n, v) in enumerate(m.state_dict().items())})
    m.save_onnx(PATH, graph=True, external_threshold=64, metadata={"k": str(k)})
    print("saved", k, flush=True)
""",
    "convert": """
import os, numpy as np
from mixflow import convert
rng = np.random.default_rng(0)
shapes = [(64, 64), (128,), (32, 16, 3)]
for k in range(1 << 30):
    src = PATH + ".src-%d.npz" % (k % 2)
    np.savez(src, **{"t%d" % i: np.full(s, k + i / 1000, np.float32) for i, s in enumerate(shapes)}, k=np.array(k))
    convert.convert(src, PATH, external_threshold=64)
    print("saved", k, flush=True)
""",
}


def expected_ok(kind, path):
    """'ok' when the file loads as one complete save, 'refused' when the library refuses it."""
    try:
        if kind == "checkpoint":
            mixflow.Trainer.resume(path, num_threads=1)  # the checkpoint's hash covers every byte
            return "ok"
        if kind == "onnx":
            m = mixflow.Model.from_onnx(path, num_threads=1)
            k = int(TensorFile(path).metadata()["k"])
            for i, (n, v) in enumerate(m.state_dict().items()):
                if not np.array_equal(v, np.full(v.shape, k + i / 1000, np.float32)):
                    return "MIXED: %s of save %d holds other values" % (n, k)
            return "ok"
        tensors, _ = convert.read_onnx(path)
        k = int(tensors["k"])
        for i in range(3):
            if not (tensors["t%d" % i] == np.float32(k + i / 1000)).all():
                return "MIXED: t%d of save %d holds other values" % (i, k)
        return "ok"
    except mixflow.errors.MixflowError as e:
        return "refused (%s)" % str(e).splitlines()[0][:80]


def run(kind, kills, rng, folder):
    path = str(folder / ("x.mixflow" if kind == "checkpoint" else "x.onnx"))
    code = "TINY = %r\nPATH = %r\n" % (TINY, path) + CHILDREN[kind]
    outcomes, strays = {"ok": 0, "refused": 0}, 0
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python"), OPENBLAS_NUM_THREADS="1")
    done = 0
    while done < kills:
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = child.stdout.readline()  # one complete save exists from here on
        if not first.startswith("saved"):
            child.kill()
            raise SystemExit("%s child failed: %s" % (kind, child.stderr.read()[-2000:]))
        t0 = time.monotonic()
        child.stdout.readline()
        per_save = time.monotonic() - t0
        time.sleep(rng.uniform(0, 2 * per_save))  # a random moment within the next saves
        child.send_signal(signal.SIGKILL)
        child.wait()
        done += 1
        result = expected_ok(kind, path)
        if result.startswith("MIXED"):
            raise SystemExit("%s kill %d: %s" % (kind, done, result))
        outcomes["ok" if result == "ok" else "refused"] += 1
        strays = max(strays, len([n for n in os.listdir(folder) if ".tmp-" in n]))
        if strays > 2:
            raise SystemExit("%s kill %d: temporaries accumulate: %s" % (kind, done, sorted(os.listdir(folder))))
    # One more complete save: what the kills left is gone.
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    child.stdout.readline()
    child.send_signal(signal.SIGSTOP)  # between saves is not guaranteed: read the listing of a stopped writer
    names = sorted(n for n in os.listdir(folder) if ".src-" not in n)
    child.kill()
    child.wait()
    stray = [n for n in names if ".tmp-" in n]
    data = [n for n in names if n.endswith(".data")]
    if len(stray) > 1 or len(data) > 2:
        raise SystemExit("%s: after a clean save the folder still holds %s" % (kind, names))
    return outcomes, strays, names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=12)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--only", choices=sorted(CHILDREN))
    a = p.parse_args(argv)
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    for kind in [a.only] if a.only else ["checkpoint", "onnx", "convert"]:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.monotonic()
            outcomes, strays, names = run(kind, a.kills, rng, Path(tmp))
            print("kill test %-10s: %d kills (seed %d): %d loaded as one complete save, %d refused, never mixed; "
                  "at most %d temporaries at once; %.0f s" % (kind, a.kills, seed, outcomes["ok"], outcomes["refused"],
                                                               strays, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
