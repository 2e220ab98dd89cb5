// The admin's view of the limits: a key's counts per window against its limits, its overrides,
// counts that drain with time, the busiest keys, and that looking changes nothing.

import Foundation
import XCTest
@testable import EgressCore

final class LimitInspectionTests: XCTestCase {
    private typealias T = LimitTesting

    private let logins = LimitRule(name: "logins", level: .login, messages: T.windows("3/1m", "10/1h hard"),
                                   recipients: T.windows("20/1h"), maximumRecipients: 5, exempt: ["login:newsletter"])

    func testUsageShowsCountsPerWindow() throws {
        let policy = T.policy([logins])
        try T.send(policy, recipients: 2, at: 0)
        try T.send(policy, recipients: 3, at: 10)

        let usage = policy.limitUsage(for: "login:alice", now: T.at(20))
        XCTAssertEqual(usage.count, 1)
        let rule = try XCTUnwrap(usage.first)
        XCTAssertEqual(rule.rule, "logins")
        XCTAssertEqual(rule.level, "login")
        XCTAssertEqual(rule.smtpAction, "tempfail")
        XCTAssertEqual(rule.localAction, "hold")
        XCTAssertEqual(rule.maximumRecipients, 5)
        XCTAssertEqual(rule.exempt, ["login:newsletter"])
        XCTAssertNil(rule.overridesTable)
        XCTAssertEqual(rule.windows, [
            WindowUsage(unit: "messages", window: "3/1m", seconds: 60, limit: 3, hard: false, count: 2),
            WindowUsage(unit: "messages", window: "10/1h hard", seconds: 3600, limit: 10, hard: true, count: 2),
            WindowUsage(unit: "recipients", window: "20/1h", seconds: 3600, limit: 20, hard: false, count: 5),
        ])
    }

    func testTripProgressCountsTripsWithinThePeriod() throws {
        var rule = LimitRule(name: "strict", level: .login, messages: T.windows("1/1m"))
        rule.suspendAfter = SuspensionThreshold(trips: 3, seconds: 3600)
        let policy = T.policy([rule, logins])
        XCTAssertNil(policy.limitUsage(for: "login:alice", now: T.at(0)).last?.tripProgress, "a rule without suspend_after")
        XCTAssertEqual(policy.limitUsage(for: "login:alice", now: T.at(0)).first?.tripProgress?.trips, 0)

        try T.send(policy, at: 0)
        XCTAssertEqual(try T.send(policy, at: 1).action, .tempfail)
        let progress = try XCTUnwrap(policy.limitUsage(for: "login:alice", now: T.at(2)).first?.tripProgress)
        XCTAssertEqual(progress.trips, 1)
        XCTAssertEqual(progress.threshold, 3)
        XCTAssertEqual(progress.seconds, 3600)
        XCTAssertEqual(progress.period, "1h")

        let hourLater = policy.limitUsage(for: "login:alice", now: T.at(3700)).first?.tripProgress
        XCTAssertEqual(hourLater?.trips, 0, "the trip has left the period")
    }

    func testCountsDrainWithTime() throws {
        let policy = T.policy([logins])
        try T.send(policy, at: 0)
        let later = policy.limitUsage(for: "login:alice", now: T.at(200)).first?.windows.map(\.count)
        XCTAssertEqual(later, [0, 1, 1], "the minute window has drained, the hour windows have not")
    }

    func testLookingChangesNothing() throws {
        let policy = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("2/1m"))])
        try T.send(policy, at: 0)
        _ = policy.limitUsage(for: "login:alice", now: T.at(1))
        _ = policy.keyActivity(level: nil, now: T.at(1))
        XCTAssertNil(try T.send(policy, at: 2).action, "the second message still fits")
        XCTAssertEqual(try T.send(policy, at: 3).action, .tempfail)
    }

    func testUnknownKeyHasZeroCountsAndOtherLevelsNoRules() {
        let policy = T.policy([logins])
        XCTAssertEqual(policy.limitUsage(for: "login:nobody", now: T.at(0)).first?.windows.map(\.count), [0, 0, 0])
        XCTAssertEqual(policy.limitUsage(for: "account:alice", now: T.at(0)), [])
    }

    func testOverridesAreShown() throws {
        let overrides = try LimitOverrides.parse("login:big messages=50/1m\nlogin:free exempt\n", file: "t")
        let policy = T.policy([logins], overrides: overrides)
        try T.send(policy, T.identity(login: "big"), at: 0)

        let big = try XCTUnwrap(policy.limitUsage(for: "login:big", now: T.at(1)).first)
        XCTAssertEqual(big.overridesTable, "override")
        XCTAssertEqual(big.windows.map(\.window), ["50/1m", "20/1h"])
        XCTAssertEqual(big.windows.map(\.count), [1, 1])

        let free = try XCTUnwrap(policy.limitUsage(for: "login:free", now: T.at(1)).first)
        XCTAssertEqual(free.overridesTable, "exempt")
        XCTAssertEqual(free.windows, [])
    }

    func testActivityReportsLargestCountsPerKey() throws {
        let servers = LimitRule(name: "servers", level: .server, messages: T.windows("1000/1h"))
        let policy = T.policy([logins, servers])
        for _ in 0..<3 {
            try T.send(policy, T.identity(login: "busy"), recipients: 4, at: 0)
        }
        try T.send(policy, T.identity(login: "quiet"), at: 0)

        let activity = Dictionary(uniqueKeysWithValues: policy.keyActivity(level: nil, now: T.at(1)).map { ($0.key, $0) })
        XCTAssertEqual(activity["login:busy"], KeyActivity(key: "login:busy", messages: 3, recipients: 12))
        XCTAssertEqual(activity["login:quiet"], KeyActivity(key: "login:quiet", messages: 1, recipients: 1))
        XCTAssertEqual(activity["server"]?.messages, 4)
        XCTAssertEqual(Set(policy.keyActivity(level: "login", now: T.at(1)).map(\.key)), ["login:busy", "login:quiet"])
    }
}
