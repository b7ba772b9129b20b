"""The RAE example end to end in its --quick mode (CI runs every example too; this checks what it prints)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_rae_example_runs_the_pipeline_and_its_checks_hold(tmp_path):
    r = subprocess.run([sys.executable, ROOT / "examples" / "python" / "rae_mixflow.py", "--quick", "--out", tmp_path],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "latent (60000, 16, 7, 7)" in out
    assert "gamma 0.4" in out and "dimension shift 1.0000" in out
    assert "grid: 50 points -> 49 Euler steps, t = 1.000000" in out and "0.131505, 0.006887)" in out
    assert "NFE: 49 (autoguidance, scale 1.42); per-class label counts: [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]" in out
    assert "check: autoguidance with guide = main equals unguided sampling: True" in out
    png = tmp_path / "rae_samples.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "poor samples" in out
