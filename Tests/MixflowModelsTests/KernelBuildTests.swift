import CKernels
import Glibc
import MixflowCore
import MixflowModels
import Testing

// The portable, AVX2 and AVX-512 builds of the C model kernels (Sources/CKernels) must give the same bits:
// one source, the same float32 operations in the same order, no fused multiply-adds. Each kernel runs on
// every build this CPU supports, on sizes around the 16-lane vectors (tails) and inputs that reach the
// clamps of exp, and the outputs are compared bit for bit with the portable build's.

/// The builds to compare: every supported one (on an AVX-512 machine all three).
let kernelBuilds = ISALevel.allCases.filter(ModelKernels.supports)

/// Runs `body` once per supported build and expects every build's output to equal the portable one's bits.
func expectSameBitsOnEveryBuild(_ label: String, _ body: (Int32) -> [Float]) {
    let reference = body(ISALevel.portable.rawValue).map(\.bitPattern)
    for build in kernelBuilds where build != .portable {
        let out = body(build.rawValue).map(\.bitPattern)
        let differing = zip(reference, out).filter { $0 != $1 }.count
        #expect(differing == 0, "\(label): \(build.name) differs from portable in \(differing) of \(out.count) floats")
    }
}

let oddSizes = [1, 7, 15, 16, 17, 33, 384, 1000, 4099]

