// The stamp that the submission wrapper `egress-sendmail` writes into a locally submitted
// message: who submitted it (real uid, account, working directory, script), when, and an
// HMAC-SHA256 over all of it under a key that only the wrapper and the daemon can read.
//
// Header layout (one field; whitespace anywhere in the value is folding and carries no meaning):
//   X-Egress-Submitter: v=1; uid=1001; account=alice; cwd=/home/alice/public_html;
//       script=/home/alice/public_html/x.php; source=php-header; time=1700000000;
//       nonce=<32 hex digits>; msgid=<id@host>; from=alice@shop.example; mac=<64 hex digits>
// Values are percent-encoded UTF-8, so they never contain whitespace, ";" or "=". The MAC
// covers the decoded values in the fixed order above, not the header text, so refolding by
// an MTA does not break it.
//
// Parsing must never accept a stamp it cannot read completely: an unknown or repeated field,
// a missing field or a bad encoding is an error, and the caller treats the stamp as forged.

/// The source of the script path in a stamp.
public enum ScriptSource: String, Sendable, CaseIterable {
    /// No script is known.
    case none
    /// The `SCRIPT_FILENAME` environment variable (CGI and suEXEC setups set it).
    case environment = "env"
    /// PHP's `X-PHP-Originating-Script` header, whose uid equalled the submitting uid.
    case phpHeader = "php-header"
}

/// A problem that makes a stamp header unreadable.
public struct SubmissionStampError: Error, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The fields of one submission stamp and its MAC.
public struct SubmissionStamp: Sendable, Equatable {
    /// Format version written as `v=`; a stamp of another version does not verify.
    public static let formatVersion = "1"

    /// Maximum length of one field's decoded value in bytes; the wrapper truncates longer
    /// values (PATH_MAX on Linux is 4096).
    public static let maximumFieldBytes = 4096

    /// Maximum length of a stamp header value the parser reads, in bytes: every field at its
    /// maximum length, percent-encoded, with room for folding.
    public static let maximumHeaderValueBytes = 64 * 1024

    /// Length of the random nonce in bytes.
    public static let nonceByteCount = 16

    /// Real uid of the process that ran the wrapper.
    public var uid: UInt32
    /// Account name the wrapper found for `uid`; empty when the passwd database had none.
    public var account: String
    /// Working directory of the submitting process; empty when it could not be read.
    public var workingDirectory: String
    /// Path of the script that submitted the message; empty when unknown.
    public var script: String
    public var scriptSource: ScriptSource
    /// Time of submission in seconds since 1970 (UTC).
    public var timestamp: Int64
    /// Random bytes that make every stamp unique, so a daemon could reject a replayed one.
    public var nonce: [UInt8]
    /// Value of the message's Message-ID header as the wrapper wrote or found it.
    public var messageID: String
    /// Envelope sender given with `-f` or `-r`; empty when the command line had none.
    public var envelopeSender: String
    /// HMAC-SHA256 of `authenticatedBytes` under the stamp key.
    public var mac: [UInt8]

    public init(uid: UInt32, account: String, workingDirectory: String, script: String,
                scriptSource: ScriptSource, timestamp: Int64, nonce: [UInt8], messageID: String,
                envelopeSender: String, mac: [UInt8] = []) {
        self.uid = uid
        self.account = account
        self.workingDirectory = workingDirectory
        self.script = script
        self.scriptSource = scriptSource
        self.timestamp = timestamp
        self.nonce = nonce
        self.messageID = messageID
        self.envelopeSender = envelopeSender
        self.mac = mac
    }

    // MARK: MAC

    /// The fields without the MAC, in their fixed order, with values percent-encoded.
    private var encodedFields: [(name: String, value: String)] {
        [
            ("v", Self.formatVersion),
            ("uid", String(uid)),
            ("account", StampEncoding.encode(account)),
            ("cwd", StampEncoding.encode(workingDirectory)),
            ("script", StampEncoding.encode(script)),
            ("source", scriptSource.rawValue),
            ("time", String(timestamp)),
            ("nonce", StampEncoding.hex(nonce)),
            ("msgid", StampEncoding.encode(messageID)),
            ("from", StampEncoding.encode(envelopeSender)),
        ]
    }

    /// The bytes the MAC covers: a label naming the purpose, then every field but the MAC.
    /// The label keeps a MAC made for another purpose under the same key from verifying here.
    var authenticatedBytes: [UInt8] {
        let text = "egress-submitter;" + encodedFields.map { "\($0.name)=\($0.value)" }.joined(separator: ";")
        return Array(text.utf8)
    }

    /// Sets `mac` for the current fields under `key`.
    public mutating func sign(with key: StampKey) {
        mac = HMACSHA256.authenticationCode(for: authenticatedBytes, key: key.bytes)
    }

    /// Returns whether `mac` matches the fields under `key`, compared in constant time.
    public func hasValidMAC(for key: StampKey) -> Bool {
        HMACSHA256.isValid(mac, for: authenticatedBytes, key: key.bytes)
    }

    // MARK: Writing

    /// Returns the header value, folded so that no line (with a header name of
    /// `nameLength` bytes before it) is much longer than 78 bytes. `lineEnding` is the
    /// message's own line ending.
    public func headerValue(nameLength: Int, lineEnding: String = "\n") -> String {
        let fold = lineEnding + "\t"
        // Lines within RFC 5322's 998-byte limit even for a field at its maximum length.
        let maximumChunkBytes = 900
        let preferredLineBytes = 78

        var fields = encodedFields.map { "\($0.name)=\($0.value)" }
        fields.append("mac=" + StampEncoding.hex(mac))

        var result = ""
        var lineLength = nameLength + 2
        for (index, field) in fields.enumerated() {
            let separator = index == 0 ? "" : ";"
            if index > 0 && lineLength + separator.count + 1 + field.count > preferredLineBytes {
                result += separator + fold
                lineLength = 1
            } else {
                result += separator + (index == 0 ? "" : " ")
                lineLength += separator.count + (index == 0 ? 0 : 1)
            }
            // Encoded values are ASCII, so characters are bytes here.
            var rest = Substring(field)
            while rest.count > maximumChunkBytes {
                result += rest.prefix(maximumChunkBytes) + fold
                rest = rest.dropFirst(maximumChunkBytes)
                lineLength = 1
            }
            result += rest
            lineLength += rest.count
        }
        return result
    }

