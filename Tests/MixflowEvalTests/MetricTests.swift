import MixflowCore
@testable import MixflowEval
import Testing

// Independent references: closed forms for Gaussians with commuting (diagonal) covariances, a rotation that
// must leave the distance unchanged, and a direct double loop for the unbiased MMD².

func lcg(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed
    return (0..<n).map { _ in s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: s >> 11) % 20001 - 10000) / 10000 }
}

@Test func frechetDistanceOfDiagonalGaussiansHasTheClosedForm() throws {
    // FD = Σ (m1 - m2)² + Σ (√s1 - √s2)² when both covariances are diagonal.
    let d = 6
    let m1 = [0.5, -1, 2, 0, 0.25, 3], m2 = [0.0, 1, 2, -1, 0.25, 0]
    let s1 = [1.0, 4, 0.25, 9, 2, 0], s2 = [4.0, 1, 0.25, 1, 3, 5]   // a zero variance: singular S1
    var c1 = [Double](repeating: 0, count: d * d), c2 = c1
    for i in 0..<d { c1[i * d + i] = s1[i]; c2[i * d + i] = s2[i] }
    var expected = 0.0
    for i in 0..<d { expected += (m1[i] - m2[i]) * (m1[i] - m2[i]) + (s1[i].squareRoot() - s2[i].squareRoot()) * (s1[i].squareRoot() - s2[i].squareRoot()) }
    let fd = try FrechetDistance.distance(FeatureStats(dim: d, count: 2, mean: m1, covariance: c1),
                                          FeatureStats(dim: d, count: 2, mean: m2, covariance: c2))
    #expect(abs(fd - expected) < 1e-10 * max(1, expected), "\(fd) vs \(expected)")
    // Rotating both Gaussians by the same orthogonal matrix (a Givens rotation in the (0, 3) plane) changes nothing.
    let (c, s) = (0.6, 0.8)
    func rotate(_ m: [Double], _ cov: [Double]) -> ([Double], [Double]) {
        var r = [Double](repeating: 0, count: d * d)
        for i in 0..<d { r[i * d + i] = 1 }
        r[0] = c; r[3] = -s; r[3 * d] = s; r[3 * d + 3] = c
        var rm = [Double](repeating: 0, count: d), rc = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for k in 0..<d { rm[i] += r[i * d + k] * m[k] } }
        for i in 0..<d { for j in 0..<d { for k in 0..<d { for l in 0..<d { rc[i * d + j] += r[i * d + k] * cov[k * d + l] * r[j * d + l] } } } }
        return (rm, rc)
    }
    let (rm1, rc1) = rotate(m1, c1), (rm2, rc2) = rotate(m2, c2)
    let rotated = try FrechetDistance.distance(FeatureStats(dim: d, count: 2, mean: rm1, covariance: rc1),
                                               FeatureStats(dim: d, count: 2, mean: rm2, covariance: rc2))
    #expect(abs(rotated - expected) < 1e-9 * max(1, expected), "\(rotated) vs \(expected)")
    // Identical statistics are at distance 0 (up to round-off in the square roots).
    let same = try FrechetDistance.distance(FeatureStats(dim: d, count: 2, mean: rm1, covariance: rc1),
                                            FeatureStats(dim: d, count: 2, mean: rm1, covariance: rc1))
    #expect(abs(same) < 1e-7)
}

@Test func featureStatsMatchTheTextbookFormulas() {
    let n = 5000, d = 3   // more rows than one dsyrk block (2048), to exercise the accumulation
    let f = lcg(n * d, seed: 3).enumerated().map { $0.element + Float($0.offset % d) }   // column means 0, 1, 2
    let stats = FeatureStats(features: f, count: n, dim: d)
    var mean = [Double](repeating: 0, count: d)
    for r in 0..<n { for j in 0..<d { mean[j] += Double(f[r * d + j]) / Double(n) } }
    for j in 0..<d { #expect(abs(stats.mean[j] - mean[j]) < 1e-12) }
    for i in 0..<d { for j in 0..<d {
        var c = 0.0
        for r in 0..<n { c += (Double(f[r * d + i]) - mean[i]) * (Double(f[r * d + j]) - mean[j]) }
        c /= Double(n - 1)
        #expect(abs(stats.covariance[i * d + j] - c) < 1e-12, "cov[\(i)][\(j)]")
    } }
}

// m = 300 spans two kernel row blocks (256 rows each), so the blocked accumulation is covered.
@Test(arguments: [(40, 30, 20), (400, 350, 300)])
func kidMatchesADirectDoubleLoop(na: Int, nb: Int, m: Int) {
    let d = 4, subsets = 3
    let a = lcg(na * d, seed: 5), b = lcg(nb * d, seed: 6).map { $0 + 0.3 }
    let r = KID.compute(a: a, countA: na, b: b, countB: nb, dim: d, numSubsets: subsets, subsetSize: m, seed: 42)
    func k(_ x: ArraySlice<Float>, _ y: ArraySlice<Float>) -> Double {
        var dot = 0.0
        for (u, v) in zip(x, y) { dot += Double(u) * Double(v) }
        let t = dot / Double(d) + 1
        return t * t * t
    }
    for s in 0..<subsets {
        let ia = KID.subset(n: na, m: m, seed: 42, subset: s, which: 0), ib = KID.subset(n: nb, m: m, seed: 42, subset: s, which: 1)
        #expect(Set(ia).count == m && ia.allSatisfy { (0..<na).contains($0) } && Set(ib).count == m)
        let row = { (f: [Float], i: Int) in f[(i * d)..<((i + 1) * d)] }
        var xx = 0.0, yy = 0.0, xy = 0.0
        for i in 0..<m { for j in 0..<m {
            if i != j { xx += k(row(a, ia[i]), row(a, ia[j])); yy += k(row(b, ib[i]), row(b, ib[j])) }
            xy += k(row(a, ia[i]), row(b, ib[j]))
        } }
        let mmd = (xx + yy) / Double(m * (m - 1)) - 2 * xy / Double(m * m)
        #expect(abs(r.subsetValues[s] - mmd) < 1e-9 * max(1, abs(mmd)), "subset \(s)")
    }
    let mean = r.subsetValues.reduce(0, +) / 3
    let sd = (r.subsetValues.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 2).squareRoot()
    #expect(abs(r.mean - mean) < 1e-15 && abs(r.standardError - sd / 3.0.squareRoot()) < 1e-12)
    // Different subsets differ, the same seed repeats, one subset has no standard error.
    #expect(r.subsetValues[0] != r.subsetValues[1])
    #expect(KID.compute(a: a, countA: na, b: b, countB: nb, dim: d, numSubsets: subsets, subsetSize: m, seed: 42).subsetValues == r.subsetValues)
    #expect(KID.compute(a: a, countA: na, b: b, countB: nb, dim: d, numSubsets: 1, subsetSize: m, seed: 42).standardError.isNaN)
}
