"""GFLOP/s of libmixflow's own GEMM against OpenBLAS (its SkylakeX/AVX-512 kernels forced with
OPENBLAS_CORETYPE on a CPU with AVX-512, and the kernel it picks by itself) and PyTorch (MKL), at the shapes SiT-S/2 (32×32×4, batch 16)
and DiT^DH-S (768×16×16, batch 2) run, with 1 and 2 threads, all in one run.

    python3 benchmarks/gemm/bench.py [--seconds 0.4] [--threads 1 2] [--repeats 3]

Our GEMM is compiled from Sources/CGemm with the package's flags into a small C driver (gemm_bench.c) that
calls it exactly as BLAS.sgemm does (the longer side cut into one run of whole register tiles per worker). Each figure is the
best over --repeats rounds (the rounds interleave the contenders, so a busy machine hurts them alike).
Needs a C compiler and libopenblas-dev; PyTorch ('torch<2.14', CPU wheel) is optional.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATHS = {"avx512": 2, "avx2": 1}

# (name, transA, transB, m, n, k, alpha): the GEMMs of one training step, as BLAS.sgemm receives them.
SHAPES = [
    ("SiT-S/2 qkv fwd   x·Wᵀ", 0, 1, 4096, 1152, 384, 1.0),
    ("SiT-S/2 fc2 fwd   x·Wᵀ", 0, 1, 4096, 384, 1536, 1.0),
    ("SiT-S/2 fc1 dx    dy·W", 0, 0, 4096, 384, 1536, 1.0),
    ("SiT-S/2 fc1 dW    dyᵀ·x", 1, 0, 1536, 384, 4096, 1.0),
    ("SiT-S/2 attn QKᵀ/8", 0, 1, 256, 256, 64, 0.125),
    ("SiT-S/2 attn P·V", 0, 0, 256, 64, 256, 1.0),
    ("DiTDH-S head qkv  x·Wᵀ", 0, 1, 512, 6144, 2048, 1.0),
    ("DiTDH-S head w3   x·Wᵀ", 0, 1, 512, 2048, 5461, 1.0),
    ("DiTDH-S enc fc dW dyᵀ·x", 1, 0, 2048, 384, 512, 1.0),
    ("DiTDH-S head attn QKᵀ", 0, 1, 256, 256, 128, 0.0884),
]


def cpu_info():
    model, flags = "unknown", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16", "avx512_fp16", "amx_tile", "avx2", "fma")
           if f in flags]
    return model, isa


def build(tmp):
    cc = shutil.which("clang") or shutil.which("cc")
    exe = Path(tmp) / "gemm_bench"
    subprocess.check_call([cc, "-O3", "-ffp-contract=off", "-I", str(ROOT / "Sources/CGemm/include"),
                           str(ROOT / "benchmarks/gemm/gemm_bench.c"), str(ROOT / "Sources/CGemm/gemm.c"),
                           "-lopenblas", "-lpthread", "-lm", "-o", str(exe)])
    return exe


def run(exe, who, path, threads, seconds, coretype=None):
    """Runs the driver on every shape; coretype forces OpenBLAS's kernel (None: OpenBLAS picks by itself)."""
    args = [str(exe), who, str(path), str(threads), str(seconds)]
    for _, ta, tb, m, n, k, alpha in SHAPES:
        args += [str(ta), str(tb), str(m), str(n), str(k), str(alpha)]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    r = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    if r.stdout.strip() == "unsupported":
        return None, ""
    core = re.search(r"core (\S+)", r.stderr)
    return [float(v) for v in r.stdout.split()], core.group(1) if core else ""


def torch_run(threads, seconds):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    out = []
    for _, ta, tb, m, n, k, alpha in SHAPES:
        a = torch.rand(k, m) - 0.5 if ta else torch.rand(m, k) - 0.5
        b = torch.rand(n, k) - 0.5 if tb else torch.rand(k, n) - 0.5
        c = torch.empty(m, n)
        A, B = (a.t() if ta else a), (b.t() if tb else b)
        best, start, runs = 1e30, time.perf_counter(), 0
        while runs < 3 or time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            torch.mm(A, B, out=c) if alpha == 1 else torch.addmm(c, A, B, beta=0, alpha=alpha, out=c)
            best = min(best, time.perf_counter() - t0)
            runs += 1
        out.append(2 * m * n * k / best / 1e9)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.4, help="timing budget per shape and contender")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best is reported")
    args = ap.parse_args()
    model, isa = cpu_info()
    print(f"CPU: {model}, {os.cpu_count()} logical cores; ISA flags: {' '.join(isa)}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    try:
        import torch
        print(f"PyTorch {torch.__version__} ({torch.backends.mkldnn.is_available() and 'oneDNN' or ''} "
              f"{'MKL' if torch.backends.mkl.is_available() else 'no MKL'})")
    except ImportError:
        print("PyTorch not installed: its column is left out")
    # The reference column: OpenBLAS's AVX-512 kernels where the CPU has them (Debian's 0.3.21 does not pick
    # them by itself on recent Xeons), else the kernel OpenBLAS picks (Haswell/Zen on an AVX2 CPU). Forcing
    # SkylakeX on a CPU without AVX-512 would die of an illegal instruction.
    forced = "SkylakeX" if "avx512f" in isa else None
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        for threads in args.threads:
            best = {}
            for _ in range(args.repeats):
                rounds = {}
                for name, path in PATHS.items():
                    rounds[f"ours {name}"] = run(exe, "ours", path, threads, args.seconds)[0]
                if forced:
                    rounds[f"OpenBLAS {forced}"] = run(exe, "openblas", 0, threads, args.seconds, forced)[0]
                own, core = run(exe, "openblas", 0, threads, args.seconds)
                rounds[f"OpenBLAS own pick ({core})"] = own
                rounds["PyTorch"] = torch_run(threads, args.seconds)
                for key, vals in rounds.items():
                    if vals is None:
                        continue
                    best[key] = [max(x, y) for x, y in zip(best[key], vals)] if key in best else vals
            cols = list(best)
            ref = next(c for c in cols if c.startswith("OpenBLAS"))
            print(f"\n{threads} thread(s), GFLOP/s (best of {args.repeats}); ratio = {cols[0]} / {ref}")
            print("| shape (m×n×k) | " + " | ".join(cols) + " | ratio |")
            print("|---|" + "---|" * (len(cols) + 1))
            total = {c: 0.0 for c in cols}
            for i, (name, ta, tb, m, n, k, _) in enumerate(SHAPES):
                flop = 2 * m * n * k
                for c in cols:
                    total[c] += flop / (best[c][i] * 1e9)
                ratio = best[cols[0]][i] / best[ref][i]
                print(f"| {name} {m}×{n}×{k} | " + " | ".join(f"{best[c][i]:.0f}" for c in cols) + f" | {ratio:.2f} |")
            flops = sum(2 * m * n * k for _, _, _, m, n, k, _ in SHAPES) / 1e9
            print("| all shapes (time-weighted) | " + " | ".join(f"{flops / total[c]:.0f}" for c in cols)
                  + f" | {total[ref] / total[cols[0]]:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
