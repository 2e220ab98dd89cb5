// A thin typed layer over the SQLite C API for the state store: one connection, prepared
// statements, typed bindings and columns, and `StateStoreError` carrying SQLite's own message.
//
// Not thread-safe: a `SQLiteDatabase` and its statements belong to one owner at a time (the
// store keeps them behind a mutex). It must never let a raw pointer escape: the connection and
// statement handles stay private, and text and blobs are copied by SQLite (SQLITE_TRANSIENT)
// before the Swift buffer they came from goes away.

import CSQLite

/// A state store operation that failed, with SQLite's result code and message.
public struct StateStoreError: Error, CustomStringConvertible, Equatable {
    /// The database file.
    public var path: String
    /// The operation that failed, such as "open", "prepare" or "write a checkpoint".
    public var operation: String
    /// SQLite's extended result code; 0 when the failure did not come from SQLite.
    public var code: Int32
    public var message: String

    public init(path: String, operation: String, code: Int32, message: String) {
        self.path = path
        self.operation = operation
        self.code = code
        self.message = message
    }

    /// "PATH: OPERATION failed: MESSAGE (SQLite code N)".
    public var description: String {
        var text = "\(path): \(operation) failed: \(message)"
        if code != 0 {
            text += " (SQLite code \(code))"
        }
        return text
    }
}

/// SQLite's marker that makes it copy bound text and blobs at once.
private let transientDestructor = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One open SQLite connection.
final class SQLiteDatabase {
    let path: String
    private var handle: OpaquePointer?

    /// Opens (creating if needed) the database file at `path`.
    init(path: String) throws {
        self.path = path
        var connection: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &connection, flags, nil)
        guard status == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(connection)
            throw StateStoreError(path: path, operation: "open", code: status, message: message)
        }
        handle = connection
        sqlite3_extended_result_codes(connection, 1)
    }

    /// Opens (creating if needed) a store's database file at `path` and sets it up: WAL mode,
    /// synchronous=FULL, the busy timeout, a `meta` table with the schema version, and the
    /// store's own `schema` (CREATE ... IF NOT EXISTS statements and any pragmas it needs),
    /// run on every open. Throws `StateStoreError`, also for a file whose schema version is
    /// not `version`, because the stores do not migrate between versions.
    static func openStore(path: String, schema: String, version: String, busyTimeoutMilliseconds: Int) throws -> SQLiteDatabase {
        let database = try SQLiteDatabase(path: path)

        // journal_mode returns the mode in force afterwards: the old one when SQLite could
        // not switch.
        let mode = try database.singleText("PRAGMA journal_mode=WAL")
        guard mode?.lowercased() == "wal" else {
            throw StateStoreError(path: path, operation: "switch to WAL mode", code: 0,
                                  message: "SQLite kept journal mode '\(mode ?? "unknown")'")
        }

        try database.execute("""
            PRAGMA synchronous=FULL;
            PRAGMA busy_timeout=\(busyTimeoutMilliseconds);
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
            \(schema)
            INSERT OR IGNORE INTO meta (name, value) VALUES ('schema', '\(version)');
            """, operation: "create the tables")

        let storedVersion = try database.singleText("SELECT value FROM meta WHERE name = 'schema'")
        guard storedVersion == version else {
            throw StateStoreError(path: path, operation: "open", code: 0,
                                  message: "the database has schema version \(storedVersion ?? "none"), this program needs \(version); move the file away to start afresh")
        }
        return database
    }

    deinit {
        // close_v2 defers the close until the last statement is finalized, so the order in
        // which Swift releases statements and the connection does not matter.
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements without results (schema, pragmas that return nothing).
    func execute(_ sql: String, operation: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        guard status == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? currentMessage
            sqlite3_free(errorMessage)
            throw StateStoreError(path: path, operation: operation, code: status, message: message)
        }
    }

    func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard status == SQLITE_OK, let statement else {
            throw StateStoreError(path: path, operation: "prepare '\(sql)'", code: status, message: currentMessage)
        }
        return SQLiteStatement(statement, database: self)
    }

    /// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back when it throws.
    func transaction<Result>(operation: String, _ body: () throws -> Result) throws -> Result {
        try execute("BEGIN IMMEDIATE", operation: operation)
        do {
            let result = try body()
            try execute("COMMIT", operation: operation)
            return result
        } catch {
            try? execute("ROLLBACK", operation: operation)
            throw error
        }
    }

    /// The text of the first row's first column, for pragmas such as `journal_mode`.
    func singleText(_ sql: String) throws -> String? {
        let statement = try prepare(sql)
        guard try statement.step(operation: sql) else { return nil }
        return statement.text(at: 0)
    }

    /// Rows changed by the latest INSERT, UPDATE or DELETE.
    var changedRowCount: Int {
        Int(sqlite3_changes(handle))
    }

    fileprivate var currentMessage: String {
        String(cString: sqlite3_errmsg(handle))
    }

    fileprivate func failure(_ operation: String, _ status: Int32) -> StateStoreError {
        StateStoreError(path: path, operation: operation, code: status, message: currentMessage)
    }
}

/// A prepared statement, reusable after `reset()`. Parameter and column indexes are 1-based
/// for bindings (as in SQLite) and 0-based for columns (as in SQLite).
final class SQLiteStatement {
    private let handle: OpaquePointer
    // The statement keeps its connection alive.
    private let database: SQLiteDatabase

    fileprivate init(_ handle: OpaquePointer, database: SQLiteDatabase) {
        self.handle = handle
        self.database = database
    }

    deinit {
        sqlite3_finalize(handle)
    }

    func bind(_ value: Int64, at index: Int32) throws {
        try check(sqlite3_bind_int64(handle, index, value), "bind parameter \(index)")
    }

    func bind(_ value: Double, at index: Int32) throws {
        try check(sqlite3_bind_double(handle, index, value), "bind parameter \(index)")
    }

    func bind(_ value: String?, at index: Int32) throws {
        guard let value else {
            try check(sqlite3_bind_null(handle, index), "bind parameter \(index)")
            return
        }
        try check(sqlite3_bind_text(handle, index, value, -1, transientDestructor), "bind parameter \(index)")
    }

    func bind(_ bytes: [UInt8], at index: Int32) throws {
        let status = bytes.withUnsafeBytes { buffer in
            // A zero-length blob still needs a non-null pointer, or SQLite stores NULL.
            sqlite3_bind_blob(handle, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count), transientDestructor)
        }
        try check(status, "bind parameter \(index)")
    }

    /// Executes one step; returns true when a row is ready, false when done.
    @discardableResult
    func step(operation: String) throws -> Bool {
        let status = sqlite3_step(handle)
        switch status {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            return false
        default:
            throw database.failure(operation, status)
        }
    }

    /// Makes the statement ready to run again and clears its bindings.
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func int64(at column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    func double(at column: Int32) -> Double {
        sqlite3_column_double(handle, column)
    }

    func isNull(at column: Int32) -> Bool {
        sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    func text(at column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    func blob(at column: Int32) -> [UInt8] {
        // SQLite documents this order: take the pointer first, then the byte count.
        guard let pointer = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private func check(_ status: Int32, _ operation: String) throws {
        guard status == SQLITE_OK else {
            throw database.failure(operation, status)
        }
    }
}
