// Tests for opening a store's SQLite file, shared by the limit store, the held message store
// and the notice ledger: WAL mode, synchronous=FULL, the busy timeout and the stored schema
// version on a new file, and a file of another schema version rejected with its path and the
// advice to move it away. Each store runs on a real file in a temporary directory.

import Foundation
import XCTest
@testable import EgressCore

final class SQLiteStoreOpeningTests: XCTestCase {
    /// Each store by its file name, with a function that opens it in a directory.
    private let stores: [(fileName: String, open: (String) throws -> Void)] = [
        (LimitStore.fileName, { _ = try LimitStore(directory: $0) }),
        (HeldMessageStore.fileName, { _ = try HeldMessageStore(directory: $0) }),
        (NoticeLedger.fileName, { _ = try NoticeLedger(directory: $0) }),
    ]

    func testNewStoreGetsSettingsAndVersion() throws {
        let directory = try LimitTesting.temporaryDirectory(self)
        let database = try SQLiteDatabase.openStore(path: directory + "/test.sqlite",
                                                    schema: "CREATE TABLE IF NOT EXISTS items (name TEXT);",
                                                    version: "7", busyTimeoutMilliseconds: 1234)
        XCTAssertEqual(try database.singleText("PRAGMA journal_mode"), "wal")
        XCTAssertEqual(try database.singleText("PRAGMA synchronous"), "2", "2 is FULL")
        XCTAssertEqual(try database.singleText("PRAGMA busy_timeout"), "1234")
        XCTAssertEqual(try database.singleText("SELECT value FROM meta WHERE name = 'schema'"), "7")
        XCTAssertEqual(try database.singleText("SELECT count(*) FROM items"), "0")
    }

    func testEachStoreRejectsOtherSchemaVersion() throws {
        for store in stores {
            let directory = try LimitTesting.temporaryDirectory(self)
            let path = directory + "/" + store.fileName
            try store.open(directory)
            try SQLiteDatabase(path: path).execute("UPDATE meta SET value = '99' WHERE name = 'schema'", operation: "test")

            XCTAssertThrowsError(try store.open(directory), store.fileName) { error in
                guard let failure = error as? StateStoreError else {
                    return XCTFail("\(store.fileName): unexpected error \(error)")
                }
                XCTAssertEqual(failure.path, path)
                XCTAssertEqual(failure.operation, "open")
                XCTAssertTrue(failure.message.contains("schema version 99"), failure.message)
                XCTAssertTrue(failure.message.hasSuffix("move the file away to start afresh"), failure.message)
            }
        }
    }
}
