/// The Gaussian generator's hot loop, written once and compiled twice: for the baseline x86-64/aarch64
/// target here, and for AVX2 in the MixflowCoreAVX2 module (selected at run time). Both compile the same
/// IEEE float32 multiplies and adds in the same order (Swift never contracts them into FMAs), so they
/// produce the same bits as `Gaussian.chunk32`; the bit-identity tests check both paths.
///
/// Why the code is shaped this way (measured with objdump and perf, Swift 6.3.1):
/// - Swift's float SIMD operators are per-lane loops that LLVM's SLP vectoriser re-vectorises. In a long
///   inlined chain it packs unrelated lanes together and leaves some lanes scalar (the log polynomial ran
///   two of four lanes as scalar mulss/addss). Each polynomial therefore sits in its own `@inline(never)`
///   function whose arguments are already vectors; there SLP vectorises every lane.
/// - `squareRoot()` goes through a C shim that honours errno unless the module is built with
///   `-Xcc -fno-math-errno` (Package.swift): otherwise each lane is a sqrtss plus a sqrtf call.
/// - The functions are generic over an instruction-set tag so that each module that calls them with its
///   own tag gets its own specialised copy (an `@inline(never)` call would otherwise land in this
///   module's baseline code).
public protocol KernelISA {
    /// Sixteen 256-bit vector registers (AVX2): Philox keeps all eight counters in flight at once. With
    /// 128-bit registers it runs two halves of four, so that the state fits in registers.
    static var wideVectorRegisters: Bool { get }
}

/// The baseline target (SSE2 on x86-64, NEON on aarch64).
public enum BaselineISA: KernelISA {
    @inlinable public static var wideVectorRegisters: Bool { false }
}

/// Coefficients of the fused element-wise map of one sample (see `GaussianKernel.affineSpan`).
public struct AffineNoiseCoefficients: Sendable {
    public var inX1: Float, inX0: Float, tgX1: Float, tgX0: Float, lambda: Float
    @inlinable
    public init(inX1: Float, inX0: Float, tgX1: Float, tgX0: Float, lambda: Float) {
        self.inX1 = inX1; self.inX0 = inX0; self.tgX1 = tgX1; self.tgX0 = tgX0; self.lambda = lambda
    }
}

public enum GaussianKernel {
    public typealias V = SIMD8<Float>
    public typealias U = SIMD8<UInt32>
    public typealias I = SIMD8<Int32>
    public typealias V16 = SIMD16<Float>
    public typealias U16 = SIMD16<UInt32>

    // MARK: - Philox

    /// Philox4x32-10 of the eight counters (c0 + lane, c1, c2, c3); same words as `Philox.block8`.
    ///
    /// Both forms use only concrete integer vector operations (&, |, shifts, &* on SIMD2/SIMD4<UInt64>):
    /// `Philox.block8`'s generic SIMD `init(truncatingIfNeeded:)` conversions compile to tight SSE2 when
    /// inlined, but inside these kernels the inliner sometimes left them as calls (Philox three times
    /// slower), depending on unrelated changes around it.
    @inlinable @inline(__always)
    static func philox8<T: KernelISA>(_ isa: T.Type, _ c0In: U, _ c1In: UInt32, _ c2In: UInt32, _ c3In: UInt32,
                                       key: (UInt32, UInt32)) -> (U, U, U, U) {
        T.wideVectorRegisters ? philox8Wide(isa, c0In, c1In, c2In, c3In, key: key)
                             : philox8Narrow(c0In, c1In, c2In, c3In, key: key)
    }

