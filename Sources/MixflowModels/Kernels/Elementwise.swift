import MixflowCore

// Shared plumbing of the elementwise kernels: a parallel loop over equal slices, and SIMD8 load/store.

/// Elements per work item below which a loop stays on one thread (a thread wake-up costs ~10 µs,
/// about what one core needs for 64K simple float operations).
let elementGrain = 1 << 15

/// Runs `body` over disjoint ranges covering 0..<count on up to `threads` threads. The split never changes
/// a result: every kernel computes each output element from its own inputs only.
@inlinable
func parallelFor(_ count: Int, threads: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    Parallel.forRanges(count, threads: threads, grain: grain, body)
}

extension UnsafePointer where Pointee == Float {
    @inlinable func simd8(_ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(self).loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inlinable func simd8(_ i: Int) -> SIMD8<Float> {
        UnsafeRawPointer(self).loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
    }
    @inlinable func store8(_ v: SIMD8<Float>, _ i: Int) {
        UnsafeMutableRawPointer(self).storeBytes(of: v, toByteOffset: i &* 4, as: SIMD8<Float>.self)
    }
}

/// Σ a_i·b_i over n floats with a SIMD accumulator; fixed order, so deterministic.
@inlinable
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n { acc += a.simd8(i) * b.simd8(i); i += 8 }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// Σ a_i over n floats with a SIMD accumulator; fixed order.
@inlinable
func sum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n { acc += a.simd8(i); i += 8 }
    var s = acc.sum()
    while i < n { s += a[i]; i += 1 }
    return s
}

/// y += a·x over n floats.
@inlinable
func axpy(_ y: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    let av = SIMD8<Float>(repeating: a)
    while i + 8 <= n { y.store8(y.simd8(i) + av * x.simd8(i), i); i += 8 }
    while i < n { y[i] += a * x[i]; i += 1 }
}
