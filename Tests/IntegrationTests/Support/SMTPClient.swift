// A small SMTP client for the integration tests: one TCP connection to a loopback port, plain
// commands without pipelining, and a DATA phase that sends any bytes a corpus file holds.
//
// It never retries and never hides a failure: every reply is returned with its stage, so a test
// can count what the server accepted, deferred or refused. Sockets have send and receive time
// limits, and writes use MSG_NOSIGNAL, so a server that hangs or closes cannot hang or kill the
// test process.
import Foundation
import Glibc

struct SMTPReply: Sendable, CustomStringConvertible {
    var code: Int
    var lines: [String]

    var isPositive: Bool { (200...399).contains(code) }
    var isTransientFailure: Bool { (400...499).contains(code) }
    var isPermanentFailure: Bool { (500...599).contains(code) }
    var description: String { lines.map { "\(code) \($0)" }.joined(separator: " / ") }
}

enum SMTPClientError: Error, Sendable, CustomStringConvertible {
    case socketFailed(operation: String, errno: Int32)
    case connectionClosed
    case timedOut
    case malformedReply(String)

    var description: String {
        switch self {
        case .socketFailed(let operation, let code):
            return "\(operation) failed: \(String(cString: strerror(code)))"
        case .connectionClosed:
            return "the server closed the connection"
        case .timedOut:
            return "timed out waiting for the server"
        case .malformedReply(let line):
            return "malformed SMTP reply line: \(line)"
        }
    }
}

/// The SMTP step at which a transaction ended.
enum SMTPStage: String, Sendable {
    case greeting, ehlo, mail, rcpt, data, endOfData
}

/// What happened to one message sent over SMTP.
struct SMTPDeliveryResult: Sendable {
    enum Outcome: Sendable, Equatable {
        /// 250 after the final dot: the server took responsibility for the message.
        case accepted
        /// A 4xx reply at some stage: the client must try again later.
        case deferred
        /// A 5xx reply at some stage.
        case rejected
        /// The connection broke. After the final dot the server may or may not have the message.
        case connectionFailed
    }

    var outcome: Outcome
    var stage: SMTPStage
    var reply: SMTPReply?
    var error: SMTPClientError?

    /// The Postfix queue ID from "250 2.0.0 Ok: queued as ID".
    var queueID: String? {
        guard outcome == .accepted, let text = reply?.lines.last,
              let range = text.range(of: "queued as ") else { return nil }
        return String(text[range.upperBound...].prefix(while: { $0.isLetter || $0.isNumber }))
    }
}

final class SMTPConnection {
    /// Maximum time one read or write may block, in seconds.
    static let ioTimeoutSeconds = 120

    private let descriptor: Int32
    private var received: [UInt8] = []
    private(set) var greeting: SMTPReply?

    /// Connects to 127.0.0.1:`port` and reads the greeting.
    init(port: UInt16) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw SMTPClientError.socketFailed(operation: "socket", errno: errno)
        }

        var timeout = timeval(tv_sec: Self.ioTimeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        var address = loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw SMTPClientError.socketFailed(operation: "connect to 127.0.0.1:\(port)", errno: code)
        }
        greeting = try readReply()
    }

    deinit {
        Glibc.close(descriptor)
    }

    /// Sends one command line (CRLF is appended) and returns the server's reply.
    func command(_ line: String) throws -> SMTPReply {
        try write(Array((line + "\r\n").utf8))
        return try readReply()
    }

    /// Sends QUIT and ignores the reply, because the connection ends either way.
    func quit() {
        _ = try? command("QUIT")
    }

    /// Runs one mail transaction: MAIL, RCPT for each recipient, DATA and the content. After a
    /// refusal before the content it sends RSET, so the connection can carry the next message.
    func send(from sender: String, to recipients: [String], content: [UInt8]) -> SMTPDeliveryResult {
        var stage = SMTPStage.mail
        do {
            let mail = try command("MAIL FROM:<\(sender)>")
            if let failure = failureResult(mail, at: stage) { return failure }

            stage = .rcpt
            for recipient in recipients {
                let rcpt = try command("RCPT TO:<\(recipient)>")
                if let failure = failureResult(rcpt, at: stage) { return failure }
            }

            stage = .data
            let data = try command("DATA")
            if data.code != 354 {
                return failureResult(data, at: stage) ?? SMTPDeliveryResult(outcome: .rejected, stage: stage, reply: data)
            }

            stage = .endOfData
            try write(Self.dataPayload(content))
            let final = try readReply()
            if let failure = failureResult(final, at: stage) { return failure }
            return SMTPDeliveryResult(outcome: .accepted, stage: stage, reply: final)
        } catch let error as SMTPClientError {
            return SMTPDeliveryResult(outcome: .connectionFailed, stage: stage, error: error)
        } catch {
            return SMTPDeliveryResult(outcome: .connectionFailed, stage: stage, error: .connectionClosed)
        }
    }

    /// Returns nil for a positive reply, else the failed result (after RSET, unless at the end
    /// of DATA where the transaction is over anyway).
    private func failureResult(_ reply: SMTPReply, at stage: SMTPStage) -> SMTPDeliveryResult? {
        if reply.isPositive { return nil }
        if stage != .endOfData {
            _ = try? command("RSET")
        }
        let outcome: SMTPDeliveryResult.Outcome = reply.isTransientFailure ? .deferred : .rejected
        return SMTPDeliveryResult(outcome: outcome, stage: stage, reply: reply)
    }

    /// Turns message bytes into the DATA payload: every line ending (LF, CR or CRLF) becomes CRLF,
    /// a leading dot is doubled, and the terminating "." line is appended.
    static func dataPayload(_ content: [UInt8]) -> [UInt8] {
        let carriageReturn: UInt8 = 13
        let lineFeed: UInt8 = 10
        let dot: UInt8 = 46

        var payload: [UInt8] = []
        payload.reserveCapacity(content.count + content.count / 16 + 8)
        var atLineStart = true
        var index = 0
        while index < content.count {
            let byte = content[index]
            if byte == carriageReturn || byte == lineFeed {
                payload.append(carriageReturn)
                payload.append(lineFeed)
                atLineStart = true
                let isCRLF = byte == carriageReturn && index + 1 < content.count && content[index + 1] == lineFeed
                index += isCRLF ? 2 : 1
                continue
            }
            if atLineStart && byte == dot {
                payload.append(dot)
            }
            payload.append(byte)
            atLineStart = false
            index += 1
        }
        if !atLineStart {
            payload.append(contentsOf: [carriageReturn, lineFeed])
        }
        payload.append(contentsOf: [dot, carriageReturn, lineFeed])
        return payload
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { buffer in
                Glibc.send(descriptor, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw SMTPClientError.timedOut }
                throw SMTPClientError.socketFailed(operation: "send", errno: errno)
            }
            offset += sent
        }
    }

    /// Reads one reply, which may span several "CODE-text" lines ending with "CODE text".
    private func readReply() throws -> SMTPReply {
        var lines: [String] = []
        while true {
            let line = try readLine()
            guard line.count >= 3, let code = Int(line.prefix(3)) else {
                throw SMTPClientError.malformedReply(line)
            }
            let separator = line.dropFirst(3).first
            lines.append(String(line.dropFirst(4)))
            if separator != "-" {
                return SMTPReply(code: code, lines: lines)
            }
        }
    }

    private func readLine() throws -> String {
        while true {
            if let end = received.firstIndex(of: 10) {
                var lineBytes = received[..<end]
                if lineBytes.last == 13 { lineBytes = lineBytes.dropLast() }
                let line = String(decoding: lineBytes, as: UTF8.self)
                received.removeSubrange(...end)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { buffer in
                Glibc.recv(descriptor, buffer.baseAddress, buffer.count, 0)
            }
            if count == 0 { throw SMTPClientError.connectionClosed }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw SMTPClientError.timedOut }
                throw SMTPClientError.socketFailed(operation: "recv", errno: errno)
            }
            received.append(contentsOf: chunk[..<count])
        }
    }
}

