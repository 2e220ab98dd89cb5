// The rate limiter's durable state in SQLite: window counters, trip histories, suspensions,
// campaign counts and the clocks of the last checkpoint, in `limits.sqlite` under the state
// directory.
//
// The database runs in WAL mode with synchronous=FULL, so a committed write survives a power
// cut and readers (a future admin CLI) never block the daemon. Counters are written in
// batches by checkpoints; a suspension is written on its own, at once.
//
// It must never crash on a broken or locked database: every failure is a `StateStoreError`
// with SQLite's message, and the caller decides (the daemon answers with its fail action).

import Foundation
import Synchronization

/// One key's counters under one table, as stored.
struct StoredCounters: Sendable, Equatable {
    var table: String
    var key: String
    var latest: Int64
    var counters: [UInt32]
}

/// One key's trip history under one rule, as stored.
struct StoredTrips: Sendable, Equatable {
    var rule: String
    var key: String
    var periodMilliseconds: Int64
    var times: [Int64]
}

/// The data a checkpoint writes in one transaction.
struct CheckpointData: Sendable {
    var counters: [StoredCounters] = []
    var removedCounters: [(table: String, key: String)] = []
    /// Every trip history, replacing the stored set because it is small; nil leaves the
    /// stored set alone (the later batches of one checkpoint).
    var trips: [StoredTrips]?
    /// Suspensions whose own write failed earlier.
    var unsavedSuspensions: [Suspension] = []
    var clock: CheckpointClock
}

/// Everything the store holds, read when the limiter opens.
struct StoredState: Sendable {
    var counters: [StoredCounters] = []
    var trips: [StoredTrips] = []
    var suspensions: [Suspension] = []
    var campaigns: [StoredCampaign] = []
    var subjectCounts: [StoredSubjectCount] = []
    /// Nil for a new database.
    var clock: CheckpointClock?
}

final class LimitStore: Sendable {
    /// File name of the database inside the state directory.
    static let fileName = "limits.sqlite"
    /// Version of the tables below; a database of another version is refused, not migrated.
    static let schemaVersion = "1"

    let path: String
    private let database: Mutex<SQLiteDatabase>

    /// How long a write waits for another connection's lock (an admin tool reading the
    /// file) before it fails with SQLITE_BUSY.
    static let defaultBusyTimeoutMilliseconds = 5000

