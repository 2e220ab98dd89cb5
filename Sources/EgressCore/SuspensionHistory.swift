// The history of suspensions for the daily summary: when each suspension began, who or
// what began it and why, and when it was released and by which admin. The limiter keeps only the
// suspensions in force, so without this record a key suspended and released within a day,
// or suspended three times, would be missing from the summary of that day.
//
// Stored in the table `suspension_events` of `notices.sqlite`, beside the notice ledger.
// The table was added after schema version 1; `CREATE TABLE IF NOT EXISTS` adds it to an
// older file, and an older daemon ignores it, so the version stays. It is bounded: events
// older than `retentionSeconds` and all but the newest `maximumEvents` are deleted on each
// insert. It must never stop a suspension or a release: the caller logs a failure and goes
// on, and the summary then lists the suspensions in force that began in the period.

import Foundation

/// One suspension, from its beginning to its release (if released).
public struct SuspensionEvent: Codable, Sendable, Equatable {
    public var key: String
    /// When the suspension began.
    public var since: Date
    /// The suspension reason: the rule and what tripped, or the admin's text.
    public var reason: String
    /// The limit rule that suspended the key; nil for an admin's suspension.
    public var rule: String?
    /// The admin (control socket peer) who suspended the key; nil for a rule's suspension.
    public var suspendedBy: String?
    /// When the suspension was released; nil while it is in force.
    public var releasedAt: Date?
    /// The admin who released it.
    public var releasedBy: String?

    public init(key: String, since: Date, reason: String, rule: String?, suspendedBy: String? = nil,
                releasedAt: Date? = nil, releasedBy: String? = nil) {
        self.key = key
        self.since = since
        self.reason = reason
        self.rule = rule
        self.suspendedBy = suspendedBy
        self.releasedAt = releasedAt
        self.releasedBy = releasedBy
    }

    /// Creates the event of a suspension in force, as the limiter reports it.
    public init(_ suspension: Suspension, suspendedBy: String? = nil) {
        self.init(key: suspension.key, since: suspension.since, reason: suspension.reason, rule: suspension.rule,
                  suspendedBy: suspendedBy)
    }

    public var isInForce: Bool {
        releasedAt == nil
    }
}

public enum SuspensionHistory {
    /// Seconds an event is kept after it began: long enough for a monthly look back.
    public static let retentionSeconds = 30 * 86_400.0
    /// Events kept at most; the oldest go first. Far beyond the suspensions of a month on
    /// any host the summary can list in a readable mail.
    public static let maximumEvents = 10_000

    /// The table, created by `NoticeLedger` when it opens the file. `since` is the
    /// suspension's own time, so one suspension written twice stays one row.
    static let createTables = """
        CREATE TABLE IF NOT EXISTS suspension_events (
            id INTEGER PRIMARY KEY, key TEXT NOT NULL, since REAL NOT NULL, reason TEXT NOT NULL,
            rule TEXT, suspended_by TEXT, released_at REAL, released_by TEXT,
            UNIQUE (key, since));
        CREATE INDEX IF NOT EXISTS suspension_events_by_time ON suspension_events (since);
        """
}

extension NoticeLedger {
    /// Records the beginning of a suspension; a second record of the same key and time
    /// changes nothing. Throws `StateStoreError`.
    public func recordSuspension(_ suspension: Suspension, by admin: String?) throws {
        try database.withLock { database in
            try database.transaction(operation: "record a suspension") {
                let insert = try database.prepare("""
                    INSERT OR IGNORE INTO suspension_events (key, since, reason, rule, suspended_by)
                    VALUES (?, ?, ?, ?, ?)
                    """)
                try insert.bind(suspension.key, at: 1)
                try insert.bind(suspension.since.timeIntervalSince1970, at: 2)
                try insert.bind(suspension.reason, at: 3)
                try insert.bind(suspension.rule, at: 4)
                try insert.bind(admin, at: 5)
                try insert.step(operation: "record a suspension")

                let expire = try database.prepare("DELETE FROM suspension_events WHERE since < ?")
                try expire.bind(suspension.since.timeIntervalSince1970 - SuspensionHistory.retentionSeconds, at: 1)
                try expire.step(operation: "delete old suspension events")

                // Rowids grow with each insert, so this keeps the newest `maximumSuspensionEvents`.
                let trim = try database.prepare("""
                    DELETE FROM suspension_events WHERE id <= (SELECT MAX(id) FROM suspension_events) - ?
                    """)
                try trim.bind(Int64(maximumSuspensionEvents), at: 1)
                try trim.step(operation: "trim suspension events")
            }
        }
    }

    /// Marks the key's suspensions in force as released at `time` by `admin`. Returns how
    /// many were marked: 0 when none was recorded. Throws `StateStoreError`.
    @discardableResult
    public func recordRelease(key: String, at time: Date, by admin: String) throws -> Int {
        try database.withLock { database in
            let update = try database.prepare("""
                UPDATE suspension_events SET released_at = ?, released_by = ?
                WHERE key = ? AND released_at IS NULL
                """)
            try update.bind(time.timeIntervalSince1970, at: 1)
            try update.bind(admin, at: 2)
            try update.bind(key, at: 3)
            try update.step(operation: "record a release")
            return database.changedRowCount
        }
    }

    /// Returns the suspensions that began at or after `start`, oldest first. Throws
    /// `StateStoreError`.
    public func suspensionEvents(since start: Date) throws -> [SuspensionEvent] {
        try database.withLock { database in
            let query = try database.prepare("""
                SELECT key, since, reason, rule, suspended_by, released_at, released_by
                FROM suspension_events WHERE since >= ? ORDER BY since, id
                """)
            try query.bind(start.timeIntervalSince1970, at: 1)
            var events: [SuspensionEvent] = []
            while try query.step(operation: "read suspension events") {
                events.append(SuspensionEvent(
                    key: query.text(at: 0) ?? "", since: Date(timeIntervalSince1970: query.double(at: 1)),
                    reason: query.text(at: 2) ?? "", rule: query.isNull(at: 3) ? nil : query.text(at: 3),
                    suspendedBy: query.isNull(at: 4) ? nil : query.text(at: 4),
                    releasedAt: query.isNull(at: 5) ? nil : Date(timeIntervalSince1970: query.double(at: 5)),
                    releasedBy: query.isNull(at: 6) ? nil : query.text(at: 6)))
            }
            return events
        }
    }
}