extension SMTPConnection {
    /// Connects, greets with EHLO, sends one message and quits. Connection failures before
    /// the transaction count as `connectionFailed` at the stage where they happened.
    static func sendOne(port: UInt16, from sender: String, to recipients: [String], content: [UInt8]) -> SMTPDeliveryResult {
        let connection: SMTPConnection
        do {
            connection = try SMTPConnection(port: port)
        } catch {
            return SMTPDeliveryResult(outcome: .connectionFailed, stage: .greeting, error: error as? SMTPClientError)
        }
        if let greeting = connection.greeting, !greeting.isPositive {
            let outcome: SMTPDeliveryResult.Outcome = greeting.isTransientFailure ? .deferred : .rejected
            return SMTPDeliveryResult(outcome: outcome, stage: .greeting, reply: greeting)
        }
        do {
            let ehlo = try connection.command("EHLO client.egress.test")
            if !ehlo.isPositive {
                let outcome: SMTPDeliveryResult.Outcome = ehlo.isTransientFailure ? .deferred : .rejected
                return SMTPDeliveryResult(outcome: outcome, stage: .ehlo, reply: ehlo)
            }
        } catch {
            return SMTPDeliveryResult(outcome: .connectionFailed, stage: .ehlo, error: error as? SMTPClientError)
        }
        let result = connection.send(from: sender, to: recipients, content: content)
        connection.quit()
        return result
    }
}

extension SMTPConnection {
    /// Authenticates with AUTH PLAIN (RFC 4616): an empty authorization identity, the login
    /// and the password, base64-encoded in the command. Returns the server's reply; 235 means
    /// success.
    func authenticatePlain(login: String, password: String) throws -> SMTPReply {
        let credentials = Data([0] + Array(login.utf8) + [0] + Array(password.utf8)).base64EncodedString()
        return try command("AUTH PLAIN \(credentials)")
    }
}

/// Returns a sockaddr_in for 127.0.0.1 and `port`.
func loopbackAddress(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

/// Asks the kernel for a free TCP port on 127.0.0.1 by binding to port 0, then releases it.
/// Another process could take the port before the caller binds it. That is rare on a test
/// machine, and the caller's bind then fails, which shows as a start-up error of Postfix or the sink.
func freeLoopbackPort() throws -> UInt16 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else {
        throw SMTPClientError.socketFailed(operation: "socket", errno: errno)
    }
    defer { Glibc.close(descriptor) }

    var address = loopbackAddress(port: 0)
    let bound = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else {
        throw SMTPClientError.socketFailed(operation: "bind 127.0.0.1:0", errno: errno)
    }

    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(descriptor, $0, &length)
        }
    }
    guard named == 0 else {
        throw SMTPClientError.socketFailed(operation: "getsockname", errno: errno)
    }
    return UInt16(bigEndian: address.sin_port)
}
