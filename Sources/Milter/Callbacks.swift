// The C callbacks libmilter calls on its own threads, one per protocol stage, and the
// per-connection session box stored with smfi_setpriv. They are free functions in a file of
// their own: a closure written in top-level code of an executable's main.swift is main-actor
// isolated, and the runtime stops the process when libmilter calls it from another thread.
// A callback must never let a Swift error escape into C and never stop the process.
// Every error becomes a log line and the configured failure reply, which a stage without
// reply (MilterConfiguration.noReplyStages) leaves to the next stage that replies.
import CMilter
import Glibc

/// The per-connection state: the options negotiated for it, from its first stage on its
/// session, and a failure at a no-reply stage whose failure reply is still pending. The private
/// data pointer (smfi_setpriv) keeps one retained reference from negotiation until close.
/// When the MTA reuses a connection without negotiating again, the first stage creates the
/// box instead. Only this connection's callbacks touch the box, and never at once.
private final class ConnectionBox {
    let runtime: ServerRuntime
    /// nil when the MTA did not negotiate on this connection.
    let options: NegotiatedOptions?
    /// Stages at which libmilter sends no reply on this connection.
    let noReplyStages: Set<ProtocolStage>
    /// Created by the first stage callback, so a connection that closes before any stage
    /// creates no session.
    var session: MilterSession?
    /// The no-reply stage that failed. The stages that reply get the failure reply until
    /// end of message sends it.
    var pendingFailure: ProtocolStage?

    init(runtime: ServerRuntime, options: NegotiatedOptions?) {
        self.runtime = runtime
        self.options = options
        // A context that libmilter reuses without a new negotiation ("quit, new connection
        // follows") keeps the steps of its first one. Those contain the configured no-reply
        // stages, because libmilter offers every SMFIP_NR_* bit to the negotiate callback.
        noReplyStages = options?.noReplyStages
            ?? runtime.configuration.noReplyStages.intersection(runtime.configuration.stages)
    }
}

/// Builds the description passed to smfi_register. Stages the configuration leaves out get
/// NULL callbacks, from which libmilter derives "do not send" bits at negotiation.
func makeFilterDescription(name: UnsafeMutablePointer<CChar>, runtime: ServerRuntime) -> smfiDesc {
    let stages = runtime.configuration.stages
    return smfiDesc(
        xxfi_name: name,
        xxfi_version: SMFI_VERSION,
        xxfi_flags: runtime.wantedActions.rawValue,
        xxfi_connect: stages.contains(.connect) ? milterConnect : nil,
        xxfi_helo: stages.contains(.helo) ? milterHelo : nil,
        xxfi_envfrom: stages.contains(.envelopeFrom) ? milterEnvelopeFrom : nil,
        xxfi_envrcpt: stages.contains(.envelopeRecipient) ? milterEnvelopeRecipient : nil,
        xxfi_header: stages.contains(.header) ? milterHeader : nil,
        xxfi_eoh: stages.contains(.endOfHeaders) ? milterEndOfHeaders : nil,
        xxfi_body: stages.contains(.body) ? milterBody : nil,
        xxfi_eom: stages.contains(.endOfMessage) ? milterEndOfMessage : nil,
        xxfi_abort: milterAbort,
        xxfi_close: milterClose,
        xxfi_unknown: stages.contains(.unknown) ? milterUnknown : nil,
        xxfi_data: stages.contains(.data) ? milterData : nil,
        xxfi_negotiate: milterNegotiate
    )
}

// MARK: - Connection and session lifetime

/// Stores a new box as the connection's private data, or returns nil after logging.
private func attachBox(_ context: OpaquePointer, runtime: ServerRuntime, options: NegotiatedOptions?) -> ConnectionBox? {
    let box = ConnectionBox(runtime: runtime, options: options)
    let retained = Unmanaged.passRetained(box)
    guard smfi_setpriv(context, retained.toOpaque()) == MI_SUCCESS else {
        retained.release()
        runtime.log(.error, "smfi_setpriv failed; answering this connection with the failure reply")
        return nil
    }
    return box
}

private func existingBox(_ context: OpaquePointer) -> ConnectionBox? {
    smfi_getpriv(context).map { Unmanaged<ConnectionBox>.fromOpaque($0).takeUnretainedValue() }
}

/// Returns the connection's session, creating it at the first stage of the connection.
/// That is normally connect, but a configuration without the connect stage creates it at
/// the first stage it does receive.
private func session(_ context: OpaquePointer) -> (MilterSession, ConnectionBox)? {
    var box = existingBox(context)
    if box == nil, let runtime = installedRuntime.withLock({ $0 }) {
        box = attachBox(context, runtime: runtime, options: nil)
    }
    guard let box else {
        return nil
    }

    if let session = box.session {
        return (session, box)
    }
    let session = box.runtime.makeSession()
    box.session = session
    return (session, box)
}

