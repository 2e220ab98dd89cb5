// Command-line options of milter-test-listener. It is a test tool: an invalid option prints
// the usage text and exits with status 2; it must never start with a half-read configuration.
import Milter

let listenerUsage = """
    usage: milter-test-listener --listen SPEC --events FILE [options]
      --listen SPEC            libmilter listen spec (unix:/path, inet:PORT@HOST, inet6:PORT@HOST)
      --events FILE            append one JSON line per event to FILE
      --stages LIST            comma-separated stages the session handles (default: all)
      --no-reply LIST          comma-separated stages the MTA is told not to wait for
      --macros STAGE=LIST      macros to request for STAGE, comma-separated (repeatable)
      --actions LIST           actions to request: addHeaders,changeHeaders,quarantine,... (default: all)
      --reply STAGE=KIND       answer KIND at STAGE (repeatable); KIND is continue, accept, reject,
                               tempfail, discard, skip, custom-reject, custom-tempfail or custom-invalid
      --throw STAGE            throw an error at STAGE (repeatable)
      --throw-in-first-message STAGE
                               throw an error at STAGE only in the first message of a
                               connection (repeatable)
      --modify                 at end of message: add, insert, change and delete a header,
                               quarantine and report progress
      --failure-reply KIND     answer after an error (default: tempfail)
      --socket-mode OCTAL      permission bits for a unix socket, for example 660
      --socket-group GID       group id for a unix socket
      --keep-stale-socket      do not remove an existing socket file
    """

struct ListenerOptions {
    var listen = ""
    var eventsPath = ""
    var stages = Set(ProtocolStage.allCases)
    var noReplyStages: Set<ProtocolStage> = []
    var macros: [ProtocolStage: [String]] = [:]
    var actions: MilterActions = [.addHeaders, .changeHeaders, .quarantine, .changeBody,
                                  .addRecipients, .deleteRecipients, .changeFrom]
    var replies: [ProtocolStage: Reply] = [:]
    var throwingStages: Set<ProtocolStage> = []
    var firstMessageThrowingStages: Set<ProtocolStage> = []
    var modifyAtEndOfMessage = false
    var failureReply: Reply = .tempfail
    var socketMode: UInt32?
    var socketGroup: UInt32?
    var removeStaleSocket = true
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
}

/// The multi-line reply of `custom-reject`. It contains a `%`, a CR LF inside a line and
/// more than one line, so tests can check how the text is cleaned.
let customRejectReply = SMTPReply(code: 550, enhancedStatus: "5.7.1",
                                  lines: ["Rejected: 100% spam", "second\r\nline", "third line"])
let customTempfailReply = SMTPReply(code: 451, enhancedStatus: "4.7.1", text: "Try again later")
let customInvalidReply = SMTPReply(code: 250, enhancedStatus: nil, text: "Not an error code")

func parseListenerOptions(_ arguments: [String]) throws -> ListenerOptions {
    var options = ListenerOptions()
    var remaining = arguments[...]

    func value(for option: String) throws -> String {
        guard let value = remaining.popFirst() else {
            throw UsageError(description: "\(option) needs a value")
        }
        return value
    }

    while let option = remaining.popFirst() {
        switch option {
        case "--listen":
            options.listen = try value(for: option)
        case "--events":
            options.eventsPath = try value(for: option)
        case "--stages":
            options.stages = Set(try value(for: option).split(separator: ",").map { try parseStage(String($0)) })
        case "--no-reply":
            options.noReplyStages = Set(try value(for: option).split(separator: ",").map { try parseStage(String($0)) })
        case "--macros":
            let (stage, list) = try splitAssignment(try value(for: option))
            options.macros[try parseStage(stage)] = list.split(separator: ",").map(String.init)
        case "--actions":
            options.actions = try parseActions(try value(for: option))
        case "--reply":
            let (stage, kind) = try splitAssignment(try value(for: option))
            options.replies[try parseStage(stage)] = try parseReply(kind)
        case "--throw":
            options.throwingStages.insert(try parseStage(try value(for: option)))
        case "--throw-in-first-message":
            options.firstMessageThrowingStages.insert(try parseStage(try value(for: option)))
        case "--modify":
            options.modifyAtEndOfMessage = true
        case "--failure-reply":
            options.failureReply = try parseReply(try value(for: option))
        case "--socket-mode":
            let text = try value(for: option)
            guard let mode = UInt32(text, radix: 8) else {
                throw UsageError(description: "invalid socket mode \(text); expected octal such as 660")
            }
            options.socketMode = mode
        case "--socket-group":
            let text = try value(for: option)
            guard let group = UInt32(text) else {
                throw UsageError(description: "invalid group id \(text)")
            }
            options.socketGroup = group
        case "--keep-stale-socket":
            options.removeStaleSocket = false
        default:
            throw UsageError(description: "unknown option \(option)")
        }
    }

    guard !options.listen.isEmpty, !options.eventsPath.isEmpty else {
        throw UsageError(description: "--listen and --events are required")
    }
    return options
}

private func splitAssignment(_ text: String) throws -> (String, String) {
    guard let equals = text.firstIndex(of: "=") else {
        throw UsageError(description: "expected STAGE=VALUE, got \(text)")
    }
    return (String(text[..<equals]), String(text[text.index(after: equals)...]))
}

private func parseStage(_ name: String) throws -> ProtocolStage {
    guard let stage = ProtocolStage(rawValue: name) else {
        let known = ProtocolStage.allCases.map(\.rawValue).joined(separator: ", ")
        throw UsageError(description: "unknown stage \(name); expected one of \(known)")
    }
    return stage
}

private func parseActions(_ list: String) throws -> MilterActions {
    let known: [String: MilterActions] = [
        "addHeaders": .addHeaders, "changeHeaders": .changeHeaders, "quarantine": .quarantine,
        "changeBody": .changeBody, "addRecipients": .addRecipients,
        "deleteRecipients": .deleteRecipients, "changeFrom": .changeFrom,
    ]
    var actions: MilterActions = []
    for name in list.split(separator: ",") {
        guard let action = known[String(name)] else {
            throw UsageError(description: "unknown action \(name)")
        }
        actions.insert(action)
    }
    return actions
}

private func parseReply(_ kind: String) throws -> Reply {
    switch kind {
    case "continue": return .continue
    case "accept": return .accept
    case "reject": return .reject
    case "tempfail": return .tempfail
    case "discard": return .discard
    case "skip": return .skip
    case "custom-reject": return .custom(customRejectReply)
    case "custom-tempfail": return .custom(customTempfailReply)
    case "custom-invalid": return .custom(customInvalidReply)
    default: throw UsageError(description: "unknown reply kind \(kind)")
    }
}
