"""A post-trained SiT (or RAE's DiT^DH) leaves libmixflow as ONNX and runs anywhere.

    model.save_onnx("sit.onnx", transport=transport, step=n)   # weights + metadata + runnable forward graph
    mixflow.Model.from_onnx("sit.onnx")                         # back, bit for bit
    onnxruntime.InferenceSession("sit.onnx").run(["out"], {"x": x, "t": t, "y": y})

Uses a tiny SiT and a tiny DiT^DH so it runs in a second; onnxruntime is optional (without it the
example checks the round trip, then exits with 77, "skipped").
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402

model = mixflow.Model.create(None, depth=2, hidden=64, heads=4, patch=2, input_size=8, in_channels=4, num_classes=10)
transport = mixflow.Transport(gamma=0.8)
with tempfile.TemporaryDirectory() as d:
    path = Path(d) / "sit.onnx"
    model.save_onnx(path, transport=transport, step=0)
    back = mixflow.Model.from_onnx(path)
    same = all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
    print("round trip bit-identical:", same, "| metadata:", {k: v for k, v in back.onnx_metadata.items()
                                                                if k in ("model.depth", "transport.gamma")})
    x = np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
    t, y = np.array([0.25, 0.75], np.float32), np.array([3, 10])
    try:
        import onnxruntime as ort
    except ImportError:
        print("skipped: onnxruntime is not installed, so only the round trip above was checked")
        sys.exit(77)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["out"], {"x": x, "t": t, "y": y})[0]
    print("onnxruntime vs native, max abs difference:", float(np.abs(out - model.forward(x, t, y)).max()))

    # The same for a DiT^DH (RAE convention: t is the shifted time, noise at 1; the output is the velocity).
    dith = mixflow.Model.create("DiTDH", depth=2, hidden=32, heads=2, head_depth=1, head_hidden=64, head_heads=4,
                                input_size=4, in_channels=8, num_classes=10)
    # As if trained: the official init zeroes adaLN and the final layer, so a fresh model outputs exactly 0.
    rng = np.random.default_rng(2)
    dith.load_state_dict({k: rng.uniform(-0.3, 0.3, v.shape).astype(np.float32)
                          for k, v in dith.state_dict().items() if not v.any()}, strict=False)
    dith.save_onnx(Path(d) / "dith.onnx", transport=mixflow.Transport.preset("rae", latent_shape=(8, 4, 4)))
    x = np.random.default_rng(1).standard_normal((2, 8, 4, 4)).astype(np.float32)
    out = ort.InferenceSession(str(Path(d) / "dith.onnx"), providers=["CPUExecutionProvider"]).run(
        ["out"], {"x": x, "t": t, "y": y})[0]
    print("DiT^DH: onnxruntime vs native, max abs difference:", float(np.abs(out - dith.forward(x, t, y)).max()))