private typealias StageHandler = (MilterSession, Macros, OpaquePointer, NegotiatedOptions?) throws -> Reply

/// Runs one stage of the session and converts its reply or error into a libmilter status.
private func dispatch(_ context: OpaquePointer?, _ stage: ProtocolStage, _ handler: StageHandler) -> sfsistat {
    // NOTE: without a box a failure at a no-reply stage cannot be remembered, and libmilter
    // drops this status there. It happens only when smfi_setpriv fails, which it does only
    // for a NULL context.
    guard let context, let (session, box) = session(context) else {
        return SMFIS_TEMPFAIL
    }
    if box.noReplyStages.contains(stage) {
        runWithoutReply(stage, session: session, box: box, context: context, handler)
        return SMFIS_NOREPLY
    }
    if let failedStage = box.pendingFailure {
        return replyWithFailure(of: failedStage, at: stage, session: session, box: box, context: context)
    }

    let runtime = box.runtime
    let macros = runtime.readMacros(context)
    let reply: Reply
    do {
        reply = try handler(session, macros, context, box.options)
    } catch {
        runtime.log(.error, "\(stage.rawValue): session failed: \(error); answering with the failure reply")
        return runtime.failureStatus(stage: stage, context: context, options: box.options)
    }
    return runtime.status(for: reply, stage: stage, context: context, options: box.options)
}

/// Runs a stage whose reply the MTA does not wait for. Anything but `continue` (or a
/// `skip`, which only saves work) becomes the connection's pending failure.
private func runWithoutReply(_ stage: ProtocolStage, session: MilterSession, box: ConnectionBox,
                             context: OpaquePointer, _ handler: StageHandler) {
    let runtime = box.runtime
    let macros = runtime.readMacros(context)
    let problem: String
    do {
        let reply = try handler(session, macros, context, box.options)
        switch reply {
        case .continue, .skip:
            return
        case .accept, .reject, .tempfail, .discard, .custom:
            problem = "session returned \(reply) at a stage without reply"
        }
    } catch {
        problem = "session failed: \(error)"
    }

    if let failedStage = box.pendingFailure {
        runtime.log(.debug, "\(stage.rawValue): \(problem); the failure reply for \(failedStage.rawValue) is still pending")
        return
    }
    box.pendingFailure = stage
    runtime.log(.error, "\(stage.rawValue): \(problem); the MTA expects no reply here, so the next stage that replies gets the failure reply")
}

/// Returns the failure reply for a stage that replies, because an earlier no-reply stage
/// failed, without calling the session. End of message settles the failure: the session
/// gets `abort` instead of `endOfMessage`, so it resets the message and counts nothing.
private func replyWithFailure(of failedStage: ProtocolStage, at stage: ProtocolStage, session: MilterSession,
                           box: ConnectionBox, context: OpaquePointer) -> sfsistat {
    let runtime = box.runtime
    runtime.log(.debug, "\(stage.rawValue): sending the failure reply, because \(failedStage.rawValue) failed")
    if stage == .endOfMessage {
        box.pendingFailure = nil
        session.abort(macros: runtime.readMacros(context))
    }
    return runtime.failureStatus(stage: stage, context: context, options: box.options)
}

// MARK: - Callbacks

private func milterNegotiate(
    _ context: OpaquePointer?,
    _ offeredActions: UInt, _ offeredSteps: UInt, _ reserved2: UInt, _ reserved3: UInt,
    _ actions: UnsafeMutablePointer<UInt>?, _ steps: UnsafeMutablePointer<UInt>?,
    _ requested2: UnsafeMutablePointer<UInt>?, _ requested3: UnsafeMutablePointer<UInt>?
) -> sfsistat {
    guard let context, let actions, let steps,
          let runtime = installedRuntime.withLock({ $0 }) else {
        return SMFIS_REJECT
    }
    let options = runtime.negotiate(context, offeredActions: offeredActions, offeredSteps: offeredSteps,
                                    actions: &actions.pointee, steps: &steps.pointee)
    requested2?.pointee = 0
    requested3?.pointee = 0

    // libmilter negotiates once per connection, so no box exists yet; replace one anyway
    // rather than leak it.
    if let stale = smfi_getpriv(context) {
        _ = smfi_setpriv(context, nil)
        Unmanaged<ConnectionBox>.fromOpaque(stale).release()
    }
    guard attachBox(context, runtime: runtime, options: options) != nil else {
        return SMFIS_REJECT
    }
    return SMFIS_CONTINUE
}

