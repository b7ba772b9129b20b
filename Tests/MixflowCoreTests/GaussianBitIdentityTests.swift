import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowCore
import MixflowCoreAVX2

// Bit-identity of the Gaussian generator (shared by the transport, the SDE samplers and weight
// initialisation). Digests recorded from commit 14d143c, before the performance work of issue 2, and
// cross-checked against an independent float32 numpy emulation of the documented algorithm
// (bindings/python/tests/test_transport_bits.py). A changed digest is a reproducibility break.

/// FNV-1a over bytes (test-only).
struct WordDigest {
    var state: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func add(_ w: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) {
            state = (state ^ UInt64((w >> UInt32(s)) & 0xFF)) &* 0x0000_0100_0000_01B3
        }
    }
}

/// A cheaper word-wise FNV-style mix for the 50 million words of the exhaustive test (debug builds are slow).
struct FastDigest {
    var state: UInt64 = 0xCBF2_9CE4_8422_2325
    mutating func add(_ v: SIMD8<Float>) {
        let w = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        for l in 0..<8 { state = (state ^ UInt64(w[l])) &* 0x0000_0100_0000_01B3 }
    }
}

/// Digests of the radius over k < 2^23 and of (sin, cos) over k < 2^24, every `stride`-th group of eight.
func boxMullerDomainDigests(stride: UInt32, boxMuller: (SIMD8<UInt32>, SIMD8<UInt32>) -> (SIMD8<Float>, SIMD8<Float>),
                            sinCos: (SIMD8<UInt32>) -> (sin: SIMD8<Float>, cos: SIMD8<Float>)) -> (UInt64, UInt64) {
    var r = FastDigest(), sc = FastDigest()
    let step = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
    var k: UInt32 = 0
    while k < 1 << 23 {
        // The generator's words: a = k << 9 gives (a >> 9) = k.
        let a = (SIMD8(repeating: k) &+ step) &<< 9
        let (za, zb) = boxMuller(a, SIMD8(repeating: 0))    // θ = 0: z_a = r·1, z_b = r·0
        r.add(za); r.add(zb)
        k &+= stride
    }
    k = 0
    while k < 1 << 24 {
        let (s, c) = sinCos(SIMD8(repeating: k) &+ step)
        sc.add(s); sc.add(c)
        k &+= stride
    }
    return (r.state, sc.state)
}

/// Box–Muller's radius and angle are functions of 23 and 24 bits of one Philox word each, so the whole
/// input domain can be enumerated: r(k) = sqrt(−2 ln(1 − k/2^23)) for every k < 2^23 and
/// (sin, cos)(2π k/2^24) for every k < 2^24. Identical digests here plus the exact integer Philox make
/// every normal identical. The whole domain takes about a minute in a debug build, so by default every
/// 16th group of 8 is checked; set MIXFLOW_EXHAUSTIVE=1 to check all of it (do so after touching the kernels).
/// Both builds of the kernel are checked: the baseline one and, on CPUs that have it, the AVX2 one.
@Test func boxMullerRadiusAndAngleAreBitIdenticalOverTheirDomain() {
    let exhaustive = getenv("MIXFLOW_EXHAUSTIVE").map { String(cString: $0) == "1" } ?? false
    let stride: UInt32 = exhaustive ? 8 : 128
    let expected: (UInt64, UInt64) = exhaustive ? (0x723A_3BD6_81CB_EAD6, 0x2C43_12F3_540C_A23D) : (0xBC64_8207_D498_4F54, 0xC18C_5D14_499D_358D)
    let base = boxMullerDomainDigests(stride: stride, boxMuller: Gaussian.boxMuller, sinCos: SIMDMath.sinCosTurns24)
    #expect(base.0 == expected.0, "radius digest 0x\(String(base.0, radix: 16, uppercase: true))")
    #expect(base.1 == expected.1, "sin/cos digest 0x\(String(base.1, radix: 16, uppercase: true))")
    if AVX2Kernels.isAvailable {
        let avx2 = boxMullerDomainDigests(stride: stride, boxMuller: AVX2Kernels.boxMuller, sinCos: AVX2Kernels.sinCosTurns24)
        #expect(avx2.0 == expected.0, "AVX2 radius digest 0x\(String(avx2.0, radix: 16, uppercase: true))")
        #expect(avx2.1 == expected.1, "AVX2 sin/cos digest 0x\(String(avx2.1, radix: 16, uppercase: true))")
    }
}

