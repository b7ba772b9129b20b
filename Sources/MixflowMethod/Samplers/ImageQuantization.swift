/// Each codebase's float → uint8 rule for decoded images (docs/exactness.md §4.6), and the NCHW → NHWC layout change of
/// the ADM `.npz` format. All three truncate toward zero after clamping (torch's `.to(uint8)`).
///   SiT:  clamp(127.5·x + 128, 0, 255)      (x in [−1, 1])
///   RAE:  clamp(x, 0, 1)·255                (x in [0, 1])
///   REPA: clamp(255·(x + 1)/2, 0, 255)      (x in [−1, 1])
public enum ImageQuantization {
    @inline(__always)
    public static func byte(_ x: Float, _ convention: TimeConvention) -> UInt8 {
        let v: Float
        switch convention {
        case .sit: v = min(255, max(0, 127.5 * x + 128))
        case .rae: v = min(1, max(0, x)) * 255
        case .repa: v = min(255, max(0, 255 * (x + 1) / 2))
        }
        return UInt8(v.isNaN ? 0 : v)
    }

    /// x: [n, c, h, w] float → out: [n, h, w, c] uint8.
    public static func toNHWC(_ x: UnsafePointer<Float>, n: Int, c: Int, h: Int, w: Int, convention: TimeConvention,
                              out: UnsafeMutablePointer<UInt8>) {
        let plane = h * w
        for i in 0..<n {
            let src = x + i * c * plane, dst = out + i * plane * c
            for p in 0..<plane { for ch in 0..<c { dst[p * c + ch] = byte(src[ch * plane + p], convention) } }
        }
    }
}