    /// `philox8` for 256-bit registers.
    ///
    /// Counters of the even output lanes (0, 2, 4, 6) are in `…a`, of the odd lanes in `…b`, one per 64-bit
    /// lane: the low half holds the 32-bit word, the high half may hold garbage that is never read (every
    /// product masks first, so it is a single vpmuludq, and >> 32 gives the high word). Packing back is
    /// then (a & mask) | (b << 32), with no shuffles. Round 0 is special: c1, c2 and c3 are the same in every
    /// lane, so its c2 product is one scalar multiply.
    @inlinable @inline(never)
    static func philox8Wide<T: KernelISA>(_: T.Type, _ c0In: U, _ c1In: UInt32, _ c2In: UInt32, _ c3In: UInt32,
                                                   key: (UInt32, UInt32)) -> (U, U, U, U) {
        typealias W = SIMD4<UInt64>
        let mask = W(repeating: 0xFFFF_FFFF)
        let m0 = W(repeating: 0xD251_1F53), m1 = W(repeating: 0xCD9E_8D57)
        var k0 = UInt64(key.0), k1 = UInt64(key.1)
        let pairs = unsafeBitCast(c0In, to: W.self)               // (lane 2j, lane 2j + 1) per 64-bit lane
        // Round 0: c1, c2 and c3 are the same in every lane, so the c2 product is one scalar multiply.
        let q1 = UInt64(c2In) &* 0xCD9E_8D57
        let qa = (pairs & mask) &* m0, qb = (pairs &>> 32) &* m0
        var c0a = W(repeating: (q1 >> 32) ^ UInt64(c1In) ^ k0), c0b = c0a
        var c1a = W(repeating: q1), c1b = c1a
        let x3 = W(repeating: UInt64(c3In) ^ k1)
        var c2a = (qa &>> 32) ^ x3, c2b = (qb &>> 32) ^ x3
        var c3a = qa, c3b = qb
        for _ in 1..<10 {
            k0 = (k0 &+ 0x9E37_79B9) & 0xFFFF_FFFF
            k1 = (k1 &+ 0xBB67_AE85) & 0xFFFF_FFFF
            let kk0 = W(repeating: k0), kk1 = W(repeating: k1)
            let p0a = (c0a & mask) &* m0, p0b = (c0b & mask) &* m0
            let p1a = (c2a & mask) &* m1, p1b = (c2b & mask) &* m1
            c0a = (p1a &>> 32) ^ c1a ^ kk0; c0b = (p1b &>> 32) ^ c1b ^ kk0
            c1a = p1a; c1b = p1b
            c2a = (p0a &>> 32) ^ c3a ^ kk1; c2b = (p0b &>> 32) ^ c3b ^ kk1
            c3a = p0a; c3b = p0b
        }
        @inline(__always) func pack(_ a: W, _ b: W) -> U { unsafeBitCast((a & mask) | (b &<< 32), to: U.self) }
        return (pack(c0a, c0b), pack(c1a, c1b), pack(c2a, c2b), pack(c3a, c3b))
    }

    /// `philox8` for 128-bit registers: the form of `philox8Wide` on four counters at a time (two halves), so
    /// the state fits in eight of the sixteen SSE registers.
    @inlinable @inline(never)
    static func philox8Narrow(_ c0In: U, _ c1In: UInt32, _ c2In: UInt32, _ c3In: UInt32,
                                    key: (UInt32, UInt32)) -> (U, U, U, U) {
        let lo = philox4(c0In.lowHalf, c1In, c2In, c3In, key: key)
        let hi = philox4(c0In.highHalf, c1In, c2In, c3In, key: key)
        return (U(lowHalf: lo.0, highHalf: hi.0), U(lowHalf: lo.1, highHalf: hi.1),
                U(lowHalf: lo.2, highHalf: hi.2), U(lowHalf: lo.3, highHalf: hi.3))
    }

