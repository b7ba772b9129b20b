import MixflowCore
import Testing
@testable import MixflowModels

// Finite-difference checks of the composite layers: adaLN (SiLU → Linear), the timestep-embedding MLP,
// patch embedding (+ fixed positions), the final layer with unpatchify, and the label table.

@Test func adaLNBackwardMatchesFiniteDifferences() {
    let b = 3, d = 10, oc = 6 * d
    var c = randomArray(b * d, seed: 20, scale: 3), w = randomArray(oc * d, seed: 21, scale: 0.5), bias = randomArray(oc, seed: 22)
    let r = randomArray(b * oc, seed: 23)
    func f(_ c: [Float], _ w: [Float], _ bias: [Float]) -> Double {
        var sc = [Float](repeating: 0, count: b * d), o = [Float](repeating: 0, count: b * oc)
        siluForward(out: &sc, inp: c, count: b * d)
        linearForward(out: &o, inp: sc, weight: w, bias: bias, n: b, c: d, oc: oc, threads: 2)
        return weightedSum(o, r)
    }
    var sc = [Float](repeating: 0, count: b * d)
    siluForward(out: &sc, inp: c, count: b * d)
    var dsc = [Float](repeating: 0, count: b * d), dc = dsc, dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: oc)
    linearBackward(dinp: &dsc, dweight: &dw, dbias: &db, dout: r, inp: sc, weight: w, n: b, c: d, oc: oc, threads: 2)
    siluBackward(dinp: &dc, dout: dsc, inp: c, count: b * d)
    #expect(checkGradient("c", &c, analytic: dc) { f($0, w, bias) }.isEmpty)
    #expect(checkGradient("w", &w, analytic: dw) { f(c, $0, bias) }.isEmpty)
    #expect(checkGradient("bias", &bias, analytic: db) { f(c, w, $0) }.isEmpty)
}

@Test func timestepEmbeddingMLPBackwardMatchesFiniteDifferences() {
    let b = 3, d = 12, nf = timestepFeatures
    let t: [Float] = [0, 0.37, 1]
    var w0 = randomArray(d * nf, seed: 24, scale: 0.2), b0 = randomArray(d, seed: 25)
    var w2 = randomArray(d * d, seed: 26, scale: 0.5), b2 = randomArray(d, seed: 27)
    let r = randomArray(b * d, seed: 28)
    var freq = [Float](repeating: 0, count: b * nf)
    timestepFeaturesForward(out: &freq, t: t, b: b)
    func f(_ w0: [Float], _ b0: [Float], _ w2: [Float], _ b2: [Float]) -> Double {
        var h = [Float](repeating: 0, count: b * d), hs = h, o = h
        linearForward(out: &h, inp: freq, weight: w0, bias: b0, n: b, c: nf, oc: d, threads: 1)
        siluForward(out: &hs, inp: h, count: b * d)
        linearForward(out: &o, inp: hs, weight: w2, bias: b2, n: b, c: d, oc: d, threads: 1)
        return weightedSum(o, r)
    }
    var h = [Float](repeating: 0, count: b * d), hs = h
    linearForward(out: &h, inp: freq, weight: w0, bias: b0, n: b, c: nf, oc: d, threads: 1)
    siluForward(out: &hs, inp: h, count: b * d)
    var dhs = [Float](repeating: 0, count: b * d), dh = dhs
    var dw0 = [Float](repeating: 0, count: w0.count), db0 = [Float](repeating: 0, count: d)
    var dw2 = [Float](repeating: 0, count: w2.count), db2 = [Float](repeating: 0, count: d)
    linearBackward(dinp: &dhs, dweight: &dw2, dbias: &db2, dout: r, inp: hs, weight: w2, n: b, c: d, oc: d, threads: 1)
    siluBackward(dinp: &dh, dout: dhs, inp: h, count: b * d)
    linearBackward(dinp: nil, dweight: &dw0, dbias: &db0, dout: dh, inp: freq, weight: w0, n: b, c: nf, oc: d, threads: 1)
    #expect(checkGradient("w0", &w0, analytic: dw0, samples: 200) { f($0, b0, w2, b2) }.isEmpty)
    #expect(checkGradient("b0", &b0, analytic: db0) { f(w0, $0, w2, b2) }.isEmpty)
    #expect(checkGradient("w2", &w2, analytic: dw2) { f(w0, b0, $0, b2) }.isEmpty)
    #expect(checkGradient("b2", &b2, analytic: db2) { f(w0, b0, w2, $0) }.isEmpty)
    // Feature layout: cos first, then sin, f_k = 10000^(−k/128); t = 0 gives [1…1, 0…0].
    #expect(freq[0..<128].allSatisfy { $0 == 1 } && freq[128..<256].allSatisfy { $0 == 0 })
    let k = 77, fk = Double(Float(Glibc_pow(10000, -Double(k) / 128)))
    #expect(abs(Double(freq[nf + k]) - cosD(Double(Float(0.37 * fk)))) < 1e-6)
    #expect(abs(Double(freq[nf + 128 + k]) - sinD(Double(Float(0.37 * fk)))) < 1e-6)
}

