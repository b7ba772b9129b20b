"""Independent numpy references for data and evaluation: an IDX reader (docs/exactness.md §7.4), a forward of the
feature CNN written from the file layout, Philox4x32-10, the KID subset rule and the unbiased MMD², and the
Fréchet distance in both the scipy sqrtm form and the symmetric eigen form of docs/exactness.md §7.2."""
import gzip
import struct
import warnings

import numpy as np
import scipy.linalg


def idx_numpy(path) -> np.ndarray:
    b = open(path, "rb").read()
    if b[:2] == b"\x1f\x8b":
        b = gzip.decompress(b)
    dtype = {8: ">u1", 9: ">i1", 11: ">i2", 12: ">i4", 13: ">f4", 14: ">f8"}[b[2]]
    nd = b[3]
    shape = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, dtype, offset=4 + 4 * nd).reshape(shape)


def load_net(path):
    b = open(path, "rb").read()
    assert b[:8] == b"MXFNET02"
    c, h, w, nconv = struct.unpack_from("<4I", b, 8)
    off = 24
    convs = []
    for _ in range(nconv):
        convs.append(struct.unpack_from("<2I", b, off))
        off += 8
    (nfc,) = struct.unpack_from("<I", b, off)
    fcs = list(struct.unpack_from(f"<{nfc}I", b, off + 4))
    off += 4 + 4 * nfc
    layers = []

    def take(n):
        nonlocal off
        a = np.frombuffer(b, "<f4", n, off)
        off += 4 * n
        return a

    ch, hh, ww = c, h, w
    for oc, pool in convs:
        layers.append(("conv", take(oc * ch * 9).reshape(oc, ch, 3, 3), take(oc), pool))
        ch = oc
        if pool:
            hh, ww = hh // 2, ww // 2
    f = ch * hh * ww
    for o in fcs:
        layers.append(("fc", take(o * f).reshape(o, f), take(o), 0))
        f = o
    assert off == len(b)
    return (c, h, w), layers


def forward_numpy(net, images):
    """images [n, c*h*w] float32 -> (features, logits), computed in float64."""
    (c, h, w), layers = net
    x = images.reshape(-1, c, h, w).astype(np.float64)
    fcs = [l for l in layers if l[0] == "fc"]
    for kind, wt, bias, pool in layers:
        if kind == "conv":
            p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
            win = np.lib.stride_tricks.sliding_window_view(p, (3, 3), axis=(2, 3))   # n, c, h, w, 3, 3
            x = np.maximum(np.einsum("nchwij,ocij->nohw", win, wt.astype(np.float64), optimize=True) + bias[:, None, None], 0)
            if pool:
                n, k, hh, ww = x.shape
                x = x[:, :, :hh // 2 * 2, :ww // 2 * 2].reshape(n, k, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
    x = x.reshape(len(x), -1)
    features = None
    for i, (_, wt, bias, _) in enumerate(fcs):
        x = x @ wt.T.astype(np.float64) + bias
        if i < len(fcs) - 1:
            x = np.maximum(x, 0)
        if i == len(fcs) - 2:
            features = x
    return features, x


# ---- Philox4x32-10 (Random123) and the KID subset rule of Sources/MixflowEval/KID.swift -----------------------
M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox(c, key):
    c0, c1, c2, c3 = c
    k0, k1 = key
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + W0) & MASK, (k1 + W1) & MASK
        p0, p1 = M0 * c0, M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK, p1 & MASK, ((p0 >> 32) ^ c3 ^ k1) & MASK, p0 & MASK
    return c0, c1, c2, c3


def kid_subset(n, m, seed, s, which):
    idx = list(range(n))
    key = (seed & MASK, (seed >> 32) & MASK)
    for i in range(m):
        w = philox((i // 2, s, which, 0x4B4944), key)
        a, b = (w[0], w[1]) if i % 2 == 0 else (w[2], w[3])
        u = (((a << 21) ^ (b >> 11)) & ((1 << 53) - 1)) / 2.0 ** 53
        j = min(i + int(u * (n - i)), n - 1)
        idx[i], idx[j] = idx[j], idx[i]
    return np.array(idx[:m])


def mmd2_unbiased(x, y):
    x, y = x.astype(np.float64), y.astype(np.float64)
    d, m = x.shape[1], len(x)
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    return ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.sum() / m ** 2


def kid_numpy(a, b, num_subsets, m, seed):
    values = np.array([mmd2_unbiased(a[kid_subset(len(a), m, seed, s, 0)], b[kid_subset(len(b), m, seed, s, 1)])
                       for s in range(num_subsets)])
    return values.mean(), values.std(ddof=1) / np.sqrt(num_subsets), values


# ---- Fréchet distance --------------------------------------------------------------------------------------
def stats(f):
    f = f.astype(np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_sqrtm(m1, s1, m2, s2):
    with warnings.catch_warnings():   # singular covariances (dead ReLU features) are expected; callers set tolerances
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_eigen(m1, s1, m2, s2):
    w, V = np.linalg.eigh(s1)
    r1 = (V * np.sqrt(np.clip(w, 0, None))) @ V.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr)