    /// Four counters of `philox8Narrow`, in 64-bit lanes (see `philox8Wide`). The rounds are
    /// unrolled by hand: in a loop, SSE's two-operand instructions needed a register copy for every word
    /// rotated between rounds.
    @inlinable @inline(__always)
    static func philox4(_ c0In: SIMD4<UInt32>, _ c1In: UInt32, _ c2In: UInt32, _ c3In: UInt32,
                        key: (UInt32, UInt32)) -> (SIMD4<UInt32>, SIMD4<UInt32>, SIMD4<UInt32>, SIMD4<UInt32>) {
        typealias W = SIMD2<UInt64>
        let mask = W(repeating: 0xFFFF_FFFF)
        let m0 = W(repeating: 0xD251_1F53), m1 = W(repeating: 0xCD9E_8D57)
        var k0 = UInt64(key.0), k1 = UInt64(key.1)
        let pairs = unsafeBitCast(c0In, to: W.self)
        let q1 = UInt64(c2In) &* 0xCD9E_8D57
        let qa = (pairs & mask) &* m0, qb = (pairs &>> 32) &* m0
        var c0a = W(repeating: (q1 >> 32) ^ UInt64(c1In) ^ k0), c0b = c0a
        var c1a = W(repeating: q1), c1b = c1a
        let x3 = W(repeating: UInt64(c3In) ^ k1)
        var c2a = (qa &>> 32) ^ x3, c2b = (qb &>> 32) ^ x3
        var c3a = qa, c3b = qb
        @inline(__always) func round() {
            k0 = (k0 &+ 0x9E37_79B9) & 0xFFFF_FFFF
            k1 = (k1 &+ 0xBB67_AE85) & 0xFFFF_FFFF
            let kk0 = W(repeating: k0), kk1 = W(repeating: k1)
            let p0a = (c0a & mask) &* m0, p0b = (c0b & mask) &* m0
            let p1a = (c2a & mask) &* m1, p1b = (c2b & mask) &* m1
            c0a = (p1a &>> 32) ^ c1a ^ kk0; c0b = (p1b &>> 32) ^ c1b ^ kk0
            c1a = p1a; c1b = p1b
            c2a = (p0a &>> 32) ^ c3a ^ kk1; c2b = (p0b &>> 32) ^ c3b ^ kk1
            c3a = p0a; c3b = p0b
        }
        round(); round(); round(); round(); round(); round(); round(); round(); round()   // rounds 1…9
        @inline(__always) func pack(_ a: W, _ b: W) -> SIMD4<UInt32> {
            unsafeBitCast((a & mask) | (b &<< 32), to: SIMD4<UInt32>.self)
        }
        return (pack(c0a, c0b), pack(c1a, c1b), pack(c2a, c2b), pack(c3a, c3b))
    }

    // MARK: - Box–Muller

    /// ln x for x = 2^e·(1 + f): the polynomial part of `SIMDMath.log4` (same operations, same order).
    @inlinable @inline(never)
    static func logPolynomial<T: KernelISA>(_: T.Type, _ f: V16, _ e: V16) -> V16 {
        typealias V = V16
        let z = f * f
        var p = V(repeating: 7.0376836292e-2)
        p = p * f + V(repeating: -1.1514610310e-1)
        p = p * f + V(repeating: 1.1676998740e-1)
        p = p * f + V(repeating: -1.2420140846e-1)
        p = p * f + V(repeating: 1.4249322787e-1)
        p = p * f + V(repeating: -1.6668057665e-1)
        p = p * f + V(repeating: 2.0000714765e-1)
        p = p * f + V(repeating: -2.4999993993e-1)
        p = p * f + V(repeating: 3.3333331174e-1)
        var y = p * f * z
        y += e * V(repeating: -2.12194440e-4)
        y += V(repeating: -0.5) * z
        return f + y + e * V(repeating: 0.693359375)
    }

    /// `logPolynomial` on two sets of sixteen lanes with the two chains interleaved (SIMD32 is not an
    /// option: LLVM keeps 32-lane per-lane code as a scalar loop).
    @inlinable @inline(never)
    static func logPolynomial2<T: KernelISA>(_: T.Type, _ f1: V16, _ e1: V16, _ f2: V16, _ e2: V16) -> (V16, V16) {
        typealias V = V16
        let z1 = f1 * f1, z2 = f2 * f2
        let c0 = V(repeating: 7.0376836292e-2)
        var p1 = c0, p2 = c0
        for c: Float in [-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                         2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1] {
            p1 = p1 * f1 + V(repeating: c); p2 = p2 * f2 + V(repeating: c)
        }
        var y1 = p1 * f1 * z1, y2 = p2 * f2 * z2
        y1 += e1 * V(repeating: -2.12194440e-4); y2 += e2 * V(repeating: -2.12194440e-4)
        y1 += V(repeating: -0.5) * z1; y2 += V(repeating: -0.5) * z2
        return (f1 + y1 + e1 * V(repeating: 0.693359375), f2 + y2 + e2 * V(repeating: 0.693359375))
    }

