// The daily summary for the admin: the busiest senders, the limit trips by rule, the
// suspensions that began in the period and the held messages. The same value goes to
// `egressctl summary` (as text, or as JSON with --json) and, as text, into the summary mail.
//
// Sources: sender counts and trips from `SenderActivity` (memory, so they start at the
// daemon's last start), suspensions from `SuspensionHistory` (durable), held messages from
// `HeldMessageStore` (durable, messages still recorded as held). Pure: the caller passes
// everything, the time included. The initializer sorts and cuts the lists, so the text and
// the JSON show the same rows.

import Foundation

/// Trips of one limit rule within the period.
public struct RuleTrips: Codable, Sendable, Equatable {
    public var rule: String
    /// Trips of every key under this rule.
    public var trips: Int
    /// The keys with the most trips, most first; at most `DailySummary.rowsPerList`.
    public var keys: [KeyCount]
    /// Keys that tripped the rule, listed or not.
    public var keyCount: Int

    public init(rule: String, trips: Int, keys: [KeyCount], keyCount: Int) {
        self.rule = rule
        self.trips = trips
        self.keys = keys
        self.keyCount = keyCount
    }
}

/// A key and a count: trips, or held messages.
public struct KeyCount: Codable, Sendable, Equatable {
    public var key: String
    public var count: Int

    public init(key: String, count: Int) {
        self.key = key
        self.count = count
    }
}

public struct DailySummary: Codable, Sendable, Equatable {
    /// Rows in each top list.
    public static let rowsPerList = 10
    /// Suspensions listed at most; the count above the list includes the others.
    public static let maximumSuspensionsListed = 50

    public var hostname: String
    public var from: Date
    public var to: Date
    /// When the in-memory counts began, when that is later than `from`.
    public var countsSince: Date?
    /// The busiest senders by delivered and held messages, each message counted once under
    /// its summary key; the server key is left out.
    public var topSenders: [SenderTotals]
    /// Trips per rule, most first.
    public var tripsByRule: [RuleTrips]
    /// Every suspension that began within the period, oldest first, released or not.
    public var suspensions: [SuspensionEvent]
    /// Keys suspended now, however long ago.
    public var suspendedNow: Int
    /// Messages recorded as held now.
    public var heldMessages: Int
    /// The keys with the most held messages, most first; the server key is left out.
    public var heldByKey: [KeyCount]
    /// The daemon's control socket when it is not egressctl's default, for the commands
    /// the text prints.
    public var controlSocket: String?

    /// Builds the summary. `senders` are the totals of every key, `trips` the trips per
    /// rule and key, `suspensions` those that began in the period.
    public init(hostname: String, from: Date, to: Date, countsSince: Date?, senders: [SenderTotals],
                trips: [String: [String: Int]], suspensions: [SuspensionEvent], suspendedNow: Int,
                heldMessages: Int, heldByKey: [String: Int], controlSocket: String? = nil) {
        self.hostname = hostname
        self.from = from
        self.to = to
        self.countsSince = countsSince
        self.suspensions = suspensions.sorted { ($0.since, $0.key) < ($1.since, $1.key) }
        self.suspendedNow = suspendedNow
        self.heldMessages = heldMessages
        self.controlSocket = controlSocket

        // The server key counts every message; it would top every list.
        let server = IdentityLevel.server.rawValue
        topSenders = Array(senders.filter { $0.key != server && $0.messages + $0.held > 0 }
            .sorted { ($0.messages, $0.held, $1.key) > ($1.messages, $1.held, $0.key) }
            .prefix(Self.rowsPerList))
        tripsByRule = trips.map { rule, keys in
            RuleTrips(rule: rule, trips: keys.values.reduce(0, &+), keys: Self.top(keys), keyCount: keys.count)
        }.sorted { ($0.trips, $1.rule) > ($1.trips, $0.rule) }
        self.heldByKey = Self.top(heldByKey.filter { $0.key != server })
    }

