// Tests for the per-key limits table: parsing, errors with file, line and column, loading
// and reloading a file, a large table, and how overrides change the limit step.

import Foundation
import XCTest
@testable import EgressCore

final class LimitOverridesTests: XCTestCase {
    private typealias T = LimitTesting

    func testParsesSettingsCommentsAndBlankLines() throws {
        let text = """
            # key                settings
            account:shop1        messages=500/1h,5000/1d recipients=2000/1h

            login:crm\tmax_recipients=200   # the CRM sends to many at once
              account:newsletter   exempt
            server messages=50000/1h
            local-unverified messages=5/1h
            """
        let overrides = try LimitOverrides.parse(text, file: "limits.overrides")
        XCTAssertEqual(overrides.entries.count, 5)
        XCTAssertEqual(overrides.entries["account:shop1"], LimitOverride(
            messages: [RateWindow(limit: 500, seconds: 3600), RateWindow(limit: 5000, seconds: 86400)],
            recipients: [RateWindow(limit: 2000, seconds: 3600)]))
        XCTAssertEqual(overrides.entries["login:crm"], LimitOverride(maximumRecipients: 200))
        XCTAssertEqual(overrides.entries["account:newsletter"], LimitOverride(exempt: true))
        XCTAssertEqual(overrides.entries["server"], LimitOverride(messages: [RateWindow(limit: 50000, seconds: 3600)]))
        XCTAssertEqual(overrides.entries["local-unverified"]?.messages, [RateWindow(limit: 5, seconds: 3600)])
    }

    func testEmptyInputsGiveNoEntries() throws {
        for text in ["", "\n", "# only a comment\n", "   \n\t\n"] {
            XCTAssertEqual(try LimitOverrides.parse(text, file: "f").entries, [:], text.debugDescription)
        }
    }

    func testErrorsNameFileLineAndColumn() {
        let cases: [(text: String, expected: String)] = [
            ("account:a messages=30/1x", "f:1:20: account:a: invalid duration '1x' in window '30/1x'; expected a number with the unit s, m, h or d, such as 30s, 1m, 1h or 1d"),
            ("\naccount:a messages=30/1m,0/1h", "f:2:26: account:a: count 0 in window '0/1h' allows nothing; to block a sender use a senders rule with action reject or hold"),
            ("acount:a exempt", "f:1:1: acount:a: unknown identity level 'acount'; did you mean 'account'? (levels: script, account, login, sender, domain, ip, local-unverified, server)"),
            ("account:a exempt\naccount:a messages=1/1m", "f:2:1: account:a: duplicate key; line 1 sets it already"),
            ("account:a mesages=1/1m", "f:1:11: account:a: unknown setting 'mesages=1/1m'; did you mean 'messages'?"),
            ("account:a", "f:1:1: account:a: no settings; write messages=..., recipients=..., max_recipients=N or exempt after the key"),
            ("account:a exempt messages=1/1m", "f:1:1: account:a: exempt cannot be combined with other settings"),
            ("account:* exempt", "f:1:1: account:*: keys here are exact, not patterns; use a rule's exempt list for patterns"),
            ("account: exempt", "f:1:1: account:: missing value; write account:VALUE"),
            ("server:x exempt", "f:1:1: server:x: the server key has no value; write just 'server'"),
            ("account:a max_recipients=0", "f:1:11: account:a: invalid max_recipients '0'; expected a whole number from 1 to 1000000"),
            ("account:a messages=1/1m,2/1m", "f:1:25: account:a: window 2/1m has the same length as 1/1m"),
            ("account:a messages=1/1m messages=2/1h", "f:1:25: account:a: 'messages' appears twice on this line"),
            ("account:a messages=1/1m hard", "f:1:25: account:a: unknown setting 'hard'; expected messages=W,..., recipients=W,..., max_recipients=N or exempt"),
        ]
        for item in cases {
            XCTAssertThrowsError(try LimitOverrides.parse(item.text, file: "f"), item.text) { error in
                XCTAssertEqual("\(error)", item.expected)
            }
        }
    }

    func testLoadReadsFileAndEmptyPathMeansNone() throws {
        let directory = try T.temporaryDirectory(self)
        let path = directory + "/limits.overrides"
        try "login:bulk messages=10/1m\n".write(toFile: path, atomically: true, encoding: .utf8)
        let overrides = try LimitOverrides.load(contentsOf: path)
        XCTAssertEqual(overrides.file, path)
        XCTAssertEqual(overrides.entries["login:bulk"]?.messages, [RateWindow(limit: 10, seconds: 60)])
        XCTAssertEqual(try LimitOverrides.load(contentsOf: ""), .empty)
    }