    /// Natural logarithm of positive normal floats; bit-identical to `SIMDMath.log`.
    @inlinable @inline(__always)
    public static func log<T: KernelISA>(_ isa: T.Type, _ x: V) -> V {
        let ix = unsafeBitCast(x, to: I.self) &- I(repeating: 0x3F35_04F3)
        let ei = ix &>> I(repeating: 23)
        let m = unsafeBitCast((ix & I(repeating: 0x007F_FFFF)) &+ I(repeating: 0x3F35_04F3), to: V.self)
        let e = unsafeBitCast(ei &+ I(repeating: 0x4B40_0000), to: V.self) - V(repeating: 12_582_912)
        return logPolynomial(isa, SIMD16(lowHalf: m - V(repeating: 1), highHalf: V(repeating: 0)),
                             SIMD16(lowHalf: e, highHalf: V(repeating: 0))).lowHalf
    }

    /// `log` of sixteen floats: two independent chains per call, so the latency of the Horner chain overlaps.
    @inlinable @inline(__always)
    static func log16<T: KernelISA>(_ isa: T.Type, _ x: V16) -> V16 {
        typealias V = V16
        typealias I = SIMD16<Int32>
        let ix = unsafeBitCast(x, to: I.self) &- I(repeating: 0x3F35_04F3)
        let ei = ix &>> I(repeating: 23)
        let m = unsafeBitCast((ix & I(repeating: 0x007F_FFFF)) &+ I(repeating: 0x3F35_04F3), to: V.self)
        let e = unsafeBitCast(ei &+ I(repeating: 0x4B40_0000), to: V.self) - V(repeating: 12_582_912)
        return logPolynomial(isa, m - V(repeating: 1), e)
    }

    /// The integer part of `log16`: (f, e) with x = 2^e·(1 + f).
    @inlinable @inline(__always)
    static func logReduce16(_ x: V16) -> (f: V16, e: V16) {
        typealias V = V16
        typealias I = SIMD16<Int32>
        let ix = unsafeBitCast(x, to: I.self) &- I(repeating: 0x3F35_04F3)
        let ei = ix &>> I(repeating: 23)
        let m = unsafeBitCast((ix & I(repeating: 0x007F_FFFF)) &+ I(repeating: 0x3F35_04F3), to: V.self)
        let e = unsafeBitCast(ei &+ I(repeating: 0x4B40_0000), to: V.self) - V(repeating: 12_582_912)
        return (m - V(repeating: 1), e)
    }

    /// (sin 2πθ, cos 2πθ) for θ = k / 2^24 turns; bit-identical to `SIMDMath.sinCosTurns24`.
    @inlinable @inline(__always)
    public static func sinCosTurns24<T: KernelISA>(_ isa: T.Type, _ k: U) -> (sin: V, cos: V) {
        let r = sinCosTurns24x16(isa, SIMD16(lowHalf: k, highHalf: U(repeating: 0)))
        return (r.sin.lowHalf, r.cos.lowHalf)
    }

    /// `sinCosTurns24` of sixteen angles (independent chains overlap, as in `log16`).
    @inlinable @inline(never)
    static func sinCosTurns24x16<T: KernelISA>(_: T.Type, _ k: U16) -> (sin: V16, cos: V16) {
        typealias U = U16
        typealias V = V16
        let shifted = (k &+ U(repeating: 1 << 21)) & U(repeating: 0x00FF_FFFF)
        let q = shifted &>> U(repeating: 22)
        let r = shifted & U(repeating: 0x003F_FFFF)
        let rf = unsafeBitCast(r | U(repeating: 0x4B00_0000), to: V.self) - V(repeating: 8_388_608)
        let x = (rf - V(repeating: 2_097_152)) * V(repeating: Float(Double.pi / 2 / 4_194_304))
        let x2 = x * x
        var s = V(repeating: -1.9515295891e-4)
        s = s * x2 + V(repeating: 8.3321608736e-3)
        s = s * x2 + V(repeating: -1.6666654611e-1)
        s = s * x2 * x + x
        var c = V(repeating: 2.443315711809948e-5)
        c = c * x2 + V(repeating: -1.388731625493765e-3)
        c = c * x2 + V(repeating: 4.166664568298827e-2)
        c = c * x2 * x2 - V(repeating: 0.5) * x2 + V(repeating: 1)
        let sBits = unsafeBitCast(s, to: U.self), cBits = unsafeBitCast(c, to: U.self)
        let swap = U(repeating: 0) &- (q & U(repeating: 1))
        let sinBits = (cBits & swap) | (sBits & ~swap)
        let cosBits = (sBits & swap) | (cBits & ~swap)
        let sinSign = (q &>> U(repeating: 1)) &<< U(repeating: 31)
        let cosSign = ((q ^ (q &>> U(repeating: 1))) & U(repeating: 1)) &<< U(repeating: 31)
        return (unsafeBitCast(sinBits ^ sinSign, to: V.self), unsafeBitCast(cosBits ^ cosSign, to: V.self))
    }