    static func top(_ counts: [String: Int]) -> [KeyCount] {
        counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(rowsPerList).map { KeyCount(key: $0.key, count: $0.value) }
    }

    public var subject: String {
        let count = suspensions.count
        let new = count == 1 ? "1 new suspension" : "\(count) new suspensions"
        return "egress-milter on \(hostname): daily summary, \(new), \(heldMessages) held"
    }

    /// The plain-text body: one section per list, each a table with a header line. Keys go
    /// in the last column, so a long key does not push the numbers out of line.
    public var body: String {
        var lines = ["egress-milter on \(hostname), from \(Self.format(from)) to \(Self.format(to))."]
        if let countsSince {
            lines.append("The sender counts and trips begin at the daemon's start, \(Self.format(countsSince)).")
        }

        lines.append("")
        lines.append("Top senders (each message counted once, under its most specific verified key):")
        if topSenders.isEmpty {
            lines.append("  (none)")
        } else {
            lines += Self.table(header: ["MESSAGES", "RECIPIENTS", "HELD", "REFUSED", "KEY"], rows: topSenders.map {
                ["\($0.messages)", "\($0.recipients)", "\($0.held)", "\($0.refused)", Self.cut($0.key)]
            })
        }

        lines.append("")
        let tripTotal = tripsByRule.reduce(0) { $0 &+ $1.trips }
        lines.append("Limit trips: \(tripTotal)")
        if !tripsByRule.isEmpty {
            var rows: [[String]] = []
            for rule in tripsByRule {
                rows += rule.keys.map { ["\($0.count)", Self.cut(rule.rule), Self.cut($0.key)] }
                if rule.keyCount > rule.keys.count {
                    rows.append(["", Self.cut(rule.rule), "(\(rule.keyCount - rule.keys.count) more keys)"])
                }
            }
            lines += Self.table(header: ["TRIPS", "RULE", "KEY"], rows: rows)
        }

        lines.append("")
        lines.append("Suspensions that began in the period: \(suspensions.count) (keys suspended now: \(suspendedNow))")
        for event in suspensions.prefix(Self.maximumSuspensionsListed) {
            lines.append("  \(Self.format(event.since))  \(Self.cut(event.key))")
            let by = event.rule.map { "rule \($0)" } ?? "admin \(event.suspendedBy ?? "(unknown)")"
            lines.append("      by \(by): \(Self.cut(event.reason))")
            if let releasedAt = event.releasedAt {
                lines.append("      released \(Self.format(releasedAt)) by \(event.releasedBy ?? "(unknown)")")
            } else {
                lines.append("      still in force")
            }
        }
        if suspensions.count > Self.maximumSuspensionsListed {
            lines.append("  (\(suspensions.count - Self.maximumSuspensionsListed) more)")
        }

        lines.append("")
        lines.append("Held messages recorded now: \(heldMessages)")
        if !heldByKey.isEmpty {
            lines += Self.table(header: ["HELD", "KEY"], rows: heldByKey.map { ["\($0.count)", Self.cut($0.key)] })
        }
        lines.append("")
        let socket = controlSocket.map { " --socket \(shellQuoted($0))" } ?? ""
        lines.append("egressctl top\(socket) and egressctl show KEY\(socket) give the details.")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Lines of a table indented by two spaces. Columns of numbers are right-aligned, other
    /// columns left-aligned, each to its widest cell. The last column is not padded.
    static func table(header: [String], rows: [[String]]) -> [String] {
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        var numeric = Array(repeating: true, count: header.count)
        for row in all {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        for row in rows {
            for (index, cell) in row.enumerated() where index < numeric.count && !cell.allSatisfy(\.isNumber) {
                numeric[index] = false
            }
        }
        return all.map { row in
            var cells: [String] = []
            for (index, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: max(0, widths[index] - cell.count))
                if index == row.count - 1 {
                    cells.append(numeric[index] ? padding + cell : cell)
                } else {
                    cells.append(numeric[index] ? padding + cell : cell + padding)
                }
            }
            return "  " + cells.joined(separator: "  ")
        }
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
