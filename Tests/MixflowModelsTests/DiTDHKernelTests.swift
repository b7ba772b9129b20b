import Glibc
import MixflowCore
import Testing
@testable import MixflowModels

// The DiT^DH kernels: every backward against central finite differences of its own forward, every forward
// against a direct scalar evaluation of the formula in docs/exactness.md §6.3–§6.4. Odd sizes exercise the SIMD tails.

@Test(arguments: [false, true])
func rmsNormModulateBackwardMatchesFiniteDifferences(perToken: Bool) {
    let b = 2, t = 3, d = 19, stride = 3 * d
    let (mb, mt) = perToken ? (b * t, 1) : (b, t)
    var x = randomArray(b * t * d, seed: 21, scale: 2), w = randomArray(d, seed: 22, scale: 0.5)
    var mod = randomArray(mb * stride, seed: 23)
    for i in 0..<d { w[i] += 1 }
    let r = randomArray(b * t * d, seed: 24)
    func run(_ x: [Float], _ w: [Float], _ mod: [Float]) -> [Float] {
        var o = [Float](repeating: 0, count: b * t * d), rs = [Float](repeating: 0, count: b * t)
        mod.withUnsafeBufferPointer { m in
            rmsNormModulateForward(out: &o, rstd: &rs, x: x, weight: w,
                                   modulation: Modulation(mod: m.baseAddress!, stride: stride, shift: d, scale: 2 * d),
                                   b: mb, t: mt, d: d, threads: 2)
        }
        return o
    }
    // Forward against the formula y = x/√(mean x² + 1e-6)·w·(1 + scale) + shift.
    let o = run(x, w, mod)
    for row in 0..<(b * t) {
        let xr = x[(row * d)..<(row * d + d)]
        let ms = xr.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(d)
        let m = row / mt
        for i in 0..<d {
            let want = Double(x[row * d + i]) / (ms + 1e-6).squareRoot() * Double(w[i]) * (1 + Double(mod[m * stride + 2 * d + i]))
                + Double(mod[m * stride + d + i])
            #expect(abs(Double(o[row * d + i]) - want) <= 1e-5 * max(1, abs(want)))
        }
    }
    var rs = [Float](repeating: 0, count: b * t), tmp = o
    var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: d), dmod = [Float](repeating: 0, count: mod.count)
    mod.withUnsafeBufferPointer { m in
        let mm = Modulation(mod: m.baseAddress!, stride: stride, shift: d, scale: 2 * d)
        rmsNormModulateForward(out: &tmp, rstd: &rs, x: x, weight: w, modulation: mm, b: mb, t: mt, d: d, threads: 2)
        rmsNormModulateBackward(dx: &dx, dweight: &dw, dmod: &dmod, dout: r, x: x, weight: w, rstd: rs, modulation: mm,
                                b: mb, t: mt, d: d, threads: 2)
    }
    #expect(dmod[0..<d].allSatisfy { $0 == 0 })   // the unused first chunk gets nothing
    #expect(checkGradient("x", &x, analytic: dx) { weightedSum(run($0, w, mod), r) }.isEmpty)
    #expect(checkGradient("w", &w, analytic: dw) { weightedSum(run(x, $0, mod), r) }.isEmpty)
    #expect(checkGradient("mod", &mod, analytic: dmod, samples: 200) { weightedSum(run(x, w, $0), r) }.isEmpty)
}

@Test func swigluMatchesItsFormulaAndFiniteDifferences() {
    let n = 3, h = 13
    var inp = randomArray(n * 2 * h, seed: 31, scale: 3)
    let r = randomArray(n * h, seed: 32)
    func run(_ inp: [Float]) -> [Float] {
        var o = [Float](repeating: 0, count: n * h)
        swigluForward(out: &o, inp: inp, n: n, hidden: h, threads: 2)
        return o
    }
    let o = run(inp)
    for row in 0..<n {
        for j in 0..<h {
            let a = Double(inp[row * 2 * h + j]), bb = Double(inp[row * 2 * h + h + j])
            let want = a / (1 + Glibc.exp(-a)) * bb   // SiLU(a)·b with a the FIRST half
            #expect(abs(Double(o[row * h + j]) - want) <= 1e-5 * max(1, abs(want)))
        }
    }
    var dinp = [Float](repeating: 0, count: inp.count)
    swigluBackward(dinp: &dinp, dout: r, inp: inp, n: n, hidden: h, threads: 2)
    #expect(checkGradient("inp", &inp, analytic: dinp, samples: 100) { weightedSum(run($0), r) }.isEmpty)
}