@Test func patchEmbedBackwardMatchesFiniteDifferences() {
    let b = 2, c = 3, s = 6, p = 2, d = 5, g = s / p, tk = g * g, fdim = c * p * p
    var x = randomArray(b * c * s * s, seed: 30), w = randomArray(d * fdim, seed: 31), bias = randomArray(d, seed: 32)
    let pos = randomArray(tk * d, seed: 33)
    let r = randomArray(b * tk * d, seed: 34)
    func f(_ x: [Float], _ w: [Float], _ bias: [Float]) -> Double {
        var pa = [Float](repeating: 0, count: b * tk * fdim), o = [Float](repeating: 0, count: b * tk * d)
        patchifyForward(patches: &pa, x: x, b: b, c: c, h: s, w: s, p: p)
        linearForward(out: &o, inp: pa, weight: w, bias: bias, n: b * tk, c: fdim, oc: d, threads: 2)
        addPositional(x: &o, pos: pos, b: b, t: tk, d: d)
        return weightedSum(o, r)
    }
    var pa = [Float](repeating: 0, count: b * tk * fdim)
    patchifyForward(patches: &pa, x: x, b: b, c: c, h: s, w: s, p: p)
    // A conv with kernel = stride = p: token (i, j), feature (ch, pr, pc) is pixel (ch, i·p + pr, j·p + pc).
    #expect(pa[(1 * tk + (2 * g + 1)) * fdim + (2 * p + 1) * p + 0] == x[((1 * c + 2) * s + 2 * p + 1) * s + 1 * p + 0])
    var dpa = [Float](repeating: 0, count: pa.count), dx = [Float](repeating: 0, count: x.count)
    var dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: d)
    linearBackward(dinp: &dpa, dweight: &dw, dbias: &db, dout: r, inp: pa, weight: w, n: b * tk, c: fdim, oc: d, threads: 2)
    patchifyBackward(dx: &dx, dpatches: dpa, b: b, c: c, h: s, w: s, p: p)
    #expect(checkGradient("x", &x, analytic: dx, samples: 216) { f($0, w, bias) }.isEmpty)
    #expect(checkGradient("w", &w, analytic: dw) { f(x, $0, bias) }.isEmpty)
    #expect(checkGradient("bias", &bias, analytic: db) { f(x, w, $0) }.isEmpty)
}

@Test(arguments: [true, false])
func finalLayerBackwardMatchesFiniteDifferences(learnSigma: Bool) {
    let b = 2, d = 8, c = 2, s = 4, p = 2, g = s / p, tk = g * g, cOut = learnSigma ? 2 * c : c, fo = p * p * cOut
    var x = randomArray(b * tk * d, seed: 40, scale: 2), mod = randomArray(b * 2 * d, seed: 41)
    var w = randomArray(fo * d, seed: 42), bias = randomArray(fo, seed: 43)
    let r = randomArray(b * c * s * s, seed: 44)
    func f(_ x: [Float], _ mod: [Float], _ w: [Float], _ bias: [Float]) -> Double {
        var m = [Float](repeating: 0, count: x.count), mu = [Float](repeating: 0, count: b * tk), rs = mu
        var o = [Float](repeating: 0, count: b * tk * fo), out = [Float](repeating: 0, count: r.count)
        mod.withUnsafeBufferPointer { mp in
            layerNormModulateForward(out: &m, mean: &mu, rstd: &rs, x: x,
                                     modulation: Modulation(mod: mp.baseAddress!, stride: 2 * d, shift: 0, scale: d),
                                     b: b, t: tk, d: d, threads: 1)
        }
        linearForward(out: &o, inp: m, weight: w, bias: bias, n: b * tk, c: d, oc: fo, threads: 1)
        unpatchifyForward(out: &out, o: o, b: b, c: c, cOut: cOut, h: s, w: s, p: p)
        return weightedSum(out, r)
    }
    var m = [Float](repeating: 0, count: x.count), mu = [Float](repeating: 0, count: b * tk), rs = mu
    var dO = [Float](repeating: 0, count: b * tk * fo), dm = m, dx = m, dmod = [Float](repeating: 0, count: mod.count)
    var dw = [Float](repeating: 0, count: w.count), db = [Float](repeating: 0, count: fo)
    mod.withUnsafeBufferPointer { mp in
        let mm = Modulation(mod: mp.baseAddress!, stride: 2 * d, shift: 0, scale: d)
        layerNormModulateForward(out: &m, mean: &mu, rstd: &rs, x: x, modulation: mm, b: b, t: tk, d: d, threads: 1)
        unpatchifyBackward(do: &dO, dout: r, b: b, c: c, cOut: cOut, h: s, w: s, p: p)
        linearBackward(dinp: &dm, dweight: &dw, dbias: &db, dout: dO, inp: m, weight: w, n: b * tk, c: d, oc: fo, threads: 1)
        layerNormModulateBackward(dx: &dx, dmod: &dmod, dout: dm, x: x, mean: mu, rstd: rs, modulation: mm,
                                  b: b, t: tk, d: d, threads: 1)
    }
    if learnSigma {   // rows f with f mod 2C >= C are the dropped sigma half: exactly zero gradient
        for f in 0..<fo where f % cOut >= c { #expect(db[f] == 0 && dw[(f * d)..<(f * d + d)].allSatisfy { $0 == 0 }) }
    }
    #expect(checkGradient("x", &x, analytic: dx) { f($0, mod, w, bias) }.isEmpty)
    #expect(checkGradient("mod", &mod, analytic: dmod) { f(x, $0, w, bias) }.isEmpty)
    #expect(checkGradient("w", &w, analytic: dw) { f(x, mod, $0, bias) }.isEmpty)
    #expect(checkGradient("bias", &bias, analytic: db) { f(x, mod, w, $0) }.isEmpty)
}

@Test func labelEmbeddingBackwardAddsRowsOfRepeatedLabels() {
    let d = 3
    let labels: [Int32] = [2, 0, 2]
    let dout: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    var dt = [Float](repeating: 0, count: 4 * d)
    embeddingBackward(dtable: &dt, dout: dout, labels: labels, b: 3, d: d)
    #expect(dt == [4, 5, 6, 0, 0, 0, 8, 10, 12, 0, 0, 0])
}
