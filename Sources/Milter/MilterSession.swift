// The interface a milter implements: one session object per MTA connection, one method per
// protocol stage. Every method has a default, so a session implements only what it needs.
// The methods run on libmilter's threads; they must not block for long, because the MTA
// waits for each answer and gives up after its own timeout.

/// Handles one MTA connection. The server creates one per connection with its factory.
/// Calls for one connection never overlap but may come from different threads, so a session
/// needs no lock for its own state but must not use thread-local storage.
///
/// A thrown error is logged with the stage and answered with
/// `MilterConfiguration.failureReply`.
public protocol MilterSession: AnyObject {
    func connect(hostname: String, address: PeerAddress, macros: Macros) throws -> Reply
    func helo(_ name: String, macros: Macros) throws -> Reply
    /// `sender` is the address as the MTA sent it (usually in angle brackets, "<>" for the
    /// null sender); `arguments` are the ESMTP parameters such as "SIZE=1234".
    func envelopeFrom(_ sender: String, arguments: [String], macros: Macros) throws -> Reply
    func envelopeRecipient(_ recipient: String, arguments: [String], macros: Macros) throws -> Reply
    func data(macros: Macros) throws -> Reply
    /// `value` holds the header value's bytes as the MTA sent them, which need not be UTF-8.
    func header(name: String, value: [UInt8], macros: Macros) throws -> Reply
    func endOfHeaders(macros: Macros) throws -> Reply
    /// One chunk of the body, with line ends as received (normally CR LF).
    func body(_ chunk: [UInt8], macros: Macros) throws -> Reply
    /// The last call for a message; the only place where `message` allows modifications.
    func endOfMessage(_ message: borrowing EndOfMessage, macros: Macros) throws -> Reply
    /// The MTA aborted the current message: reset per-message state and keep per-connection
    /// state, because another message may follow on the same connection.
    func abort(macros: Macros)
    /// The connection ended. This is the last call; it can also come for a connection that
    /// never reached `connect`.
    func close()
    /// An SMTP command the MTA did not recognize, as raw bytes with its arguments.
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
