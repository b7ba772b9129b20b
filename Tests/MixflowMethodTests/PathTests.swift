import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowMethod
import MixflowCore

@Test(arguments: InterpolationPath.allCases)
func pathDerivativesMatchFiniteDifferences(path: InterpolationPath) {
    for s in stride(from: 0.05, through: 0.95, by: 0.05) {
        let c = path.coefficients(sitTime: s)
        let h = 1e-6
        let p = path.coefficients(sitTime: s + h), m = path.coefficients(sitTime: s - h)
        #expect(abs((p.alpha - m.alpha) / (2 * h) - c.dAlpha) < 1e-6 * max(1, abs(c.dAlpha)))
        #expect(abs((p.sigma - m.sigma) / (2 * h) - c.dSigma) < 1e-6 * max(1, abs(c.dSigma)))
    }
}

@Test func pathEndpointsAreNoiseAndData() {
    for path in [InterpolationPath.linear, .gvp] {
        let noise = path.coefficients(sitTime: 0), data = path.coefficients(sitTime: 1)
        #expect(abs(noise.alpha) < 1e-15 && abs(noise.sigma - 1) < 1e-15)
        #expect(abs(data.alpha - 1) < 1e-15 && abs(data.sigma) < 1e-15)
    }
}

// docs/exactness.md §2.2's closed forms of drift_var: Linear (1−t)/t, GVP (π/2)cot(πt/2), VP β(t)/2.
@Test func driftVarianceMatchesClosedForms() {
    for s in stride(from: 0.1, through: 0.9, by: 0.1) {
        #expect(abs(InterpolationPath.linear.driftVariance(sitTime: s) - (1 - s) / s) < 1e-12)
        #expect(abs(InterpolationPath.gvp.driftVariance(sitTime: s) - (Double.pi / 2) / tan(Double.pi * s / 2)) < 1e-12)
        let beta = 0.1 + (1 - s) * (20 - 0.1)
        #expect(abs(InterpolationPath.vp.driftVariance(sitTime: s) - beta / 2) < 1e-9)
    }
}

@Test func raeShiftMatchesSpecAppendixB() {
    #expect(abs(TimeShift.forDimension(768 * 16 * 16) - 6.928203230) < 1e-9)
    #expect(abs(TimeShift.forDimension(768 * 32 * 32) - 13.856406461) < 1e-9)
    #expect(abs(TimeShift.apply(0.001, shift: 48.0.squareRoot()) - 0.0068874) < 1e-7)
    // docs/exactness.md §4.1 rounds this one to 0.0136807; the exact value is 0.01368052…
    #expect(abs(TimeShift.apply(0.001, shift: 192.0.squareRoot()) - 0.0136805) < 1e-7)
    #expect(TimeShift.apply(0.3, shift: 1) == 0.3)
}

@Test func normalQuantileInvertsTheCDF() {
    for p in [1e-12, 1e-6, 0.01, 0.02425, 0.1, 0.5, 0.9, 0.97575, 0.999, 1 - 1e-9] {
        let x = TimeDistribution.normalQuantile(p)
        #expect(abs(TimeDistribution.normalCDF(x) - p) < 1e-12 * max(1, p / 1e-3) + 1e-15)
    }
}

@Test(arguments: TimeConvention.allCases)
func slowedTimeStaysInsideMixtureInterval(convention: TimeConvention) {
    for t in stride(from: 0.0, through: 1.0, by: 0.125) {
        for gamma in [0.0, 0.3, 0.8, 1.0] {
            let range = mixtureInterval(t, gamma: gamma, convention: convention)
            for u in [0.0, 0.25, 0.5, 0.999] {
                let m = slowedTime(t, uniform: u, gamma: gamma, convention: convention)
                #expect(range.contains(m) || abs(m - range.lowerBound) < 1e-15 || abs(m - range.upperBound) < 1e-15)
                // The slowed time is never less noisy than t.
                #expect(convention.noiseLevel(m) >= convention.noiseLevel(t) - 1e-15)
            }
            #expect(slowedTime(t, uniform: 0.7, gamma: 0, convention: convention) == t)
        }
    }
}

@Test func officialTrainEpsRules() throws {
    var c = TransportConfig()
    c.path = .linear; c.prediction = .velocity
    #expect(c.trainingInterval == 0...1)
    c.convention = .rae
    #expect(c.trainingInterval == 0...0.999)
    c.prediction = .noise
    #expect(c.trainingInterval == 1e-3...(1 - 1e-3))
    c.path = .vp
    #expect(c.trainingInterval == 0...(1 - 1e-5))
    c.trainEps = 0.01
    #expect(c.trainingInterval == 0...0.99)
}

@Test func invalidConfigurationsAreRejectedWithMessages() {
    var c = TransportConfig()
    c.gamma = 1.7
    #expect(throws: MixflowCore.MixflowError.invalidArgument("gamma must be in [0, 1], got 1.7")) { try c.validate() }
    c = TransportConfig(); c.timeShift = 0.5
    #expect(throws: (any Error).self) { try c.validate() }
    c = TransportConfig(); c.timeDistribution = .logitNormal(mean: 0, std: -1)
    #expect(throws: (any Error).self) { try c.validate() }
}