    /// Opens or creates the database in `directory` and sets up its tables.
    init(directory: String, busyTimeoutMilliseconds: Int = defaultBusyTimeoutMilliseconds) throws {
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        self.path = path
        let database = try SQLiteDatabase.openStore(path: path, schema: Self.schema, version: Self.schemaVersion,
                                                    busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        try Self.addAdminUIDColumn(database)
        self.database = Mutex(database)
    }

    private static let schema = """
        CREATE TABLE IF NOT EXISTS counters (
            tbl TEXT NOT NULL, key TEXT NOT NULL, latest INTEGER NOT NULL, counts BLOB NOT NULL,
            PRIMARY KEY (tbl, key)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS trips (
            rule TEXT NOT NULL, key TEXT NOT NULL, period INTEGER NOT NULL, times BLOB NOT NULL,
            PRIMARY KEY (rule, key)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS suspensions (
            key TEXT PRIMARY KEY, reason TEXT NOT NULL, since REAL NOT NULL, rule TEXT) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS campaigns (
            fingerprint INTEGER PRIMARY KEY, window_start REAL NOT NULL, recipients INTEGER NOT NULL,
            senders BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS subject_counts (
            key INTEGER PRIMARY KEY, window_start REAL NOT NULL, count INTEGER NOT NULL);
        """

    private static func addAdminUIDColumn(_ database: SQLiteDatabase) throws {
        // The admin's uid was added to suspensions later. The column is optional and every
        // query names its columns, so older files gain it here without a new schema version.
        if (try? database.prepare("SELECT admin_uid FROM suspensions LIMIT 0")) == nil {
            try database.execute("ALTER TABLE suspensions ADD COLUMN admin_uid INTEGER", operation: "add the admin_uid column")
        }
    }

    // MARK: Reading

    func load() throws -> StoredState {
        try database.withLock { database in
            var state = StoredState()

            let counters = try database.prepare("SELECT tbl, key, latest, counts FROM counters")
            while try counters.step(operation: "read counters") {
                state.counters.append(StoredCounters(
                    table: counters.text(at: 0) ?? "", key: counters.text(at: 1) ?? "",
                    latest: counters.int64(at: 2), counters: Self.decodeCounters(counters.blob(at: 3))))
            }

            let trips = try database.prepare("SELECT rule, key, period, times FROM trips")
            while try trips.step(operation: "read trips") {
                state.trips.append(StoredTrips(
                    rule: trips.text(at: 0) ?? "", key: trips.text(at: 1) ?? "",
                    periodMilliseconds: trips.int64(at: 2), times: Self.decodeTimes(trips.blob(at: 3))))
            }

            let suspensions = try database.prepare("SELECT key, reason, since, rule, admin_uid FROM suspensions")
            while try suspensions.step(operation: "read suspensions") {
                state.suspensions.append(Suspension(
                    key: suspensions.text(at: 0) ?? "", reason: suspensions.text(at: 1) ?? "",
                    since: Date(timeIntervalSince1970: suspensions.double(at: 2)),
                    rule: suspensions.isNull(at: 3) ? nil : suspensions.text(at: 3),
                    adminUID: suspensions.isNull(at: 4) ? nil : UInt32(exactly: suspensions.int64(at: 4))))
            }

            let campaigns = try database.prepare("SELECT fingerprint, window_start, recipients, senders FROM campaigns")
            while try campaigns.step(operation: "read campaign counts") {
                state.campaigns.append(StoredCampaign(
                    fingerprint: UInt64(bitPattern: campaigns.int64(at: 0)),
                    windowStart: Date(timeIntervalSince1970: campaigns.double(at: 1)),
                    recipients: Int(campaigns.int64(at: 2)),
                    senders: Self.decodeSenders(campaigns.blob(at: 3))))
            }

            let subjects = try database.prepare("SELECT key, window_start, count FROM subject_counts")
            while try subjects.step(operation: "read subject counts") {
                state.subjectCounts.append(StoredSubjectCount(
                    key: UInt64(bitPattern: subjects.int64(at: 0)),
                    windowStart: Date(timeIntervalSince1970: subjects.double(at: 1)),
                    count: Int(subjects.int64(at: 2))))
            }

            state.clock = try Self.readClock(database)
            return state
        }
    }

    private static func readClock(_ database: SQLiteDatabase) throws -> CheckpointClock? {
        let statement = try database.prepare("SELECT name, value FROM meta")
        var values: [String: String] = [:]
        while try statement.step(operation: "read the checkpoint clock") {
            if let name = statement.text(at: 0) {
                values[name] = statement.text(at: 1)
            }
        }
        guard let timeline = values["timeline"].flatMap({ Int64($0) }),
              let wall = values["wall"].flatMap({ Int64($0) }) else {
            return nil
        }
        let bootID = values["boot_id"].flatMap { $0.isEmpty ? nil : $0 }
        return CheckpointClock(timeline: timeline, wall: wall, bootID: bootID,
                               sinceBoot: values["since_boot"].flatMap { Int64($0) })
    }

    // MARK: Writing

    /// Writes a checkpoint in one transaction: all of it or nothing.
    func write(_ data: CheckpointData) throws {
        try database.withLock { database in
            try database.transaction(operation: "write a checkpoint") {
                let upsert = try database.prepare("INSERT OR REPLACE INTO counters (tbl, key, latest, counts) VALUES (?, ?, ?, ?)")
                for record in data.counters {
                    try upsert.bind(record.table, at: 1)
                    try upsert.bind(record.key, at: 2)
                    try upsert.bind(record.latest, at: 3)
                    try upsert.bind(Self.encode(record.counters), at: 4)
                    try upsert.step(operation: "write counters")
                    upsert.reset()
                }

                let delete = try database.prepare("DELETE FROM counters WHERE tbl = ? AND key = ?")
                for record in data.removedCounters {
                    try delete.bind(record.table, at: 1)
                    try delete.bind(record.key, at: 2)
                    try delete.step(operation: "delete counters")
                    delete.reset()
                }

                if let trips = data.trips {
                    try Self.replaceTrips(trips, in: database)
                }
                for suspension in data.unsavedSuspensions {
                    try Self.insert(suspension, into: database)
                }

                let meta = try database.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
                let clock: [(String, String)] = [
                    ("timeline", String(data.clock.timeline)), ("wall", String(data.clock.wall)),
                    ("boot_id", data.clock.bootID ?? ""), ("since_boot", data.clock.sinceBoot.map { String($0) } ?? ""),
                ]
                for (name, value) in clock {
                    try meta.bind(name, at: 1)
                    try meta.bind(value, at: 2)
                    try meta.step(operation: "write the checkpoint clock")
                    meta.reset()
                }
            }
        }
    }

    /// Writes changed campaign counts and deletes the expired ones, in one transaction.
    func write(_ changes: CampaignChanges) throws {
        try database.withLock { database in
            try database.transaction(operation: "write campaign counts") {
                let campaign = try database.prepare(
                    "INSERT OR REPLACE INTO campaigns (fingerprint, window_start, recipients, senders) VALUES (?, ?, ?, ?)")
                for entry in changes.contents {
                    try campaign.bind(Int64(bitPattern: entry.fingerprint), at: 1)
                    try campaign.bind(entry.windowStart.timeIntervalSince1970, at: 2)
                    try campaign.bind(Int64(entry.recipients), at: 3)
                    try campaign.bind(Self.encodeSenders(entry.senders), at: 4)
                    try campaign.step(operation: "write campaign counts")
                    campaign.reset()
                }
                let subject = try database.prepare("INSERT OR REPLACE INTO subject_counts (key, window_start, count) VALUES (?, ?, ?)")
                for entry in changes.subjects {
                    try subject.bind(Int64(bitPattern: entry.key), at: 1)
                    try subject.bind(entry.windowStart.timeIntervalSince1970, at: 2)
                    try subject.bind(Int64(entry.count), at: 3)
                    try subject.step(operation: "write subject counts")
                    subject.reset()
                }
                let expired: [(String, Date)] = [
                    ("DELETE FROM campaigns WHERE window_start < ?", changes.contentsExpireBefore),
                    ("DELETE FROM subject_counts WHERE window_start < ?", changes.subjectsExpireBefore),
                ]
                for (sql, cutoff) in expired {
                    let delete = try database.prepare(sql)
                    try delete.bind(cutoff.timeIntervalSince1970, at: 1)
                    try delete.step(operation: "delete expired campaign counts")
                }
            }
        }
    }

    /// Sender keys are identity keys, which hold no NUL byte; a NUL byte ends each one.
    static func encodeSenders(_ senders: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for sender in senders {
            bytes.append(contentsOf: sender.utf8.filter { $0 != 0 })
            bytes.append(0)
        }
        return bytes
    }

    static func decodeSenders(_ bytes: [UInt8]) -> [String] {
        bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
    }

    private static func replaceTrips(_ trips: [StoredTrips], in database: SQLiteDatabase) throws {
        try database.execute("DELETE FROM trips", operation: "replace trips")
        let insert = try database.prepare("INSERT INTO trips (rule, key, period, times) VALUES (?, ?, ?, ?)")
        for history in trips {
            try insert.bind(history.rule, at: 1)
            try insert.bind(history.key, at: 2)
            try insert.bind(history.periodMilliseconds, at: 3)
            try insert.bind(encode(history.times), at: 4)
            try insert.step(operation: "write trips")
            insert.reset()
        }
    }

    /// Writes one suspension and returns once SQLite has committed it.
    func save(_ suspension: Suspension) throws {
        try database.withLock { database in
            try Self.insert(suspension, into: database)
        }
    }

    /// Deletes a suspension; returns whether there was one.
    @discardableResult
    func deleteSuspension(key: String) throws -> Bool {
        try database.withLock { database in
            let delete = try database.prepare("DELETE FROM suspensions WHERE key = ?")
            try delete.bind(key, at: 1)
            try delete.step(operation: "delete a suspension")
            return database.changedRowCount > 0
        }
    }

    /// Deletes the stored counters and trips of one key, for a released suspension.
    func deleteCounters(key: String) throws {
        try database.withLock { database in
            try database.transaction(operation: "clear a released key") {
                for sql in ["DELETE FROM counters WHERE key = ?", "DELETE FROM trips WHERE key = ?"] {
                    let delete = try database.prepare(sql)
                    try delete.bind(key, at: 1)
                    try delete.step(operation: "clear a released key")
                }
            }
        }
    }

    private static func insert(_ suspension: Suspension, into database: SQLiteDatabase) throws {
        let insert = try database.prepare("INSERT OR REPLACE INTO suspensions (key, reason, since, rule, admin_uid) VALUES (?, ?, ?, ?, ?)")
        try insert.bind(suspension.key, at: 1)
        try insert.bind(suspension.reason, at: 2)
        try insert.bind(suspension.since.timeIntervalSince1970, at: 3)
        try insert.bind(suspension.rule, at: 4)
        if let uid = suspension.adminUID {
            try insert.bind(Int64(uid), at: 5)
        }
        try insert.step(operation: "write a suspension")
    }

    // MARK: Blob encoding (little-endian)

    static func encode(_ values: [UInt32]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for value in values {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    static func encode(_ values: [Int64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 8)
        for value in values {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    static func decodeCounters(_ bytes: [UInt8]) -> [UInt32] {
        guard bytes.count % 4 == 0 else { return [] }
        return stride(from: 0, to: bytes.count, by: 4).map { offset in
            var value: UInt32 = 0
            for index in 0..<4 {
                value |= UInt32(bytes[offset + index]) << (8 * index)
            }
            return value
        }
    }

    static func decodeTimes(_ bytes: [UInt8]) -> [Int64] {
        guard bytes.count % 8 == 0 else { return [] }
        return stride(from: 0, to: bytes.count, by: 8).map { offset in
            var value: UInt64 = 0
            for index in 0..<8 {
                value |= UInt64(bytes[offset + index]) << (8 * index)
            }
            return Int64(bitPattern: value)
        }
    }
}
