// The `notifications:` section of the config file: who hears about a suspended sender, by
// mail and by a command, how often per key, and the optional daily summary.
//
// Notifications are off by default: with no `mail_to` and no `command` nothing is sent. The
// addresses go to sendmail as arguments after "--", and the checks below reject anything
// that could read as an option or contain a line break, so a config value can never inject
// a header or an argument.

/// Settings of the admin notifications.
public struct NotificationSettings: Sendable, Equatable {
    /// Addresses that receive a notice mail when a key is suspended; empty sends no mail.
    public var mailTo: [String] = []
    /// Envelope sender and From address of notices and summaries. A bare local part gets the
    /// MTA's own domain (Postfix's myorigin).
    public var mailFrom = "egress-milter"
    /// Program and arguments run once per notice with the details in EGRESS_* environment
    /// variables, without a shell; empty runs nothing.
    public var command: [String] = []
    /// Whether the first trip of a limit by a key also sends a notice, not only a suspension.
    public var onLimitTrip = false
    /// At most one notice per key and kind (suspension, limit trip) within this many seconds.
    public var periodSeconds = 3600
    /// The sendmail program and its arguments; the daemon appends `-i -f FROM -- TO...`.
    public var sendmailCommand = ["/usr/sbin/sendmail"]
    /// Seconds a sendmail or command run may take before it is killed.
    public var timeoutSeconds = 30
    /// The daily summary mail.
    public var dailySummary = DailySummarySettings()

    public init() {}

    /// Whether a suspension produces anything at all.
    public var isEnabled: Bool {
        !mailTo.isEmpty || !command.isEmpty
    }
}

/// Settings of the daily summary mail.
public struct DailySummarySettings: Sendable, Equatable {
    public var enabled = false
    /// Local time of day, in minutes after midnight, at which the summary is sent.
    public var minuteOfDay = 6 * 60
    /// Recipients of the summary; empty uses `notifications.mail_to`.
    public var mailTo: [String] = []

    public init() {}

    /// "06:00".
    public var timeText: String {
        let hour = minuteOfDay / 60
        let minute = minuteOfDay % 60
        return (hour < 10 ? "0" : "") + "\(hour):" + (minute < 10 ? "0" : "") + "\(minute)"
    }
}

enum NotificationKeys {
    static let section = ["mail_to", "mail_from", "command", "on_limit_trip", "period", "sendmail_command", "timeout",
                          "daily_summary"]
    static let dailySummary = ["enabled", "at", "mail_to"]
}

enum NotificationValues {
    /// Maximum run time of a sendmail or notification command, in seconds.
    static let maximumTimeoutSeconds = 3600
    /// Maximum length of an address, in bytes (RFC 5321 allows 64 + 1 + 255).
    static let maximumAddressBytes = 320

    /// Checks an address given to sendmail: no whitespace, control or list characters, and
    /// no leading '-' that a program could read as an option.
    static func checkAddress(_ address: String) throws {
        guard !address.isEmpty else {
            throw ValueError(message: "must not be empty")
        }
        guard address.utf8.count <= maximumAddressBytes else {
            throw ValueError(message: "is \(address.utf8.count) bytes long; an address may have at most \(maximumAddressBytes)")
        }
        guard !address.hasPrefix("-") else {
            throw ValueError(message: "'\(address)' starts with '-', which sendmail would read as an option")
        }
        let forbidden = Set("<>()[],;:\"\\".unicodeScalars)
        if let bad = address.unicodeScalars.first(where: { $0.properties.generalCategory == .control || $0 == " " || forbidden.contains($0) }) {
            throw ValueError(message: "'\(address)' contains '\(bad.escaped(asASCII: true))'; write one plain address such as admin@example.org per item")
        }
    }

    /// Parses "HH:MM" (24-hour clock) into minutes after midnight.
    static func parseTimeOfDay(_ text: String) throws -> Int {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2,
              parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let hour = Int(parts[0]), let minute = Int(parts[1]), hour < 24, minute < 60 else {
            throw ValueError(message: "invalid time '\(text)'; expected HH:MM on a 24-hour clock, such as \"06:00\"")
        }
        return hour * 60 + minute
    }

    /// Checks a program argv: non-empty, an absolute program path, no NUL bytes.
    static func checkCommand(_ argv: [String]) throws {
        guard let program = argv.first else {
            throw ValueError(message: "must name a program, such as [/usr/sbin/sendmail]")
        }
        guard program.hasPrefix("/") else {
            throw ValueError(message: "the program '\(program)' must be an absolute path; the daemon runs it without a shell or $PATH")
        }
        guard !argv.contains(where: { $0.contains("\u{0}") }) else {
            throw ValueError(message: "an argument contains a NUL byte")
        }
    }
}

