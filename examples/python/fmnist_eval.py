"""Scores image sets with "FD (Fashion-MNIST classifier features)", KID and conditional accuracy (the quality
metric of libmixflow; never call it FID). Here the "generated" sets are real training images, clean and noisy."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402

try:
    x, y = mixflow.fashion_mnist("train")          # [60000, 28, 28] float32 in [-1, 1], labels int32
except FileNotFoundError as e:
    print(f"skipped: {e}")
    sys.exit(77)
net = mixflow.FeatureNet()                          # the shipped CNN (share/featnet/fmnist-cnn.mxfnet)
ref_mean, ref_cov, _ = mixflow.load_reference_stats()   # its features on the 10k test set, precomputed
ref_feats = net.features(mixflow.fashion_mnist("test")[0][:2000])
rms = np.sqrt(np.mean(ref_feats.astype(np.float64) ** 2))  # KID in features / reference RMS (docs/exactness.md §7.3)

n = 5000
rng = np.random.default_rng(0)
for name, images in [("real", x[:n]), ("noise 0.1", x[:n] + np.float32(0.1) * rng.standard_normal(x[:n].shape, np.float32))]:
    f = net.features(images)
    fd = mixflow.frechet_distance(f, (ref_mean, ref_cov))
    kid, se = mixflow.kid(f / rms, ref_feats / rms, num_subsets=20, subset_size=1000, seed=0)
    print(f"{name:10s} n={n}  FD {fd:8.2f}  KIDx1e3 {1e3 * kid:7.2f} ± {1e3 * se:.2f}  "
          f"conditional accuracy {net.accuracy(images, y[:n]):.3f}")
print("expected: real images score a few points (FD is biased upwards at this n), noise sigma 0.1 far more; "
      "accuracy near 0.91 for both (share/featnet/README.md)")
