import MixflowCore

// MARK: - Patch embedding as im2col + Linear (Conv2d with kernel = stride = p is exactly that)
// Token n = i·Wp + j (row-major over the patch grid); its feature vector is ordered (channel, p_row, p_col),
// the flattening of the conv weight [D, C, p, p], so x_embedder.proj.weight is used as a [D, C·p·p] matrix.

/// x: [B, C, H, W] → patches: [B, T, C·p·p] with T = (H/p)·(W/p) (overwritten).
public func patchifyForward(patches: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                            b: Int, c: Int, h: Int, w: Int, p: Int) {
    let hp = h / p, wp = w / p, f = c * p * p
    for s in 0..<b {
        for i in 0..<hp {
            for j in 0..<wp {
                let dst = patches + ((s * hp + i) * wp + j) * f
                for ch in 0..<c {
                    for pr in 0..<p {
                        let src = x + ((s * c + ch) * h + i * p + pr) * w + j * p
                        for pc in 0..<p { dst[(ch * p + pr) * p + pc] = src[pc] }
                    }
                }
            }
        }
    }
}

/// dpatches: [B, T, C·p·p] → dx: [B, C, H, W] (+=). Patches do not overlap, so each pixel gets one term.
public func patchifyBackward(dx: UnsafeMutablePointer<Float>, dpatches: UnsafePointer<Float>,
                             b: Int, c: Int, h: Int, w: Int, p: Int) {
    let hp = h / p, wp = w / p, f = c * p * p
    for s in 0..<b {
        for i in 0..<hp {
            for j in 0..<wp {
                let src = dpatches + ((s * hp + i) * wp + j) * f
                for ch in 0..<c {
                    for pr in 0..<p {
                        let dst = dx + ((s * c + ch) * h + i * p + pr) * w + j * p
                        for pc in 0..<p { dst[pc] += src[(ch * p + pr) * p + pc] }
                    }
                }
            }
        }
    }
}

// MARK: - Unpatchify (SiT.unpatchify) with the learn_sigma channel drop
// Token features f = (p_r·p + p_c)·C_out + c map to pixel (c, i·p + p_r, j·p + p_c); only c < C is kept
// (with learn_sigma C_out = 2C and the kept rows of the final linear are those with f mod 2C < C).

/// o: [B, T, p²·C_out] → out: [B, C, H, W] (overwritten), keeping channels c < C.
public func unpatchifyForward(out: UnsafeMutablePointer<Float>, o: UnsafePointer<Float>,
                              b: Int, c: Int, cOut: Int, h: Int, w: Int, p: Int) {
    let hp = h / p, wp = w / p, f = p * p * cOut
    for s in 0..<b {
        for i in 0..<hp {
            for j in 0..<wp {
                let src = o + ((s * hp + i) * wp + j) * f
                for ch in 0..<c {
                    for pr in 0..<p {
                        let dst = out + ((s * c + ch) * h + i * p + pr) * w + j * p
                        for pc in 0..<p { dst[pc] = src[(pr * p + pc) * cOut + ch] }
                    }
                }
            }
        }
    }
}

/// dout: [B, C, H, W] → do: [B, T, p²·C_out] (+=); the dropped channels get no gradient.
public func unpatchifyBackward(do dO: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                               b: Int, c: Int, cOut: Int, h: Int, w: Int, p: Int) {
    let hp = h / p, wp = w / p, f = p * p * cOut
    for s in 0..<b {
        for i in 0..<hp {
            for j in 0..<wp {
                let dst = dO + ((s * hp + i) * wp + j) * f
                for ch in 0..<c {
                    for pr in 0..<p {
                        let src = dout + ((s * c + ch) * h + i * p + pr) * w + j * p
                        for pc in 0..<p { dst[(pr * p + pc) * cOut + ch] += src[pc] }
                    }
                }
            }
        }
    }
}
