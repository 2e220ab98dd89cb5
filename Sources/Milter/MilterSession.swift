// The interface a milter implements: one session object per MTA connection, one method per
// protocol stage. Every method has a default, so a session implements only what it needs.
// The methods run on libmilter's threads. They must not block for long, because the MTA
// waits for each reply and gives up after its own timeout.

/// Handles one MTA connection. The server creates one per connection with its factory.
/// Calls for one connection never overlap but may come from different threads, so a session
/// needs no lock for its own state but must not use thread-local storage.
///
/// A thrown error is logged with the stage, and the MTA gets
/// `MilterConfiguration.failureReply` instead: at that stage, or for a stage in
/// `MilterConfiguration.noReplyStages`, at the next stage that replies.
public protocol MilterSession: AnyObject {
    func connect(hostname: String, address: PeerAddress, macros: Macros) throws -> Reply
    func helo(_ name: String, macros: Macros) throws -> Reply
    /// Handles MAIL FROM. `sender` is the address as the MTA sent it, usually in angle
    /// brackets ("<>" for the null sender). `arguments` are ESMTP parameters such as "SIZE=1234".
    func envelopeFrom(_ sender: String, arguments: [String], macros: Macros) throws -> Reply
    func envelopeRecipient(_ recipient: String, arguments: [String], macros: Macros) throws -> Reply
    func data(macros: Macros) throws -> Reply
    /// Handles one header. `value` contains the bytes as the MTA sent them, which need not be UTF-8.
    func header(name: String, value: [UInt8], macros: Macros) throws -> Reply
    func endOfHeaders(macros: Macros) throws -> Reply
    /// Handles one chunk of the body, with line ends as received (normally CR LF).
    func body(_ chunk: [UInt8], macros: Macros) throws -> Reply
    /// Handles the end of a message, the only stage where `message` allows modifications.
    func endOfMessage(_ message: borrowing EndOfMessage, macros: Macros) throws -> Reply
    /// Resets per-message state after the MTA aborted the current message. Per-connection
    /// state stays, because another message may follow on the same connection.
    func abort(macros: Macros)
    /// Releases per-connection state when the connection ends. This is the last call. It
    /// also comes to sessions that never saw `connect`, for example when the configuration
    /// leaves that stage out.
    func close()
    /// Handles an SMTP command the MTA did not recognize, as raw bytes with its arguments.
    func unknown(command: [UInt8], macros: Macros) throws -> Reply
}

extension MilterSession {
    public func connect(hostname: String, address: PeerAddress, macros: Macros) throws -> Reply { .continue }
    public func helo(_ name: String, macros: Macros) throws -> Reply { .continue }
    public func envelopeFrom(_ sender: String, arguments: [String], macros: Macros) throws -> Reply { .continue }
    public func envelopeRecipient(_ recipient: String, arguments: [String], macros: Macros) throws -> Reply { .continue }
    public func data(macros: Macros) throws -> Reply { .continue }
    public func header(name: String, value: [UInt8], macros: Macros) throws -> Reply { .continue }
    public func endOfHeaders(macros: Macros) throws -> Reply { .continue }
    public func body(_ chunk: [UInt8], macros: Macros) throws -> Reply { .continue }
    public func endOfMessage(_ message: borrowing EndOfMessage, macros: Macros) throws -> Reply { .continue }
    public func abort(macros: Macros) {}
    public func close() {}
    public func unknown(command: [UInt8], macros: Macros) throws -> Reply { .continue }
}

/// The severity of a line the server logs through its log closure.
public enum LogLevel: Int, Sendable, Comparable, CustomStringConvertible {
    case debug, info, notice, warning, error

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    public var description: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .notice: "notice"
        case .warning: "warning"
        case .error: "error"
        }
    }
}
