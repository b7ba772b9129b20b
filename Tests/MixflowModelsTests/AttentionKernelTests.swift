import CKernels
import Glibc
import MixflowCore
import Testing

// The fused attention kernel (Sources/CKernels/attention_body.h) against two references: the unfused path it
// replaced (BLAS.sgemm for every product, mfx_softmax_rows / mfx_softmax_backward_rows), which it must equal
// bit for bit on every build, and the formulas evaluated in double.

/// One head of a qkv laid out as the models do: token rows of [q (d) | k (d) | v (d)], the head at column `h0`.
private struct Head {
    let t: Int, hd: Int, d: Int, h0: Int
    var ld: Int { 3 * d }
    var scale: Float { 1 / Float(hd).squareRoot() }

    init(t: Int, hd: Int) { (self.t, self.hd, self.d, self.h0) = (t, hd, 2 * hd + 3, hd + 1) }

    func fused(_ isa: Int32, _ qkv: [Float], _ dout: [Float], _ dqkv0: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: t * d), dqkv = dqkv0
        var scratch = [Float](repeating: .nan, count: mfx_attention_scratch(t, hd))
        qkv.withUnsafeBufferPointer { x in
            dout.withUnsafeBufferPointer { go in
                out.withUnsafeMutableBufferPointer { o in
                    dqkv.withUnsafeMutableBufferPointer { g in
                        let q = x.baseAddress! + h0, dq = g.baseAddress! + h0
                        mfx_attention_forward(isa, o.baseAddress! + h0, d, q, q + d, q + 2 * d, ld, t, hd, scale, &scratch)
                        mfx_attention_backward(isa, dq, dq + d, dq + 2 * d, ld, go.baseAddress! + h0, d, q, q + d, q + 2 * d,
                                               ld, t, hd, scale, &scratch)
                    }
                }
            }
        }
        return out + dqkv
    }

    /// The unfused path: whole [t, t] matrices, every product a BLAS.sgemm call.
    func unfused(_ isa: Int32, _ qkv: [Float], _ dout: [Float], _ dqkv0: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: t * d), dqkv = dqkv0
        var p = [Float](repeating: 0, count: t * t), dp = p
        qkv.withUnsafeBufferPointer { x in
            dout.withUnsafeBufferPointer { go in
                out.withUnsafeMutableBufferPointer { o in dqkv.withUnsafeMutableBufferPointer { g in
                    let q = x.baseAddress! + h0, k = q + d, v = q + 2 * d
                    let dq = g.baseAddress! + h0, dk = dq + d, dv = dq + 2 * d, dO = go.baseAddress! + h0
                    BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: hd, alpha: scale, a: q, lda: ld, b: k,
                               ldb: ld, beta: 0, c: &p, ldc: t)
                    mfx_softmax_rows(isa, &p, t, t)
                    BLAS.sgemm(transA: false, transB: false, m: t, n: hd, k: t, a: p, lda: t, b: v, ldb: ld,
                               beta: 0, c: o.baseAddress! + h0, ldc: d)
                    BLAS.sgemm(transA: true, transB: false, m: t, n: hd, k: t, a: p, lda: t, b: dO, ldb: d,
                               beta: 1, c: dv, ldc: ld)
                    BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: hd, a: dO, lda: d, b: v, ldb: ld,
                               beta: 0, c: &dp, ldc: t)
                    mfx_softmax_backward_rows(isa, &dp, p, t, t)
                    BLAS.sgemm(transA: false, transB: false, m: t, n: hd, k: t, alpha: scale, a: dp, lda: t, b: k,
                               ldb: ld, beta: 1, c: dq, ldc: ld)
                    BLAS.sgemm(transA: true, transB: false, m: t, n: hd, k: t, alpha: scale, a: dp, lda: t, b: q,
                               ldb: ld, beta: 1, c: dk, ldc: ld)
                } }
            }
        }
        return out + dqkv
    }
}

