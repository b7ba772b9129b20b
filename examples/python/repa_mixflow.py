"""MixFlow-REPA end to end on Fashion-MNIST, with a STAND-IN target encoder (read this before the numbers):
REPA's SiT (a SiT plus projector heads on the tokens after block encoder_depth), post-trained with REPA's total
loss denoise + λ·proj through Trainer.step(x1, y, features=z), then sampled, scored and saved as ONNX.

    python3 examples/python/repa_mixflow.py [--quick]

What is real and what is a stand-in:
  * the model: the shipped Fashion-MNIST SiT (models/fmnist-base/base.onnx, SiT 1.28 M parameters) turned into
    REPA's SiT by adding freshly initialised projectors (xavier, as REPA's initialize_weights) after block 2 of 4,
    projector width 256 (REPA: 2048). A real REPA checkpoint converts with
    `python -m mixflow.convert last.pt repa.onnx --arch REPA-SiT-XL/2` instead;
  * the target features: REPA uses DINOv2-B/14 patch tokens [tokens, 768]. Here the stand-in is the project's
    Fashion-MNIST classifier (mixflow.FeatureNet): its 128 penultimate features of the clean image, the SAME
    vector for every one of the 49 tokens. It exercises the alignment term end to end; it is not REPA's encoder
    and says nothing about REPA's quality;
  * the transport: MixFlow's (Beta(2,1) times, slowed mixture); the base was trained in SiT's convention (noise
    at t = 0), so this uses Transport.preset("sit", gamma=0.12), the γ suggest_gamma gives this base
    (results/fmnist); a REPA checkpoint (noise at t = 1) uses Transport.preset("repa") (γ 0.8, an assumption:
    MixFlow-REPA's γ is not published);
  * the trainer: Trainer(..., preset="repa") (AdamW 1e-4, betas (0.9, 0.999), clip 1.0, EMA 0.9999,
    proj_coeff 0.5); the EMA decay is lowered to 0.9 so that a few hundred steps show in the samples.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402
from mixflow import convert  # noqa: E402

BASE = Path(__file__).resolve().parents[2] / "models" / "fmnist-base" / "base.onnx"
ENCODER_DEPTH, PROJECTOR_DIM = 2, 256
GAMMA = 0.12   # suggest_gamma of the shipped base (results/fmnist/README.md); MixFlow with γ 0.8 damages this base


def repa_from_sit(base_path, z_dim, seed=0):
    """REPA's SiT from a SiT checkpoint: the same tensors plus projectors.0.{0,2,4} (xavier weights, zero
    biases), written as ONNX with the model.* keys of REPA's SiT."""
    tensors, meta = convert.read_onnx(base_path)
    assert meta["model.learn_sigma"] == "0", "REPA's SiT has no learn_sigma half"
    d, p = int(meta["model.hidden"]), PROJECTOR_DIM
    rng = np.random.default_rng(seed)
    for j, (rows, cols) in zip((0, 2, 4), ((p, d), (p, p), (z_dim, p))):
        bound = np.sqrt(6 / (rows + cols))
        tensors[f"projectors.0.{j}.weight"] = rng.uniform(-bound, bound, (rows, cols)).astype(np.float32)
        tensors[f"projectors.0.{j}.bias"] = np.zeros(rows, np.float32)
    meta = {k: v for k, v in meta.items() if k.startswith("model.")}
    meta.update({"model.arch": "REPA-SiT", "model.encoder_depth": str(ENCODER_DEPTH),
                 "model.projector_dim": str(p), "model.z_dims": str(z_dim)})
    out = Path(tempfile.mkdtemp()) / "repa-fmnist.onnx"
    convert.write_onnx(out, tensors, meta)
    return out


def main():
    quick = "--quick" in sys.argv
    steps, evals = (20, 100) if quick else (300, 500)
    if not BASE.exists():
        print(f"skipped: {BASE} is missing")
        sys.exit(77)
    try:
        x, y = mixflow.fashion_mnist("train")
    except FileNotFoundError as e:
        print(f"skipped: {e}")
        sys.exit(77)
    x = x[:, None]                                                   # [N, 1, 28, 28] in [-1, 1]
    net = mixflow.FeatureNet()
    path = repa_from_sit(BASE, net.feature_dim)
    model = mixflow.Model.from_onnx(path)
    tokens = model.feature_size // net.feature_dim
    print(f"REPA's SiT: {model.num_params:,} parameters, projectors after block {ENCODER_DEPTH}, "
          f"{tokens} tokens x {net.feature_dim} features per image (stand-in encoder: FeatureNet, one vector per image)")

    def stand_in_features(images):
        f = net.features(images.reshape(len(images), -1))           # [B, 128]
        return np.repeat(f[:, None, :], tokens, axis=1)             # [B, tokens, 128]: the same vector every token

    reference = mixflow.load_reference_stats()[:2]
    noise = np.random.default_rng(1234).standard_normal((evals, 1, 28, 28)).astype(np.float32)
    labels = np.arange(evals) % 10

    def fd(m):
        images = mixflow.Sampler(method="euler", steps=20, null_class=10).sample_model(m, noise, y=labels).x
        images = mixflow.to_uint8(images).astype(np.float32) / 127.5 - 1
        return mixflow.frechet_distance(net.features(images.reshape(evals, -1)), reference)

    print(f"FD before ({evals} samples, Euler 20): {fd(model):.2f}")
    results = {}
    for name, with_features in (("denoise + 0.5·proj", True), ("denoise alone", False)):
        m = mixflow.Model.from_onnx(path)
        trainer = mixflow.Trainer(m, mixflow.Transport.preset("sit", gamma=GAMMA), preset="repa", ema=0.9, seed=0)
        rng = np.random.default_rng(0)                               # both runs see the same minibatches
        for step in range(steps):
            idx = rng.integers(0, len(x), 32)
            z = stand_in_features(x[idx]) if with_features else None
            loss = trainer.step(x[idx], y[idx], features=z)
            if step % max(1, steps // 4) == 0 or step == steps - 1:
                print(f"  [{name}] step {step:3d}  loss {loss:.4f}")
        ema = trainer.ema_model()
        results[name] = fd(ema)
        if with_features:
            out = Path(tempfile.mkdtemp()) / "repa-posttrained.onnx"
            ema.save_onnx(out, step=steps)
            assert mixflow.Model.from_onnx(out).feature_size == model.feature_size, "the export keeps the projectors"
            print(f"  wrote {out} (projectors kept)")
    for name, value in results.items():
        print(f"FD after {steps} steps, {name}: {value:.2f}")
    print("The alignment term's loss is the negative cosine, so 'denoise + 0.5·proj' losses sit below the others; "
          "with a stand-in encoder and a few hundred steps the FDs are a smoke test, not a REPA result.")


if __name__ == "__main__":
    main()
