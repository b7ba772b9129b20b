import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowCore

/// The documented element layout, recomputed with scalar Philox and libm (an independent reference for
/// the SIMD generator and its polynomial log/sin/cos).
func referenceGaussian(_ stream: RandomStream, _ element: Int) -> Double {
    let chunk = element / 32, within = element % 32
    let q = within / 8, lane = within % 8
    let w = Philox.block((UInt32(chunk * 8 + lane), stream.c1, stream.c2, stream.c3), key: stream.key)
    let (a, b) = q < 2 ? (w.0, w.1) : (w.2, w.3)
    let u = 1 - Double(a >> 9) / 8_388_608, v = Double(b >> 8) / 16_777_216
    let r = (-2 * log(u)).squareRoot()
    return q % 2 == 0 ? r * cos(2 * .pi * v) : r * sin(2 * .pi * v)
}

@Test func gaussianFillFollowsTheDocumentedLayout() {
    let stream = RandomStream(seed: 42, step: 7, sample: 5, tag: .noise)
    var out = [Float](repeating: 0, count: 1000)
    out.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: stream, start: 0) }
    for j in 0..<1000 {
        let ref = referenceGaussian(stream, j)
        // Polynomial log/sin/cos in float32: a few ulp of r (up to ~5.7) and of the angle.
        #expect(abs(Double(out[j]) - ref) <= 2e-6 * max(1, abs(ref)), "element \(j)")
    }
}

@Test func gaussianFillIsIndependentOfTheRangeGenerated() {
    let stream = RandomStream(seed: 9, step: 0, sample: 0, tag: .noise)
    var whole = [Float](repeating: 0, count: 200)
    whole.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: stream, start: 0) }
    var part = [Float](repeating: 0, count: 77)
    part.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: stream, start: 96) }
    #expect(Array(whole[96..<173]) == part)
}

@Test func gaussianMomentsAreStandard() {
    let n = 1 << 18
    var out = [Float](repeating: 0, count: n)
    out.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: RandomStream(seed: 3, step: 1, sample: 2, tag: .noise), start: 0) }
    let mean = out.reduce(0.0) { $0 + Double($1) } / Double(n)
    let variance = out.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n) - mean * mean
    let kurt = out.reduce(0.0) { $0 + pow(Double($1) - mean, 4) } / Double(n) / (variance * variance)
    // Standard errors at n = 2^18: mean 0.002, variance 0.0028, kurtosis 0.0096; allow ~5 sigma.
    #expect(abs(mean) < 0.01)
    #expect(abs(variance - 1) < 0.014)
    #expect(abs(kurt - 3) < 0.05)
}

@Test func simdLogAndSinCosAreAccurate() {
    var worstLog = 0.0, worstTrig = 0.0
    for i in 0..<4096 {
        let x = SIMD8<Float>((0..<8).map { Float(i * 8 + $0 + 1) / 32768 })
        let l = SIMDMath.log(x)
        for k in 0..<8 { worstLog = max(worstLog, abs(Double(l[k]) - log(Double(x[k])))) }
        // Turns in 24-bit fixed point, spread over the whole circle including every quadrant boundary.
        let turns = SIMD8<UInt32>((0..<8).map { UInt32((i * 8 + $0) * 512 + (i % 7)) })
        let (s, c) = SIMDMath.sinCosTurns24(turns)
        for k in 0..<8 {
            let angle = 2 * Double.pi * Double(turns[k]) / 16_777_216
            worstTrig = max(worstTrig, abs(Double(s[k]) - sin(angle)), abs(Double(c[k]) - cos(angle)))
        }
    }
    #expect(worstLog < 1e-6)
    #expect(worstTrig < 1e-6)
}
