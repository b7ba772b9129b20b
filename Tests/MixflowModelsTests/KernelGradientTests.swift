import Glibc
import MixflowCore
import Testing
@testable import MixflowModels

// Every kernel's backward against central finite differences of its own forward. Odd sizes exercise the
// SIMD tails. Upstream gradients are random (loss = Σ r ⊙ out).

@Test func linearBackwardMatchesFiniteDifferences() {
    let n = 5, c = 19, oc = 11
    var x = randomArray(n * c, seed: 1), w = randomArray(oc * c, seed: 2, scale: 0.5), b = randomArray(oc, seed: 3)
    let r = randomArray(n * oc, seed: 4)
    func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
        var o = [Float](repeating: 0, count: n * oc)
        linearForward(out: &o, inp: x, weight: w, bias: b, n: n, c: c, oc: oc, threads: 2)
        return weightedSum(o, r)
    }
    var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: oc * c), db = [Float](repeating: 0, count: oc)
    linearBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: r, inp: x, weight: w, n: n, c: c, oc: oc, threads: 2)
    #expect(checkGradient("x", &x, analytic: dx) { f($0, w, b) }.isEmpty)
    #expect(checkGradient("w", &w, analytic: dw) { f(x, $0, b) }.isEmpty)
    #expect(checkGradient("b", &b, analytic: db) { f(x, w, $0) }.isEmpty)
}

@Test func layerNormModulateBackwardMatchesFiniteDifferences() {
    let b = 2, t = 3, d = 19, stride = 3 * d
    var x = randomArray(b * t * d, seed: 5, scale: 2), mod = randomArray(b * stride, seed: 6)
    for i in 0..<(b * t * d) { x[i] += 0.7 }   // a non-zero mean
    let r = randomArray(b * t * d, seed: 7)
    func f(_ x: [Float], _ mod: [Float]) -> Double {
        var o = [Float](repeating: 0, count: b * t * d), mu = [Float](repeating: 0, count: b * t), rs = mu
        mod.withUnsafeBufferPointer { m in
            layerNormModulateForward(out: &o, mean: &mu, rstd: &rs, x: x,
                                     modulation: Modulation(mod: m.baseAddress!, stride: stride, shift: d, scale: 2 * d),
                                     b: b, t: t, d: d, threads: 2)
        }
        return weightedSum(o, r)
    }
    var o = [Float](repeating: 0, count: b * t * d), mu = [Float](repeating: 0, count: b * t), rs = mu
    var dx = [Float](repeating: 0, count: x.count), dmod = [Float](repeating: 0, count: mod.count)
    mod.withUnsafeBufferPointer { m in
        let mm = Modulation(mod: m.baseAddress!, stride: stride, shift: d, scale: 2 * d)
        layerNormModulateForward(out: &o, mean: &mu, rstd: &rs, x: x, modulation: mm, b: b, t: t, d: d, threads: 2)
        layerNormModulateBackward(dx: &dx, dmod: &dmod, dout: r, x: x, mean: mu, rstd: rs, modulation: mm,
                                  b: b, t: t, d: d, threads: 2)
    }
    #expect(dmod[0..<d].allSatisfy { $0 == 0 })   // the unused first chunk gets nothing
    #expect(checkGradient("x", &x, analytic: dx) { f($0, mod) }.isEmpty)
    #expect(checkGradient("mod", &mod, analytic: dmod, samples: 200) { f(x, $0) }.isEmpty)
}

@Test func gatedResidualBackwardMatchesFiniteDifferences() {
    let b = 2, t = 3, d = 13, stride = 2 * d
    let x = randomArray(b * t * d, seed: 8)
    var y = randomArray(b * t * d, seed: 9), mod = randomArray(b * stride, seed: 10)
    let r = randomArray(b * t * d, seed: 11)
    func f(_ y: [Float], _ mod: [Float]) -> Double {
        var o = [Float](repeating: 0, count: b * t * d)
        gatedResidualForward(out: &o, x: x, y: y, mod: mod, stride: stride, gate: d, b: b, t: t, d: d, threads: 2)
        return weightedSum(o, r) - weightedSum(x, r)
    }
    var dy = [Float](repeating: 0, count: y.count), dmod = [Float](repeating: 0, count: mod.count)
    gatedResidualBackward(dy: &dy, dmod: &dmod, dout: r, y: y, mod: mod, stride: stride, gate: d, b: b, t: t, d: d, threads: 2)
    #expect(checkGradient("y", &y, analytic: dy) { f($0, mod) }.isEmpty)
    #expect(checkGradient("mod", &mod, analytic: dmod, samples: 100) { f(y, $0) }.isEmpty)
}

