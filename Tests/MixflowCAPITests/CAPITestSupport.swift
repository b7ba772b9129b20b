import CMixflow
import Mixflow

/// The last error message of this thread as a Swift string.
func lastError() -> String { String(cString: mixflow_last_error()!) }

func defaultTransportParams() -> mixflow_transport_params {
    var p = mixflow_transport_params()
    let s = mixflow_transport_default_params(&p, UInt32(MemoryLayout<mixflow_transport_params>.size))
    precondition(s == MIXFLOW_OK)
    return p
}

func makeTransport(_ edit: (inout mixflow_transport_params) -> Void = { _ in }) -> UnsafeMutablePointer<mixflow_transport>? {
    var p = defaultTransportParams()
    edit(&p)
    var h: UnsafeMutablePointer<mixflow_transport>?
    return mixflow_transport_create(&p, &h) == MIXFLOW_OK ? h : nil
}

/// A transport and a trainer on `model` from the C presets `name` (the transport's `dim`, the trainer's decay
/// window), with `edit` applied to the trainer params. The caller frees both (`mixflow_trainer_free` first).
func presetTrainer(_ model: UnsafeMutablePointer<mixflow_model>?, _ name: String, dim: Int64, decay: (Int64, Int64) = (0, 0),
                   _ edit: (inout mixflow_trainer_params) -> Void = { _ in })
    -> (transport: UnsafeMutablePointer<mixflow_transport>?, trainer: UnsafeMutablePointer<mixflow_trainer>?) {
    var tp = mixflow_transport_params(), rp = mixflow_trainer_params()
    precondition(mixflow_transport_preset_params(name, dim, &tp, UInt32(MemoryLayout<mixflow_transport_params>.size)) == MIXFLOW_OK)
    precondition(mixflow_trainer_preset_params(name, decay.0, decay.1, &rp,
                                               UInt32(MemoryLayout<mixflow_trainer_params>.size)) == MIXFLOW_OK)
    edit(&rp)
    var tr: UnsafeMutablePointer<mixflow_transport>?, trainer: UnsafeMutablePointer<mixflow_trainer>?
    precondition(mixflow_transport_create(&tp, &tr) == MIXFLOW_OK)
    if mixflow_trainer_create(model, tr, &rp, &trainer) != MIXFLOW_OK { trainer = nil }
    return (tr, trainer)
}
