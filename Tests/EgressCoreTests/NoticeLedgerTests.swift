// Tests for the notice ledger: one notice per key and kind per period, kept across a
// reopen of the database, and the once-only claim of a summary's day.

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
}
