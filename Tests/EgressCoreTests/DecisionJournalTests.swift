// The journal of recent decisions: the newest few per key, counts per action, and the bound
// on keys that drops the ones idle longest.

import Foundation
import XCTest
@testable import EgressCore

final class DecisionJournalTests: XCTestCase {
    private func record(_ number: Int, action: Action = .accept, score: Double = 0) -> DecisionRecord {
        DecisionRecord(time: Date(timeIntervalSince1970: Double(1_700_000_000 + number)), queueID: "Q\(number)",
                       action: action.rawValue, reason: "default", path: "smtp", sender: "a@b.example",
                       recipients: 1, score: score, identity: "sender:a@b.example<server")
    }

    func testKeyKeepsNewestDecisionsFirst() {
        let journal = DecisionJournal(decisionsPerKey: 3, maximumKeys: 10)
        for number in 1...5 {
            journal.record(record(number), action: .accept, keys: ["sender:a@b.example", "server"])
        }
        XCTAssertEqual(journal.recentDecisions(for: "sender:a@b.example").map(\.queueID), ["Q5", "Q4", "Q3"])
        XCTAssertEqual(journal.recentDecisions(for: "server").map(\.queueID), ["Q5", "Q4", "Q3"])
        XCTAssertEqual(journal.recentDecisions(for: "sender:other@b.example"), [])
    }

    func testFewerDecisionsThanTheRingHolds() {
        let journal = DecisionJournal(decisionsPerKey: 3, maximumKeys: 10)
        journal.record(record(1), action: .accept, keys: ["server"])
        journal.record(record(2), action: .accept, keys: ["server"])
        XCTAssertEqual(journal.recentDecisions(for: "server").map(\.queueID), ["Q2", "Q1"])
    }

    func testActionsAreCounted() {
        let journal = DecisionJournal()
        journal.record(record(1), action: .accept, keys: ["server"])
        journal.record(record(2, action: .hold), action: .hold, keys: ["server"])
        journal.record(record(3, action: .hold), action: .hold, keys: ["server"])
        journal.recordFailure()
        let counts = journal.actionCounts
        XCTAssertEqual(counts.accept, 1)
        XCTAssertEqual(counts.hold, 2)
        XCTAssertEqual(counts.failed, 1)
        XCTAssertEqual(counts.total, 4)
    }

    func testIdleKeysAreDroppedAtTheBound() {
        let journal = DecisionJournal(decisionsPerKey: 2, maximumKeys: 10)
        for number in 0..<10 {
            journal.record(record(number), action: .accept, keys: ["sender:\(number)@b.example"])
        }
        // Key 0 is used again, so it is the newest; the eleventh key pushes the journal over.
        journal.record(record(10), action: .accept, keys: ["sender:0@b.example"])
        journal.record(record(11), action: .accept, keys: ["sender:11@b.example"])

        let kept = Set(journal.keys)
        XCTAssertLessThanOrEqual(kept.count, 10)
        XCTAssertTrue(kept.contains("sender:0@b.example"))
        XCTAssertTrue(kept.contains("sender:11@b.example"))
        XCTAssertFalse(kept.contains("sender:1@b.example"), "the key idle longest goes first")
    }

    func testHighestScorePerKey() {
        let journal = DecisionJournal()
        journal.record(record(1, score: 2.5), action: .accept, keys: ["account:alice"])
        journal.record(record(2, score: 7.0), action: .accept, keys: ["account:alice"])
        journal.record(record(3, score: 1.0), action: .accept, keys: ["account:bob"])
        XCTAssertEqual(journal.highestScores(for: ["account:alice", "account:bob", "account:carol"]),
                       ["account:alice": 7.0, "account:bob": 1.0])
    }
}
