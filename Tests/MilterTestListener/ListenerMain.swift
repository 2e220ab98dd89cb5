// The listener's session and event log. The session writes one JSON line per event before it
// returns its reply, so a test that has received the reply finds the line already written.
// Abort and close have no reply: tests wait for those lines instead.
import Foundation
import Milter
import Synchronization

/// One recorded event. Fields that do not apply to the event stay nil.
struct ListenerEvent: Codable {
    var event: String
    /// Serial number of the session object within this process, starting at 1.
    var session: Int?
    /// Number of the message on this connection, starting at 1; abort and end of message
    /// move to the next one.
    var message: Int?
    /// Recipients of the current message so far, counted by the session.
    var recipientsInMessage: Int?
    var hostname: String?
    var addressKind: String?
    var host: String?
    var port: Int?
    var path: String?
    var name: String?
    var address: String?
    var arguments: [String]?
    var bytes: [UInt8]?
    var macros: [String: String]?
    var level: String?
    var text: String?
}

/// Appends JSON lines to a file, one write per line, from any thread.
final class EventLog: Sendable {
    private let descriptor: Mutex<Int32>

    init(path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw UsageError(description: "cannot open events file \(path): \(String(cString: strerror(errno)))")
        }
        descriptor = Mutex(fd)
    }

    func record(_ event: ListenerEvent) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var line = try? encoder.encode(event) else {
            return
        }
        line.append(UInt8(ascii: "\n"))

        descriptor.withLock { fd in
            line.withUnsafeBytes { bytes in
                _ = write(fd, bytes.baseAddress, bytes.count)
            }
        }
    }
}

struct InjectedFailure: Error, CustomStringConvertible {
    var stage: ProtocolStage
    var description: String { "injected failure at \(stage.rawValue)" }
}

/// Serial numbers for sessions, so tests can tell whether two events came from one object.
private let sessionCounter = Atomic<Int>(0)

final class RecordingSession: MilterSession {
    private let options: ListenerOptions
    private let log: EventLog
    private let serial: Int
    private var messageNumber = 1
    private var recipientsInMessage = 0

    init(options: ListenerOptions, log: EventLog) {
        self.options = options
        self.log = log
        serial = sessionCounter.add(1, ordering: .relaxed).newValue
    }

    private func record(_ name: String, macros: Macros?, _ fill: (inout ListenerEvent) -> Void = { _ in }) {
        var event = ListenerEvent(event: name, session: serial, message: messageNumber,
                                  recipientsInMessage: recipientsInMessage)
        event.macros = macros?.all
        fill(&event)
        log.record(event)
    }

    private func answer(_ stage: ProtocolStage) throws -> Reply {
        if options.throwingStages.contains(stage) {
            throw InjectedFailure(stage: stage)
        }
        if messageNumber == 1, options.firstMessageThrowingStages.contains(stage) {
            throw InjectedFailure(stage: stage)
        }
        return options.replies[stage] ?? .continue
    }

    func connect(hostname: String, address: PeerAddress, macros: Macros) throws -> Reply {
        record("connect", macros: macros) { event in
            event.hostname = hostname
            switch address {
            case .ipv4(let host, let port):
                event.addressKind = "ipv4"
                event.host = host
                event.port = Int(port)
            case .ipv6(let host, let port):
                event.addressKind = "ipv6"
                event.host = host
                event.port = Int(port)
            case .unix(let path):
                event.addressKind = "unix"
                event.path = path
            case .unknown:
                event.addressKind = "unknown"
            }
        }
        return try answer(.connect)
    }

    func helo(_ name: String, macros: Macros) throws -> Reply {
        record("helo", macros: macros) { $0.name = name }
        return try answer(.helo)
    }

    func envelopeFrom(_ sender: String, arguments: [String], macros: Macros) throws -> Reply {
        record("envelopeFrom", macros: macros) { event in
            event.address = sender
            event.arguments = arguments
        }
        return try answer(.envelopeFrom)
    }

    func envelopeRecipient(_ recipient: String, arguments: [String], macros: Macros) throws -> Reply {
        recipientsInMessage += 1
        record("envelopeRecipient", macros: macros) { event in
            event.address = recipient
            event.arguments = arguments
        }
        return try answer(.envelopeRecipient)
    }

    func data(macros: Macros) throws -> Reply {
        record("data", macros: macros)
        return try answer(.data)
    }

    func header(name: String, value: [UInt8], macros: Macros) throws -> Reply {
        record("header", macros: macros) { event in
            event.name = name
            event.bytes = value
        }
        return try answer(.header)
    }

    func endOfHeaders(macros: Macros) throws -> Reply {
        record("endOfHeaders", macros: macros)
        return try answer(.endOfHeaders)
    }

    func body(_ chunk: [UInt8], macros: Macros) throws -> Reply {
        record("body", macros: macros) { $0.bytes = chunk }
        return try answer(.body)
    }

    func endOfMessage(_ message: borrowing EndOfMessage, macros: Macros) throws -> Reply {
        record("endOfMessage", macros: macros)
        let reply = try answer(.endOfMessage)

        if options.modifyAtEndOfMessage {
            try message.addHeader(name: "X-Added", value: "added value")
            try message.insertHeader(at: 0, name: "X-Inserted", value: "inserted value")
            try message.changeHeader(name: "Subject", occurrence: 1, value: "changed subject")
            try message.deleteHeader(name: "X-Remove", occurrence: 1)
            try message.quarantine(reason: "held by test")
            try message.progress()
        }

        startNextMessage()
        return reply
    }

    func abort(macros: Macros) {
        record("abort", macros: macros)
        startNextMessage()
    }

    func close() {
        record("close", macros: nil)
    }

    func unknown(command: [UInt8], macros: Macros) throws -> Reply {
        record("unknown", macros: macros) { $0.bytes = command }
        return try answer(.unknown)
    }

    private func startNextMessage() {
        messageNumber += 1
        recipientsInMessage = 0
    }
}

/// Parses the options, opens the socket and serves until SIGTERM. Returns the exit status.
func runListener(arguments: [String]) -> Int32 {
    let options: ListenerOptions
    let log: EventLog
    do {
        options = try parseListenerOptions(arguments)
        log = try EventLog(path: options.eventsPath)
    } catch {
        FileHandle.standardError.write(Data("milter-test-listener: \(error)\n\(listenerUsage)\n".utf8))
        return 2
    }

    var configuration = MilterConfiguration(name: "milter-test-listener", listen: options.listen)
    configuration.stages = options.stages
    configuration.noReplyStages = options.noReplyStages
    configuration.macros = options.macros
    configuration.actions = options.actions
    configuration.failureReply = options.failureReply
    configuration.socketMode = options.socketMode
    configuration.socketGroup = options.socketGroup
    configuration.removeStaleSocket = options.removeStaleSocket

    let server = MilterServer(
        configuration: configuration,
        log: { level, text in
            log.record(ListenerEvent(event: "log", level: level.description, text: text))
        },
        makeSession: { RecordingSession(options: options, log: log) }
    )

    do {
        try server.open()
        try server.run()
    } catch {
        FileHandle.standardError.write(Data("milter-test-listener: \(error)\n".utf8))
        return 1
    }
    return 0
}