@Test func kernelBuildsAreAllAvailableOnAVX512Machines() {
    // On an x86-64 CPU with AVX-512 all three builds must be selectable, so the comparisons below are real.
    if ModelKernels.supports(.avx512) { #expect(kernelBuilds == [.portable, .avx2, .avx512]) }
    #expect(ModelKernels.supports(ModelKernels.level))
}

@Test func activationKernelsGiveTheSameBitsOnEveryBuild() {
    for n in oddSizes {
        let x = randomArray(n, seed: 31, scale: 60), dout = randomArray(n, seed: 32), acc = randomArray(n, seed: 33)
        expectSameBitsOnEveryBuild("gelu_forward n=\(n)") { isa in
            var o = [Float](repeating: 0, count: n); mfx_gelu_forward(isa, &o, x, n); return o
        }
        expectSameBitsOnEveryBuild("gelu_forward_slope n=\(n)") { isa in
            var a = [Float](repeating: 0, count: n), s = a
            mfx_gelu_forward_slope(isa, &a, &s, x, n); return a + s
        }
        expectSameBitsOnEveryBuild("gelu_backward n=\(n)") { isa in
            var d = acc; mfx_gelu_backward(isa, &d, dout, x, n); return d
        }
        expectSameBitsOnEveryBuild("silu n=\(n)") { isa in
            var o = [Float](repeating: 0, count: n), d = acc
            mfx_silu_forward(isa, &o, x, n); mfx_silu_backward(isa, &d, dout, x, n); return o + d
        }
        expectSameBitsOnEveryBuild("multiply n=\(n)") { isa in
            var y = acc; mfx_multiply(isa, &y, x, n); return y
        }
        expectSameBitsOnEveryBuild("gated_residual n=\(n)") { isa in
            var o = [Float](repeating: 0, count: n); mfx_gated_residual(isa, &o, acc, dout, x, n); return o
        }
    }
    for h in [1, 17, 64, 100] {
        let rows = 3
        let inp = randomArray(rows * 2 * h, seed: 34, scale: 30), dout = randomArray(rows * h, seed: 35)
        let acc = randomArray(rows * 2 * h, seed: 36)
        expectSameBitsOnEveryBuild("swiglu h=\(h)") { isa in
            var o = [Float](repeating: 0, count: rows * h), d = acc
            mfx_swiglu_forward(isa, &o, inp, rows, h); mfx_swiglu_backward(isa, &d, dout, inp, rows, h); return o + d
        }
    }
}

@Test func softmaxKernelsGiveTheSameBitsOnEveryBuild() {
    for n in [1, 7, 16, 17, 256, 300] {
        let rows = 3
        let s = randomArray(rows * n, seed: 41, scale: 40), g = randomArray(rows * n, seed: 42)
        expectSameBitsOnEveryBuild("softmax n=\(n)") { isa in
            var p = s, dp = g
            mfx_softmax_rows(isa, &p, rows, n)
            mfx_softmax_backward_rows(isa, &dp, p, rows, n)
            return p + dp
        }
    }
}

@Test func normKernelsGiveTheSameBitsOnEveryBuild() {
    for d in [1, 15, 17, 64, 384, 1000] {
        let b = 2, t = 3, rows = b * t
        // An offset mean (100..118) so the two-pass variance matters.
        let x = randomArray(rows * d, seed: 51).enumerated().map { $1 + Float($0 % 7) * 3 + 100 }
        let mod = randomArray(b * 4 * d, seed: 52), dout = randomArray(rows * d, seed: 53)
        let w = randomArray(d, seed: 54, scale: 2), acc = randomArray(rows * d, seed: 55)
        mod.withUnsafeBufferPointer { mp in
            var m = mfx_modulation(mod: mp.baseAddress, stride: 4 * d, shift: d, scale: 3 * d, tokens: t)
            expectSameBitsOnEveryBuild("layernorm d=\(d)") { isa in
                var o = [Float](repeating: 0, count: rows * d), mean = [Float](repeating: 0, count: rows), rstd = mean
                var dx = acc
                mfx_layernorm_modulate_forward(isa, &o, &mean, &rstd, x, &m, 1e-6, 0, rows, d)
                mfx_layernorm_modulate_backward(isa, &dx, dout, x, mean, rstd, &m, 0, rows, d)
                return o + mean + rstd + dx
            }
            expectSameBitsOnEveryBuild("rmsnorm d=\(d)") { isa in
                var o = [Float](repeating: 0, count: rows * d), rstd = [Float](repeating: 0, count: rows), dx = acc
                mfx_rmsnorm_modulate_forward(isa, &o, &rstd, x, w, &m, 1e-6, 0, rows, d)
                mfx_rmsnorm_modulate_backward(isa, &dx, dout, x, w, rstd, &m, 0, rows, d)
                return o + rstd + dx
            }
        }
    }
}

@Test func columnSumKernelsGiveTheSameBitsOnEveryBuild() {
    for cols in [1, 15, 17, 64, 100] {
        let rows = 5, ld = cols + 3
        let a = randomArray(rows * ld, seed: 56), b = randomArray(rows * ld, seed: 57, scale: 3)
        let mean = randomArray(rows, seed: 58), rstd = randomArray(rows, seed: 59).map { 1 + abs($0) }
        let out0 = randomArray(2 * cols, seed: 60)
        expectSameBitsOnEveryBuild("column sums cols=\(cols)") { isa in
            var s = out0, p = out0, ln = out0
            mfx_column_sums(isa, &s, a, rows, ld, cols)
            mfx_product_column_sums(isa, &p, a, b, rows, ld, cols)
            ln.withUnsafeMutableBufferPointer { o in
                mfx_layernorm_modulation_sums(isa, o.baseAddress, o.baseAddress! + cols, a, b, mean, rstd, rows, ld, cols)
            }
            return s + p + ln
        }
    }
}

@Test func optimizerKernelsGiveTheSameBitsOnEveryBuild() {
    for n in oddSizes {
        let p0 = randomArray(n, seed: 61), g = randomArray(n, seed: 62, scale: 3)
        let m0 = randomArray(n, seed: 63, scale: 0.1), v0 = randomArray(n, seed: 64).map { $0 * $0 }
        for decay: Float in [1, 0.999] {
            expectSameBitsOnEveryBuild("adamw n=\(n) decay=\(decay)") { isa in
                var p = p0, m = m0, v = v0
                mfx_adamw(isa, &p, g, &m, &v, n, decay, 0.9, 0.999, 1e-3, 0.0447, 1e-8)
                return p + m + v
            }
        }
        expectSameBitsOnEveryBuild("ema n=\(n)") { isa in
            var e = m0; mfx_ema(isa, &e, p0, n, 0.9999, 1 - 0.9999); return e
        }
    }
}

// Accuracy of the kernels that have no other test of their own, against double-precision formulas, on
// every build.

@Test func softmaxRowsMatchADoubleSoftmaxOnEveryBuild() {
    let rows = 4, n = 37
    let s = randomArray(rows * n, seed: 71, scale: 30)
    for build in kernelBuilds {
        var p = s
        mfx_softmax_rows(build.rawValue, &p, rows, n)
        for r in 0..<rows {
            let row = s[(r * n)..<((r + 1) * n)].map(Double.init)
            let mx = row.max()!, z = row.map { Glibc.exp($0 - mx) }.reduce(0, +)
            for j in 0..<n {
                // The float32 argument x − max carries up to half an ulp of |x − max|, relative error that exp keeps.
                let want = Glibc.exp(row[j] - mx) / z, tolerance = 1e-6 + 1.2e-7 * abs(row[j] - mx)
                #expect(abs(Double(p[r * n + j]) - want) <= tolerance * want, "\(build.name) row \(r) col \(j)")
            }
        }
    }
}

@Test func geluSlopeIsTheDerivativeOnEveryBuild() {
    let n = 41
    let x = randomArray(n, seed: 72, scale: 6)
    for build in kernelBuilds {
        var act = [Float](repeating: 0, count: n), slope = act
        mfx_gelu_forward_slope(build.rawValue, &act, &slope, x, n)
        for i in 0..<n {
            let v = Double(x[i]), c = (2 / Double.pi).squareRoot()
            let th = Glibc.tanh(c * (v + 0.044715 * v * v * v))
            let want = 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * c * (1 + 3 * 0.044715 * v * v)
            #expect(abs(Double(act[i]) - 0.5 * v * (1 + th)) < 2e-6 * max(1, abs(v)), "\(build.name) act \(i)")
            #expect(abs(Double(slope[i]) - want) < 4e-6, "\(build.name) slope \(i): \(slope[i]) vs \(want)")
        }
    }
}
