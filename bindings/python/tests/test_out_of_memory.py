"""Out of memory is an error, not an abort: scratch memory the library sizes from a caller's argument goes through
its one fallible allocation (ScratchBuffer), so a size whose scratch cannot exist returns MIXFLOW_ERR_OUT_OF_MEMORY
(Python: mixflow.OutOfMemory, a MemoryError) and the host process lives on. Each case runs in a child process with
an address-space limit (RLIMIT_AS, as `ulimit -v`), so allocations fail fast and no gigabytes are touched."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# Run in the child before the case: the package, and a helper that limits the address space to what the process
# maps now plus `headroom` bytes (VmSize from /proc/self/status).
PRELUDE = f"""
import ctypes, resource, sys
sys.path.insert(0, {str(HERE.parent)!r})
import numpy as np
import mixflow, mixflow.slowflow, mixflow.transport
from mixflow._lib import lib

def limit_address_space(headroom):
    vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, resource.RLIM_INFINITY))
"""


def run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)


def test_claimed_sizes_whose_scratch_cannot_exist_return_out_of_memory_before_the_buffers_are_read():
    # The C entry points fixed with ScratchBuffer, each with a claimed size of 2^32 rows (or grid times) and
    # buffers of a few bytes: the scratch (>= 32 GiB) is refused before a buffer is read, so the tiny buffers
    # are never overrun. Before the fix, each of these aborted the process in Swift's allocator.
    r = run_child("""
        D = ctypes.POINTER(ctypes.c_double); F = ctypes.POINTER(ctypes.c_float)
        small_d = (ctypes.c_double * 64)(); small_f = (ctypes.c_float * 64)()
        d = ctypes.cast(small_d, D); f = ctypes.cast(small_f, F); lags = ctypes.pointer(ctypes.c_int32())
        tr = mixflow.Transport(num_threads=1)
        big = 1 << 32
        limit_address_space(1 << 30)
        cases = {
            "transport_prepare batch": lambda: lib.mixflow_transport_prepare(tr._ptr, f, big, 4, 0, 0, 0, f, f, f, f, f),
            "transport_loss batch": lambda: lib.mixflow_transport_loss(tr._ptr, f, f, f, f, big, 4, f, f, f),
            "slow_flow_measure num_times": lambda: lib.mixflow_slow_flow_measure(0, 0, 0, d, big, f, f, 2, 4, None, 0, d, d),
            "slow_flow_stats batch": lambda: lib.mixflow_slow_flow_stats(d, d, big, 2, d),
            "slow_flow_stats num_times": lambda: lib.mixflow_slow_flow_stats(d, d, 2, big, d),
            "slow_flow_suggest_gamma batch": lambda: lib.mixflow_slow_flow_suggest_gamma(d, d, big, 2, 0.9, d),
            "slow_flow_suggest_gamma num_times": lambda: lib.mixflow_slow_flow_suggest_gamma(d, d, 2, big, 0.9, d),
            "slow_flow_lag batch": lambda: lib.mixflow_slow_flow_lag(d, d, big, 2, 0, d, d, lags),
            "slow_flow_lag num_times": lambda: lib.mixflow_slow_flow_lag(d, d, 2, big, 0, d, d, lags),
            "slow_flow_export batch": lambda: lib.mixflow_slow_flow_export(b"/nonexistent/x.csv", 0, 0, d, d, big, 2),
            "slow_flow_export num_times": lambda: lib.mixflow_slow_flow_export(b"/nonexistent/x.csv", 0, 0, d, d, 2, big),
        }
        for name, call in cases.items():
            status = call()
            message = lib.mixflow_last_error().decode()
            assert status == 3 and "bytes" in message, (name, status, message)
            print(name, "->", message)
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.endswith("ok\n"), (r.returncode, r.stdout[-3000:], r.stderr[-3000:])


# name: (setup, the call, bytes the binding itself allocates for the call's outputs). rows = 2^24: 64 MiB of float32.
BINDING_CASES = {
    # Scratch: loss weights and partial sums (128 MiB each) after the binding's per-sample losses and gradient.
    "transport.loss": ("tr = mixflow.Transport(num_threads=1); pred = np.zeros((rows, 1), np.float32); "
                       "t = np.full(rows, 0.5, np.float32); "
                       "batch = mixflow.transport.Batch(x_in=pred, t=t, m=t, noise=pred, target=pred.copy())",
                       "tr.loss(pred, batch)", 128 << 20),
    # Scratch: the checked copy of m (128 MiB).
    "slowflow.stats": ("sf = mixflow.slowflow.SlowFlow(t=np.array([0.5, 1.0]), m=np.full((rows // 2, 2), 0.5), "
                       "reference='endpoint')", "sf.stats", 0),
    "slowflow.suggest_gamma": ("sf = mixflow.slowflow.SlowFlow(t=np.array([0.5, 1.0]), m=np.full((rows // 2, 2), 0.5), "
                               "reference='endpoint')", "mixflow.slowflow.suggest_gamma(sf)", 0),
    # Scratch: the prediction and the four RK4 stages (64 MiB each) after the binding's output.
    "sample (rk4)": ("noise = np.zeros((rows, 1), np.float32)",
                     "mixflow.sample(lambda x, t, y: -x, noise, method='rk4', steps=3)", 64 << 20),
    "sample (dopri5)": ("noise = np.zeros((rows, 1), np.float32)",
                        "mixflow.sample(lambda x, t, y: -x, noise, method='dopri5', steps=3)", 64 << 20),
    # Scratch: the step's noise (64 MiB) after the binding's output.
    "Sampler.step (sde_euler)": ("s = mixflow.Sampler('sde_euler', 3); x = np.zeros((rows, 1), np.float32)",
                                 "s.step(x, 0, x)", 64 << 20),
}


@pytest.mark.parametrize("case", list(BINDING_CASES))
def test_a_failed_scratch_allocation_raises_out_of_memory_through_the_binding(case):
    # Real arrays, and an address-space limit that holds them and the binding's own outputs but not the library's
    # scratch: the budget check passes (the scratch is far below the limit), the allocation itself fails, and the
    # binding raises mixflow.OutOfMemory, which is a MemoryError; the process goes on. Before the fix it aborted.
    setup, call, binding_bytes = BINDING_CASES[case]
    r = run_child(f"""
        rows = 1 << 24
        {setup}
        limit_address_space({binding_bytes} + (32 << 20))
        try:
            {call}
        except mixflow.OutOfMemory as e:
            assert isinstance(e, MemoryError) and isinstance(e, mixflow.MixflowError)
            assert "allocation failed" in str(e), str(e)
            print(e)
        else:
            raise AssertionError("no OutOfMemory")
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        tr = mixflow.Transport(num_threads=1)
        small = np.zeros((4, 1), np.float32)
        loss, _, _ = tr.loss(small, mixflow.transport.Batch(x_in=small, t=np.full(4, 0.5, np.float32),
                                                            m=np.full(4, 0.5, np.float32), noise=small, target=small + 1))
        assert loss == 1.0, loss                              # the process and the library still work
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.endswith("ok\n"), (r.returncode, r.stdout[-3000:], r.stderr[-3000:])
