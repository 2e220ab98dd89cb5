// Parsers and checks for single configuration values: listen specs, durations, socket modes,
// SMTP replies, header names and sender patterns. Each returns the parsed value or throws a
// `ValueError` whose message the decoder places at the value's line and column.
//
// These checks must never accept a value that libmilter or the MTA would later reject or
// silently change, because then the daemon would fail at run time instead of at
// `--check-config`.

import Foundation

/// A problem with one value, before the decoder adds the file position and key path.
struct ValueError: Error {
    var message: String
}

enum ConfigurationValues {
    /// Maximum unix socket path in bytes: `sun_path` has room for 108 bytes including the final NUL.
    static let maximumSocketPathBytes = 107

    /// Maximum timeout in seconds, because smfi_settimeout takes a C int.
    static let maximumTimeoutSeconds = Int(Int32.max)

    /// Most lines of an SMTP reply; libmilter's smfi_setmlreply takes at most 32.
    static let maximumReplyLines = 32

    /// Maximum length in bytes of one line of SMTP reply text that libmilter passes on.
    static let maximumReplyLineBytes = 980

    // MARK: Listen spec

    /// Checks a libmilter listen spec: `unix:/absolute/path`, `inet:PORT`, `inet:PORT@HOST`,
    /// `inet6:PORT` or `inet6:PORT@HOST`.
    static func checkListen(_ spec: String) throws {
        guard !spec.isEmpty else {
            throw ValueError(message: "must not be empty; expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST")
        }
        guard let colon = spec.firstIndex(of: ":") else {
            throw ValueError(message: "invalid listen spec '\(spec)'; expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST")
        }
        let type = spec[..<colon].lowercased()
        let rest = String(spec[spec.index(after: colon)...])
        switch type {
        case "unix":
            try checkSocketPath(rest)
        case "inet", "inet6":
            try checkPortAndHost(rest, type: type)
        default:
            throw ValueError(message: "unsupported listen type '\(type):'; expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST")
        }
    }

    private static func checkSocketPath(_ path: String) throws {
        guard path.hasPrefix("/") else {
            throw ValueError(message: "the unix socket path must be absolute, as in unix:/run/egress-milter/milter.sock")
        }
        guard path.utf8.count <= maximumSocketPathBytes else {
            throw ValueError(message: "the unix socket path is \(path.utf8.count) bytes long; the maximum is \(maximumSocketPathBytes)")
        }
    }

    private static func checkPortAndHost(_ text: String, type: String) throws {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let port = String(parts[0])
        guard let number = Int(port), port.allSatisfy(\.isASCII), (1...65535).contains(number) else {
            throw ValueError(message: "invalid port '\(port)'; expected \(type):PORT@HOST with PORT from 1 to 65535")
        }
        if parts.count == 2 {
            let host = parts[1]
            guard !host.isEmpty, !host.contains(where: \.isWhitespace) else {
                throw ValueError(message: "invalid host '\(host)'; expected \(type):\(port)@HOST, for example \(type):\(port)@\(type == "inet" ? "127.0.0.1" : "[::1]")")
            }
        }
    }

    // MARK: Durations