@Test func gaussianFillIsBitIdenticalToTheRecordedGenerator() {
    var d = WordDigest()
    let streams = [RandomStream(seed: 0, step: 0, sample: 0, tag: .noise),
                   RandomStream(seed: 0xFFFF_FFFF_FFFF_FFFF, step: RandomStream.maxStep, sample: 0xFFFF_FFFF, tag: .perturbation),
                   RandomStream(seed: 42, step: 7, sample: 5, tag: .sampler),
                   RandomStream(seed: 3, step: 1, sample: 2, tag: .initialization)]
    var dAVX2 = WordDigest()
    for (i, stream) in streams.enumerated() {
        for (start, count) in [(0, 1), (0, 31), (32, 33), (96, 1000), (0, 8192 + 17), (i * 32 * 1000, 4099)] {
            var out = [Float](repeating: .nan, count: count)
            out.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: stream, start: start) }
            for x in out { d.add(x.bitPattern) }
            if AVX2Kernels.isAvailable {
                out.withUnsafeMutableBufferPointer { AVX2Kernels.fill($0.baseAddress!, count: count, stream: stream, start: start) }
                for x in out { dAVX2.add(x.bitPattern) }
            }
        }
    }
    #expect(d.state == 0xEBF3_E7CF_08F1_F803, "fill digest 0x\(String(d.state, radix: 16, uppercase: true))")
    if AVX2Kernels.isAvailable {
        #expect(dAVX2.state == 0xEBF3_E7CF_08F1_F803, "AVX2 fill digest 0x\(String(dAVX2.state, radix: 16, uppercase: true))")
    }
}

/// The fused transport kernel: the AVX2 build equals the baseline build bit for bit, and both equal the
/// separately generated noise put through the documented float32 maps (spans with tails, both streams).
@Test func affineSpanIsBitIdenticalOnBothBuildsAndToTheDocumentedMaps() {
    let noise = RandomStream(seed: 0xABCD_EF01_2345, step: 99, sample: 17, tag: .noise)
    let perturbation = RandomStream(seed: 0xABCD_EF01_2345, step: 99, sample: 17, tag: .perturbation)
    for (start, count) in [(0, 1), (0, 31), (32, 45), (64, 8192), (8192, 8192 + 7), (320, 100)] {
        for lambda: Float in [0, 0.1] {
            let c = AffineNoiseCoefficients(inX1: 0.37, inX0: 0.63, tgX1: 1, tgX0: -1.25, lambda: lambda)
            let x1 = (0..<count).map { Float(($0 * 7919) % 2003) / 1001 - 1 }
            var z = [Float](repeating: 0, count: start + count), e = z
            z.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: noise, start: 0) }
            e.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: perturbation, start: 0) }
            var expIn = [Float](), expTg = [Float]()
            for j in 0..<count {
                let zj = z[start + j], zi = lambda != 0 ? zj + lambda * e[start + j] : zj
                expIn.append(c.inX1 * x1[j] + c.inX0 * zi)
                expTg.append(c.tgX1 * x1[j] + c.tgX0 * zj)
            }
            let builds: [(String, (UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Bool)] =
                [("baseline", { Gaussian.affineSpan(x1: $0, xIn: $1, target: $2, noise: $3, start: start, count: count, c: c,
                                                    noiseStream: noise, perturbationStream: perturbation) })]
                + (AVX2Kernels.isAvailable ? [("AVX2", { AVX2Kernels.affineSpan(x1: $0, xIn: $1, target: $2, noise: $3, start: start,
                                                                             count: count, c: c, noiseStream: noise, perturbationStream: perturbation) })] : [])
            for (name, run) in builds {
                var xIn = [Float](repeating: .nan, count: count), tg = xIn, nz = xIn
                let finite = x1.withUnsafeBufferPointer { x in
                    xIn.withUnsafeMutableBufferPointer { a in
                        tg.withUnsafeMutableBufferPointer { b in
                            nz.withUnsafeMutableBufferPointer { n in run(x.baseAddress!, a.baseAddress!, b.baseAddress!, n.baseAddress!) }
                        }
                    }
                }
                #expect(finite)
                #expect(xIn.map(\.bitPattern) == expIn.map(\.bitPattern), "\(name) x_in \(start)+\(count) λ=\(lambda)")
                #expect(tg.map(\.bitPattern) == expTg.map(\.bitPattern), "\(name) target \(start)+\(count) λ=\(lambda)")
                #expect(nz.map(\.bitPattern) == z[start...].map(\.bitPattern), "\(name) noise \(start)+\(count) λ=\(lambda)")
            }
        }
    }
}
