internal import CKernels
import MixflowCore

/// Exponential moving average of weights, as SiT and RAE keep it: after every optimiser step
/// `ema ← decay·ema + (1 − decay)·p` over every parameter, the fixed ones included (SiT's EMA loop runs
/// over all named parameters, so pos_embed is averaged too — it never changes, so it stays equal).
public enum EMA {
    public static func update(ema: UnsafeMutablePointer<Float>, params: UnsafePointer<Float>, count: Int,
                              decay: Double, threads: Int = 0) {
        let d = Float(decay), w = Float(1 - decay)
        Parallel.forRanges(count, threads: Parallel.threads(threads), grain: 1 << 16) { r in
            mfx_ema(kernelISA, ema + r.lowerBound, params + r.lowerBound, r.count, d, w)
        }
    }
}
