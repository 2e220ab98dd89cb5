// The record of notices sent, in `notices.sqlite` under the state directory, so the rule
// "at most one notice per key and kind within the period" still applies after a restart, and
// a daily summary goes out once per day even when the daemon restarts after sending it. The
// same file contains the history of suspensions for the summary (SuspensionHistory.swift).
//
// A claim is written before the notice is sent: a crash between the two loses that notice
// rather than sending it twice. A failed send is not retried within the period (the caller
// logs it). WAL mode and synchronous=FULL as the other stores. It must never crash on a
// broken database: every failure is a `StateStoreError`, and the caller then sends the
// notice anyway, because a duplicate is better than silence.

import Foundation
import Synchronization

public final class NoticeLedger: Sendable {
    /// File name of the database inside the state directory.
    public static let fileName = "notices.sqlite"
    /// Version of the table below; a database of another version is refused, not migrated.
    static let schemaVersion = "1"
    /// Seconds a record is kept at least beyond its period, so a once-per-day claim is still
    /// there on the same day.
    static let minimumRetentionSeconds = 2 * 86_400.0

    public let path: String
    let database: Mutex<SQLiteDatabase>

    /// Suspension events kept at most (`SuspensionHistory.maximumEvents`; tests use less).
    let maximumSuspensionEvents: Int

    /// Opens or creates the database in `directory`. Throws `StateStoreError`.
    public convenience init(directory: String) throws {
        try self.init(directory: directory, maximumSuspensionEvents: SuspensionHistory.maximumEvents)
    }

    init(directory: String, maximumSuspensionEvents: Int) throws {
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        self.path = path
        self.maximumSuspensionEvents = maximumSuspensionEvents
        let database = try SQLiteDatabase.openStore(path: path, schema: Self.schema, version: Self.schemaVersion,
                                                    busyTimeoutMilliseconds: LimitStore.defaultBusyTimeoutMilliseconds)
        self.database = Mutex(database)
    }

    private static let schema = """
        CREATE TABLE IF NOT EXISTS notices (
            kind TEXT NOT NULL, key TEXT NOT NULL, sent_at REAL NOT NULL,
            PRIMARY KEY (kind, key)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS notices_by_time ON notices (sent_at);
        \(SuspensionHistory.createTables)
        """

    /// Records a notice of `kind` for `key` at `now` and returns true. When one was recorded
    /// less than `periodSeconds` ago, it changes nothing and returns false. A nil period
    /// allows one notice for good (a summary's day).
    public func claim(kind: String, key: String, now: Date, periodSeconds: Int?) throws -> Bool {
        try database.withLock { database in
            try database.transaction(operation: "claim a notice") {
                let select = try database.prepare("SELECT sent_at FROM notices WHERE kind = ? AND key = ?")
                try select.bind(kind, at: 1)
                try select.bind(key, at: 2)
                if try select.step(operation: "read a notice") {
                    let sentAt = select.double(at: 0)
                    guard let periodSeconds else { return false }
                    if now.timeIntervalSince1970 - sentAt < Double(periodSeconds) {
                        return false
                    }
                }

                let upsert = try database.prepare("INSERT OR REPLACE INTO notices (kind, key, sent_at) VALUES (?, ?, ?)")
                try upsert.bind(kind, at: 1)
                try upsert.bind(key, at: 2)
                try upsert.bind(now.timeIntervalSince1970, at: 3)
                try upsert.step(operation: "record a notice")

                // Records of this kind past their period are useless; they go here, so the
                // file stays small. Each kind has one period, so other kinds are left alone.
                let retention = max(Double(periodSeconds ?? 0), Self.minimumRetentionSeconds)
                let trim = try database.prepare("DELETE FROM notices WHERE kind = ? AND sent_at < ?")
                try trim.bind(kind, at: 1)
                try trim.bind(now.timeIntervalSince1970 - retention, at: 2)
                try trim.step(operation: "trim old notices")
                return true
            }
        }
    }

    /// Number of recorded notices.
    public func count() throws -> Int {
        try database.withLock { database in
            let query = try database.prepare("SELECT COUNT(*) FROM notices")
            _ = try query.step(operation: "count notices")
            return Int(query.int64(at: 0))
        }
    }
}
