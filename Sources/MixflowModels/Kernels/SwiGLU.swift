import MixflowCore

// MARK: - SwiGLU gate (SwiGLUFFN of DiT^DH, docs/exactness.md §6.3)
// The w12 output row of a token is [a (H) | b (H)] (chunk(2) order: a first); hidden = SiLU(a) ⊙ b.

/// inp: [N, 2H] → out: [N, H] (overwritten).
public func swigluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int, hidden h: Int,
                          threads: Int) {
    parallelFor(n, threads: threads, grain: max(1, elementGrain / (4 * h))) { rows in
        for r in rows {
            let a = inp + r * 2 * h, bb = a + h, o = out + r * h
            var i = 0
            while i + 8 <= h { let x = a.simd8(i); o.store8(x * sigmoid8(x) * bb.simd8(i), i); i += 8 }
            while i < h { o[i] = a[i] * sigmoidScalar(a[i]) * bb[i]; i += 1 }
        }
    }
}

/// dout: [N, H], inp: [N, 2H] (the w12 output) → dinp: [N, 2H] (+=).
///
/// `da = dout ⊙ b ⊙ σ(a)·(1 + a·(1 − σ(a)))`, `db = dout ⊙ SiLU(a)`.
public func swigluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                           n: Int, hidden h: Int, threads: Int) {
    parallelFor(n, threads: threads, grain: max(1, elementGrain / (4 * h))) { rows in
        for r in rows {
            let a = inp + r * 2 * h, bb = a + h, g = dout + r * h
            let da = dinp + r * 2 * h, db = da + h
            var i = 0
            while i + 8 <= h {
                let x = a.simd8(i), s = sigmoid8(x), gv = g.simd8(i)
                da.store8(da.simd8(i) + gv * bb.simd8(i) * s * (1 + x * (1 - s)), i)
                db.store8(db.simd8(i) + gv * x * s, i)
                i += 8
            }
            while i < h {
                let x = a[i], s = sigmoidScalar(x)
                da[i] += g[i] * bb[i] * s * (1 + x * (1 - s))
                db[i] += g[i] * x * s
                i += 1
            }
        }
    }
}

/// σ(x) through the same SIMD exp as the vector lanes, so tails and bodies agree bit for bit.
@inlinable func sigmoidScalar(_ x: Float) -> Float {
    var v = SIMD8<Float>(repeating: 0); v[0] = x
    return sigmoid8(v)[0]
}
