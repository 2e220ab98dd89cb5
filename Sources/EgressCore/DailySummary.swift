// The daily summary for the admin: the busiest senders, the keys that tripped limits, the
// suspensions and the held messages of the last 24 hours. The same text goes to
// `egressctl summary` and into the summary mail.
//
// Sources: sender counts from `SenderActivity` (memory, so they start at the daemon's last
// start), suspensions from the limiter (durable), held messages from `HeldMessageStore`
// (durable, messages still recorded as held). Pure: the caller passes everything, the time
// included.

import Foundation

public struct DailySummary: Sendable, Equatable {
    /// Rows in each top list.
    public static let rowsPerList = 10

    public var hostname: String
    public var from: Date
    public var to: Date
    /// When the in-memory counts began, when that is later than `from`.
    public var countsSince: Date?
    public var senders: [SenderTotals]
    /// Suspensions that began within the span, oldest first.
    public var newSuspensions: [SuspensionReport]
    /// Keys suspended now, however long ago.
    public var suspendedKeys: Int
    /// Messages recorded as held now, and per key the most held.
    public var heldMessages: Int
    public var heldByKey: [String: Int]

    public init(hostname: String, from: Date, to: Date, countsSince: Date?, senders: [SenderTotals],
                newSuspensions: [SuspensionReport], suspendedKeys: Int, heldMessages: Int, heldByKey: [String: Int]) {
        self.hostname = hostname
        self.from = from
        self.to = to
        self.countsSince = countsSince
        self.senders = senders
        self.newSuspensions = newSuspensions
        self.suspendedKeys = suspendedKeys
        self.heldMessages = heldMessages
        self.heldByKey = heldByKey
    }

    public var subject: String {
        "egress-milter on \(hostname): daily summary, \(newSuspensions.count) new suspensions, \(heldMessages) held"
    }

    /// The plain-text body. Keys are cut to `maximumKeyCharacters` so every line stays short.
    public var body: String {
        var lines = ["egress-milter on \(hostname), from \(Self.format(from)) to \(Self.format(to))."]
        if let countsSince {
            lines.append("The sender counts begin at the daemon's start, \(Self.format(countsSince)).")
        }
        // The server key counts every message; it would top every list.
        let senders = self.senders.filter { $0.key != IdentityLevel.server.rawValue }

        lines.append("")
        lines.append("Top senders by delivered messages (messages, recipients, held, refused):")
        let busiest = senders.filter { $0.messages + $0.held > 0 }
            .sorted { ($0.messages, $0.held, $1.key) > ($1.messages, $1.held, $0.key) }.prefix(Self.rowsPerList)
        if busiest.isEmpty {
            lines.append("  (none)")
        }
        for row in busiest {
            lines.append("  \(Self.cut(row.key))  \(row.messages) \(row.recipients) \(row.held) \(row.refused)")
        }

        lines.append("")
        lines.append("Limit trips by key:")
        let tripped = senders.filter { $0.limitTrips > 0 }
            .sorted { ($0.limitTrips, $1.key) > ($1.limitTrips, $0.key) }.prefix(Self.rowsPerList)
        if tripped.isEmpty {
            lines.append("  (none)")
        }
        for row in tripped {
            lines.append("  \(Self.cut(row.key))  \(row.limitTrips)")
        }

        lines.append("")
        lines.append("New suspensions: \(newSuspensions.count) (keys suspended now: \(suspendedKeys))")
        for suspension in newSuspensions.prefix(Self.rowsPerList * 5) {
            lines.append("  \(Self.format(suspension.since))  \(Self.cut(suspension.key))  \(Self.cut(suspension.reason))")
        }

        lines.append("")
        lines.append("Held messages recorded now: \(heldMessages)")
        let heldKeys = heldByKey.filter { $0.key != IdentityLevel.server.rawValue }
            .sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(Self.rowsPerList)
        for (key, count) in heldKeys {
            lines.append("  \(Self.cut(key))  \(count)")
        }
        lines.append("")
        lines.append("egressctl top and egressctl show KEY give the details.")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Characters of a key or reason shown in a summary line.
    static let maximumKeyCharacters = 300

    static func cut(_ text: String) -> String {
        text.count > maximumKeyCharacters ? String(text.prefix(maximumKeyCharacters)) + "..." : text
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