    func testLoadMissingFileFails() {
        let path = NSTemporaryDirectory() + "egress-missing-\(UUID().uuidString).overrides"
        XCTAssertThrowsError(try LimitOverrides.load(contentsOf: path)) { error in
            XCTAssertEqual("\(error)", "\(path): cannot open the limits overrides file: No such file or directory")
        }
    }

    func testFiftyThousandLinesLoad() throws {
        var text = "# generated\n"
        for index in 0..<50_000 {
            switch index % 3 {
            case 0: text += "account:user\(index)  messages=500/1h,5000/1d recipients=2000/1h\n"
            case 1: text += "login:user\(index)\tmax_recipients=\(index % 900 + 1)\n"
            default: text += "sender:user\(index)@shop.example  exempt\n"
            }
        }
        let overrides = try LimitOverrides.parse(text, file: "big")
        XCTAssertEqual(overrides.entries.count, 50_000)
        XCTAssertEqual(overrides.entries["login:user49999"]?.maximumRecipients, 49999 % 900 + 1)
        XCTAssertEqual(overrides.entries["account:user3"]?.recipients, [RateWindow(limit: 2000, seconds: 3600)])
    }

    // MARK: Effect on the limit step

    private let rule = LimitRule(name: "logins", level: .login, messages: [RateWindow(limit: 1, seconds: 60)],
                                 recipients: [RateWindow(limit: 100, seconds: 3600)], maximumRecipients: 10)

    func testOverrideReplacesOneKindOfWindow() throws {
        let overrides = try LimitOverrides.parse("login:bulk messages=3/1m", file: "f")
        let policy = T.policy([rule], overrides: overrides)
        for _ in 0..<3 {
            XCTAssertNil(try T.send(policy, T.identity(login: "bulk"), at: 0).action)
        }
        XCTAssertEqual(try T.send(policy, T.identity(login: "bulk"), at: 0).reason, "limit logins: 3/1m exceeded for login:bulk (4)")
        XCTAssertNil(try T.send(policy, T.identity(login: "other"), at: 0).action)
        XCTAssertEqual(try T.send(policy, T.identity(login: "other"), at: 0).action, .tempfail, "others keep the rule's 1/1m")
        // The recipient window and cap of the rule still apply to the overridden key.
        XCTAssertEqual(try T.send(policy, T.identity(login: "bulk"), recipients: 11, at: 100).reason,
                       "limit logins: max_recipients 10 exceeded for login:bulk (11)")
    }

    func testOverrideCanRaiseTheRecipientCap() throws {
        let overrides = try LimitOverrides.parse("login:crm max_recipients=50", file: "f")
        let policy = T.policy([rule], overrides: overrides)
        XCTAssertNil(try T.send(policy, T.identity(login: "crm"), recipients: 50, at: 0).action)
    }

    func testExemptKeyIsNotCounted() throws {
        let overrides = try LimitOverrides.parse("login:newsletter exempt", file: "f")
        let policy = T.policy([rule], overrides: overrides)
        for _ in 0..<5 {
            XCTAssertNil(try T.send(policy, T.identity(login: "newsletter"), at: 0).action)
        }
        XCTAssertEqual(policy.limiter.trackedKeyCount, 0)
    }

    func testOverrideForAnotherLevelChangesNothing() throws {
        let overrides = try LimitOverrides.parse("domain:shop.example exempt", file: "f")
        let policy = T.policy([rule], overrides: overrides)
        try T.send(policy, at: 0)
        XCTAssertEqual(try T.send(policy, at: 0).action, .tempfail)
    }

    func testReloadWithChangedTableKeepsCounts() throws {
        let directory = try T.temporaryDirectory(self)
        let path = directory + "/limits.overrides"
        try "login:bulk messages=2/1m\n".write(toFile: path, atomically: true, encoding: .utf8)
        let limiter = RateLimiter()
        var configuration = T.configuration([rule])
        configuration.limitsOverrides = path

        let first = Policy(configuration: configuration, limiter: limiter, overrides: try LimitOverrides.load(contentsOf: path))
        try T.send(first, T.identity(login: "bulk"), at: 0)
        try T.send(first, T.identity(login: "bulk"), at: 0)
        XCTAssertEqual(try T.send(first, T.identity(login: "bulk"), at: 0).action, .tempfail)

        try "login:bulk messages=3/1m\n".write(toFile: path, atomically: true, encoding: .utf8)
        let second = Policy(configuration: configuration, limiter: limiter, overrides: try LimitOverrides.load(contentsOf: path))
        XCTAssertNil(try T.send(second, T.identity(login: "bulk"), at: 1).action, "two counted, the third slot is new")
        XCTAssertEqual(try T.send(second, T.identity(login: "bulk"), at: 1).action, .tempfail)
    }
}