private func milterConnect(_ context: OpaquePointer?, _ hostname: UnsafeMutablePointer<CChar>?,
                           _ address: UnsafeMutablePointer<sockaddr>?) -> sfsistat {
    dispatch(context, .connect) { session, macros, _, _ in
        try session.connect(hostname: hostname.map { String(cString: $0) } ?? "",
                            address: PeerAddress(socketAddress: address), macros: macros)
    }
}

private func milterHelo(_ context: OpaquePointer?, _ name: UnsafeMutablePointer<CChar>?) -> sfsistat {
    dispatch(context, .helo) { session, macros, _, _ in
        try session.helo(name.map { String(cString: $0) } ?? "", macros: macros)
    }
}

private func milterEnvelopeFrom(_ context: OpaquePointer?,
                                _ arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> sfsistat {
    dispatch(context, .envelopeFrom) { session, macros, _, _ in
        let words = stringArray(arguments)
        return try session.envelopeFrom(words.first ?? "", arguments: Array(words.dropFirst()), macros: macros)
    }
}

private func milterEnvelopeRecipient(_ context: OpaquePointer?,
                                     _ arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> sfsistat {
    dispatch(context, .envelopeRecipient) { session, macros, _, _ in
        let words = stringArray(arguments)
        return try session.envelopeRecipient(words.first ?? "", arguments: Array(words.dropFirst()), macros: macros)
    }
}

private func milterData(_ context: OpaquePointer?) -> sfsistat {
    dispatch(context, .data) { session, macros, _, _ in
        try session.data(macros: macros)
    }
}

private func milterHeader(_ context: OpaquePointer?, _ name: UnsafeMutablePointer<CChar>?,
                          _ value: UnsafeMutablePointer<CChar>?) -> sfsistat {
    dispatch(context, .header) { session, macros, _, _ in
        try session.header(name: name.map { String(cString: $0) } ?? "", value: bytes(value), macros: macros)
    }
}

private func milterEndOfHeaders(_ context: OpaquePointer?) -> sfsistat {
    dispatch(context, .endOfHeaders) { session, macros, _, _ in
        try session.endOfHeaders(macros: macros)
    }
}

private func milterBody(_ context: OpaquePointer?, _ chunk: UnsafeMutablePointer<UInt8>?, _ length: Int) -> sfsistat {
    dispatch(context, .body) { session, macros, _, _ in
        let bytes = chunk.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
        return try session.body(bytes, macros: macros)
    }
}

private func milterEndOfMessage(_ context: OpaquePointer?) -> sfsistat {
    dispatch(context, .endOfMessage) { session, macros, context, options in
        let message = EndOfMessage(context: context, grantedActions: options?.actions)
        return try session.endOfMessage(message, macros: macros)
    }
}

private func milterUnknown(_ context: OpaquePointer?, _ command: UnsafePointer<CChar>?) -> sfsistat {
    dispatch(context, .unknown) { session, macros, _, _ in
        try session.unknown(command: bytes(command), macros: macros)
    }
}

/// Tells the session the message was aborted and drops a pending failure of the message.
/// libmilter ignores the return value.
private func milterAbort(_ context: OpaquePointer?) -> sfsistat {
    // An abort before any stage has no session to tell, so none is created for it.
    guard let context, let box = existingBox(context), let session = box.session else {
        return SMFIS_CONTINUE
    }
    // A failure at connect or helo outlives the message, as those stages do.
    if let failedStage = box.pendingFailure, !failedStage.isConnectionStage {
        box.pendingFailure = nil
    }
    session.abort(macros: box.runtime.readMacros(context))
    return SMFIS_CONTINUE
}

/// Ends the connection: clears the private data, calls the session's `close()` if a session
/// was created, and releases the box. libmilter calls this even for connections that never
/// negotiated, and then there is nothing to release.
private func milterClose(_ context: OpaquePointer?) -> sfsistat {
    guard let context, let raw = smfi_getpriv(context) else {
        return SMFIS_CONTINUE
    }
    _ = smfi_setpriv(context, nil)
    let box = Unmanaged<ConnectionBox>.fromOpaque(raw).takeRetainedValue()
    box.session?.close()
    return SMFIS_CONTINUE
}

// MARK: - Conversions

/// Copies a NULL-terminated C array of C strings (libmilter's argv for MAIL and RCPT).
private func stringArray(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
    guard let array else {
        return []
    }
    var strings: [String] = []
    var index = 0
    while let element = array[index] {
        strings.append(String(cString: element))
        index += 1
    }
    return strings
}

/// Copies the bytes of a C string without decoding them, so non-UTF-8 bytes survive.
private func bytes(_ text: UnsafePointer<CChar>?) -> [UInt8] {
    guard let text else {
        return []
    }
    return Array(UnsafeRawBufferPointer(start: text, count: strlen(text)))
}
