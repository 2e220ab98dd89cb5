// The store of held messages in a real SQLite file: records by key, a reused queue ID
// replacing the old record, forgetting, surviving a reopen, the bound on records, and counts
// by key and level.

import Foundation
import XCTest
@testable import EgressCore

final class HeldMessageStoreTests: XCTestCase {
    private func message(_ queueID: String, at seconds: Double = 0, sender: String = "alice@shop.example",
                         identity: String = "account:alice<sender:alice@shop.example<server") -> HeldMessage {
        HeldMessage(queueID: queueID, heldAt: Date(timeIntervalSince1970: 1_700_000_000 + seconds), sender: sender,
                    recipients: 2, reason: "account:alice suspended: ticket", identity: identity)
    }

    func testMessagesAreFoundUnderEachKey() throws {
        let store = try HeldMessageStore(directory: LimitTesting.temporaryDirectory(self))
        try store.record(message("B2", at: 2))
        try store.record(message("A1", at: 1))
        try store.record(message("C3", at: 3, sender: "bob@shop.example", identity: "account:bob<server"))

        XCTAssertEqual(try store.messages(forKey: "account:alice").map(\.queueID), ["A1", "B2"], "oldest first")
        XCTAssertEqual(try store.messages(forKey: "server").map(\.queueID), ["A1", "B2", "C3"])
        XCTAssertEqual(try store.messages(forKey: "account:bob"), [message("C3", at: 3, sender: "bob@shop.example", identity: "account:bob<server")])
        XCTAssertEqual(try store.messages(forKey: "account:carol"), [])
        XCTAssertEqual(try store.count(), 3)
    }

    func testReusedQueueIDReplacesTheRecord() throws {
        let store = try HeldMessageStore(directory: LimitTesting.temporaryDirectory(self))
        try store.record(message("A1"))
        try store.record(message("A1", at: 60, sender: "bob@shop.example", identity: "account:bob<server"))
        XCTAssertEqual(try store.messages(forKey: "account:alice"), [])
        XCTAssertEqual(try store.messages(forKey: "account:bob").map(\.sender), ["bob@shop.example"])
        XCTAssertEqual(try store.count(), 1)
    }

    func testForgottenMessagesLeaveEveryKey() throws {
        let store = try HeldMessageStore(directory: LimitTesting.temporaryDirectory(self))
        try store.record(message("A1"))
        try store.record(message("B2", at: 1))
        XCTAssertEqual(try store.forget(queueIDs: ["A1", "Z9"]), 1)
        XCTAssertEqual(try store.messages(forKey: "server").map(\.queueID), ["B2"])
        XCTAssertEqual(try store.countsByKey(level: nil), ["account:alice": 1, "sender:alice@shop.example": 1, "server": 1])
    }

    func testRecordsSurviveAReopen() throws {
        let directory = try LimitTesting.temporaryDirectory(self)
        try HeldMessageStore(directory: directory).record(message("A1"))
        let reopened = try HeldMessageStore(directory: directory)
        XCTAssertEqual(try reopened.messages(forKey: "account:alice"), [message("A1")])
        XCTAssertEqual(reopened.path, directory + "/held.sqlite")
    }

    func testOldestRecordsGoBeyondTheBound() throws {
        let store = try HeldMessageStore(directory: LimitTesting.temporaryDirectory(self), maximumMessages: 3)
        for number in 1...5 {
            try store.record(message("Q\(number)", at: Double(number)))
        }
        XCTAssertEqual(try store.messages(forKey: "server").map(\.queueID), ["Q3", "Q4", "Q5"])
    }

    func testCountsByLevelMatchOnlyThatLevel() throws {
        let store = try HeldMessageStore(directory: LimitTesting.temporaryDirectory(self))
        try store.record(message("A1", identity: "sender:a@x.example<server"))
        try store.record(message("B2", identity: "sender:b@x.example<server"))
        try store.record(message("C3", identity: "sender:b@x.example<server"))
        XCTAssertEqual(try store.countsByKey(level: "sender"), ["sender:a@x.example": 1, "sender:b@x.example": 2])
        XCTAssertEqual(try store.countsByKey(level: "server"), ["server": 3])
        XCTAssertEqual(try store.countsByKey(level: "account"), [:])
    }

    func testUnwritableDirectoryIsAStoreError() {
        XCTAssertThrowsError(try HeldMessageStore(directory: "/nonexistent/egress-held")) { error in
            XCTAssertTrue(error is StateStoreError, "\(error)")
            XCTAssertTrue("\(error)".contains("/nonexistent/egress-held/held.sqlite"), "\(error)")
        }
    }
}