    /// The pair (r cos θ, r sin θ) of the words (a, b); bit-identical to `Gaussian.boxMuller`.
    @inlinable @inline(__always)
    public static func boxMuller<T: KernelISA>(_ isa: T.Type, _ a: U, _ b: U) -> (V, V) {
        let z = boxMuller16(isa, SIMD16(lowHalf: a, highHalf: U(repeating: 0)), SIMD16(lowHalf: b, highHalf: U(repeating: 0)))
        return (z.0.lowHalf, z.1.lowHalf)
    }

    /// Box–Muller on sixteen word pairs at once (the two pairs of eight Philox blocks). Not inlined, so that
    /// the float glue around the polynomials (u, −2 ln u, sqrt, r·cos, r·sin) is vectorised on its own.
    @inlinable @inline(never)
    static func boxMuller16<T: KernelISA>(_ isa: T.Type, _ a: U16, _ b: U16) -> (V16, V16) {
        let u = V16(repeating: 2) - unsafeBitCast((a &>> U16(repeating: 9)) | U16(repeating: 0x3F80_0000), to: V16.self)
        let r = (V16(repeating: -2) * log16(isa, u)).squareRoot()
        let (s, c) = sinCosTurns24x16(isa, b &>> U16(repeating: 8))
        return (r * c, r * s)
    }

    /// `boxMuller16` on two sets at once, so that the logarithm's Horner chain (the latency-bound part) runs
    /// on 32 lanes.
    @inlinable @inline(never)
    static func boxMuller16x2<T: KernelISA>(_ isa: T.Type, _ a1: U16, _ b1: U16, _ a2: U16, _ b2: U16)
        -> (V16, V16, V16, V16)
    {
        let u1 = V16(repeating: 2) - unsafeBitCast((a1 &>> U16(repeating: 9)) | U16(repeating: 0x3F80_0000), to: V16.self)
        let u2 = V16(repeating: 2) - unsafeBitCast((a2 &>> U16(repeating: 9)) | U16(repeating: 0x3F80_0000), to: V16.self)
        let (f1, e1) = logReduce16(u1), (f2, e2) = logReduce16(u2)
        let (l1, l2) = logPolynomial2(isa, f1, e1, f2, e2)
        let r1 = (V16(repeating: -2) * l1).squareRoot(), r2 = (V16(repeating: -2) * l2).squareRoot()
        let (s1, c1) = sinCosTurns24x16(isa, b1 &>> U16(repeating: 8))
        let (s2, c2) = sinCosTurns24x16(isa, b2 &>> U16(repeating: 8))
        return (r1 * c1, r1 * s1, r2 * c2, r2 * s2)
    }

    /// Chunks `k` and `k + 1` (64 normals).
    @inlinable @inline(__always)
    static func chunk64<T: KernelISA>(_ isa: T.Type, _ stream: RandomStream, _ k: UInt32) -> ((V, V, V, V), (V, V, V, V)) {
        let lanes = U(0, 1, 2, 3, 4, 5, 6, 7) &+ U(repeating: k &* 8)
        let (w0, w1, w2, w3) = philox8(isa, lanes, stream.c1, stream.c2, stream.c3, key: stream.key)
        let (v0, v1, v2, v3) = philox8(isa, lanes &+ U(repeating: 8), stream.c1, stream.c2, stream.c3, key: stream.key)
        let (rc1, rs1, rc2, rs2) = boxMuller16x2(isa, SIMD16(lowHalf: w0, highHalf: w2), SIMD16(lowHalf: w1, highHalf: w3),
                                                 SIMD16(lowHalf: v0, highHalf: v2), SIMD16(lowHalf: v1, highHalf: v3))
        return ((rc1.lowHalf, rs1.lowHalf, rc1.highHalf, rs1.highHalf), (rc2.lowHalf, rs2.lowHalf, rc2.highHalf, rs2.highHalf))
    }

