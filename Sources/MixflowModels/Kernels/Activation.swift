import MixflowCore

// MARK: - GELU, tanh approximation (timm Mlp with approximate="tanh")
// g(x) = ½·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³)

@usableFromInline let geluC: Float = 0.7978845608028654   // √(2/π)
@usableFromInline let geluA: Float = 0.044715

/// tanh(u) = 1 − 2/(e^{2u} + 1): exact at both tails (±1) with the clamped SIMD exp.
@inlinable func tanh8(_ u: SIMD8<Float>) -> SIMD8<Float> {
    1 - 2 / (SIMDMath.exp(2 * u) + 1)
}

@inlinable func tanhScalar(_ u: Float) -> Float {
    var v = SIMD8<Float>(repeating: 0); v[0] = u
    return tanh8(v)[0]
}

/// inp: [N] → out: [N] (may alias inp).
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int, threads: Int) {
    parallelFor((n + 7) / 8, threads: threads, grain: elementGrain / 8) { r in
        let lo = r.lowerBound * 8, hi = min(n, r.upperBound * 8)
        var i = lo
        while i + 8 <= hi {
            let x = inp.simd8(i)
            let th = tanh8(geluC * (x + geluA * x * x * x))
            out.store8(0.5 * x * (1 + th), i)
            i += 8
        }
        while i < hi {
            let x = inp[i]
            out[i] = 0.5 * x * (1 + tanhScalar(geluC * (x + geluA * x * x * x)))
            i += 1
        }
    }
}

/// dout, inp (the pre-activation): [N] → dinp: [N] (+=).
public func geluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         count n: Int, threads: Int) {
    parallelFor((n + 7) / 8, threads: threads, grain: elementGrain / 8) { r in
        let lo = r.lowerBound * 8, hi = min(n, r.upperBound * 8)
        var i = lo
        while i + 8 <= hi {
            let x = inp.simd8(i)
            let th = tanh8(geluC * (x + geluA * x * x * x))
            let du = geluC * (1 + 3 * geluA * x * x)
            let d = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du
            dinp.store8(dinp.simd8(i) + d * dout.simd8(i), i)
            i += 8
        }
        while i < hi {
            let x = inp[i]
            let th = tanhScalar(geluC * (x + geluA * x * x * x))
            let d = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * geluC * (1 + 3 * geluA * x * x)
            dinp[i] += d * dout[i]
            i += 1
        }
    }
}

// MARK: - SiLU, s(x) = x·σ(x); s'(x) = σ(x)·(1 + x·(1 − σ(x)))

@inlinable func sigmoid8(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 / (1 + SIMDMath.exp(-x)) }

/// inp: [N] → out: [N] (may alias inp). Used on the conditioning vectors only ([B, D]), so serial.
public func siluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int) {
    var i = 0
    while i + 8 <= n { let x = inp.simd8(i); out.store8(x * sigmoid8(x), i); i += 8 }
    while i < n { let x = inp[i]; out[i] = x / (1 + SIMDMath.exp(SIMD8(repeating: -x))[0]); i += 1 }
}

/// dout, inp: [N] → dinp: [N] (+=).
public func siluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                         count n: Int) {
    var i = 0
    while i + 8 <= n {
        let x = inp.simd8(i), s = sigmoid8(x)
        dinp.store8(dinp.simd8(i) + dout.simd8(i) * s * (1 + x * (1 - s)), i)
        i += 8
    }
    while i < n {
        let x = inp[i], s = 1 / (1 + SIMDMath.exp(SIMD8(repeating: -x))[0])
        dinp[i] += dout[i] * s * (1 + x * (1 - s))
        i += 1
    }
}
