// The state the C callbacks reach: the installed server's settings, log closure and session
// factory, and the conversion of replies into libmilter status codes. libmilter passes no
// context pointer of ours before negotiation, so the runtime is one process-wide value that
// MilterServer.open() installs. libmilter allows one milter per process anyway.
// Nothing here may throw into C or stop the process on bad input.
import CMilter
import CMilterShim
import Glibc
import Synchronization

/// The runtime of the one MilterServer that opened in this process.
let installedRuntime = Mutex<ServerRuntime?>(nil)

final class ServerRuntime: Sendable {
    let configuration: MilterConfiguration
    let log: @Sendable (LogLevel, String) -> Void
    let makeSession: @Sendable () -> MilterSession
    /// Actions passed to smfi_register and requested at negotiation.
    let wantedActions: MilterActions
    /// Names read with smfi_getsymval at every stage: the requested ones, then the standard set.
    let macroNames: [String]
    /// Set after the first warning about actions the MTA does not offer, so that each
    /// connection logs it at debug level only.
    private let reportedMissingActions = Atomic<Bool>(false)

    init(configuration: MilterConfiguration,
         log: @escaping @Sendable (LogLevel, String) -> Void,
         makeSession: @escaping @Sendable () -> MilterSession) {
        self.configuration = configuration
        self.log = log
        self.makeSession = makeSession

        var actions = configuration.actions
        if !configuration.macros.isEmpty {
            actions.insert(.setMacroList)
        }
        wantedActions = actions

        var names: [String] = []
        for stage in ProtocolStage.allCases {
            for name in configuration.macros[stage] ?? [] where !names.contains(name) {
                names.append(name)
            }
        }
        for name in Macros.standardNames where !names.contains(name) {
            names.append(name)
        }
        macroNames = names
    }

    /// Copies the values of `macroNames` that the MTA has sent so far on this connection.
    func readMacros(_ context: OpaquePointer) -> Macros {
        var values: [String: String] = [:]
        for name in macroNames {
            // The value points into libmilter's buffer, which the next packet overwrites.
            let value = name.withCString { smfi_getsymval(context, UnsafeMutablePointer(mutating: $0)) }
            if let value {
                values[name] = String(cString: value)
            }
        }
        return Macros(values)
    }

    /// Handles libmilter's xxfi_negotiate: requests actions and steps, then the macro lists,
    /// and returns what the connection was granted.
    func negotiate(_ context: OpaquePointer, offeredActions: UInt, offeredSteps: UInt,
                   actions: inout UInt, steps: inout UInt) -> NegotiatedOptions {
        let request = Negotiation(wantedActions: wantedActions, stages: configuration.stages,
                                  noReplyStages: configuration.noReplyStages,
                                  offeredActions: offeredActions, offeredSteps: offeredSteps,
                                  proposedSteps: steps)
        log(.debug, "negotiate: MTA offers actions 0x\(hex(offeredActions)) steps 0x\(hex(offeredSteps)), libmilter proposes steps 0x\(hex(steps)); requesting actions 0x\(hex(request.actions)) steps 0x\(hex(request.steps))")

        if !request.missingActions.isEmpty {
            let firstTime = !reportedMissingActions.exchange(true, ordering: .relaxed)
            log(firstTime ? .warning : .debug,
                "negotiate: the MTA does not offer actions 0x\(hex(request.missingActions.rawValue)); continuing without them")
        }
        actions = request.actions
        steps = request.steps
        let options = NegotiatedOptions(actions: MilterActions(rawValue: request.actions), steps: request.steps)

        guard request.canSetMacroLists else {
            if !configuration.macros.isEmpty {
                log(.debug, "negotiate: the MTA does not offer macro lists; keeping its default macros")
            }
            return options
        }
        for (stage, names) in configuration.macros {
            guard let index = stage.macroListIndex else {
                continue
            }
            let list = names.joined(separator: " ")
            let result = list.withCString { smfi_setsymlist(context, index, UnsafeMutablePointer(mutating: $0)) }
            if result != MI_SUCCESS {
                log(.warning, "negotiate: smfi_setsymlist failed for stage \(stage.rawValue) (\(list))")
            }
        }
        return options
    }

