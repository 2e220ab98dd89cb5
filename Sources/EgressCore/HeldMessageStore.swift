// The queue IDs of the messages the daemon put in Postfix's hold queue, by identity key, in
// `held.sqlite` under the state directory, so `egressctl release KEY --deliver` finds a
// sender's held mail after a daemon restart too.
//
// A record states only that the daemon held a message with this queue ID and sender at that
// time. The hold queue itself is Postfix's: an admin may release or delete a message with
// postsuper behind the daemon's back, and Postfix reuses short queue IDs once a message has
// left the queue. So a record is a hint to check against `postqueue -j` (queue name and
// sender) before acting, never proof. Records end when egressctl reports what became of the
// message, and `maximumMessages` bounds the ones no release ever asks about.
//
// A separate file from `limits.sqlite`, so neither store's schema version constrains the
// other. WAL mode and synchronous=FULL as there. It must never crash on a broken database:
// every failure is a `StateStoreError`, and the daemon logs it and keeps the message held.

import Foundation
import Synchronization

public final class HeldMessageStore: Sendable {
    /// File name of the database inside the state directory.
    public static let fileName = "held.sqlite"
    /// Version of the tables below; a database of another version is refused, not migrated.
    static let schemaVersion = "1"
    /// Records kept at most; the oldest go first. A hold queue of this size is far beyond
    /// what an admin sorts through by key.
    public static let maximumMessages = 100_000

    public let path: String
    private let database: Mutex<SQLiteDatabase>
    private let maximumMessages: Int

    /// Opens or creates the database in `directory`. Throws `StateStoreError`.
    public convenience init(directory: String) throws {
        try self.init(directory: directory, maximumMessages: Self.maximumMessages)
    }

    init(directory: String, maximumMessages: Int) throws {
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        self.path = path
        self.maximumMessages = maximumMessages
        let database = try SQLiteDatabase.openStore(path: path, schema: Self.schema, version: Self.schemaVersion,
                                                    busyTimeoutMilliseconds: LimitStore.defaultBusyTimeoutMilliseconds)
        self.database = Mutex(database)
    }

    /// The key rows of a message go with it (ON DELETE CASCADE), which needs foreign_keys
    /// on for each connection.
    private static let schema = """
        PRAGMA foreign_keys=ON;
        CREATE TABLE IF NOT EXISTS held_messages (
            queue_id TEXT PRIMARY KEY, held_at REAL NOT NULL, sender TEXT NOT NULL,
            recipients INTEGER NOT NULL, reason TEXT NOT NULL, identity TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS held_keys (
            key TEXT NOT NULL,
            queue_id TEXT NOT NULL REFERENCES held_messages (queue_id) ON DELETE CASCADE,
            PRIMARY KEY (key, queue_id)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS held_keys_by_queue_id ON held_keys (queue_id);
        """

    /// Records a held message under every key of its identity, replacing an earlier record
    /// of the same queue ID (Postfix reused the ID, so the earlier message has left the queue).
    public func record(_ message: HeldMessage) throws {
        try database.withLock { database in
            try database.transaction(operation: "record a held message") {
                // The cascade removes the key rows of an earlier message with this ID.
                let delete = try database.prepare("DELETE FROM held_messages WHERE queue_id = ?")
                try delete.bind(message.queueID, at: 1)
                try delete.step(operation: "replace a held message")

                let insert = try database.prepare("""
                    INSERT INTO held_messages (queue_id, held_at, sender, recipients, reason, identity)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """)
                try insert.bind(message.queueID, at: 1)
                try insert.bind(message.heldAt.timeIntervalSince1970, at: 2)
                try insert.bind(message.sender, at: 3)
                try insert.bind(Int64(message.recipients), at: 4)
                try insert.bind(message.reason, at: 5)
                try insert.bind(message.identity, at: 6)
                try insert.step(operation: "record a held message")

                let key = try database.prepare("INSERT OR IGNORE INTO held_keys (key, queue_id) VALUES (?, ?)")
                for identityKey in message.keys {
                    try key.bind(identityKey, at: 1)
                    try key.bind(message.queueID, at: 2)
                    try key.step(operation: "record a held message's keys")
                    key.reset()
                }
                try Self.trim(database, keeping: maximumMessages)
            }
        }
    }

