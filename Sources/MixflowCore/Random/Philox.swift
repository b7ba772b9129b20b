/// Philox4x32-10, the counter-based generator of Salmon et al. (SC'11, "Parallel random numbers: as easy
/// as 1, 2, 3"), as in Random123.
///
/// Every random number of libmixflow is a pure function of (seed, counter): the counter encodes the
/// training step, the global sample index, a stream tag and the block index inside the sample. That is
/// what makes results identical for any thread count and any split of a batch across workers.
public enum Philox {
    @usableFromInline static let m0: UInt32 = 0xD251_1F53
    @usableFromInline static let m1: UInt32 = 0xCD9E_8D57
    @usableFromInline static let w0: UInt32 = 0x9E37_79B9
    @usableFromInline static let w1: UInt32 = 0xBB67_AE85

    /// One Philox4x32-10 block: 128-bit counter and 64-bit key → four 32-bit words.
    @inlinable
    public static func block(_ c: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var (c0, c1, c2, c3) = c
        var (k0, k1) = key
        for round in 0..<10 {
            if round > 0 { k0 &+= w0; k1 &+= w1 }
            let p0 = UInt64(m0) &* UInt64(c0)
            let p1 = UInt64(m1) &* UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            c0 = hi1 ^ c1 ^ k0
            c1 = lo1
            c2 = hi0 ^ c3 ^ k1
            c3 = lo0
        }
        return (c0, c1, c2, c3)
    }

    /// Eight Philox blocks at once (SIMD lanes differ only in the first counter word).
    @inlinable
    public static func block8(
        _ c0In: SIMD8<UInt32>, _ c1In: UInt32, _ c2In: UInt32, _ c3In: UInt32, key: (UInt32, UInt32)
    ) -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        var c0 = c0In
        var c1 = SIMD8<UInt32>(repeating: c1In)
        var c2 = SIMD8<UInt32>(repeating: c2In)
        var c3 = SIMD8<UInt32>(repeating: c3In)
        var (k0, k1) = key
        let mul0 = SIMD8<UInt64>(repeating: UInt64(m0))
        let mul1 = SIMD8<UInt64>(repeating: UInt64(m1))
        for round in 0..<10 {
            if round > 0 { k0 &+= w0; k1 &+= w1 }
            let p0 = SIMD8<UInt64>(truncatingIfNeeded: c0) &* mul0
            let p1 = SIMD8<UInt64>(truncatingIfNeeded: c2) &* mul1
            let hi0 = SIMD8<UInt32>(truncatingIfNeeded: p0 &>> 32), lo0 = SIMD8<UInt32>(truncatingIfNeeded: p0)
            let hi1 = SIMD8<UInt32>(truncatingIfNeeded: p1 &>> 32), lo1 = SIMD8<UInt32>(truncatingIfNeeded: p1)
            c0 = hi1 ^ c1 ^ SIMD8(repeating: k0)
            c1 = lo1
            c2 = hi0 ^ c3 ^ SIMD8(repeating: k1)
            c3 = lo0
        }
        return (c0, c1, c2, c3)
    }
}

/// The address of one random stream: a training step, a sample and a purpose.
///
/// Counter layout (word 0 is the block index inside the stream):
/// `(block, sample, step low 32 bits, step high 28 bits | stream << 28)`, key = the 64-bit seed.
public struct RandomStream: Sendable, Equatable {
    /// What the numbers are for; distinct tags never share a counter.
    public enum Tag: UInt32, Sendable {
        case scalars = 0        // per-sample uniforms: t, m, class dropout
        case noise = 1          // the Gaussian x0
        case perturbation = 2   // Input Perturbation's extra Gaussian
        case sampler = 3        // SDE sampler noise
        case initialization = 4 // model weights
        case labels = 5         // "equal" class-label sampling (remainder labels, the shuffle)
    }

    public let key: (UInt32, UInt32)
    public let c1: UInt32
    public let c2: UInt32
    public let c3: UInt32

    /// Largest step number representable in the counter (2^60 - 1).
    public static let maxStep: UInt64 = (1 << 60) - 1

    /// Number of distinct sample indices (the counter word holds 32 bits).
    public static let sampleIndexCount: UInt64 = 1 << 32

    /// The one range check for the sample indices of a batch: rows `firstSample ..< firstSample + batch` are keyed
    /// by `firstSample + row`, which must fit the 32-bit counter word. Overflow-safe for any caller value, so
    /// after it `UInt32(truncatingIfNeeded: firstSample &+ UInt64(row))` is exact.
    public static func checkSampleRange(firstSample: UInt64, batch: Int) throws {
        guard batch >= 0, UInt64(batch) <= sampleIndexCount, firstSample <= sampleIndexCount - UInt64(batch) else {
            throw MixflowError.invalidArgument("first_sample + batch must be <= 2^32, got \(firstSample) + \(batch)")
        }
    }

    @inlinable
    public init(seed: UInt64, step: UInt64, sample: UInt32, tag: Tag) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        c1 = sample
        c2 = UInt32(truncatingIfNeeded: step)
        c3 = UInt32(truncatingIfNeeded: step >> 32) & 0x0FFF_FFFF | (tag.rawValue << 28)
    }

    public static func == (a: RandomStream, b: RandomStream) -> Bool {
        a.key == b.key && a.c1 == b.c1 && a.c2 == b.c2 && a.c3 == b.c3
    }

    /// Four random words of block `index`.
    @inlinable
    public func words(_ index: UInt32) -> (UInt32, UInt32, UInt32, UInt32) {
        Philox.block((index, c1, c2, c3), key: key)
    }

    /// Two uniform doubles in [0, 1) with 53 random bits each, from block `index`.
    @inlinable
    public func uniformPair(_ index: UInt32) -> (Double, Double) {
        let w = words(index)
        return (Self.unitDouble(w.0, w.1), Self.unitDouble(w.2, w.3))
    }

    @inlinable
    static func unitDouble(_ a: UInt32, _ b: UInt32) -> Double {
        let bits = (UInt64(a) << 21) ^ UInt64(b >> 11)   // 53 bits
        return Double(bits & ((1 << 53) - 1)) * 0x1p-53
    }
}
