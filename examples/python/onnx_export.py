"""A post-trained SiT leaves libmixflow as ONNX and runs anywhere.

    model.save_onnx("sit.onnx", transport=transport, step=n)   # weights + metadata + runnable forward graph
    mixflow.Model.from_onnx("sit.onnx")                         # back, bit for bit
    onnxruntime.InferenceSession("sit.onnx").run(["out"], {"x": x, "t": t, "y": y})

Uses a tiny SiT so it runs in a second; onnxruntime is optional (skipped when not installed).
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
        print("onnxruntime not installed: skipping the runtime check")
        sys.exit(0)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["out"], {"x": x, "t": t, "y": y})[0]
    print("onnxruntime vs native, max abs difference:", float(np.abs(out - model.forward(x, t, y)).max()))
