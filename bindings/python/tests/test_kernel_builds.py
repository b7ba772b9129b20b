"""The portable, AVX2 and AVX-512 builds of libmixflow's model kernels give the same bits for whole training runs.

Each run is a child process (the build is chosen once per process): SiT and DiT^DH trainers take three MixFlow
steps (forward, backward, AdamW, EMA) and the child prints a digest of the losses, the weights, the EMA weights
and a forward output. MIXFLOW_DISABLE_AVX512=1 selects the AVX2 build and MIXFLOW_DISABLE_AVX2=1 the portable
one; on a CPU without AVX-512 some of the runs use the same build (the test still passes, it just proves less).
The kernels' unit tests (Tests/MixflowModelsTests/KernelBuildTests.swift) compare the builds directly."""
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import hashlib, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import mixflow

digest = hashlib.sha256()
def add(a):
    digest.update(np.ascontiguousarray(a, np.float32).tobytes())

rng = np.random.default_rng(0)
# Widths that are not multiples of the kernels' 16 lanes (hidden 40, head 24) exercise the row tails.
sit = mixflow.Model.create(None, depth=2, hidden=40, heads=4, patch=2, input_size=8, in_channels=3, num_classes=5,
                           learn_sigma=True, seed=3)
ditdh = mixflow.Model.create("DiTDH", depth=1, hidden=40, heads=2, head_depth=1, head_hidden=24, head_heads=2,
                             input_size=4, in_channels=6, num_classes=5, seed=4)
for m, preset in ((sit, "sit"), (ditdh, "rae")):
    shape = (m.in_channels, m.input_size, m.input_size)
    transport = (mixflow.Transport.preset("sit", gamma=0.8) if preset == "sit"
                 else mixflow.Transport.preset("rae", latent_shape=shape))
    tr = mixflow.Trainer(m, transport, lr=1e-3, ema=0.9, seed=11, weight_decay=0.01)
    for step in range(3):
        x = rng.standard_normal((6,) + shape).astype(np.float32)
        y = rng.integers(0, 5, 6)
        add([tr.step(x, y)])
    for model in (m, tr.ema_model()):
        for k, v in sorted(model.state_dict().items()):
            add(v)
    add(m.forward(rng.standard_normal((3,) + shape).astype(np.float32), rng.uniform(0, 1, 3).astype(np.float32),
                  rng.integers(0, 5, 3)))
print(digest.hexdigest())
"""


def run(**env):
    package = str(Path(__file__).resolve().parent.parent)
    full = {k: v for k, v in os.environ.items() if not k.startswith("MIXFLOW_DISABLE_")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", CHILD, package], env=full, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_training_gives_the_same_bits_on_every_kernel_build():
    best = run()
    assert len(best) == 64
    assert run(MIXFLOW_DISABLE_AVX512="1") == best
    assert run(MIXFLOW_DISABLE_AVX2="1") == best
