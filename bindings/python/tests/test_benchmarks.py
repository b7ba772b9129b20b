"""The benchmark drivers still build and run against the library's current sources (the benches themselves need
PyTorch and a quiet machine, which CI has not; a change of an internal signature must not break them silently)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks" / "gemm"))
import bench as gemm_bench  # noqa: E402


def test_gemm_driver_builds_and_times_small_shapes(tmp_path):
    exe = gemm_bench.build(tmp_path)
    shapes = ["0", "1", "70", "40", "300", "1", "1", "0", "33", "1100", "20", "0.5"]  # TA TB M N K ALPHA, twice
    for who in ("ours", "openblas"):
        r = subprocess.run([str(exe), who, "0", "2", "0.001", *shapes], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        rates = [float(v) for v in r.stdout.split()]
        assert len(rates) == 2 and all(v > 0 for v in rates), (who, r.stdout)


def test_python_benchmarks_compile():
    scripts = sorted((ROOT / "benchmarks").rglob("*.py"))
    assert len(scripts) >= 8
    for s in scripts:
        subprocess.run([sys.executable, "-m", "py_compile", str(s)], check=True)
