import MixflowCore

// The checks every architecture's `validate` is made of; messages name the fields as the C params structs do.

/// 2^32 floats (16 GiB of weights, as much again for gradients): what one model may allocate.
public let maxModelParameters = 1 << 32

/// `v` must be in [1, max].
public func checkRange(_ v: Int, _ name: String, max: Int = 1 << 16) throws {
    guard v > 0, v <= max else { throw MixflowError.invalidArgument("\(name) must be in [1, \(max)], got \(v)") }
}

/// A class-dropout probability must be in [0, 1).
public func checkClassDropout(_ p: Float) throws {
    guard p.isFinite, p >= 0, p < 1 else {
        throw MixflowError.invalidArgument("class_dropout must be in [0, 1), got \(p)")
    }
}

/// The parameter count of a configuration (each field's cap keeps it inside Int64) must fit `maxModelParameters`.
public func checkParameterCount(_ count: Int) throws {
    guard count <= maxModelParameters else {
        throw MixflowError.invalidArgument("the configuration has \(count) parameters, more than the \(maxModelParameters) supported")
    }
}