    /// The 32 normals of chunk `k` (see `Gaussian` for the layout); bit-identical to `Gaussian.chunk32`.
    @inlinable @inline(__always)
    public static func chunk32<T: KernelISA>(_ isa: T.Type, _ stream: RandomStream, _ k: UInt32) -> (V, V, V, V) {
        let lanes = U(0, 1, 2, 3, 4, 5, 6, 7) &+ U(repeating: k &* 8)
        let (w0, w1, w2, w3) = philox8(isa, lanes, stream.c1, stream.c2, stream.c3, key: stream.key)
        // (w0, w1) give (z_a, z_b) and (w2, w3) give (z_c, z_d): one sixteen-wide Box–Muller.
        let (rc, rs) = boxMuller16(isa, SIMD16(lowHalf: w0, highHalf: w2), SIMD16(lowHalf: w1, highHalf: w3))
        return (rc.lowHalf, rs.lowHalf, rc.highHalf, rs.highHalf)
    }

    // MARK: - Fused spans

    /// Writes elements [start, start + count) of `stream` to `out`; `start` is a multiple of 32.
    @inlinable
    public static func fill<T: KernelISA>(_ isa: T.Type, _ out: UnsafeMutablePointer<Float>, count: Int,
                                          stream: RandomStream, start: Int) {
        let raw = UnsafeMutableRawPointer(out)
        var i = 0
        var k = UInt32(truncatingIfNeeded: start / 32)
        while i + 64 <= count {
            let (z, y) = chunk64(isa, stream, k)
            raw.storeBytes(of: z.0, toByteOffset: (i + 0) * 4, as: V.self)
            raw.storeBytes(of: z.1, toByteOffset: (i + 8) * 4, as: V.self)
            raw.storeBytes(of: z.2, toByteOffset: (i + 16) * 4, as: V.self)
            raw.storeBytes(of: z.3, toByteOffset: (i + 24) * 4, as: V.self)
            raw.storeBytes(of: y.0, toByteOffset: (i + 32) * 4, as: V.self)
            raw.storeBytes(of: y.1, toByteOffset: (i + 40) * 4, as: V.self)
            raw.storeBytes(of: y.2, toByteOffset: (i + 48) * 4, as: V.self)
            raw.storeBytes(of: y.3, toByteOffset: (i + 56) * 4, as: V.self)
            i += 64
            k &+= 2
        }
        while i + 32 <= count {
            let z = chunk32(isa, stream, k)
            raw.storeBytes(of: z.0, toByteOffset: (i + 0) * 4, as: V.self)
            raw.storeBytes(of: z.1, toByteOffset: (i + 8) * 4, as: V.self)
            raw.storeBytes(of: z.2, toByteOffset: (i + 16) * 4, as: V.self)
            raw.storeBytes(of: z.3, toByteOffset: (i + 24) * 4, as: V.self)
            i += 32
            k &+= 1
        }
        if i < count {
            var tail = chunk32(isa, stream, k)
            withUnsafeBytes(of: &tail) { bytes in
                let z = bytes.bindMemory(to: Float.self)
                for j in 0..<(count - i) { out[i + j] = z[j] }
            }
        }
    }

