"""mixflow.blas_info(): what libmixflow computes with, and that the ISA switches lower the GEMM path."""
import os
import subprocess
import sys

import mixflow


def test_blas_info_names_cpu_gemm_threads_and_openblas():
    info = mixflow.blas_info()
    for key in ("cpu", "gemm", "gemm paths", "threads", "openblas"):
        assert info.get(key), (key, info)
    path = info["gemm"].split()[1]
    assert info["gemm"].startswith("libmixflow ") and path in info["gemm paths"].split(), info


def test_disable_switches_lower_the_gemm_path():
    code = "import mixflow; print(mixflow.blas_info()['gemm'].split()[1])"

    def path(**env):
        base = {k: v for k, v in os.environ.items() if k not in ("MIXFLOW_DISABLE_AVX2", "MIXFLOW_DISABLE_AVX512")}
        r = subprocess.run([sys.executable, "-c", code], env=dict(base, **env), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    supported = mixflow.blas_info()["gemm paths"].split("(")[0].split()
    assert path(MIXFLOW_DISABLE_AVX2="1") == "portable"
    assert path(MIXFLOW_DISABLE_AVX512="1") == ("avx2" if "avx2" in supported else "portable")
    assert path(MIXFLOW_DISABLE_AVX512="0") == supported[-1]