    /// Parses a duration in seconds: a whole number with an optional unit `s`, `m`, `h` or `d`
    /// ("300", "30s", "5m", "1h", "1d").
    static func parseDuration(_ text: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("-") {
            throw ValueError(message: "must not be negative: '\(text)'")
        }
        let digits = trimmed.prefix(while: { $0.isASCII && $0.isNumber })
        let unit = trimmed.dropFirst(digits.count)
        let multipliers: [Substring: Int] = ["": 1, "s": 1, "m": 60, "h": 3600, "d": 86400]
        guard !digits.isEmpty, let multiplier = multipliers[unit] else {
            throw ValueError(message: "invalid duration '\(text)'; expected seconds, or a number with the unit s, m, h or d, such as 30s, 5m or 1h")
        }
        guard let count = Int(digits) else {
            throw ValueError(message: "duration '\(text)' is too large; the maximum is \(maximumTimeoutSeconds) seconds")
        }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: multiplier)
        guard !overflow, seconds <= maximumTimeoutSeconds else {
            throw ValueError(message: "duration '\(text)' is too large; the maximum is \(maximumTimeoutSeconds) seconds")
        }
        guard seconds > 0 else {
            throw ValueError(message: "must be at least 1 second")
        }
        return seconds
    }

    /// Formats seconds in the largest unit that divides them exactly ("5m", "90s", "1d").
    static func formatDuration(_ seconds: Int) -> String {
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] where seconds > 0 && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    // MARK: Socket mode

    /// Parses octal permission bits such as "0660" or "660".
    static func parseSocketMode(_ text: String) throws -> UInt32 {
        let trimmed = text.hasPrefix("0o") ? String(text.dropFirst(2)) : text
        guard (3...4).contains(trimmed.count),
              trimmed.allSatisfy({ ("0"..."7").contains($0) }),
              let mode = UInt32(trimmed, radix: 8) else {
            throw ValueError(message: "invalid mode '\(text)'; expected octal permission bits such as \"0660\"")
        }
        guard mode <= 0o777 else {
            throw ValueError(message: "invalid mode '\(text)'; setuid, setgid and sticky bits mean nothing on a socket")
        }
        // Connecting to a unix socket needs write permission, and libmilter trusts its peer.
        guard mode & 0o002 == 0 else {
            throw ValueError(message: "mode '\(text)' lets every local user connect, and libmilter trusts whoever connects; use \"0660\" with the MTA's group")
        }
        return mode
    }

    static func formatSocketMode(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    // MARK: SMTP replies

    /// Checks a reply's code range for the action that sends it (tempfail 4xx, reject 5xx).
    static func checkReplyCode(_ code: Int, for action: Action) throws {
        let range = action == .tempfail ? 400...499 : 500...599
        guard range.contains(code) else {
            let kind = action == .tempfail ? "4xx" : "5xx"
            throw ValueError(message: "\(action.rawValue) code must be \(kind) (\(range.lowerBound) to \(range.upperBound)), not \(code)")
        }
    }

    /// Checks an RFC 3463 enhanced status code ("class.subject.detail") and that its class
    /// agrees with the reply code.
    static func checkEnhancedStatus(_ status: String, code: Int) throws {
        let parts = status.split(separator: ".", omittingEmptySubsequences: false)
        let isValid = parts.count == 3
            && ["2", "4", "5"].contains(parts[0])
            && parts.dropFirst().allSatisfy { part in
                (1...3).contains(part.count)
                    && part.allSatisfy { $0.isASCII && $0.isNumber }
                    && (part == "0" || !part.hasPrefix("0"))
            }
        guard isValid else {
            throw ValueError(message: "invalid enhanced status code '\(status)'; expected CLASS.SUBJECT.DETAIL such as 4.7.1")
        }
        let replyClass = code / 100
        guard parts[0] == "\(replyClass)" else {
            throw ValueError(message: "enhanced status class \(parts[0]) does not match the reply code \(code); use \(replyClass).x.x")
        }
    }

    /// Checks reply text: printable ASCII (RFC 5321 allows nothing else), lines separated by
    /// "\n", each within libmilter's limits.
    static func checkReplyText(_ text: String) throws {
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ValueError(message: "must not be empty")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count <= maximumReplyLines else {
            throw ValueError(message: "has \(lines.count) lines; the maximum is \(maximumReplyLines)")
        }
        for (index, line) in lines.enumerated() {
            if let bad = line.unicodeScalars.first(where: { !($0 == "\t" || (0x20...0x7E).contains($0.value)) }) {
                let character = bad.value < 0x80 ? String(format: "0x%02X", bad.value) : "'\(bad)'"
                throw ValueError(message: "contains \(character) in line \(index + 1); reply text must be printable ASCII")
            }
            guard line.utf8.count <= maximumReplyLineBytes else {
                throw ValueError(message: "line \(index + 1) is \(line.utf8.count) bytes long; the maximum is \(maximumReplyLineBytes)")
            }
        }
    }

    // MARK: Headers

    /// Checks a header field name: printable ASCII without colon or space (RFC 5322).
    /// Empty is allowed, meaning "no header".
    static func checkHeaderName(_ name: String) throws {
        guard name.unicodeScalars.allSatisfy({ (33...126).contains($0.value) && $0 != ":" }) else {
            throw ValueError(message: "invalid header name '\(name)'; use letters, digits and '-', without ':' or spaces")
        }
    }

    // MARK: Sender rules

    /// Checks that a sender pattern can match some identity key, so a typo in a level name
    /// does not leave a rule that silently never fires. IPv6 keys carry the configured
    /// prefix length (`identity.ipv6_prefix`), so a pattern with another one never matches.
    static func checkSenderPattern(_ pattern: String, ipv6PrefixLength: Int = IdentitySettings().ipv6PrefixLength) throws {
        guard !pattern.isEmpty else {
            throw ValueError(message: "must not be empty; write a pattern such as sender:*@example.com")
        }
        let levels = IdentityLevel.allCases.map(\.rawValue)
        let valuelessLevels = IdentityLevel.allCases.filter(\.hasNoValue).map(\.rawValue)
        let lowered = pattern.lowercased()
        let isGlob: (Character) -> Bool = { $0 == "*" || $0 == "?" }
        guard let colon = lowered.firstIndex(of: ":") else {
            guard valuelessLevels.contains(lowered) || lowered.contains(where: isGlob) else {
                throw ValueError(message: "pattern '\(pattern)' matches no identity key; start it with a level and a colon, such as login: or account:, or write \(valuelessLevels.joined(separator: " or "))")
            }
            return
        }
        let level = String(lowered[..<colon])
        if level.contains(where: isGlob) {
            return
        }
        if valuelessLevels.contains(level) {
            throw ValueError(message: "the \(level) key has no value; write just '\(level)'")
        }
        guard levels.contains(level) else {
            var message = "unknown identity level '\(level)'"
            if let near = Suggestion.nearest(to: level, among: levels) {
                message += "; did you mean '\(near)'?"
            }
            message += " (levels: \(levels.joined(separator: ", ")))"
            throw ValueError(message: message)
        }
        let value = lowered[lowered.index(after: colon)...]
        if level == IdentityLevel.ip.rawValue, value.contains("/"),
           !(value.contains(":") && value.hasSuffix("/\(ipv6PrefixLength)")) {
            throw ValueError(message: "pattern '\(pattern)' never matches: IPv4 keys have no prefix length and IPv6 keys end in /\(ipv6PrefixLength) (identity.ipv6_prefix); match ranges with a glob such as ip:192.0.2.*")
        }
    }

    /// Checks a rule's reason text, which goes into single-line log entries.
    static func checkReason(_ reason: String) throws {
        guard !reason.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ValueError(message: "must be a single line without control characters")
        }
    }
}