    /// x1: [count] → xIn, target, noise (optional): [count], elements [start, start + count) of one sample:
    /// `z = Gaussian(noiseStream)`, `e = Gaussian(perturbationStream)` (only when λ ≠ 0),
    /// `xIn = inX1·x1 + inX0·(z + λ·e)`, `target = tgX1·x1 + tgX0·z`, `noise = z`, each product and sum
    /// rounded to float32 separately. Every element is read and written once. `start` is a multiple of 32.
    /// - Returns: false if the span of x1 holds a NaN or an infinity.
    @inlinable
    public static func affineSpan<T: KernelISA>(
        _ isa: T.Type, x1: UnsafePointer<Float>, xIn: UnsafeMutablePointer<Float>, target: UnsafeMutablePointer<Float>,
        noise: UnsafeMutablePointer<Float>?, start: Int, count: Int, c: AffineNoiseCoefficients,
        noiseStream: RandomStream, perturbationStream: RandomStream
    ) -> Bool {
        let a = V(repeating: c.inX1), s = V(repeating: c.inX0)
        let p = V(repeating: c.tgX1), q = V(repeating: c.tgX0)
        let l = V(repeating: c.lambda)
        let perturb = c.lambda != 0
        var check = V(repeating: 0)
        let src = UnsafeRawPointer(x1)
        let dIn = UnsafeMutableRawPointer(xIn), dTg = UnsafeMutableRawPointer(target)
        let dNz = noise.map { UnsafeMutableRawPointer($0) }
        var k = UInt32(truncatingIfNeeded: start / 32)
        var j = 0
        // One chunk of 32 elements = four groups of eight, in Gaussian's element layout.
        @inline(__always) func group(_ o: Int, _ x: V, _ z: V, _ zi: V) {
            dIn.storeBytes(of: a * x + s * zi, toByteOffset: o, as: V.self)
            dTg.storeBytes(of: p * x + q * z, toByteOffset: o, as: V.self)
            dNz?.storeBytes(of: z, toByteOffset: o, as: V.self)
        }
        @inline(__always) func chunk(_ o: Int, _ z: (V, V, V, V), _ zi: (V, V, V, V)) {
            let x0 = src.loadUnaligned(fromByteOffset: o, as: V.self)
            let x1v = src.loadUnaligned(fromByteOffset: o + 32, as: V.self)
            let x2 = src.loadUnaligned(fromByteOffset: o + 64, as: V.self)
            let x3 = src.loadUnaligned(fromByteOffset: o + 96, as: V.self)
            check += (x0 - x0) + (x1v - x1v) + (x2 - x2) + (x3 - x3)   // NaN where any x is NaN or ±inf
            group(o, x0, z.0, zi.0); group(o + 32, x1v, z.1, zi.1)
            group(o + 64, x2, z.2, zi.2); group(o + 96, x3, z.3, zi.3)
        }
        @inline(__always) func mix(_ z: (V, V, V, V), _ e: (V, V, V, V)) -> (V, V, V, V) {
            (z.0 + l * e.0, z.1 + l * e.1, z.2 + l * e.2, z.3 + l * e.3)
        }
        while j + 64 <= count {
            let (z, y) = chunk64(isa, noiseStream, k)
            var zi = z, yi = y
            if perturb {
                let (e, f) = chunk64(isa, perturbationStream, k)
                zi = mix(z, e); yi = mix(y, f)
            }
            chunk(j * 4, z, zi); chunk(j * 4 + 128, y, yi)
            j += 64
            k &+= 2
        }
        while j + 32 <= count {
            let z = chunk32(isa, noiseStream, k)
            var zi = z
            if perturb {
                let e = chunk32(isa, perturbationStream, k)
                zi = (z.0 + l * e.0, z.1 + l * e.1, z.2 + l * e.2, z.3 + l * e.3)
            }
            let o = j * 4
            let x0 = src.loadUnaligned(fromByteOffset: o, as: V.self)
            let x1v = src.loadUnaligned(fromByteOffset: o + 32, as: V.self)
            let x2 = src.loadUnaligned(fromByteOffset: o + 64, as: V.self)
            let x3 = src.loadUnaligned(fromByteOffset: o + 96, as: V.self)
            check += (x0 - x0) + (x1v - x1v) + (x2 - x2) + (x3 - x3)   // NaN where any x is NaN or ±inf
            group(o, x0, z.0, zi.0); group(o + 32, x1v, z.1, zi.1)
            group(o + 64, x2, z.2, zi.2); group(o + 96, x3, z.3, zi.3)
            j += 32
            k &+= 1
        }
        var finite = !(check.sum().isNaN)
        // Tail: one partial chunk, element by element, with the same numbers (no allocation).
        if j < count {
            var z = chunk32(isa, noiseStream, k)
            var e = perturb ? chunk32(isa, perturbationStream, k) : z
            withUnsafeBytes(of: &z) { zb in
                withUnsafeBytes(of: &e) { eb in
                    let zf = zb.bindMemory(to: Float.self), ef = eb.bindMemory(to: Float.self)
                    for r in 0..<(count - j) {
                        let x = x1[j + r]
                        if !x.isFinite { finite = false }
                        let zi = perturb ? zf[r] + c.lambda * ef[r] : zf[r]
                        xIn[j + r] = c.inX1 * x + c.inX0 * zi
                        target[j + r] = c.tgX1 * x + c.tgX0 * zf[r]
                        noise?[j + r] = zf[r]
                    }
                }
            }
        }
        return finite
    }
}
