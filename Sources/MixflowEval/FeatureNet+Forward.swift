import MixflowCore

// The batched forward. Activations inside a chunk are laid out channel-major across the batch,
// [C, B, H, W], so every convolution of the chunk is ONE sgemm: out[OC, B·H·W] = W[OC, IC·9] · col[IC·9, B·H·W]
// (im2col), which keeps OpenBLAS in its fast large-N regime. im2col copies whole row segments (memcpy-sized
// runs), never one element at a time, so it stays cheap even in debug builds. Chunks run in parallel on our
// own threads with single-threaded OpenBLAS calls (MixflowCore.BLAS's process-wide policy).

extension FeatureNet {
    struct Scratch {
        var a, b, col, fcA, fcB: UnsafeMutablePointer<Float>

        init(net: FeatureNet) {
            let n = FeatureNet.chunk
            var act = net.inputDim * n, col = 1
            for c in net.convs {
                act = max(act, c.outC * c.height * c.width * n)
                col = max(col, c.inC * 9 * c.height * c.width * n)
            }
            let fc = net.fcs.map { max($0.inF, $0.outF) }.max()! * n
            a = .allocate(capacity: act); b = .allocate(capacity: act); self.col = .allocate(capacity: col)
            fcA = .allocate(capacity: fc); fcB = .allocate(capacity: fc)
        }

        func free() { a.deallocate(); b.deallocate(); col.deallocate(); fcA.deallocate(); fcB.deallocate() }
    }

    func forwardChunk(_ x: UnsafePointer<Float>, _ batch: Int, _ s: inout Scratch,
                      _ features: UnsafeMutablePointer<Float>?, _ logits: UnsafeMutablePointer<Float>?) {
        var fcInput: UnsafePointer<Float> = x
        if !convs.isEmpty {
            // [B, C, H, W] → [C, B, H, W]
            let c0 = inputShape.c, plane = inputShape.h * inputShape.w
            for b in 0..<batch { for c in 0..<c0 {
                (s.a + (c * batch + b) * plane).update(from: x + (b * c0 + c) * plane, count: plane)
            } }
            var current = s.a, other = s.b
            var channels = c0, h = inputShape.h, w = inputShape.w
            for conv in convs {
                convolve(conv, input: current, batch: batch, col: s.col, out: other)
                swap(&current, &other)
                channels = conv.outC
                if conv.pool {
                    maxPool(current, planes: channels * batch, h, w, out: other)
                    swap(&current, &other)
                    h /= 2; w /= 2
                }
            }
            // [C, B, H, W] → [B, C·H·W], the (channel, y, x) flattening of the first fc layer.
            let plane2 = h * w
            for b in 0..<batch { for c in 0..<channels {
                (other + b * channels * plane2 + c * plane2).update(from: current + (c * batch + b) * plane2, count: plane2)
            } }
            fcInput = UnsafePointer(other)
        }
        let last = fcs.count - 1
        let needed = logits != nil ? fcs.count : fcs.count - 1
        for l in 0..<needed {
            let layer = fcs[l]
            let dest: UnsafeMutablePointer<Float>
            if l == last, let logits { dest = logits }
            else if l == last - 1, let features { dest = features }
            else { dest = l % 2 == 0 ? s.fcA : s.fcB }
            layer.bias.withUnsafeBufferPointer { bias in
                for r in 0..<batch { (dest + r * layer.outF).update(from: bias.baseAddress!, count: layer.outF) }
            }
            layer.weight.withUnsafeBufferPointer { wt in
                // dest[B, out] += input[B, in] · W[out, in]^T
                BLAS.sgemm(transA: false, transB: true, m: batch, n: layer.outF, k: layer.inF, a: fcInput,
                           lda: layer.inF, b: wt.baseAddress!, ldb: layer.inF, beta: 1, c: dest, ldc: layer.outF)
            }
            if l != last { relu(dest, batch * layer.outF) }
            fcInput = UnsafePointer(dest)
        }
    }

    /// 3×3, stride 1, zero padding 1, then ReLU. input: [IC, B, H, W] → out: [OC, B, H, W].
    func convolve(_ conv: Conv, input: UnsafeMutablePointer<Float>, batch: Int, col: UnsafeMutablePointer<Float>,
                  out: UnsafeMutablePointer<Float>) {
        let h = conv.height, w = conv.width, plane = h * w, n = batch * plane
        // col[(ic·9 + ky·3 + kx), (b, y, x)] = input[ic, b, y + ky - 1, x + kx - 1], or 0 outside the image.
        for ic in 0..<conv.inC { for ky in 0..<3 { for kx in 0..<3 {
            let dy = ky - 1, dx = kx - 1
            let row = col + ((ic * 3 + ky) * 3 + kx) * n
            let x0 = max(0, -dx), x1 = min(w, w - dx)        // output x whose source x + dx is inside
            for b in 0..<batch {
                let src = input + (ic * batch + b) * plane
                let dst = row + b * plane
                for y in 0..<h {
                    let line = dst + y * w
                    let sy = y + dy
                    if sy < 0 || sy >= h { line.update(repeating: 0, count: w); continue }
                    if x0 > 0 { line.update(repeating: 0, count: x0) }
                    (line + x0).update(from: src + sy * w + x0 + dx, count: x1 - x0)
                    if x1 < w { (line + x1).update(repeating: 0, count: w - x1) }
                }
            }
        } } }
        conv.bias.withUnsafeBufferPointer { bias in
            for oc in 0..<conv.outC { (out + oc * n).update(repeating: bias[oc], count: n) }
        }
        conv.weight.withUnsafeBufferPointer { wt in
            BLAS.sgemm(transA: false, transB: false, m: conv.outC, n: n, k: conv.inC * 9, a: wt.baseAddress!,
                       lda: conv.inC * 9, b: col, ldb: n, beta: 1, c: out, ldc: n)
        }
        relu(out, conv.outC * n)
    }

    /// 2×2 max-pool, stride 2, flooring odd sizes. input: [planes, h, w] → out: [planes, h/2, w/2].
    func maxPool(_ input: UnsafeMutablePointer<Float>, planes: Int, _ h: Int, _ w: Int, out: UnsafeMutablePointer<Float>) {
        let oh = h / 2, ow = w / 2
        for p in 0..<planes {
            let src = input + p * h * w, dst = out + p * oh * ow
            for y in 0..<oh {
                let r0 = src + 2 * y * w, r1 = r0 + w, o = dst + y * ow
                for x in 0..<ow {
                    o[x] = max(max(r0[2 * x], r0[2 * x + 1]), max(r1[2 * x], r1[2 * x + 1]))
                }
            }
        }
    }
}

@inline(__always)
func relu(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = max(p[i], 0) }
}