@Test func attentionBackwardMatchesFiniteDifferences() {
    let b = 2, t = 5, d = 12, heads = 3
    var qkv = randomArray(b * t * 3 * d, seed: 12, scale: 1.5)
    let r = randomArray(b * t * d, seed: 13)
    func f(_ qkv: [Float]) -> Double {
        var o = [Float](repeating: 0, count: b * t * d)
        attentionForward(out: &o, qkv: qkv, b: b, t: t, d: d, heads: heads, threads: 2)
        return weightedSum(o, r)
    }
    var dqkv = [Float](repeating: 0, count: qkv.count)
    attentionBackward(dqkv: &dqkv, dout: r, qkv: qkv, b: b, t: t, d: d, heads: heads, threads: 2)
    #expect(checkGradient("qkv", &qkv, analytic: dqkv, samples: 400) { f($0) }.isEmpty)
}

@Test func attentionForwardMatchesADirectSoftmax() {
    // Independent reference: the formula evaluated in double, one (sample, head, query) at a time.
    let b = 1, t = 4, d = 8, heads = 2, hd = 4
    let qkv = randomArray(b * t * 3 * d, seed: 14, scale: 2)
    var o = [Float](repeating: 0, count: t * d)
    attentionForward(out: &o, qkv: qkv, b: b, t: t, d: d, heads: heads, threads: 1)
    for h in 0..<heads {
        for i in 0..<t {
            var s = [Double](repeating: 0, count: t)
            for j in 0..<t {
                for e in 0..<hd { s[j] += Double(qkv[i * 3 * d + h * hd + e]) * Double(qkv[j * 3 * d + d + h * hd + e]) }
                s[j] /= Double(hd).squareRoot()
            }
            let m = s.max()!, z = s.map { Glibc.exp($0 - m) }.reduce(0, +)
            for e in 0..<hd {
                var v = 0.0
                for j in 0..<t { v += Glibc.exp(s[j] - m) / z * Double(qkv[j * 3 * d + 2 * d + h * hd + e]) }
                #expect(abs(Double(o[i * d + h * hd + e]) - v) < 1e-5)
            }
        }
    }
}

@Test func geluAndSiluBackwardMatchFiniteDifferences() {
    let n = 37
    var x = randomArray(n, seed: 15, scale: 4)
    let r = randomArray(n, seed: 16)
    var dg = [Float](repeating: 0, count: n), ds = dg
    geluBackward(dinp: &dg, dout: r, inp: x, count: n, threads: 2)
    siluBackward(dinp: &ds, dout: r, inp: x, count: n)
    #expect(checkGradient("gelu", &x, analytic: dg) { x in
        var o = [Float](repeating: 0, count: n); geluForward(out: &o, inp: x, count: n, threads: 2); return weightedSum(o, r)
    }.isEmpty)
    #expect(checkGradient("silu", &x, analytic: ds) { x in
        var o = [Float](repeating: 0, count: n); siluForward(out: &o, inp: x, count: n); return weightedSum(o, r)
    }.isEmpty)
    // Values against the closed forms in double (tanh approximation of GELU; x·σ(x)).
    var g = [Float](repeating: 0, count: n), s = g
    geluForward(out: &g, inp: x, count: n, threads: 1); siluForward(out: &s, inp: x, count: n)
    for i in 0..<n {
        let v = Double(x[i])
        let ge = 0.5 * v * (1 + Glibc.tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
        #expect(abs(Double(g[i]) - ge) < 2e-6 * max(1, abs(ge)))
        #expect(abs(Double(s[i]) - v / (1 + Glibc.exp(-v))) < 2e-6 * max(1, abs(v)))
    }
}

