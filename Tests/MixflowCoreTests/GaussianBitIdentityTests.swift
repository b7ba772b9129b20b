import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowCore

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

/// Box–Muller's radius and angle are functions of 23 and 24 bits of one Philox word each, so the whole
/// input domain can be enumerated: r(k) = sqrt(−2 ln(1 − k/2^23)) for every k < 2^23 and
/// (sin, cos)(2π k/2^24) for every k < 2^24. Identical digests here plus the exact integer Philox make
/// every normal identical. The whole domain takes about a minute in a debug build, so by default every
/// 16th group of 8 is checked; set MIXFLOW_EXHAUSTIVE=1 to check all of it (do so after touching the kernels).
@Test func boxMullerRadiusAndAngleAreBitIdenticalOverTheirDomain() {
    let exhaustive = getenv("MIXFLOW_EXHAUSTIVE").map { String(cString: $0) == "1" } ?? false
    let stride: UInt32 = exhaustive ? 8 : 128
    var r = FastDigest(), sc = FastDigest()
    let step = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
    var k: UInt32 = 0
    while k < 1 << 23 {
        // The generator's words: a = k << 9 gives (a >> 9) = k.
        let a = (SIMD8(repeating: k) &+ step) &<< 9
        let (za, zb) = Gaussian.boxMuller(a, SIMD8(repeating: 0))    // θ = 0: z_a = r·1, z_b = r·0
        r.add(za); r.add(zb)
        k &+= stride
    }
    k = 0
    while k < 1 << 24 {
        let (s, c) = SIMDMath.sinCosTurns24(SIMD8(repeating: k) &+ step)
        sc.add(s); sc.add(c)
        k &+= stride
    }
    let expected: (UInt64, UInt64) = exhaustive ? (0x723A_3BD6_81CB_EAD6, 0x2C43_12F3_540C_A23D) : (0xBC64_8207_D498_4F54, 0xC18C_5D14_499D_358D)
    #expect(r.state == expected.0, "radius digest 0x\(String(r.state, radix: 16, uppercase: true))")
    #expect(sc.state == expected.1, "sin/cos digest 0x\(String(sc.state, radix: 16, uppercase: true))")
}

@Test func gaussianFillIsBitIdenticalToTheRecordedGenerator() {
    var d = WordDigest()
    let streams = [RandomStream(seed: 0, step: 0, sample: 0, tag: .noise),
                   RandomStream(seed: 0xFFFF_FFFF_FFFF_FFFF, step: RandomStream.maxStep, sample: 0xFFFF_FFFF, tag: .perturbation),
                   RandomStream(seed: 42, step: 7, sample: 5, tag: .sampler),
                   RandomStream(seed: 3, step: 1, sample: 2, tag: .initialization)]
    for (i, stream) in streams.enumerated() {
        for (start, count) in [(0, 1), (0, 31), (32, 33), (96, 1000), (0, 8192 + 17), (i * 32 * 1000, 4099)] {
            var out = [Float](repeating: .nan, count: count)
            out.withUnsafeMutableBufferPointer { Gaussian.fill($0, stream: stream, start: start) }
            for x in out { d.add(x.bitPattern) }
        }
    }
    #expect(d.state == 0xEBF3_E7CF_08F1_F803, "fill digest 0x\(String(d.state, radix: 16, uppercase: true))")
}