@Test func ropeTablesFollowTheOfficialLayout() {
    // grid 3, head_dim 8: dim 4 per axis, θ = [1, 10000^(−1/2)], each repeated; first half = ROW.
    let g = 3, hd = 8
    var c = [Float](repeating: 0, count: g * g * hd), s = c
    ropeTables(cos: &c, sin: &s, grid: g, headDim: hd)
    let theta = [1.0, 0.01]
    for i in 0..<g {
        for j in 0..<g {
            let n = i * g + j
            let angles = [Double(i) * theta[0], Double(i) * theta[0], Double(i) * theta[1], Double(i) * theta[1],
                          Double(j) * theta[0], Double(j) * theta[0], Double(j) * theta[1], Double(j) * theta[1]]
            for k in 0..<hd {
                #expect(abs(Double(c[n * hd + k]) - cosD(angles[k])) <= 1e-6)
                #expect(abs(Double(s[n * hd + k]) - sinD(angles[k])) <= 1e-6)
            }
        }
    }
}

@Test func ropeRotatesPairsAndItsInverseIsTheTranspose() {
    let b = 2, t = 4, d = 16, heads = 2, hd = d / heads
    let cosT = randomArray(t * hd, seed: 41), sinT = randomArray(t * hd, seed: 42)   // arbitrary tables: exercise the
    var qkv = randomArray(b * t * 3 * d, seed: 43)                                   // per-index use of cos and sin
    let r = randomArray(b * t * 3 * d, seed: 44)
    func run(_ v: [Float]) -> [Float] {
        var o = v
        ropeApply(qkv: &o, cos: cosT, sin: sinT, b: b, t: t, d: d, heads: heads, inverse: false, threads: 2)
        return o
    }
    let o = run(qkv)
    for row in 0..<(b * t) {
        let tok = row % t
        for col in 0..<(3 * d) {
            let i = row * 3 * d + col
            guard col < 2 * d else { #expect(o[i] == qkv[i]); continue }   // v is untouched
            let m = col % hd
            let want: Float = m % 2 == 0
                ? qkv[i] * cosT[tok * hd + m] - qkv[i + 1] * sinT[tok * hd + m]
                : qkv[i] * cosT[tok * hd + m] + qkv[i - 1] * sinT[tok * hd + m]
            #expect(abs(o[i] - want) <= 1e-6)
        }
    }
    // The backward (inverse = transpose) is the gradient of Σ r ⊙ rope(qkv).
    var g = r
    ropeApply(qkv: &g, cos: cosT, sin: sinT, b: b, t: t, d: d, heads: heads, inverse: true, threads: 2)
    #expect(checkGradient("qkv", &qkv, analytic: g, samples: 200) { weightedSum(run($0), r) }.isEmpty)
}

@Test func fourierFeaturesAreSinFirstWithTheStoredW() {
    let t: [Float] = [0, 0.37, 1], w = randomArray(fourierFeatures, seed: 51, scale: 3)
    var out = [Float](repeating: 0, count: 3 * 2 * fourierFeatures)
    fourierFeaturesForward(out: &out, t: t, w: w, b: 3)
    for s in 0..<3 {
        for k in 0..<fourierFeatures {
            let a = 2 * Double.pi * Double(t[s]) * Double(w[k])
            #expect(abs(Double(out[s * 512 + k]) - sinD(a)) <= 2e-6)
            #expect(abs(Double(out[s * 512 + 256 + k]) - cosD(a)) <= 2e-6)
        }
    }
}
