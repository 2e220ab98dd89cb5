// Message modifications, which libmilter allows only inside the end-of-message callback.
// EndOfMessage is ~Copyable and handed out `borrowing`, so a session cannot keep it past that
// callback. Each method makes one libmilter call; a failure becomes a thrown MilterError and
// must never be ignored silently.
import CMilter

/// The modifications a session may make at end of message. Valid only during
/// `MilterSession.endOfMessage`. Each method needs its action to have been requested in
/// `MilterConfiguration.actions` and offered by the MTA; otherwise libmilter refuses the
/// call and the method throws.
public struct EndOfMessage: ~Copyable {
    private let context: OpaquePointer
    /// Actions negotiated for this connection, or nil when the MTA did not negotiate on it.
    private let grantedActions: MilterActions?

    init(context: OpaquePointer, grantedActions: MilterActions?) {
        self.context = context
        self.grantedActions = grantedActions
    }

    /// Throws before the C call when negotiation did not grant `action`, because libmilter
    /// would only return MI_FAILURE without saying why.
    private func requireAction(_ action: MilterActions, _ name: String, _ operation: String, _ detail: String) throws {
        if let grantedActions, !grantedActions.contains(action) {
            throw MilterError(operation: operation, detail: "\(detail): the MTA did not grant action \(name)")
        }
    }

    /// Appends a header (needs `.addHeaders`). A multi-line value folds with "\n" followed by
    /// a space or tab; the MTA adds the CR and a leading space before the value.
    public func addHeader(name: String, value: String) throws {
        try requireAction(.addHeaders, "addHeaders", "smfi_addheader", "header \(name)")
        let result = withMutableCStrings(name, value) { name, value in
            smfi_addheader(context, name, value)
        }
        try checkMilterCall(result, "smfi_addheader", "header \(name)")
    }

    /// Inserts a header before the header at `index` (0 is the top; needs `.addHeaders`).
    /// An index past the last header appends.
    public func insertHeader(at index: Int, name: String, value: String) throws {
        guard let position = Int32(exactly: index), position >= 0 else {
            throw MilterError(operation: "smfi_insheader", detail: "header \(name) at invalid index \(index)")
        }
        try requireAction(.addHeaders, "addHeaders", "smfi_insheader", "header \(name)")
        let result = withMutableCStrings(name, value) { name, value in
            smfi_insheader(context, position, name, value)
        }
        try checkMilterCall(result, "smfi_insheader", "header \(name) at index \(index)")
    }

    /// Replaces the value of the `occurrence`-th header called `name` (1-based; needs
    /// `.changeHeaders`). An occurrence past the last one adds the header.
    public func changeHeader(name: String, occurrence: Int, value: String) throws {
        guard let position = Int32(exactly: occurrence), position >= 1 else {
            throw MilterError(operation: "smfi_chgheader", detail: "header \(name) with invalid occurrence \(occurrence)")
        }
        try requireAction(.changeHeaders, "changeHeaders", "smfi_chgheader", "header \(name)")
        let result = withMutableCStrings(name, value) { name, value in
            smfi_chgheader(context, name, position, value)
        }
        try checkMilterCall(result, "smfi_chgheader", "header \(name) occurrence \(occurrence)")
    }

    /// Deletes the `occurrence`-th header called `name` (1-based; needs `.changeHeaders`).
    public func deleteHeader(name: String, occurrence: Int) throws {
        guard let position = Int32(exactly: occurrence), position >= 1 else {
            throw MilterError(operation: "smfi_chgheader", detail: "delete header \(name) with invalid occurrence \(occurrence)")
        }
        try requireAction(.changeHeaders, "changeHeaders", "smfi_chgheader", "delete header \(name)")
        let result = name.withCString { name in
            smfi_chgheader(context, UnsafeMutablePointer(mutating: name), position, nil)
        }
        try checkMilterCall(result, "smfi_chgheader", "delete header \(name) occurrence \(occurrence)")
    }

    /// Puts the message on hold (Postfix hold queue, Sendmail quarantine) with a reason
    /// (needs `.quarantine`). libmilter refuses an empty reason.
    public func quarantine(reason: String) throws {
        try requireAction(.quarantine, "quarantine", "smfi_quarantine", "reason \"\(reason)\"")
        let result = reason.withCString { reason in
            smfi_quarantine(context, UnsafeMutablePointer(mutating: reason))
        }
        try checkMilterCall(result, "smfi_quarantine", "reason \"\(reason)\"")
    }

    /// Tells the MTA the milter is still working, which restarts the MTA's timeout.
    public func progress() throws {
        try checkMilterCall(smfi_progress(context), "smfi_progress", "")
    }
}

/// Runs `body` with C copies of two strings. libmilter declares `char *` parameters but does
/// not write through them, so the const pointers are passed as mutable.
func withMutableCStrings<Result>(
    _ first: String, _ second: String,
    _ body: (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>) -> Result
) -> Result {
    first.withCString { first in
        second.withCString { second in
            body(UnsafeMutablePointer(mutating: first), UnsafeMutablePointer(mutating: second))
        }
    }
}
