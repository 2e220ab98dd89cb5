// The text of the admin's notices and summaries, and the mail that carries them.
//
// A notice names the key, its account and script, why it was suspended (or which limit it
// tripped and what now happens to its mail), its counts against its limits, sample subjects
// and recipient domains, and the exact egressctl commands to look at it (and, for a
// suspension, to release it), with `--socket` when the daemon's control socket is not
// egressctl's default. Prose is wrapped at `wrapColumn`. The mail is plain UTF-8 text with
// Date, Message-ID, From, To, Subject, MIME-Version and Content-Type. Every line stays within
// RFC 5322's 998 octets. The body goes out as 8bit when every line fits, and as
// quoted-printable (RFC 2045) when one does not (a command with a 4096-byte script path),
// so the commands stay exact either way. Pure: it never reads the clock or files.

import Foundation

/// One notice about one key.
public struct SenderNotice: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// The key was suspended: its mail is held until an admin releases it.
        case suspension
        /// The key tripped an enforcing limit for the first time within the period.
        case limitTrip = "limit-trip"
    }

    public var kind: Kind
    public var key: String
    /// The message's identity keys joined by "<".
    public var identity: String
    /// The suspension reason, or the tripped limit.
    public var reason: String
    public var time: Date
    /// The queue ID of the message that caused the notice.
    public var queueID: String?
    public var limits: [LimitUsage]
    public var samples: SenderSamples
    /// The host name that the subject and text name.
    public var hostname: String
    /// For a limit trip: the tripped rule's action, which the key's mail gets while the
    /// window is full. Nil for a suspension.
    public var tripAction: Action?
    /// The daemon's control socket when it is not egressctl's default; the commands then
    /// carry `--socket PATH`.
    public var controlSocket: String?

    /// Column at which prose lines are wrapped. Keys and commands stay whole on their own line.
    public static let wrapColumn = 76

    public init(kind: Kind, key: String, identity: String, reason: String, time: Date, queueID: String?,
                limits: [LimitUsage], samples: SenderSamples, hostname: String, tripAction: Action? = nil,
                controlSocket: String? = nil) {
        self.kind = kind
        self.key = key
        self.identity = identity
        self.reason = reason
        self.time = time
        self.queueID = queueID
        self.limits = limits
        self.samples = samples
        self.hostname = hostname
        self.tripAction = tripAction
        self.controlSocket = controlSocket
    }

    /// The local account, from an account or script key of the identity.
    public var account: String? {
        for key in identityKeys {
            if key.hasPrefix("account:") {
                return String(key.dropFirst("account:".count))
            }
            if key.hasPrefix("script:"), let colon = key.dropFirst("script:".count).firstIndex(of: ":") {
                return String(key[key.index(key.startIndex, offsetBy: "script:".count)..<colon])
            }
        }
        return nil
    }

    /// The script path, from a script key of the identity.
    public var script: String? {
        guard let key = identityKeys.first(where: { $0.hasPrefix("script:") }) else { return nil }
        let rest = key.dropFirst("script:".count)
        guard let colon = rest.firstIndex(of: ":") else { return nil }
        return String(rest[rest.index(after: colon)...])
    }

    private var identityKeys: [String] {
        identity.split(separator: "<").map(String.init)
    }

    public var releaseDeliverCommand: String { "egressctl release \(shellQuoted(key)) --deliver\(socketOption)" }
    public var releaseDeleteCommand: String { "egressctl release \(shellQuoted(key)) --delete\(socketOption)" }
    public var showCommand: String { "egressctl show \(shellQuoted(key))\(socketOption)" }

    /// " --socket PATH" when the daemon's control socket is not egressctl's default.
    private var socketOption: String {
        controlSocket.map { " --socket \(shellQuoted($0))" } ?? ""
    }

    /// The key's counts against its limits, one item per window:
    /// "accounts: 51/50 messages in 1h; accounts: 120/500 recipients in 1h".
    public var countsText: String {
        var items: [String] = []
        for limit in limits {
            for window in limit.windows {
                items.append("\(limit.rule): \(window.count)/\(window.limit) \(window.unit) in \(ConfigurationValues.formatDuration(window.seconds))")
            }
        }
        return items.joined(separator: "; ")
    }

    public var subject: String {
        switch kind {
        case .suspension: return "egress-milter on \(hostname): \(key) suspended"
        case .limitTrip: return "egress-milter on \(hostname): \(key) tripped a limit"
        }
    }

    /// The plain-text body.
    public var body: String {
        var lines: [String] = []
        switch kind {
        case .suspension:
            lines += Self.wrap("egress-milter on \(hostname) suspended \(key). Every message of this key is held in Postfix's hold queue until an admin releases it.")
        case .limitTrip:
            lines += Self.wrap("\(key) on \(hostname) tripped a rate limit. The key is not suspended. \(tripConsequence)")
        }
        lines.append("")
        lines.append("Key:       \(key)")
        lines.append("Account:   \(account ?? "unknown (no verified local account)")")
        lines.append("Script:    \(script ?? "unknown (no verified script)")")
        lines.append("Identity:  \(identity)")
        lines.append("Reason:    \(reason)")
        lines.append("Time:      \(Self.format(time))")
        lines.append("Queue ID:  \(queueID ?? "none")")
        lines.append("")
        lines.append("Counts against the limits:")
        var anyWindow = false
        for limit in limits {
            for window in limit.windows {
                anyWindow = true
                lines.append("  \(limit.rule): \(window.count) of \(window.window) \(window.unit)")
            }
        }
        if !anyWindow {
            lines.append("  (no limit rule counts this key)")
        }
        lines.append("")
        lines.append("Last subjects:")
        if samples.subjects.isEmpty {
            lines.append("  (none recorded since the daemon started)")
        }
        for subject in samples.subjects {
            lines.append("  \(subject)")
        }
        lines.append("Recipient domains: \(samples.recipientDomains.isEmpty ? "(none recorded)" : samples.recipientDomains.joined(separator: ", "))")
        lines.append("")
        lines.append("To look at the key, its recent decisions and its held messages:")
        lines.append("  \(showCommand)")
        switch kind {
        case .suspension:
            lines.append("To lift the suspension and deliver its held messages:")
            lines.append("  \(releaseDeliverCommand)")
            lines.append("To lift the suspension and delete its held messages:")
            lines.append("  \(releaseDeleteCommand)")
        case .limitTrip:
            if tripAction == .hold {
                lines += Self.wrap("To deliver the messages held for this key (the key stays unsuspended):")
                lines.append("  \(releaseDeliverCommand)")
            }
            lines += Self.wrap("If the key trips its limits again, a rule with suspend_after or a hard window suspends it, and another notice follows.")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The effect of the tripped rule's action on the key's mail until the window has room.
    var tripConsequence: String {
        switch tripAction {
        case .tempfail, nil:
            return "Until the window has room again, its new messages are refused with a temporary error (4xx), so well-behaved senders retry later."
        case .hold:
            return "Until the window has room again, its new messages are put in Postfix's hold queue and wait there for an admin."
        case .reject:
            return "Until the window has room again, its new messages are rejected with a permanent error (5xx) and bounce."
        case .tag:
            return "Its messages are still delivered, with the spam tag headers added, until the window has room again."
        case .accept:
            return "The rule lets its messages through; the trip is only reported."
        }
    }

    /// Splits prose into lines of at most `wrapColumn` characters at spaces. A word longer
    /// than that (a long key) gets a line of its own and is not cut.
    static func wrap(_ text: String, width: Int = wrapColumn) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if current.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word)
            }
        }
        if !current.isEmpty {
            lines.append(current)
        }
        return lines
    }

    /// The environment variables of the notification command.
    public var environment: [String: String] {
        [
            "EGRESS_KIND": kind.rawValue,
            "EGRESS_KEY": key,
            "EGRESS_ACCOUNT": account ?? "",
            "EGRESS_SCRIPT": script ?? "",
            "EGRESS_IDENTITY": identity,
            "EGRESS_REASON": reason,
            "EGRESS_TIME": Self.format(time),
            "EGRESS_QUEUE_ID": queueID ?? "",
            "EGRESS_COUNTS": countsText,
            "EGRESS_SUBJECTS": samples.subjects.joined(separator: "\n"),
            "EGRESS_RECIPIENT_DOMAINS": samples.recipientDomains.joined(separator: " "),
            "EGRESS_HOSTNAME": hostname,
            "EGRESS_ACTION": tripAction?.rawValue ?? "",
            "EGRESS_SHOW_COMMAND": showCommand,
            "EGRESS_RELEASE_COMMAND": releaseDeliverCommand,
            "EGRESS_DELETE_COMMAND": releaseDeleteCommand,
        ]
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

/// Quotes a word for a POSIX shell when it contains anything but safe characters, so a
/// copied command works for keys with spaces or quotes in a script path.
public func shellQuoted(_ word: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")
    if !word.isEmpty && word.allSatisfy({ safe.contains($0) }) {
        return word
    }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// Builds the bytes of a notice or summary mail for sendmail.
public enum NoticeMail {
    /// RFC 5322's limit on a line, without its CRLF.
    public static let maximumLineBytes = 998
    /// Maximum subject length written, in characters, so the Subject field stays far below
    /// the line limit.
    static let maximumSubjectCharacters = 200

    /// Returns the message, lines ended by "\n" as sendmail expects on its standard input.
    /// `extraHeaders` follow the standard fields (the seal).
    public static func compose(from: String, to: [String], subject: String, body: String, messageID: String,
                               date: Date, extraHeaders: [HeaderField] = []) -> [UInt8] {
        let bodyLines = body.split(separator: "\n", omittingEmptySubsequences: false)
        let fits = bodyLines.allSatisfy { $0.utf8.count <= maximumLineBytes }
        var header: [String] = [
            "Date: \(rfc5322Date(date))",
            "From: \(from)",
        ]
        header.append(contentsOf: foldAddressList("To", to))
        header += [
            "Subject: \(encodeHeaderText(String(subject.prefix(maximumSubjectCharacters))))",
            "Message-ID: \(messageID)",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: \(fits ? "8bit" : "quoted-printable")",
            "Auto-Submitted: auto-generated",
        ]
        for field in extraHeaders {
            header.append("\(field.name): \(field.value)")
        }
        let encodedBody = fits ? body : quotedPrintable(body)
        return Array((header.joined(separator: "\n") + "\n\n" + encodedBody).utf8)
    }

    /// "To: a@x, b@y" folded onto continuation lines, so a long list of admins keeps every
    /// line short.
    static func foldAddressList(_ name: String, _ addresses: [String]) -> [String] {
        var lines: [String] = []
        var current = "\(name):"
        for (index, address) in addresses.enumerated() {
            let item = " " + address + (index < addresses.count - 1 ? "," : "")
            if current.utf8.count + item.utf8.count > 78 && current != "\(name):" {
                lines.append(current)
                current = ""
            }
            current += item
        }
        lines.append(current)
        return lines
    }

    /// Returns the text unchanged when it is printable ASCII, else one RFC 2047 base64
    /// encoded word per chunk of at most 45 bytes, cut between characters.
    static func encodeHeaderText(_ text: String) -> String {
        if text.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F }) {
            return text
        }
        var words: [String] = []
        var chunk = ""
        for character in text {
            let clean = character.unicodeScalars.contains { $0.properties.generalCategory == .control } ? " " : character
            if chunk.utf8.count + String(clean).utf8.count > 45 {
                words.append("=?UTF-8?B?" + Data(chunk.utf8).base64EncodedString() + "?=")
                chunk = ""
            }
            chunk.append(clean)
        }
        if !chunk.isEmpty {
            words.append("=?UTF-8?B?" + Data(chunk.utf8).base64EncodedString() + "?=")
        }
        return words.joined(separator: "\n ")
    }

    /// Quoted-printable encoding of UTF-8 text with "\n" line breaks, lines of at most 76
    /// characters (RFC 2045, section 6.7).
    static func quotedPrintable(_ text: String) -> String {
        var output = ""
        let hex = Array("0123456789ABCDEF")
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if index > 0 { output += "\n" }
            var current = ""
            let bytes = Array(line.utf8)
            for (position, byte) in bytes.enumerated() {
                let isLast = position == bytes.count - 1
                var piece: String
                if (byte >= 33 && byte <= 126 && byte != 61) || (byte == 32 && !isLast) {
                    piece = String(UnicodeScalar(byte))
                } else {
                    piece = "=" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0x0F)])
                }
                if current.count + piece.count > 75 {
                    output += current + "=\n"
                    current = ""
                }
                current += piece
                piece = ""
            }
            output += current
        }
        return output
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone.current
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }
}
