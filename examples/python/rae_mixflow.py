"""MixFlow-RAE end to end through the native DiT^DH, in about a minute on 2 cores (the same steps as
examples/c/rae_mixflow.c):

  1. data as an RAE-style latent: Fashion-MNIST 1x28x28 (in [-1, 1]) pixel-unshuffled 4x4 into 16x7x7;
  2. a small custom DiT^DH (the main model) and a smaller one (the autoguidance guide, RAE's DiT^DH-S role);
  3. MixFlow-RAE training of both: Transport.preset("rae", latent_shape=(16, 7, 7)) (noise at t = 1, Beta(2,1)
     times before the dimension shift, gamma 0.4) with the RAE trainer preset (AdamW betas (0.9, 0.95), clip 1.0);
  4. sampling the RAE way: Euler on RAE's grid (50 points -> 49 steps, from 1 down to shifted(0.001)),
     "equal" labels (the same count per class), autoguidance G + w (main - G) with w = 1.42;
  5. depth-to-space back to 28x28, checks, and a PNG grid.

    python3 examples/python/rae_mixflow.py [--quick] [--out DIR]

Be warned: this is not RAE. RAE's latents are normalised DINOv2-B features (768x16x16 at 256 px) that only its
encoder can make and its decoder can turn back into pixels; we cannot ship those, so the "latent" here is an
invertible space-to-depth of the pixels (exactly PyTorch's pixel_unshuffle), and its "decoder" is the inverse
(pixel_shuffle). A 784-float latent makes the dimension shift sqrt(784/4096) < 1, which the preset clamps to 1
(no shift; RAE asserts s >= 1); the 768x16x16 latent gets sqrt(48) = 6.93, whose grid is printed for comparison. One minute of training
from scratch gives poor samples: blurry garments at best. The value of the example is the exact pipeline.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
import mixflow  # noqa: E402

R = 4                      # space-to-depth factor: 1x28x28 -> 16x7x7
LATENT = (16, 7, 7)
CLASSES = 10
SCALE = 1.42               # RAE's autoguidance scale at 256 px


def make_models():
    main = mixflow.Model.create("DiTDH", depth=2, hidden=64, heads=4, head_depth=1, head_hidden=96, head_heads=4,
                                input_size=LATENT[1], in_channels=LATENT[0], num_classes=CLASSES, seed=0)
    guide = mixflow.Model.create("DiTDH", depth=1, hidden=32, heads=2, head_depth=1, head_hidden=64, head_heads=4,
                                 input_size=LATENT[1], in_channels=LATENT[0], num_classes=CLASSES, seed=1)
    return main, guide


def train(name, model, transport, latents, labels, steps, batch, seed):
    # The RAE recipe's optimiser (betas (0.9, 0.95), grad clip 1.0) with a constant lr of 3e-3 and EMA 0.98
    # instead of 2e-4 / 0.9995: those are tuned for 1400 epochs of ImageNet, not for a few hundred steps.
    trainer = mixflow.Trainer(model, transport, preset="rae", lr=3e-3, final_lr=3e-3, ema=0.98, seed=seed)
    rng = np.random.default_rng(seed)
    start = time.time()
    for step in range(steps):
        idx = rng.integers(0, len(latents), batch)
        loss = trainer.step(latents[idx], labels[idx])
        if step % max(1, steps // 4) == 0 or step == steps - 1:
            print(f"  {name} step {step:4d}  MixFlow-RAE loss {loss:.4f}  ({time.time() - start:.0f} s)")
    return trainer.ema_model()


def stats(pixels):
    return f"mean {pixels.mean():+.3f}, std {pixels.std():.3f}, min {pixels.min():+.2f}, max {pixels.max():+.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds (CI): fewer steps and samples")
    ap.add_argument("--out", help="output folder (default: a new temporary folder)")
    a = ap.parse_args()
    steps, guide_steps, n = (20, 10, 20) if a.quick else (200, 80, 100)

    # 1. Data as a 16x7x7 "latent".
    try:
        images, labels = mixflow.fashion_mnist("train")                 # [N, 28, 28] in [-1, 1], labels 0..9
    except FileNotFoundError as e:
        print(f"skipped: {e}")
        sys.exit(77)
    latents = mixflow.pixel_unshuffle(images[:, None], R)               # [N, 16, 7, 7]
    assert np.array_equal(mixflow.pixel_shuffle(latents[:8], R), images[:8, None])   # invertible, bit for bit
    print(f"data: Fashion-MNIST {images.shape} -> latent {latents.shape} (pixel_unshuffle {R}x{R}; "
          "a stand-in for RAE's DINOv2 latent)")

    # 2-3. Models and MixFlow-RAE training.
    transport = mixflow.Transport.preset("rae", latent_shape=LATENT)
    p = transport.params
    print(f"transport: RAE preset, gamma {p['gamma']:.1f}, time_dist {p['time_dist']}, dimension shift "
          f"{p['time_shift']:.4f} (sqrt(784/4096) = 0.4375 < 1: the preset clamps it to 1, RAE asserts s >= 1)")
    main_model, guide_model = make_models()
    print(f"main DiT^DH {main_model.num_params:,} parameters; guide DiT^DH {guide_model.num_params:,} parameters")
    main_model = train("main ", main_model, transport, latents, labels, steps, 64, seed=0)
    guide_model = train("guide", guide_model, transport, latents, labels, guide_steps, 64, seed=1)

    # 4. RAE sampling: Euler on the shifted grid, equal labels, autoguidance.
    y = mixflow.equal_labels(n, CLASSES, seed=0)
    noise = np.random.default_rng(1234).standard_normal((n,) + LATENT).astype(np.float32)
    sampler = mixflow.Sampler("euler", 50, convention="rae", time_shift=p["time_shift"], guidance="auto",
                              cfg_scale=SCALE, guidance_interval=(0.0, 1.0), null_class=CLASSES)
    t = sampler.timesteps
    print(f"grid: {len(t)} points -> {len(t) - 1} Euler steps, t = {t[0]:.6f}, {t[1]:.6f}, ..., {t[-1]:.6f}")
    rae256 = mixflow.Sampler("euler", 50, convention="rae", time_shift=float(np.sqrt(768 * 16 * 16 / 4096))).timesteps
    print(f"      (the 768x16x16 latent's grid, shift 6.9282: {rae256[0]:.6f}, {rae256[1]:.6f}, ..., {rae256[-2]:.6f}, "
          f"{rae256[-1]:.6f})")
    guided = sampler.sample_model(main_model, noise, y, guide_model=guide_model)
    with mixflow.Sampler("euler", 50, convention="rae", time_shift=p["time_shift"], null_class=CLASSES) as plain_sampler:
        plain = plain_sampler.sample_model(main_model, noise, y)
        same = sampler.sample_model(main_model, noise, y, guide_model=main_model)
    print(f"NFE: {guided.nfe} (autoguidance, scale {SCALE}); per-class label counts: "
          f"{np.bincount(y, minlength=CLASSES).tolist()} (equal: floor({n}/{CLASSES}) or +1)")
    print(f"check: autoguidance with guide = main equals unguided sampling: {np.array_equal(same.x, plain.x)}")

    # 5. Back to pixels; compare with the data; a PNG grid.
    pixels = mixflow.pixel_shuffle(guided.x, R)                         # [n, 1, 28, 28]
    print(f"data     pixels: {stats(images[:10000])}")
    print(f"guided   pixels: {stats(pixels)}")
    print(f"unguided pixels: {stats(mixflow.pixel_shuffle(plain.x, R))}")
    net = mixflow.FeatureNet()
    acc = net.accuracy(np.clip(pixels, -1, 1).reshape(n, -1), y)
    print(f"class accuracy of the guided samples (Fashion-MNIST classifier): {acc:.2f} (chance 0.10; real images 0.91)")
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="rae_mixflow-"))
    out.mkdir(parents=True, exist_ok=True)
    mixflow.save_png(out / "rae_samples.png", pixels, columns=10)      # [-1, 1] pixels: SiT's uint8 rule
    print(f"wrote {out / 'rae_samples.png'} ({n} samples, row-major, labels {y[:10].tolist()}...)")
    print("Note: a one-minute training from scratch gives poor samples; what this shows is the exact pipeline.")


if __name__ == "__main__":
    main()