    /// Converts a session's reply into the status libmilter expects, setting a custom SMTP
    /// reply first. An invalid custom reply is logged and replaced by the failure reply.
    func status(for reply: Reply, stage: ProtocolStage, context: OpaquePointer,
                options: NegotiatedOptions?) -> sfsistat {
        switch reply {
        case .continue:
            return SMFIS_CONTINUE
        case .accept:
            return SMFIS_ACCEPT
        case .reject:
            return SMFIS_REJECT
        case .tempfail:
            return SMFIS_TEMPFAIL
        case .discard:
            return SMFIS_DISCARD
        case .skip:
            // libmilter sends "skip" even to an MTA that did not negotiate it.
            guard stage == .body, options?.allowsSkip == true else {
                log(.debug, "\(stage.rawValue): skip is valid only for body chunks of an MTA that offers it; answering continue")
                return SMFIS_CONTINUE
            }
            return SMFIS_SKIP
        case .custom(let smtpReply):
            do {
                return try setCustomReply(smtpReply, context: context)
            } catch {
                log(.error, "\(stage.rawValue): custom reply not sent: \(error); answering with the failure reply")
                return failureStatus(stage: stage, context: context, options: options)
            }
        }
    }

    /// Returns the status for `configuration.failureReply`, or tempfail when that is an
    /// invalid custom reply.
    func failureStatus(stage: ProtocolStage, context: OpaquePointer, options: NegotiatedOptions?) -> sfsistat {
        guard case .custom(let smtpReply) = configuration.failureReply else {
            return status(for: configuration.failureReply, stage: stage, context: context, options: options)
        }
        do {
            return try setCustomReply(smtpReply, context: context)
        } catch {
            log(.error, "\(stage.rawValue): failure reply not sent: \(error); answering tempfail")
            return SMFIS_TEMPFAIL
        }
    }

    /// Sets the reply text with smfi_setreply (one line) or smfi_setmlreply (several) and
    /// returns tempfail for a 4xx code or reject for a 5xx code, the only pairings the MTA honours.
    private func setCustomReply(_ reply: SMTPReply, context: OpaquePointer) throws -> sfsistat {
        if let problem = reply.validationError {
            throw MilterError(operation: "custom reply", detail: problem)
        }

        let code = String(reply.code)
        let lines = reply.safeLines
        let result: Int32
        if lines.count == 1 {
            result = withMutableCStrings(code, lines[0]) { code, text in
                withOptionalCString(reply.enhancedStatus) { status in
                    smfi_setreply(context, code, status.map { UnsafeMutablePointer(mutating: $0) }, text)
                }
            }
        } else {
            result = withCStringArray(lines) { lines in
                code.withCString { code in
                    withOptionalCString(reply.enhancedStatus) { status in
                        egress_setmlreply(context, code, status, lines.baseAddress, Int32(lines.count))
                    }
                }
            }
        }
        let function = lines.count == 1 ? "smfi_setreply" : "smfi_setmlreply"
        try checkMilterCall(result, function, "\(code) \(reply.enhancedStatus ?? "-") with \(lines.count) lines")

        return reply.code < 500 ? SMFIS_TEMPFAIL : SMFIS_REJECT
    }
}

private func hex(_ value: UInt) -> String {
    String(value, radix: 16)
}

private func withOptionalCString<Result>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> Result) -> Result {
    guard let text else {
        return body(nil)
    }
    return text.withCString { body($0) }
}

/// Runs `body` with a C array of C strings copied from `strings`, freed afterwards.
private func withCStringArray<Result>(_ strings: [String],
                                      _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> Result) -> Result {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer(body)
}
