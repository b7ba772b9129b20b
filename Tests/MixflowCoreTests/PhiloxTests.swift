import Testing
@testable import MixflowCore

// Known-answer vectors of Random123's kat_vectors for philox4x32 with 10 rounds.
@Test func philoxMatchesRandom123KnownAnswers() {
    let zero = Philox.block((0, 0, 0, 0), key: (0, 0))
    #expect(zero == (0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8))
    let ones = Philox.block((0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF), key: (0xFFFF_FFFF, 0xFFFF_FFFF))
    #expect(ones == (0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD))
    let pi = Philox.block((0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), key: (0xA409_3822, 0x299F_31D0))
    #expect(pi == (0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1))
}

@Test func simdPhiloxEqualsScalarPhilox() {
    let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 0xFFFF_FFFF)
    let v = Philox.block8(lanes, 7, 9, 11, key: (123, 456))
    for l in 0..<8 {
        let s = Philox.block((lanes[l], 7, 9, 11), key: (123, 456))
        #expect(s == (v.0[l], v.1[l], v.2[l], v.3[l]))
    }
}

@Test func streamsWithDifferentTagsOrSamplesDiffer() {
    let a = RandomStream(seed: 1, step: 2, sample: 3, tag: .noise)
    #expect(a != RandomStream(seed: 1, step: 2, sample: 3, tag: .scalars))
    #expect(a != RandomStream(seed: 1, step: 2, sample: 4, tag: .noise))
    #expect(a != RandomStream(seed: 1, step: 3, sample: 3, tag: .noise))
    #expect(a != RandomStream(seed: 2, step: 2, sample: 3, tag: .noise))
}
