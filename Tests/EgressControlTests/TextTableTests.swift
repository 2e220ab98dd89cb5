// Column output: aligned columns, right-aligned counts, no trailing blanks, and the short
// forms of windows, times and durations.
import EgressCore
import Foundation
import XCTest

@testable import egressctl

final class TextTableTests: XCTestCase {
    func testColumnsLineUp() {
        var table = TextTable(header: ["KEY", "HELD", "NOTE"], rightAligned: [1], indent: "  ")
        table.append(["account:alice", "12", "suspended"])
        table.append(["login:crm", "3", ""])
        XCTAssertEqual(table.render(), """
              KEY            HELD  NOTE
              account:alice    12  suspended
              login:crm         3

            """)
    }

    func testEmptyTableRendersNothing() {
        XCTAssertEqual(TextTable(header: ["A"]).render(), "")
    }

    func testWindowText() {
        XCTAssertEqual(WindowUsage(unit: "messages", window: "30/1m", seconds: 60, limit: 30, hard: false, count: 29).countText, "29/30 per 1m")
        XCTAssertEqual(WindowUsage(unit: "messages", window: "1000/1d hard", seconds: 86400, limit: 1000, hard: true, count: 7).countText,
                       "7/1000 per 1d hard")
    }

    func testDurations() {
        let cases: [(Int, String)] = [(0, "0s"), (59, "59s"), (61, "1m 1s"), (3725, "1h 2m"), (90_061, "1d 1h")]
        for (seconds, expected) in cases {
            XCTAssertEqual(formatDuration(seconds: seconds), expected)
        }
        XCTAssertEqual(formatTime(Date(timeIntervalSince1970: 1_700_000_000)), "2023-11-14 22:13:20Z")
    }

    func testKeyReportLists() {
        let decision = DecisionRecord(time: Date(timeIntervalSince1970: 1_700_000_000), queueID: "4NxT2k0QZGz9vB", action: "hold",
                                      reason: "account:alice suspended: ticket", path: "local", sender: "alice@shop.example",
                                      recipients: 2, score: 0, identity: "account:alice<server")
        let report = KeyReport(
            key: "account:alice", suspension: nil,
            limits: [LimitUsage(rule: "accounts", level: "account", shadow: false, smtpAction: "tempfail", localAction: "hold",
                                overridesTable: nil, exempt: [], maximumRecipients: nil,
                                windows: [WindowUsage(unit: "messages", window: "30/1m", seconds: 60, limit: 30, hard: false, count: 4)])],
            recentDecisions: [decision], heldMessages: [])
        let text = renderKeyReport(report)
        XCTAssertTrue(text.contains("suspended   no\n"), text)
        XCTAssertTrue(text.contains("  accounts  messages  4/30 per 1m  tempfail (local hold)\n"), text)
        XCTAssertTrue(text.contains("2023-11-14 22:13:20Z  4NxT2k0QZGz9vB  hold    local     2  <alice@shop.example>"), text)
    }
}
