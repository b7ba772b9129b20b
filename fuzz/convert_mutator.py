"""A bounded mutation fuzzer for `python -m mixflow.convert`'s readers (.pt zip and legacy, .safetensors,
.npz): mutates seed files (byte flips, interesting integers, insertions, deletions, truncation, splices)
and converts each mutant in-process. A finding is any exception other than the converter's own errors
(CheckpointFormatError, UnsafeCheckpointError, ValueError with a message) escaping `convert.main`, a run
slower than --timeout seconds, or a MemoryError under the address-space limit (--rss-limit-mb): the
mutant and its traceback are saved under --artifacts.

    python3 fuzz/convert_mutator.py --seconds 60 --artifacts .build/fuzz/convert-artifacts
"""
import argparse
import collections
import contextlib
import io
import json
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("MIXFLOW_PYTHON", str(ROOT / "bindings" / "python")))  # (another checkout: before/after)
from mixflow import convert, torchfile  # noqa: E402

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 31, 1 << 62,
               (1 << 63) - 1, 374869873, 4096, 65536, 1 << 40]


def seeds(tmp):
    """The torch fixtures, plus safetensors and npz made from one of them (through the converter itself)."""
    fix = ROOT / "bindings" / "python" / "tests" / "fixtures" / "torch"
    out = [(p.suffix, p.read_bytes()) for p in sorted(fix.glob("*.pt")) if p.name != "malicious.pt"]
    for suffix in (".safetensors", ".npz"):
        dst = Path(tmp) / ("seed" + suffix)
        convert.convert(fix / "dtypes_views.pt", dst)
        out.append((suffix, dst.read_bytes()))
    tensors = collections.OrderedDict(w=np.arange(12, dtype=np.float32).reshape(3, 4), i=np.arange(3))
    buf = io.BytesIO()
    np.savez_compressed(buf, **tensors)
    out.append((".npz", buf.getvalue()))
    return out


def mutate(data, rng, pool):
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(7)
        pos = rng.randrange(len(b)) if b else 0
        if kind == 0 and b:                       # bit flip
            b[pos] ^= 1 << rng.randrange(8)
        elif kind == 1 and b:                     # interesting byte
            b[pos] = rng.choice([0, 1, 0x7F, 0x80, 0xFF])
        elif kind == 2 and len(b) >= 8:           # interesting integer, 1/2/4/8 bytes, either endianness
            width = rng.choice([1, 2, 4, 8])
            pos = rng.randrange(len(b) - width + 1)
            v = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            b[pos:pos + width] = v.to_bytes(width, rng.choice(["little", "big"]))
        elif kind == 3:                           # insert random bytes
            b[pos:pos] = os.urandom(rng.randint(1, 16))
        elif kind == 4 and b:                     # delete a range
            del b[pos:pos + rng.randint(1, 64)]
        elif kind == 5 and b:                     # truncate
            del b[rng.randrange(len(b)):]
        elif kind == 6 and b:                     # splice a chunk of another seed
            other = rng.choice(pool)[1]
            start = rng.randrange(len(other))
            chunk = other[start:start + rng.randint(1, 256)]
            b[pos:pos + len(chunk)] = chunk
    return bytes(b)


class Timeout(Exception):
    pass


def run_one(src, dst):
    """None when the converter accepted or refused the file with its own error; else the traceback."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = convert.main([src, dst])
    except Timeout:
        raise
    except BaseException:  # noqa: BLE001 (anything escaping main is a finding)
        return traceback.format_exc()
    if code not in (0, 2):
        return "exit code %r\n%s" % (code, err.getvalue())
    if code == 2 and (err.getvalue().count("\n") != 1 or "mixflow.convert: error:" not in err.getvalue()):
        return "not a one-line error:\n" + err.getvalue()
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--rss-limit-mb", type=int, default=2048)
    p.add_argument("--artifacts", default=str(ROOT / ".build" / "fuzz" / "convert-artifacts"))
    a = p.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_AS, (a.rss_limit_mb << 20, a.rss_limit_mb << 20))
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    artifacts = Path(a.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)

    def on_alarm(*_):
        raise Timeout()
    signal.signal(signal.SIGALRM, on_alarm)
    execs = findings = slowest = 0
    kinds = collections.Counter()
    # /dev/shm: the converter fsyncs what it writes, which would dominate the run time on a disk.
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        pool = seeds(tmp)
        end = time.monotonic() + a.seconds
        while time.monotonic() < end:
            suffix, data = rng.choice(pool)
            mutant = mutate(data, rng, pool)
            src, dst = os.path.join(tmp, "in" + suffix), os.path.join(tmp, "out" + rng.choice([".onnx", ".safetensors", ".npz"]))
            with open(src, "wb") as f:
                f.write(mutant)
            t0 = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, a.timeout)
            try:
                problem = run_one(src, dst)
            except Timeout:
                problem = "slower than %g s" % a.timeout
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            slowest = max(slowest, time.monotonic() - t0)
            execs += 1
            if problem:
                findings += 1
                kinds[problem.strip().splitlines()[-1][:100]] += 1
                name = artifacts / ("crash-%d-%d%s" % (seed, execs, suffix))
                name.write_bytes(mutant)
                name.with_suffix(name.suffix + ".txt").write_text(problem)
    print("convert fuzzer: seed %d, %d execs in %.0f s (%.0f/s), %d findings, slowest %.2f s"
          % (seed, execs, a.seconds, execs / a.seconds, findings, slowest))
    for k, n in kinds.most_common(10):
        print("  %5d  %s" % (n, k))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
