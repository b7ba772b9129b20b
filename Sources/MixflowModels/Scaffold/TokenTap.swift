/// A per-token head attached to an architecture's residual stream (REPA's projectors on SiT): in a saving
/// forward pass it reads the tokens [B, T, D] after block `afterBlock`, and in backward it adds the gradient of
/// its own loss to the stream's gradient at that point. An architecture offers taps by calling `tapTokens`
/// after each block of its forward and `tapGradient` before each block of its backward (`NativeArchitecture`);
/// it knows nothing of what is attached. The head is attached with `state.tap` and adds its tensors to the
/// architecture's parameter layout itself.
protocol TokenTap: AnyObject {
    /// Blocks the stream has passed when the tap reads it (1...depth).
    var afterBlock: Int { get }
    /// tokens: the stream after `afterBlock` blocks of a saving pass of `batch` samples (valid until the next pass).
    func forward(tokens: UnsafePointer<Float>, batch: Int) throws
    /// Adds d(own loss)/d(tokens) into `dTokens` [B, T, D].
    func backward(dTokens: UnsafeMutablePointer<Float>, batch: Int)
}

extension NativeArchitecture {
    /// The residual stream after `blocks` blocks of a forward pass: an attached tap reads it in a saving pass.
    func tapTokens(after blocks: Int, _ tokens: UnsafePointer<Float>, batch: Int, saveForBackward: Bool) throws {
        if saveForBackward, let tap = state.tap, tap.afterBlock == blocks { try tap.forward(tokens: tokens, batch: batch) }
    }

    /// The gradient of the stream after `blocks` blocks, in backward: an attached tap adds its loss's share.
    func tapGradient(after blocks: Int, _ dTokens: UnsafeMutablePointer<Float>, batch: Int) {
        if let tap = state.tap, tap.afterBlock == blocks { tap.backward(dTokens: dTokens, batch: batch) }
    }
}
