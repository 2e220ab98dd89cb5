// Tests for the `limits:` and `limits_overrides:` settings: window syntax, decoding of every
// rule key, errors with file, line, column and key, and the summary round trip.

import Foundation
import XCTest
@testable import EgressCore

final class RateLimitConfigurationTests: XCTestCase {
    func testWindowSyntax() throws {
        let cases: [(String, RateWindow)] = [
            ("30/1m", RateWindow(limit: 30, seconds: 60)),
            ("30/m", RateWindow(limit: 30, seconds: 60)),
            ("200/1h", RateWindow(limit: 200, seconds: 3600)),
            ("1000/1d", RateWindow(limit: 1000, seconds: 86400)),
            ("5/30s", RateWindow(limit: 5, seconds: 30)),
            ("1000/1d hard", RateWindow(limit: 1000, seconds: 86400, isHard: true)),
            ("7/31d", RateWindow(limit: 7, seconds: 31 * 86400)),
            ("1000000000/1s", RateWindow(limit: 1_000_000_000, seconds: 1)),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try RateWindow.parse(text), expected, text)
        }
        XCTAssertEqual(RateWindow(limit: 30, seconds: 90).description, "30/90s")
        XCTAssertEqual(RateWindow(limit: 1000, seconds: 86400, isHard: true).description, "1000/1d hard")
    }

    func testInvalidWindows() {
        let cases: [(String, String)] = [
            ("30/1x", "invalid duration '1x' in window '30/1x'; expected a number with the unit s, m, h or d, such as 30s, 1m, 1h or 1d"),
            ("0/1m", "count 0 in window '0/1m' allows nothing; to block a sender use a senders rule with action reject or hold"),
            ("30/0m", "window '30/0m' has length 0; a window must be at least 1s"),
            ("30/32d", "window '30/32d' is longer than the maximum of 31d"),
            ("30/1m soft", "invalid window '30/1m soft'; expected COUNT/DURATION such as 30/1m, 200/1h or 1000/1d, optionally followed by 'hard'"),
            ("30", "invalid window '30'; expected COUNT/DURATION such as 30/1m, 200/1h or 1000/1d, optionally followed by 'hard'"),
            ("-1/1m", "invalid count '-1' in window '-1/1m'; expected COUNT/DURATION such as 30/1m, 200/1h or 1000/1d, optionally followed by 'hard'"),
            ("30/60", "invalid duration '60' in window '30/60'; expected a number with the unit s, m, h or d, such as 30s, 1m, 1h or 1d"),
            ("1000000001/1h", "count 1000000001 in window '1000000001/1h' is too large; the maximum is 1000000000"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try RateWindow.parse(text), text) { error in
                XCTAssertEqual((error as? ValueError)?.message, message, text)
            }
        }
    }

    func testSuspensionThresholdSyntax() throws {
        XCTAssertEqual(try SuspensionThreshold.parse("3 trips within 1h"), SuspensionThreshold(trips: 3, seconds: 3600))
        XCTAssertEqual(try SuspensionThreshold.parse("1 trip within 10m"), SuspensionThreshold(trips: 1, seconds: 600))
        XCTAssertEqual(SuspensionThreshold(trips: 1, seconds: 600).description, "1 trip within 10m")
        XCTAssertThrowsError(try SuspensionThreshold.parse("3 in 1h"))
        XCTAssertThrowsError(try SuspensionThreshold.parse("0 trips within 1h"))
        XCTAssertThrowsError(try SuspensionThreshold.parse("3 trips within 1y"))
    }

    func testEveryRuleKeyIsDecoded() throws {
        let yaml = """
            limits_overrides: /etc/egress-milter/limits.overrides
            limits:
              - name: accounts
                level: account
                messages: [30/1m, 200/1h, 1000/1d hard]
                recipients: [500/1h]
                max_recipients: 100
                exempt: ["account:newsletter", "script:*/wp-cron.php"]
                action: reject
                local_action: tempfail
                shadow: true
                suspend_after: 3 trips within 1h
              - name: unverified
                level: local-unverified
                messages: 20/1h
            """
        let configuration = try Configuration.parse(yaml, file: "t.yaml")
        XCTAssertEqual(configuration.limitsOverrides, "/etc/egress-milter/limits.overrides")
        XCTAssertEqual(configuration.limits, [
            LimitRule(name: "accounts", level: .account,
                      messages: [RateWindow(limit: 30, seconds: 60), RateWindow(limit: 200, seconds: 3600),
                                 RateWindow(limit: 1000, seconds: 86400, isHard: true)],
                      recipients: [RateWindow(limit: 500, seconds: 3600)], maximumRecipients: 100,
                      exempt: ["account:newsletter", "script:*/wp-cron.php"], action: .reject, localAction: .tempfail,
                      shadow: true, suspendAfter: SuspensionThreshold(trips: 3, seconds: 3600)),
            LimitRule(name: "unverified", level: .localUnverified, messages: [RateWindow(limit: 20, seconds: 3600)]),
        ])
    }

    func testErrorsNameFileLineColumnAndKey() {
        let cases: [(yaml: String, expected: String)] = [
            ("limits:\n  - name: a\n    level: login\n    messages: [30/1m, 30/1x]\n",
             "t.yaml:4:23: limits[0].messages[1]: invalid duration '1x' in window '30/1x'; expected a number with the unit s, m, h or d, such as 30s, 1m, 1h or 1d"),
            ("limits:\n  - name: a\n    level: login\n    messages: 0/1m\n",
             "t.yaml:4:15: limits[0].messages: count 0 in window '0/1m' allows nothing; to block a sender use a senders rule with action reject or hold"),
            ("limits:\n  - name: a\n    level: login\n    recipients: [5/1h, 9/60m]\n",
             "t.yaml:4:24: limits[0].recipients[1]: window 9/1h has the same length as 5/1h; give each length one count"),
            ("limits:\n  - name: a\n    level: acount\n    messages: 1/1m\n",
             "t.yaml:3:12: limits[0].level: invalid value 'acount'; did you mean 'account'? (expected one of: script, account, login, sender, domain, ip, local-unverified, server)"),
            ("limits:\n  - name: a\n    level: login\n    mesages: 1/1m\n",
             "t.yaml:4:5: limits[0].mesages: unknown key; did you mean 'messages'?"),
            ("limits:\n  - level: login\n    messages: 1/1m\n",
             "t.yaml:2:5: limits[0].name: missing key; every limit rule needs a name for the logs"),
            ("limits:\n  - name: a\n    messages: 1/1m\n",
             "t.yaml:2:5: limits[0].level: missing key; every limit rule needs a level such as account, login or ip"),
            ("limits:\n  - name: a\n    level: login\n",
             "t.yaml:2:5: limits[0]: the rule counts nothing; give it messages, recipients or max_recipients"),
            ("limits:\n  - name: a\n    level: login\n    messages: 1/1m\n  - name: a\n    level: ip\n    messages: 1/1m\n",
             "t.yaml:5:5: limits[1].name: duplicate rule name 'a'; the rule at line 2, column 5 has it already"),
            ("limits:\n  - name: a b\n    level: login\n    messages: 1/1m\n",
             "t.yaml:2:11: limits[0].name: invalid rule name 'a b'; use letters, digits, '.', '_' and '-'"),
            ("limits:\n  - name: a\n    level: login\n    messages: 1/1m\n    local_action: reject\n",
             "t.yaml:5:19: limits[0].local_action: reject is not allowed on the local path, because the bounce would go to a sender a script can forge; use hold"),
            ("limits:\n  - name: a\n    level: login\n    messages: 1/1m\n    action: accept\n",
             "t.yaml:5:13: limits[0].action: invalid value 'accept' (expected one of: tempfail, hold, reject, tag)"),
            ("limits:\n  - name: a\n    level: login\n    messages: 1/1m\n    shadow: yes\n",
             "t.yaml:5:13: limits[0].shadow: expected true or false, found 'yes'"),
            ("limits:\n  - name: a\n    level: login\n    max_recipients: 0\n",
             "t.yaml:4:21: limits[0].max_recipients: must be from 1 to 1000000, not 0"),
            ("limits:\n  - name: a\n    level: login\n    messages: 1/1m\n    exempt: [\"acount:x\"]\n",
             "t.yaml:5:14: limits[0].exempt[0]: unknown identity level 'acount'; did you mean 'account'? (levels: script, account, login, sender, domain, ip, local-unverified, server)"),
            ("limits:\n  - name: a\n    level: login\n    messages: 1/1m\n    suspend_after: 3 trips\n",
             "t.yaml:5:20: limits[0].suspend_after: invalid threshold '3 trips'; expected 'N trips within DURATION' such as '3 trips within 1h'"),
            ("limits_overrides: etc/limits\n",
             "t.yaml:1:19: limits_overrides: must be an absolute path, such as /var/lib/egress-milter"),
            ("limits: {name: a}\n",
             "t.yaml:1:9: limits: expected a sequence of rules ('- name: ...'), found a mapping"),
        ]
        for item in cases {
            XCTAssertThrowsError(try Configuration.parse(item.yaml, file: "t.yaml"), item.yaml) { error in
                XCTAssertEqual("\(error)", item.expected)
            }
        }
    }

    func testSummaryWithLimitsParsesBack() throws {
        var configuration = Configuration.defaults
        configuration.limitsOverrides = "/etc/egress-milter/limits.overrides"
        configuration.limits = [
            LimitRule(name: "accounts", level: .account,
                      messages: [RateWindow(limit: 30, seconds: 60), RateWindow(limit: 1000, seconds: 86400, isHard: true)],
                      recipients: [RateWindow(limit: 500, seconds: 5400)], maximumRecipients: 100,
                      exempt: ["account:newsletter", "script:alice:/home/alice/x.php"], action: .hold, localAction: .tag,
                      shadow: true, suspendAfter: SuspensionThreshold(trips: 1, seconds: 60)),
            LimitRule(name: "server", level: .server, maximumRecipients: 5),
        ]
        let summary = configuration.summary()
        XCTAssertTrue(summary.contains("    messages: [30/1m, 1000/1d hard]\n"), summary)
        XCTAssertTrue(summary.contains("    recipients: [500/90m]\n"), summary)
        XCTAssertEqual(try Configuration.parse(summary, file: "summary.yaml"), configuration, summary)
    }
}
