// Replies a session returns at each stage: the simple SMFIS_* statuses and custom SMTP
// replies with code, enhanced status and text lines. This file checks and cleans reply text
// so that libmilter accepts it. It must never let CR, LF, NUL or a lone `%` reach libmilter,
// because libmilter rejects such text or silently drops it.

/// A custom SMTP reply: a 4xx or 5xx code, an optional enhanced status code and text lines.
public struct SMTPReply: Sendable, Equatable {
    /// The SMTP reply code: 400...499 goes with a temporary failure, 500...599 with a rejection.
    public var code: Int
    /// The enhanced status code (RFC 3463), for example "4.7.1"; its class digit must match
    /// the first digit of `code`.
    public var enhancedStatus: String?
    /// The text lines, sent as one line or as a multi-line reply. Lines past
    /// `maximumLineCount` are dropped when sent; see `safeLines` for the rest of the cleaning.
    public var lines: [String]

    /// The maximum number of text lines libmilter takes in one reply (smfi_setmlreply).
    public static let maximumLineCount = 32
    /// The maximum bytes libmilter takes in one reply line (MAXREPLYLEN), counted after `%` is doubled.
    public static let maximumLineBytes = 980

    /// Creates a reply whose text is split into lines at each "\n" or "\r\n".
    public init(code: Int, enhancedStatus: String?, text: String) {
        // Swift treats "\r\n" as one Character, so it is a separator of its own.
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        self.init(code: code, enhancedStatus: enhancedStatus, lines: lines.map(String.init))
    }

    public init(code: Int, enhancedStatus: String?, lines: [String]) {
        self.code = code
        self.enhancedStatus = enhancedStatus
        self.lines = lines
    }

    /// The lines as libmilter must receive them: at most `maximumLineCount` lines and at
    /// least one (possibly empty), with CR, LF and NUL removed and `%` written as `%%`.
    /// Each line is cut at `maximumLineBytes` bytes without splitting a `%%` pair or a
    /// UTF-8 sequence.
    public var safeLines: [String] {
        let kept = lines.isEmpty ? [""] : Array(lines.prefix(Self.maximumLineCount))
        return kept.map(Self.safeLine)
    }

    static func safeLine(_ line: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(line.utf8.count, maximumLineBytes))

        for scalar in line.unicodeScalars {
            let piece: [UInt8]
            switch scalar {
            case "\r", "\n", "\0":
                continue
            case "%":
                piece = [UInt8(ascii: "%"), UInt8(ascii: "%")]
            default:
                piece = Array(String(scalar).utf8)
            }
            if bytes.count + piece.count > maximumLineBytes {
                break
            }
            bytes.append(contentsOf: piece)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The reason libmilter would reject this reply, or nil when it is valid. The code must
    /// be 4xx or 5xx. An enhanced status must be "C.S.D", where C equals the code's first
    /// digit and S and D have 1 to 3 digits each.
    public var validationError: String? {
        guard (400...599).contains(code) else {
            return "reply code \(code) is not 4xx or 5xx"
        }
        guard let enhancedStatus else {
            return nil
        }

        let parts = enhancedStatus.split(separator: ".", omittingEmptySubsequences: false)
        let digitsOnly = parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber }
        }
        guard parts.count == 3, digitsOnly, parts[0].count == 1 else {
            return "enhanced status \"\(enhancedStatus)\" is not of the form C.S.D"
        }
        guard parts[0] == String(code / 100) else {
            return "enhanced status \(enhancedStatus) does not match reply code \(code)"
        }
        return nil
    }
}

/// A session's reply at a stage.
public enum Reply: Sendable, Equatable {
    /// Go on with the next stage.
    case `continue`
    /// Accept the message (or, at connection level, the whole connection) without further calls.
    case accept
    /// Reject with the MTA's default 5xx reply.
    case reject
    /// Fail temporarily with the MTA's default 4xx reply.
    case tempfail
    /// Accept the message and then throw it away.
    case discard
    /// Send no more body chunks for this message. Valid only from `body` and only when the
    /// MTA offered it at negotiation; elsewhere the server sends `continue` instead. When
    /// `body` is a no-reply stage, the server sends nothing and the MTA keeps sending chunks.
    case skip
    /// A custom reply: a 4xx code is sent as a temporary failure, a 5xx code as a rejection.
    /// NOTE: libmilter sends it from `connect` too, but its documentation says not to set a
    /// reply there, so an MTA may ignore the text at that stage.
    case custom(SMTPReply)
}