    // MARK: Reading

    /// Parses a stamp header value as the MTA passed it (folding allowed). Does not check
    /// the MAC or the time: see `SubmissionStampVerifier`.
    public init(parsing value: [UInt8]) throws(SubmissionStampError) {
        guard value.count <= Self.maximumHeaderValueBytes else {
            throw SubmissionStampError("stamp is \(value.count) bytes long; the maximum is \(Self.maximumHeaderValueBytes)")
        }
        let compact = value.filter { ![0x20, 0x09, 0x0D, 0x0A].contains($0) }
        var fields: [String: [UInt8]] = [:]
        for part in compact.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: true) {
            guard let equals = part.firstIndex(of: UInt8(ascii: "=")) else {
                throw SubmissionStampError("field without '=' in the stamp")
            }
            let name = String(decoding: part[..<equals], as: UTF8.self)
            guard Self.fieldNames.contains(name) else {
                throw SubmissionStampError("unknown stamp field '\(name.prefix(40))'")
            }
            guard fields[name] == nil else {
                throw SubmissionStampError("stamp field '\(name)' appears twice")
            }
            fields[name] = Array(part[part.index(after: equals)...])
        }
        if let missing = Self.fieldNames.first(where: { fields[$0] == nil }) {
            throw SubmissionStampError("stamp field '\(missing)' is missing")
        }

        func text(_ name: String) throws(SubmissionStampError) -> String {
            try StampEncoding.decode(fields[name] ?? [], field: name)
        }
        let version = try text("v")
        guard version == Self.formatVersion else {
            throw SubmissionStampError("unsupported stamp version '\(version.prefix(10))'")
        }
        guard let uid = UInt32(try text("uid")) else {
            throw SubmissionStampError("stamp field 'uid' is not a uid")
        }
        guard let timestamp = Int64(try text("time")), timestamp >= 0 else {
            throw SubmissionStampError("stamp field 'time' is not a time in seconds")
        }
        guard let source = ScriptSource(rawValue: try text("source")) else {
            throw SubmissionStampError("stamp field 'source' has an unknown value")
        }
        guard let nonce = StampEncoding.bytes(fromHex: try text("nonce")), nonce.count == Self.nonceByteCount else {
            throw SubmissionStampError("stamp field 'nonce' is not \(Self.nonceByteCount) bytes of hex")
        }
        guard let mac = StampEncoding.bytes(fromHex: try text("mac")), mac.count == HMACSHA256.codeByteCount else {
            throw SubmissionStampError("stamp field 'mac' is not \(HMACSHA256.codeByteCount) bytes of hex")
        }

        self.init(uid: uid, account: try text("account"), workingDirectory: try text("cwd"),
                  script: try text("script"), scriptSource: source, timestamp: timestamp, nonce: nonce,
                  messageID: try text("msgid"), envelopeSender: try text("from"), mac: mac)
    }

    private static let fieldNames = ["v", "uid", "account", "cwd", "script", "source", "time", "nonce", "msgid", "from", "mac"]
}

/// Percent-encoding and hex for stamp values.
enum StampEncoding {
    /// Bytes written as themselves: letters, digits and punctuation that is neither
    /// whitespace nor the stamp's own separators (";", "=", "%").
    private static let plainBytes: Set<UInt8> = Set(
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/@+:,<>!".utf8))

    private static let hexDigits = Array("0123456789abcdef".utf8)
    private static let upperHexDigits = Array("0123456789ABCDEF".utf8)

    static func encode(_ text: String) -> String {
        var result: [UInt8] = []
        for byte in text.utf8 {
            if plainBytes.contains(byte) {
                result.append(byte)
            } else {
                result.append(UInt8(ascii: "%"))
                result.append(upperHexDigits[Int(byte >> 4)])
                result.append(upperHexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Decodes a percent-encoded value, which must be valid UTF-8 and within the field limit.
    static func decode(_ encoded: [UInt8], field: String) throws(SubmissionStampError) -> String {
        var bytes: [UInt8] = []
        var index = 0
        while index < encoded.count {
            let byte = encoded[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < encoded.count,
                      let high = hexValue(encoded[index + 1]), let low = hexValue(encoded[index + 2]) else {
                    throw SubmissionStampError("stamp field '\(field)' has a bad percent escape")
                }
                bytes.append(high << 4 | low)
                index += 3
            } else {
                guard plainBytes.contains(byte) else {
                    throw SubmissionStampError("stamp field '\(field)' contains a byte that must be percent-encoded")
                }
                bytes.append(byte)
                index += 1
            }
        }
        guard bytes.count <= SubmissionStamp.maximumFieldBytes else {
            throw SubmissionStampError("stamp field '\(field)' is longer than \(SubmissionStamp.maximumFieldBytes) bytes")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw SubmissionStampError("stamp field '\(field)' is not UTF-8")
        }
        return text
    }

    static func hex(_ bytes: [UInt8]) -> String {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            result.append(hexDigits[Int(byte >> 4)])
            result.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Returns the bytes of an even-length hex string (either case), or nil.
    static func bytes(fromHex text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