    /// Returns the held messages recorded under `key`, oldest first.
    public func messages(forKey key: String) throws -> [HeldMessage] {
        try database.withLock { database in
            let query = try database.prepare("""
                SELECT m.queue_id, m.held_at, m.sender, m.recipients, m.reason, m.identity
                FROM held_keys k JOIN held_messages m ON m.queue_id = k.queue_id
                WHERE k.key = ? ORDER BY m.held_at, m.queue_id
                """)
            try query.bind(key, at: 1)
            var messages: [HeldMessage] = []
            while try query.step(operation: "read held messages") {
                messages.append(HeldMessage(
                    queueID: query.text(at: 0) ?? "", heldAt: Date(timeIntervalSince1970: query.double(at: 1)),
                    sender: query.text(at: 2) ?? "", recipients: Int(query.int64(at: 3)),
                    reason: query.text(at: 4) ?? "", identity: query.text(at: 5) ?? ""))
            }
            return messages
        }
    }

    /// Forgets the given queue IDs; returns how many were recorded.
    @discardableResult
    public func forget(queueIDs: [String]) throws -> Int {
        guard !queueIDs.isEmpty else { return 0 }
        return try database.withLock { database in
            try database.transaction(operation: "forget held messages") {
                let delete = try database.prepare("DELETE FROM held_messages WHERE queue_id = ?")
                var forgotten = 0
                for queueID in queueIDs {
                    try delete.bind(queueID, at: 1)
                    try delete.step(operation: "forget a held message")
                    forgotten += database.changedRowCount
                    delete.reset()
                }
                return forgotten
            }
        }
    }

    /// Number of recorded held messages.
    public func count() throws -> Int {
        try database.withLock { database in
            let query = try database.prepare("SELECT COUNT(*) FROM held_messages")
            _ = try query.step(operation: "count held messages")
            return Int(query.int64(at: 0))
        }
    }

    /// Recorded held messages per key, for the keys of `level` (every level when nil).
    public func countsByKey(level: String?) throws -> [String: Int] {
        try database.withLock { database in
            let query: SQLiteStatement
            if let level {
                // A key of the level is the level alone or starts with "level:". A range
                // keeps the index usable, and LIKE would treat '_' and '%' as wildcards.
                query = try database.prepare("""
                    SELECT key, COUNT(*) FROM held_keys WHERE key = ? OR (key >= ? AND key < ?) GROUP BY key
                    """)
                try query.bind(level, at: 1)
                try query.bind(level + ":", at: 2)
                try query.bind(level + ";", at: 3)
            } else {
                query = try database.prepare("SELECT key, COUNT(*) FROM held_keys GROUP BY key")
            }
            var counts: [String: Int] = [:]
            while try query.step(operation: "count held messages by key") {
                counts[query.text(at: 0) ?? ""] = Int(query.int64(at: 1))
            }
            return counts
        }
    }

    /// Deletes the records older than the last `limit` recorded. Rowids grow with each insert
    /// (the table has no AUTOINCREMENT, so SQLite takes the largest rowid plus one), so the
    /// range leaves at most `limit` records and needs no sort of the table.
    private static func trim(_ database: SQLiteDatabase, keeping limit: Int) throws {
        let delete = try database.prepare("""
            DELETE FROM held_messages WHERE rowid <= (SELECT MAX(rowid) FROM held_messages) - ?
            """)
        try delete.bind(Int64(limit), at: 1)
        try delete.step(operation: "trim held messages")
    }
}