extension ConfigurationDecoder {
    func decodeNotifications(_ node: YAMLNode) throws -> NotificationSettings {
        var settings = NotificationSettings()
        let fields = try fields(of: node, at: "notifications", allowed: NotificationKeys.section)
        if let list = fields["mail_to"] {
            settings.mailTo = try addressList(list, at: "notifications.mail_to")
        }
        if let from = fields["mail_from"] {
            let address = try string(from, at: "notifications.mail_from")
            try value(of: from, at: "notifications.mail_from") { _ in try NotificationValues.checkAddress(address) }
            settings.mailFrom = address
        }
        if let command = fields["command"] {
            let argv = try argumentList(command, at: "notifications.command")
            if !argv.isEmpty {
                try value(of: command, at: "notifications.command") { _ in try NotificationValues.checkCommand(argv) }
            }
            settings.command = argv
        }
        if let trip = fields["on_limit_trip"] {
            settings.onLimitTrip = try plainBoolean(trip, at: "notifications.on_limit_trip")
        }
        if let period = fields["period"] {
            let text = try string(period, at: "notifications.period")
            settings.periodSeconds = try value(of: period, at: "notifications.period") { _ in try ConfigurationValues.parseDuration(text) }
        }
        if let sendmail = fields["sendmail_command"] {
            let argv = try argumentList(sendmail, at: "notifications.sendmail_command")
            try value(of: sendmail, at: "notifications.sendmail_command") { _ in try NotificationValues.checkCommand(argv) }
            settings.sendmailCommand = argv
        }
        if let timeout = fields["timeout"] {
            let text = try string(timeout, at: "notifications.timeout")
            settings.timeoutSeconds = try value(of: timeout, at: "notifications.timeout") { _ in
                let seconds = try ConfigurationValues.parseDuration(text)
                guard seconds <= NotificationValues.maximumTimeoutSeconds else {
                    throw ValueError(message: "must be at most \(NotificationValues.maximumTimeoutSeconds / 60)m, because a stuck run delays every later notice")
                }
                return seconds
            }
        }
        if let summary = fields["daily_summary"] {
            settings.dailySummary = try decodeDailySummary(summary)
        }
        return settings
    }

    private func decodeDailySummary(_ node: YAMLNode) throws -> DailySummarySettings {
        var settings = DailySummarySettings()
        let fields = try fields(of: node, at: "notifications.daily_summary", allowed: NotificationKeys.dailySummary)
        if let enabled = fields["enabled"] {
            settings.enabled = try plainBoolean(enabled, at: "notifications.daily_summary.enabled")
        }
        if let at = fields["at"] {
            let text = try string(at, at: "notifications.daily_summary.at")
            settings.minuteOfDay = try value(of: at, at: "notifications.daily_summary.at") { _ in try NotificationValues.parseTimeOfDay(text) }
        }
        if let list = fields["mail_to"] {
            settings.mailTo = try addressList(list, at: "notifications.daily_summary.mail_to")
        }
        return settings
    }

    private func addressList(_ node: YAMLNode, at path: String) throws -> [String] {
        try argumentList(node, at: path).enumerated().map { index, address in
            guard case .sequence(let items) = node.content else { return address }
            try value(of: items[index], at: "\(path)[\(index)]") { _ in try NotificationValues.checkAddress(address) }
            return address
        }
    }

    /// Returns a sequence of strings; null is an empty list.
    private func argumentList(_ node: YAMLNode, at path: String) throws -> [String] {
        if node.isNull {
            return []
        }
        guard case .sequence(let items) = node.content else {
            throw error(at: node, key: path, "expected a sequence of strings such as [admin@example.org], found \(node.kindDescription)")
        }
        return try items.enumerated().map { index, item in
            try string(item, at: "\(path)[\(index)]")
        }
    }

}

extension Configuration {
    /// Returns the lines of the `notifications:` section for `summary()`.
    func notificationsSummary() -> [String] {
        let settings = notifications
        return [
            "notifications:",
            "  mail_to: \(YAMLText.flowSequence(settings.mailTo))",
            "  mail_from: \(YAMLText.scalar(settings.mailFrom))",
            "  command: \(YAMLText.flowSequence(settings.command))",
            "  on_limit_trip: \(settings.onLimitTrip)",
            "  period: \(ConfigurationValues.formatDuration(settings.periodSeconds))",
            "  sendmail_command: \(YAMLText.flowSequence(settings.sendmailCommand))",
            "  timeout: \(ConfigurationValues.formatDuration(settings.timeoutSeconds))",
            "  daily_summary:",
            "    enabled: \(settings.dailySummary.enabled)",
            "    at: \"\(settings.dailySummary.timeText)\"",
            "    mail_to: \(YAMLText.flowSequence(settings.dailySummary.mailTo))",
        ]
    }
}
