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
