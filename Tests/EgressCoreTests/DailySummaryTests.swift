// Tests for the daily summary: aligned tables with headers, the server key left out, trips
// by rule, every suspension that began in the period with its state, the subject's plural,
// and the JSON form that egressctl summary --json prints.

import Foundation
import XCTest
@testable import EgressCore

final class DailySummaryTests: XCTestCase {
    private static let now = Date(timeIntervalSince1970: 1_800_000_000)

    private func makeSummary(suspensions: [SuspensionEvent]? = nil, controlSocket: String? = nil) -> DailySummary {
        var alice = SenderTotals(key: "account:alice")
        alice.messages = 412
        alice.recipients = 530
        alice.held = 3
        var bob = SenderTotals(key: "ip:192.0.2.7")
        bob.messages = 7
        bob.recipients = 9
        bob.refused = 2
        var server = SenderTotals(key: "server")
        server.messages = 419
        let now = Self.now
        let events = suspensions ?? [
            SuspensionEvent(key: "account:bob", since: now.addingTimeInterval(-3000), reason: "limit accounts: hard",
                            rule: "accounts", releasedAt: now.addingTimeInterval(-2000), releasedBy: "uid 0 (root)"),
            SuspensionEvent(key: "account:alice", since: now.addingTimeInterval(-7200), reason: "limit accounts: 3 trips",
                            rule: "accounts"),
            SuspensionEvent(key: "ip:192.0.2.7", since: now.addingTimeInterval(-100), reason: "spam run",
                            rule: nil, suspendedBy: "uid 1000 (carol)"),
        ]
        return DailySummary(
            hostname: "web1.example.org", from: now.addingTimeInterval(-86_400), to: now, countsSince: nil,
            senders: [bob, server, alice],
            trips: ["accounts": ["account:alice": 3, "account:bob": 1], "ips": ["ip:192.0.2.7": 2]],
            suspensions: events, suspendedNow: 4, heldMessages: 12,
            heldByKey: ["account:alice": 12, "server": 12], controlSocket: controlSocket)
    }

    func testSendersTableIsAlignedWithHeader() {
        let body = makeSummary().body
        let expected = """
            Top senders (each message counted once, under its most specific verified key):
              MESSAGES  RECIPIENTS  HELD  REFUSED  KEY
                   412         530     3        0  account:alice
                     7           9     0        2  ip:192.0.2.7

            """
        XCTAssertTrue(body.contains(expected), body)
        XCTAssertFalse(body.contains("server"), "the server key is listed:\n\(body)")
    }

    func testTripsAreGroupedByRule() {
        let body = makeSummary().body
        let expected = """
            Limit trips: 6
              TRIPS  RULE      KEY
                  3  accounts  account:alice
                  1  accounts  account:bob
                  2  ips       ip:192.0.2.7

            """
        XCTAssertTrue(body.contains(expected), body)
    }

    func testSuspensionsOfPeriodShowState() {
        let summary = makeSummary()
        XCTAssertEqual(summary.suspensions.map(\.key), ["account:alice", "account:bob", "ip:192.0.2.7"], "not oldest first")
        let body = summary.body
        let expected = [
            "Suspensions that began in the period: 3 (keys suspended now: 4)",
            "  2027-01-15T07:10:00Z  account:bob\n      by rule accounts: limit accounts: hard\n      released 2027-01-15T07:26:40Z by uid 0 (root)",
            "  2027-01-15T06:00:00Z  account:alice\n      by rule accounts: limit accounts: 3 trips\n      still in force",
            "  2027-01-15T07:58:20Z  ip:192.0.2.7\n      by admin uid 1000 (carol): spam run\n      still in force",
        ]
        for text in expected {
            XCTAssertTrue(body.contains(text), "the body lacks '\(text)':\n\(body)")
        }
    }

    func testSubjectUsesSingularForOne() {
        let now = Self.now
        let one = makeSummary(suspensions: [SuspensionEvent(key: "account:a", since: now, reason: "r", rule: "x")])
        XCTAssertEqual(one.subject, "egress-milter on web1.example.org: daily summary, 1 new suspension, 12 held")
        XCTAssertTrue(makeSummary().subject.contains(", 3 new suspensions, "))
        XCTAssertTrue(makeSummary(suspensions: []).subject.contains(", 0 new suspensions, "))
    }

    func testHeldTableAndSocketOption() {
        let body = makeSummary(controlSocket: "/srv/egress/c.sock").body
        XCTAssertTrue(body.contains("Held messages recorded now: 12\n  HELD  KEY\n    12  account:alice\n"), body)
        XCTAssertTrue(body.contains("egressctl top --socket /srv/egress/c.sock and egressctl show KEY --socket /srv/egress/c.sock"), body)
        XCTAssertTrue(makeSummary().body.contains("egressctl top and egressctl show KEY give"))
    }

    func testListsAreCut() {
        var senders: [SenderTotals] = []
        for index in 0..<30 {
            var totals = SenderTotals(key: "account:user\(index)")
            totals.messages = index + 1
            senders.append(totals)
        }
        let summary = DailySummary(
            hostname: "h", from: Self.now.addingTimeInterval(-86_400), to: Self.now, countsSince: nil, senders: senders,
            trips: ["accounts": Dictionary(uniqueKeysWithValues: (0..<15).map { ("account:user\($0)", 1) })],
            suspensions: [], suspendedNow: 0, heldMessages: 0, heldByKey: [:])
        XCTAssertEqual(summary.topSenders.count, DailySummary.rowsPerList)
        XCTAssertEqual(summary.topSenders.first?.key, "account:user29")
        XCTAssertEqual(summary.tripsByRule.first?.keys.count, DailySummary.rowsPerList)
        XCTAssertEqual(summary.tripsByRule.first?.keyCount, 15)
        XCTAssertTrue(summary.body.contains("(5 more keys)"), summary.body)
    }

    func testJSONIsStructured() throws {
        let summary = makeSummary()
        let report = SummaryReport(text: nil, subject: summary.subject, sent: false, recipients: [], error: nil, summary: summary)
        let data = try ControlProtocol.makeEncoder().encode(report)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertNil(object["text"])
        let fields = try XCTUnwrap(object["summary"] as? [String: Any], "\(object)")
        let senders = try XCTUnwrap((fields["top_senders"] ?? fields["topSenders"]) as? [[String: Any]], "\(fields.keys)")
        XCTAssertEqual(senders.first?["key"] as? String, "account:alice")
        XCTAssertEqual(senders.first?["messages"] as? Int, 412)
        let suspensions = try XCTUnwrap(fields["suspensions"] as? [[String: Any]])
        XCTAssertEqual(suspensions.count, 3)
        XCTAssertNotNil(suspensions[1]["released_at"] ?? suspensions[1]["releasedAt"], "\(suspensions[1])")

        // It reads back into the same value.
        let decoded = try ControlProtocol.makeDecoder().decode(SummaryReport.self, from: data)
        XCTAssertEqual(decoded.summary, summary)
    }
}