@Test func fusedAttentionEqualsTheUnfusedGEMMPathOnEveryBuild() {
    // Around the register tiles (4..6 rows, 16..64 columns), the 48-row blocks and the 16-lane tails.
    for (t, hd) in [(1, 1), (5, 7), (16, 16), (17, 33), (47, 24), (48, 64), (49, 17), (100, 80), (256, 64)] {
        let head = Head(t: t, hd: hd)
        let qkv = randomArray(t * head.ld, seed: 81, scale: 3), dout = randomArray(t * head.d, seed: 82)
        let dqkv0 = randomArray(t * head.ld, seed: 83)
        for build in kernelBuilds {
            let want = head.unfused(build.rawValue, qkv, dout, dqkv0).map(\.bitPattern)
            let got = head.fused(build.rawValue, qkv, dout, dqkv0).map(\.bitPattern)
            let differing = zip(want, got).filter { $0 != $1 }.count
            #expect(differing == 0, "t=\(t) hd=\(hd) \(build.name): \(differing) of \(got.count) floats differ")
        }
    }
}

@Test func fusedAttentionMatchesTheFormulasInDouble() {
    // Two row blocks and a partial one (t = 110), a head width with a tail (hd = 20).
    let head = Head(t: 110, hd: 20)
    let (t, hd, d, ld, h0) = (head.t, head.hd, head.d, head.ld, head.h0)
    let qkv = randomArray(t * ld, seed: 84, scale: 2), dout = randomArray(t * d, seed: 85)
    let zero = [Float](repeating: 0, count: t * ld)
    func x(_ i: Int, _ part: Int, _ e: Int) -> Double { Double(qkv[i * ld + part * d + h0 + e]) }
    func g(_ i: Int, _ e: Int) -> Double { Double(dout[i * d + h0 + e]) }
    // P, O, dP, dS in double.
    var p = [[Double]](repeating: [Double](repeating: 0, count: t), count: t)
    for i in 0..<t {
        for j in 0..<t { p[i][j] = (0..<hd).reduce(0) { $0 + x(i, 0, $1) * x(j, 1, $1) } / Double(hd).squareRoot() }
        let m = p[i].max()!, z = p[i].map { Glibc.exp($0 - m) }.reduce(0, +)
        p[i] = p[i].map { Glibc.exp($0 - m) / z }
    }
    var ds = p
    for i in 0..<t {
        let dp = (0..<t).map { j in (0..<hd).reduce(0) { $0 + g(i, $1) * x(j, 2, $1) } }
        let c = (0..<t).reduce(0) { $0 + p[i][$1] * dp[$1] }
        for j in 0..<t { ds[i][j] = p[i][j] * (dp[j] - c) / Double(hd).squareRoot() }
    }
    for build in kernelBuilds {
        let r = head.fused(build.rawValue, qkv, dout, zero)
        let out = Array(r[0..<(t * d)]), dqkv = Array(r[(t * d)...])
        // Error of each output relative to its largest magnitude: dS has cancellation (dP − rowsum), so single
        // small elements can have large relative errors while the output as a whole is float-accurate.
        var error = [Double](repeating: 0, count: 4), size = error
        for i in 0..<t {
            for e in 0..<hd {
                let o = (0..<t).reduce(0) { $0 + p[i][$1] * x($1, 2, e) }
                let dq = (0..<t).reduce(0) { $0 + ds[i][$1] * x($1, 1, e) }
                let dk = (0..<t).reduce(0) { $0 + ds[$1][i] * x($1, 0, e) }
                let dv = (0..<t).reduce(0) { $0 + p[$1][i] * g($1, e) }
                let got = [out[i * d + h0 + e], dqkv[i * ld + h0 + e], dqkv[i * ld + d + h0 + e], dqkv[i * ld + 2 * d + h0 + e]]
                for (n, (a, b)) in zip(got, [o, dq, dk, dv]).enumerated() {
                    error[n] = max(error[n], abs(Double(a) - b))
                    size[n] = max(size[n], abs(b))
                }
            }
        }
        let worst = zip(error, size).map { $0 / $1 }.max()!
        #expect(worst < 2e-6, "\(build.name): errors \(error) of outputs up to \(size)")
    }
}
