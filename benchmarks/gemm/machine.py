"""What a benchmark ran on, printed at its top: the CPU model, the ISA flags libmixflow uses, the GEMM kernel
(mixflow.blas_info()) and libmixflow's sgemm peak (1024³, measured in the same run with the bench's threads).

    sys.path.insert(0, str(ROOT / "benchmarks" / "gemm")); import machine
    print(machine.header(lib, threads))          # lib: a ctypes CDLL of libmixflow.so, or None
"""
import ctypes
import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import bench as gemm_bench

# ISA flags that decide which builds libmixflow runs (the GEMM's and the kernels' paths).
USED_FLAGS = ("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma")
PATH_NUMBERS = {"avx512": 2, "avx2": 1, "portable": 0}

# `--isa avx2`: both sides of a comparison kept to AVX2 + FMA, as on an AMD Zen 2/3 or a Haswell..Alder Lake
# Intel: libmixflow's GEMM and kernel builds, PyTorch's own kernels (ATen), MKL and oneDNN. Each library reads
# its variable when it loads, so these are set before torch is imported and libmixflow is loaded (and are
# inherited by a bench's child processes). What it cannot emulate: a vendor check (MKL on AMD), cache sizes.
ISA_LIMITS = {
    "native": {},
    "avx2": {"MIXFLOW_DISABLE_AVX512": "1", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def add_isa_argument(ap):
    ap.add_argument("--isa", choices=list(ISA_LIMITS), default="native",
                    help="avx2: keep libmixflow and PyTorch (ATen, MKL, oneDNN) to AVX2 + FMA on an AVX-512 CPU")


def limit_isa(isa):
    """Sets the environment of ISA_LIMITS[isa]; refuses once torch is imported (its choice is already made)."""
    if ISA_LIMITS[isa] and "torch" in sys.modules:
        raise RuntimeError("limit_isa must run before torch is imported")
    os.environ.update(ISA_LIMITS[isa])


def torch_isa(torch):
    """The ISA PyTorch's own kernels run (e.g. AVX512, AVX2)."""
    return torch.backends.cpu.get_cpu_capability()


@functools.lru_cache(maxsize=None)
def _harness():
    return gemm_bench.build(tempfile.mkdtemp(prefix="mixflow-gemm-"))


def gemm_peak(threads, path=None, seconds=0.5):
    """libmixflow's sgemm GFLOP/s at 1024³ (best of repeated runs), on `path` (default: the best the CPU has)."""
    for name in ([path] if path else list(PATH_NUMBERS)):
        args = [str(_harness()), "ours", str(PATH_NUMBERS[name]), str(threads), str(seconds), "0", "0",
                "1024", "1024", "1024", "1"]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
        if out != "unsupported":
            return float(out), name
    raise RuntimeError("no GEMM path runs here")


def blas_info(lib):
    """mixflow_blas_info() as a dict ("gemm", "openblas", ...)."""
    lib.mixflow_blas_info.restype = ctypes.c_char_p
    return dict(l.split(": ", 1) for l in lib.mixflow_blas_info().decode().splitlines())


def gemm_path(lib, info=None):
    """The GEMM path libmixflow runs ("avx512", "avx2", "portable"), or None when it does not say; `info`: the
    caller's blas_info(lib), if it has one."""
    gemm = (info or blas_info(lib)).get("gemm", "")
    path = gemm.split(" ")[1] if gemm.startswith("libmixflow ") else None
    return path if path in PATH_NUMBERS else None


def header(lib, threads, peak=None):
    """The lines above, and the peak: measured here, or `peak` (GFLOP/s) when the caller measured it between its
    own timings (on `gemm_path(lib)`)."""
    model, isa = gemm_bench.cpu_info()
    lines = [f"CPU: {model}; ISA flags: {' '.join(f for f in isa if f in USED_FLAGS)}"]
    path = None
    if lib is not None:
        info = blas_info(lib)
        lines.append(f"GEMM: {info.get('gemm', '?')}; OpenBLAS: {info.get('openblas', '?')}")
        path = gemm_path(lib, info)
    if peak is None:
        peak, used = gemm_peak(threads, path)
        how = "this run"
    else:
        used, how = path, "best of the run's measurements between its timings"
    lines.append(f"sgemm peak (libmixflow {used}, 1024^3, {threads} threads, {how}): {peak:.1f} GFLOP/s")
    return "\n".join(lines), peak
