// Tests for the notice ledger: one notice per key and kind per period, kept across a
// reopen of the database, and the once-only claim of a summary's day. Also the suspension
// history in the same file: begin and release records, repeated suspensions of one key,
// the age and count bounds, and an older file without the history table.

import Foundation
import XCTest
@testable import EgressCore

final class NoticeLedgerTests: XCTestCase {
    private func makeDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "egress-ledger-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        return directory
    }

    func testOneClaimPerKeyWithinPeriod() throws {
        let ledger = try NoticeLedger(directory: try makeDirectory())
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        XCTAssertTrue(try ledger.claim(kind: "suspension", key: "account:alice", now: start, periodSeconds: 3600))
        XCTAssertFalse(try ledger.claim(kind: "suspension", key: "account:alice", now: start.addingTimeInterval(60), periodSeconds: 3600))
        XCTAssertFalse(try ledger.claim(kind: "suspension", key: "account:alice", now: start.addingTimeInterval(3599), periodSeconds: 3600))
        XCTAssertTrue(try ledger.claim(kind: "suspension", key: "account:alice", now: start.addingTimeInterval(3600), periodSeconds: 3600))
    }

    func testKeysAndKindsAreSeparate() throws {
        let ledger = try NoticeLedger(directory: try makeDirectory())
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        XCTAssertTrue(try ledger.claim(kind: "suspension", key: "account:alice", now: now, periodSeconds: 3600))
        XCTAssertTrue(try ledger.claim(kind: "suspension", key: "account:bob", now: now, periodSeconds: 3600))
        XCTAssertTrue(try ledger.claim(kind: "limit-trip", key: "account:alice", now: now, periodSeconds: 3600))
        XCTAssertEqual(try ledger.count(), 3)
    }

    func testClaimSurvivesReopen() throws {
        let directory = try makeDirectory()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        do {
            let ledger = try NoticeLedger(directory: directory)
            XCTAssertTrue(try ledger.claim(kind: "suspension", key: "local-unverified", now: now, periodSeconds: 3600))
        }
        let reopened = try NoticeLedger(directory: directory)
        XCTAssertFalse(try reopened.claim(kind: "suspension", key: "local-unverified", now: now.addingTimeInterval(120), periodSeconds: 3600))
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/" + NoticeLedger.fileName))
    }

    func testClaimWithoutPeriodHoldsForGood() throws {
        let ledger = try NoticeLedger(directory: try makeDirectory())
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        XCTAssertTrue(try ledger.claim(kind: "daily-summary", key: "2027-01-15", now: now, periodSeconds: nil))
        XCTAssertFalse(try ledger.claim(kind: "daily-summary", key: "2027-01-15", now: now.addingTimeInterval(3600), periodSeconds: nil))
        XCTAssertTrue(try ledger.claim(kind: "daily-summary", key: "2027-01-16", now: now.addingTimeInterval(86_400), periodSeconds: nil))
    }

    func testOldRecordsOfKindAreTrimmed() throws {
        let ledger = try NoticeLedger(directory: try makeDirectory())
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        XCTAssertTrue(try ledger.claim(kind: "suspension", key: "account:old", now: start, periodSeconds: 60))
        XCTAssertTrue(try ledger.claim(kind: "daily-summary", key: "2027-01-15", now: start, periodSeconds: nil))
        let later = start.addingTimeInterval(3 * 86_400)
        XCTAssertTrue(try ledger.claim(kind: "suspension", key: "account:new", now: later, periodSeconds: 60))
        // account:old went; the summary record of another kind stays until a summary claim.
        XCTAssertEqual(try ledger.count(), 2)
    }

    // MARK: Suspension history

    func testHistoryKeepsReleasedAndRepeatedSuspensions() throws {
        let directory = try makeDirectory()
        let ledger = try NoticeLedger(directory: directory)
        let start = Date(timeIntervalSince1970: 1_800_000_000)

        // Suspended and released within the day; then suspended three times over.
        try ledger.recordSuspension(Suspension(key: "account:alice", reason: "limit accounts: hard", since: start, rule: "accounts"),
                                    by: nil)
        XCTAssertEqual(try ledger.recordRelease(key: "account:alice", at: start.addingTimeInterval(600), by: "uid 0 (root)"), 1)
        for round in 0..<3 {
            let since = start.addingTimeInterval(Double(1000 + round * 100))
            try ledger.recordSuspension(Suspension(key: "account:bob", reason: "r\(round)", since: since, rule: "accounts"), by: nil)
            if round < 2 {
                try ledger.recordRelease(key: "account:bob", at: since.addingTimeInterval(50), by: "uid 1000 (carol)")
            }
        }
        try ledger.recordSuspension(Suspension(key: "ip:192.0.2.7", reason: "by hand", since: start.addingTimeInterval(2000)),
                                    by: "uid 0 (root)")

        // The history survives a reopen of the file.
        let events = try NoticeLedger(directory: directory).suspensionEvents(since: start)
        XCTAssertEqual(events.map(\.key), ["account:alice", "account:bob", "account:bob", "account:bob", "ip:192.0.2.7"])
        XCTAssertEqual(events[0].releasedAt, start.addingTimeInterval(600))
        XCTAssertEqual(events[0].releasedBy, "uid 0 (root)")
        XCTAssertEqual(events[0].rule, "accounts")
        XCTAssertEqual(events.filter { $0.key == "account:bob" }.map(\.isInForce), [false, false, true])
        XCTAssertEqual(events.filter { $0.key == "account:bob" }.map(\.reason), ["r0", "r1", "r2"])
        XCTAssertNil(events[4].rule)
        XCTAssertEqual(events[4].suspendedBy, "uid 0 (root)")
        XCTAssertTrue(events[4].isInForce)

        // A later start leaves out what began before it.
        XCTAssertEqual(try ledger.suspensionEvents(since: start.addingTimeInterval(1)).first?.key, "account:bob")
    }

    func testHistoryRecordsOneSuspensionOnce() throws {
        let ledger = try NoticeLedger(directory: try makeDirectory())
        let suspension = Suspension(key: "account:alice", reason: "r", since: Date(timeIntervalSince1970: 1_800_000_000))
        try ledger.recordSuspension(suspension, by: nil)
        try ledger.recordSuspension(suspension, by: nil)
        XCTAssertEqual(try ledger.suspensionEvents(since: .distantPast).count, 1)
        XCTAssertEqual(try ledger.recordRelease(key: "account:nobody", at: Date(), by: "uid 0"), 0)
    }

    func testHistoryDropsEventsPastRetention() throws {
        let ledger = try NoticeLedger(directory: try makeDirectory())
        let old = Date(timeIntervalSince1970: 1_800_000_000)
        try ledger.recordSuspension(Suspension(key: "account:old", reason: "r", since: old), by: nil)
        let later = old.addingTimeInterval(SuspensionHistory.retentionSeconds + 1)
        try ledger.recordSuspension(Suspension(key: "account:new", reason: "r", since: later), by: nil)
        XCTAssertEqual(try ledger.suspensionEvents(since: .distantPast).map(\.key), ["account:new"])
    }

    func testHistoryKeepsAtMostMaximumEvents() throws {
        let ledger = try NoticeLedger(directory: try makeDirectory(), maximumSuspensionEvents: 20)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let total = 25
        for index in 0..<total {
            try ledger.recordSuspension(Suspension(key: "ip:192.0.2.\(index % 250)", reason: "r",
                                                   since: start.addingTimeInterval(Double(index))), by: nil)
        }
        let events = try ledger.suspensionEvents(since: .distantPast)
        XCTAssertEqual(events.count, 20)
        XCTAssertEqual(events.first?.since, start.addingTimeInterval(5))
    }

    func testOlderLedgerFileGainsTheHistoryTable() throws {
        let directory = try makeDirectory()
        let path = directory + "/" + NoticeLedger.fileName
        // A file as the first release wrote it, without the history table.
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [path, """
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE notices (kind TEXT NOT NULL, key TEXT NOT NULL, sent_at REAL NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
            INSERT INTO meta VALUES ('schema', '1');
            INSERT INTO notices VALUES ('suspension', 'account:alice', 1800000000);
            """]
        try sqlite.run()
        sqlite.waitUntilExit()
        XCTAssertEqual(sqlite.terminationStatus, 0)

        let ledger = try NoticeLedger(directory: directory)
        XCTAssertEqual(try ledger.count(), 1)
        try ledger.recordSuspension(Suspension(key: "account:alice", reason: "r", since: Date(timeIntervalSince1970: 1_800_000_100)),
                                    by: nil)
        XCTAssertEqual(try ledger.suspensionEvents(since: .distantPast).count, 1)
    }
}
