import MixflowCore
@testable import MixflowModels
import Testing

// linearForward(then:) hands GELU and the gated residual to the GEMM's epilogue (done on each finished block of
// the output while it is in cache). The result must be what the layer followed by the separate kernel gives,
// bit for bit, for row and column splits, several K blocks, partial tiles and any thread count; and the kernels
// themselves against formulas in double.

/// Shapes (rows, inputs, outputs): split by rows (530 × 45), by columns (20 × 1100), two K blocks (300),
/// tails of the register tiles, one token row per sample (tokens 1) and several (tokens 5 and 53).
private let shapes = [(530, 300, 45, 5), (20, 300, 1100, 1), (37, 17, 33, 37), (106, 70, 64, 53)]

/// How many floats of `a` differ from `b` in their bits (outputs start as NaN and references are written in
/// full, so an element the epilogue never wrote counts).
private func differing(_ a: [Float], _ b: [Float]) -> Int { zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count }

@Test func geluEpilogueIsTheLayerThenGELU() {
    for (n, c, oc, _) in shapes {
        let x = randomArray(n * c, seed: 41, scale: 2), w = randomArray(oc * c, seed: 42), bias = randomArray(oc, seed: 43)
        for threads in [1, 2, 3] {
            var out = [Float](repeating: .nan, count: n * oc), act = out
            var refOut = out, refAct = out
            act.withUnsafeMutableBufferPointer { a in
                linearForward(out: &out, inp: x, weight: w, bias: bias, n: n, c: c, oc: oc, threads: threads,
                              then: .gelu(act: a.baseAddress!))
            }
            linearForward(out: &refOut, inp: x, weight: w, bias: bias, n: n, c: c, oc: oc, threads: threads)
            geluForward(out: &refAct, inp: refOut, count: n * oc, threads: threads)
            #expect(differing(out, refOut) == 0, "\(n)x\(c)x\(oc) threads \(threads): output")
            #expect(differing(act, refAct) == 0, "\(n)x\(c)x\(oc) threads \(threads): GELU")
        }
    }
}

@Test func gatedResidualEpilogueIsTheLayerThenTheResidual() {
    for (n, c, oc, tokens) in shapes {
        let samples = n / tokens, stride = 3 * oc + 2, column = oc + 1
        let x = randomArray(n * c, seed: 44, scale: 2), w = randomArray(oc * c, seed: 45), bias = randomArray(oc, seed: 46)
        let resid = randomArray(n * oc, seed: 47), mod = randomArray(samples * stride, seed: 48)
        for threads in [1, 2, 3] {
            var out = [Float](repeating: .nan, count: n * oc), refOut = out
            var res = [Float](repeating: .nan, count: n * oc), refRes = res
            var inPlace = resid  // res aliasing x, as the DiT^DH blocks may use it
            mod.withUnsafeBufferPointer { m in
                let gate = LinearEpilogue.Gate(mod: m.baseAddress!, stride: stride, column: column, tokens: tokens)
                resid.withUnsafeBufferPointer { r in res.withUnsafeMutableBufferPointer { o in
                    linearForward(out: &out, inp: x, weight: w, bias: bias, n: n, c: c, oc: oc, threads: threads,
                                  then: .gatedResidual(res: o.baseAddress!, x: r.baseAddress!, gate: gate))
                } }
                inPlace.withUnsafeMutableBufferPointer { p in
                    linearForward(out: &out, inp: x, weight: w, bias: bias, n: n, c: c, oc: oc, threads: threads,
                                  then: .gatedResidual(res: p.baseAddress!, x: p.baseAddress!, gate: gate))
                }
            }
            linearForward(out: &refOut, inp: x, weight: w, bias: bias, n: n, c: c, oc: oc, threads: threads)
            gatedResidualForward(out: &refRes, x: resid, y: refOut, mod: mod, stride: stride, gate: column,
                                 b: samples, t: tokens, d: oc, threads: threads)
            let label = "\(n)x\(c)x\(oc) tokens \(tokens) threads \(threads)"
            #expect(differing(out, refOut) == 0, "\(label): output")
            #expect(differing(res, refRes) == 0, "\(label): residual")
            #expect(differing(inPlace, refRes) == 0, "\(label): residual in place")
        }
    }
}

/// The gated residual kernel against its formula (x + g·y, one rounding per operation, in double then rounded
/// as float would: the product rounded to float, then the sum).
@Test func gatedResidualMatchesItsFormula() {
    let d = 45, b = 3, t = 4, stride = 100, column = 7
    let x = randomArray(b * t * d, seed: 51), y = randomArray(b * t * d, seed: 52), mod = randomArray(b * stride, seed: 53)
    var out = [Float](repeating: .nan, count: b * t * d)
    gatedResidualForward(out: &out, x: x, y: y, mod: mod, stride: stride, gate: column, b: b, t: t, d: d, threads: 2)
    for row in 0..<(b * t) { for j in 0..<d {
        let g = mod[(row / t) * stride + column + j], i = row * d + j
        #expect(out[i] == x[i] + Float(Double(g) * Double(y[i])))
    } }
}
