// Tests for the limit step of the policy: which rule decides across the identity chain, the
// action on each submission path, shadow rules, exemptions, reservations, suspensions, and
// how the limits combine with the per-sender rules in a verdict.

import Foundation
import XCTest
@testable import EgressCore

final class RateLimitPolicyTests: XCTestCase {
    private typealias T = LimitTesting

    // MARK: Which rule decides

    func testMostSevereActionDecidesAcrossLevels() throws {
        let rules = [
            LimitRule(name: "logins", level: .login, messages: T.windows("1/1m"), action: .tag),
            LimitRule(name: "ips", level: .ip, messages: T.windows("1/1m"), action: .tempfail),
            LimitRule(name: "domains", level: .domain, messages: T.windows("1/1m"), action: .reject),
        ]
        let policy = T.policy(rules)
        XCTAssertNil(try T.send(policy, at: 0).action)
        let decision = try T.send(policy, at: 1)
        XCTAssertEqual(decision.action, .reject)
        XCTAssertEqual(decision.reason, "limit domains: 1/1m exceeded for domain:shop.example (2)")
        XCTAssertEqual(decision.notes, [
            "limit logins: 1/1m exceeded for login:alice (2), tag",
            "limit ips: 1/1m exceeded for ip:192.0.2.7 (2), tempfail",
        ])
        XCTAssertNil(decision.reservation)
    }

    func testFirstRuleDecidesAmongEqualActions() throws {
        let rules = [
            LimitRule(name: "servers", level: .server, messages: T.windows("1/1m")),
            LimitRule(name: "logins", level: .login, messages: T.windows("1/1m")),
        ]
        let policy = T.policy(rules)
        try T.send(policy, at: 0)
        let decision = try T.send(policy, at: 1)
        XCTAssertEqual(decision.action, .tempfail)
        XCTAssertEqual(decision.reason, "limit servers: 1/1m exceeded for server (2)")
    }

    func testTightestLevelTripsWhileOthersHaveRoom() throws {
        let rules = [
            LimitRule(name: "domains", level: .domain, messages: T.windows("100/1m")),
            LimitRule(name: "logins", level: .login, messages: T.windows("2/1m")),
        ]
        let policy = T.policy(rules)
        try T.send(policy, T.identity(login: "alice"), at: 0)
        try T.send(policy, T.identity(login: "alice"), at: 0)
        let refused = try T.send(policy, T.identity(login: "alice"), at: 0)
        XCTAssertEqual(refused.reason, "limit logins: 2/1m exceeded for login:alice (3)")
        XCTAssertNil(try T.send(policy, T.identity(login: "bob"), at: 0).action, "bob shares the domain, not the login")
    }

    func testAllOrNothingAcrossTheChain() throws {
        // The domain limit refuses, so the login window must not have counted the message.
        let rules = [
            LimitRule(name: "logins", level: .login, messages: T.windows("2/1m")),
            LimitRule(name: "domains", level: .domain, messages: T.windows("1/1m")),
        ]
        let policy = T.policy(rules)
        try T.send(policy, T.identity(login: "bob"), at: 0)
        XCTAssertEqual(try T.send(policy, T.identity(login: "alice"), at: 0).action, .tempfail)
        XCTAssertEqual(try T.send(policy, T.identity(login: "alice"), at: 0).action, .tempfail)
        XCTAssertNil(try T.send(policy, T.identity(login: "alice", domain: "other.example"), at: 0).action)
        XCTAssertNil(try T.send(policy, T.identity(login: "alice", domain: "third.example"), at: 0).action,
                     "alice's two refused messages took no slot of her login window")
    }

    // MARK: Actions by path

    func testActionOnEachPath() {
        struct Case {
            var action: Action?
            var localAction: Action?
            var smtp: Action
            var local: Action
        }
        let cases = [
            Case(action: nil, localAction: nil, smtp: .tempfail, local: .hold),
            Case(action: .tempfail, localAction: nil, smtp: .tempfail, local: .hold),
            Case(action: .reject, localAction: nil, smtp: .reject, local: .hold),
            Case(action: .hold, localAction: nil, smtp: .hold, local: .hold),
            Case(action: .tag, localAction: nil, smtp: .tag, local: .tag),
            Case(action: nil, localAction: .tempfail, smtp: .tempfail, local: .tempfail),
            Case(action: .reject, localAction: .tag, smtp: .reject, local: .tag),
            Case(action: .tag, localAction: .hold, smtp: .tag, local: .hold),
        ]
        for item in cases {
            let rule = LimitRule(name: "r", level: .sender, messages: T.windows("1/1m"), action: item.action, localAction: item.localAction)
            let label = "action \(item.action?.rawValue ?? "nil"), local_action \(item.localAction?.rawValue ?? "nil")"
            XCTAssertEqual(rule.action(on: .smtp), item.smtp, label)
            XCTAssertEqual(rule.action(on: .local), item.local, label)
        }
    }

    func testLocalRejectBecomesHoldInVerdict() throws {
        let rule = LimitRule(name: "senders", level: .sender, messages: T.windows("1/1m"), action: .reject)
        let policy = T.policy([rule])
        let first = try policy.evaluate(T.localFacts(), now: T.at(0))
        XCTAssertEqual(first.action, .accept)
        policy.commit(first)

        let second = try policy.evaluate(T.localFacts(), now: T.at(1))
        XCTAssertEqual(second.action, .hold)
        XCTAssertEqual(second.reason, "limit senders: 1/1m exceeded for sender:www-data@shop.example (2)")
        XCTAssertEqual(second.quarantineReason, second.reason)
        XCTAssertNil(second.reply)
        XCTAssertNil(second.reservation)
    }

    func testSMTPDefaultIsTempfailWithConfiguredReply() throws {
        var configuration = T.configuration([LimitRule(name: "logins", level: .login, messages: T.windows("1/1m"))])
        configuration.tempfailReply = ReplyText(code: 452, enhancedStatus: "4.7.1", text: "Slow down")
        let policy = Policy(configuration: configuration, limiter: RateLimiter(), overrides: .empty)
        policy.commit(try policy.evaluate(T.smtpFacts(), now: T.at(0)))
        let verdict = try policy.evaluate(T.smtpFacts(), now: T.at(1))
        XCTAssertEqual(verdict.action, .tempfail)
        XCTAssertEqual(verdict.reply, ReplyText(code: 452, enhancedStatus: "4.7.1", text: "Slow down"))
        XCTAssertEqual(verdict.addHeaders, [HeaderField(name: "X-Egress-Milter", value: "tempfail")])
    }

    func testTagActionDeliversAndCounts() throws {
        let policy = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("1/1m"), action: .tag)])
        policy.commit(try policy.evaluate(T.smtpFacts(), now: T.at(0)))
        let verdict = try policy.evaluate(T.smtpFacts(), now: T.at(1))
        XCTAssertEqual(verdict.action, .tag)
        XCTAssertEqual(verdict.addHeaders, [Policy.spamFlagHeader, HeaderField(name: "X-Egress-Milter", value: "tag")])
        XCTAssertNotNil(verdict.reservation, "a tagged message is delivered, so it counts")
    }

    // MARK: Shadow rules and exemptions

    func testShadowRuleOnlyReports() throws {
        let rules = [LimitRule(name: "trial", level: .login, messages: T.windows("1/1m"), action: .reject, shadow: true)]
        let policy = T.policy(rules)
        XCTAssertNil(try T.send(policy, at: 0).action)
        let second = try T.send(policy, at: 1)
        XCTAssertNil(second.action)
        XCTAssertNotNil(second.reservation)
        XCTAssertEqual(second.notes, ["limit trial: 1/1m exceeded for login:alice (2), would reject (shadow)"])
        let third = try T.send(policy, at: 2)
        XCTAssertEqual(third.notes, ["limit trial: 1/1m exceeded for login:alice (3), would reject (shadow)"],
                       "delivered messages count in shadow mode")
    }

    func testShadowTripsNeverSuspend() throws {
        let rule = LimitRule(name: "trial", level: .login, messages: [T.window("1/1m hard")], shadow: true,
                             suspendAfter: SuspensionThreshold(trips: 1, seconds: 60))
        let policy = T.policy([rule])
        try T.send(policy, at: 0)
        XCTAssertTrue(try T.send(policy, at: 1).newSuspensions.isEmpty)
        XCTAssertTrue(policy.limiter.suspensions().isEmpty)
    }

    func testExemptPatternMatchesAnyKeyOfTheChain() throws {
        let rule = LimitRule(name: "logins", level: .login, messages: T.windows("1/1m"),
                             exempt: ["login:news*", "domain:trusted.example"])
        let policy = T.policy([rule])
        for _ in 0..<3 {
            XCTAssertNil(try T.send(policy, T.identity(login: "newsletter"), at: 0).action)
            XCTAssertNil(try T.send(policy, T.identity(login: "bob", domain: "trusted.example"), at: 0).action)
        }
        try T.send(policy, T.identity(login: "bob"), at: 0)
        XCTAssertEqual(try T.send(policy, T.identity(login: "bob"), at: 0).action, .tempfail)
        XCTAssertEqual(policy.limiter.trackedKeyCount, 1, "exempt keys are not tracked")
    }

    func testRuleAppliesOnlyToItsLevel() throws {
        let policy = T.policy([LimitRule(name: "ips", level: .ip, messages: T.windows("1/1m"))])
        let local = Identity(keys: [IdentityKey(level: .sender, value: "a@b.example"), .server])
        for _ in 0..<3 {
            XCTAssertNil(try T.send(policy, local, path: .local, at: 0).action)
        }
        XCTAssertEqual(policy.limiter.trackedKeyCount, 0)
    }

    // MARK: Reservations

    func testPendingReservationCountsAgainstTheLimit() throws {
        let policy = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("1/1m"))])
        let first = try policy.decideLimits(for: T.identity(), path: .smtp, recipientCount: 1, now: T.at(0))
        XCTAssertNotNil(first.reservation)
        let second = try policy.decideLimits(for: T.identity(), path: .smtp, recipientCount: 1, now: T.at(0))
        XCTAssertEqual(second.action, .tempfail, "the uncommitted first message holds the slot")
        XCTAssertEqual(policy.limiter.pendingReservationCount, 1)
    }

    func testReleaseFreesTheSlot() throws {
        // Abort, a later reject, tempfail or hold, or a failure applying the verdict: the
        // daemon releases, and the counts come back.
        let policy = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("1/1m"), recipients: T.windows("3/1m"))])
        for _ in 0..<5 {
            let verdict = try policy.evaluate(T.smtpFacts(recipients: 3), now: T.at(0))
            XCTAssertEqual(verdict.action, .accept)
            policy.release(verdict)
        }
        XCTAssertEqual(policy.limiter.pendingReservationCount, 0)
        let kept = try policy.evaluate(T.smtpFacts(recipients: 3), now: T.at(0))
        policy.commit(kept)
        XCTAssertEqual(try policy.evaluate(T.smtpFacts(recipients: 1), now: T.at(0)).action, .tempfail)
    }

    func testCommitAndReleaseAreIdempotent() throws {
        let policy = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("2/1m"))])
        let first = try policy.evaluate(T.smtpFacts(), now: T.at(0))
        policy.commit(first)
        policy.commit(first)
        policy.release(first)
        let second = try policy.evaluate(T.smtpFacts(), now: T.at(0))
        policy.release(second)
        policy.release(second)
        let third = try policy.evaluate(T.smtpFacts(), now: T.at(0))
        XCTAssertEqual(third.action, .accept)
        policy.commit(third)
        XCTAssertEqual(try policy.evaluate(T.smtpFacts(), now: T.at(0)).action, .tempfail,
                       "the committed first message was not taken back by the late release")
    }

    func testReleaseAfterTheBucketLeftTheWindowDoesNothing() throws {
        let policy = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("1/10s"))])
        let old = try policy.decideLimits(for: T.identity(), path: .smtp, recipientCount: 1, now: T.at(0))
        XCTAssertNil(try T.send(policy, at: 11).action)
        policy.limiter.release(try XCTUnwrap(old.reservation))
        XCTAssertEqual(try T.send(policy, at: 11).action, .tempfail, "the late release did not free the new slot")
    }

    // MARK: Suspensions

    func testSuspendAfterTripsHoldsAllFurtherMail() throws {
        let rule = LimitRule(name: "logins", level: .login, messages: T.windows("1/1h"),
                             suspendAfter: SuspensionThreshold(trips: 3, seconds: 3600))
        let policy = T.policy([rule])
        try T.send(policy, at: 0)
        XCTAssertEqual(try T.send(policy, at: 1).action, .tempfail)
        XCTAssertEqual(try T.send(policy, at: 2).action, .tempfail)
        let third = try T.send(policy, at: 3)
        XCTAssertEqual(third.action, .hold)
        XCTAssertEqual(third.newSuspensions.map(\.key), ["login:alice"])
        let reason = "limit logins: 3 trips within 1h, the last 1/1h exceeded (2)"
        XCTAssertEqual(third.reason, "login:alice suspended: \(reason)")
        XCTAssertEqual(policy.limiter.suspensions(), [Suspension(key: "login:alice", reason: reason, since: T.at(3), rule: "logins")])

        // Even after every window drained, the key stays held until an admin releases it.
        let later = try T.send(policy, at: 90_000)
        XCTAssertEqual(later.action, .hold)
        XCTAssertEqual(later.reason, "login:alice suspended: \(reason)")
        XCTAssertNil(later.reservation)
        XCTAssertTrue(later.newSuspensions.isEmpty)

        XCTAssertTrue(try policy.limiter.release("login:alice", now: T.at(90_001)))
        XCTAssertNil(try T.send(policy, at: 90_002).action)
        XCTAssertFalse(try policy.limiter.release("login:alice", now: T.at(90_003)))
    }

    func testTripsOutsideThePeriodDoNotSuspend() throws {
        let rule = LimitRule(name: "logins", level: .login, messages: T.windows("1/10s"),
                             suspendAfter: SuspensionThreshold(trips: 2, seconds: 60))
        let policy = T.policy([rule])
        try T.send(policy, at: 0)
        XCTAssertEqual(try T.send(policy, at: 1).action, .tempfail)
        try T.send(policy, at: 100)
        XCTAssertEqual(try T.send(policy, at: 101).action, .tempfail, "the first trip left the period")
        XCTAssertEqual(try T.send(policy, at: 102).action, .hold)
    }

    func testHardWindowSuspendsOnFirstTrip() throws {
        let rule = LimitRule(name: "accounts", level: .login, messages: [T.window("10/1m"), T.window("2/1d hard")])
        let policy = T.policy([rule])
        try T.send(policy, at: 0)
        try T.send(policy, at: 1)
        let decision = try T.send(policy, at: 2)
        XCTAssertEqual(decision.action, .hold)
        XCTAssertEqual(decision.reason, "login:alice suspended: limit accounts: hard limit 2/1d exceeded (3)")
    }

    func testSuspensionOfAnyChainKeyHolds() throws {
        let policy = T.policy([])
        try policy.limiter.suspend("domain:shop.example", reason: "abuse report", now: T.at(0))
        let verdict = try policy.evaluate(T.smtpFacts(login: "carol"), now: T.at(1))
        XCTAssertEqual(verdict.action, .hold)
        XCTAssertEqual(verdict.quarantineReason, "domain:shop.example suspended: abuse report")
        XCTAssertEqual(try policy.evaluate(T.smtpFacts(login: "carol", domain: "other.example"), now: T.at(1)).action, .accept)
    }

    func testReleaseGivesAFreshStart() throws {
        let rule = LimitRule(name: "accounts", level: .login, messages: [T.window("1/1d hard")])
        let policy = T.policy([rule])
        try T.send(policy, at: 0)
        XCTAssertEqual(try T.send(policy, at: 1).action, .hold)
        try policy.limiter.release("login:alice", now: T.at(2))
        XCTAssertNil(try T.send(policy, at: 3).action, "the full hard window was cleared with the release")
    }

    // MARK: Combined with sender rules

    func testSenderRuleThatRefusesDecidesWithoutCounting() throws {
        let senders = [SenderRule(match: "login:alice", action: .hold, reason: "manual")]
        let policy = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("1/1m"))], senders: senders)
        let verdict = try policy.evaluate(T.smtpFacts(), now: T.at(0))
        XCTAssertEqual(verdict.action, .hold)
        XCTAssertEqual(verdict.reason, "senders[0]: manual")
        XCTAssertNil(verdict.reservation)
        XCTAssertEqual(policy.limiter.trackedKeyCount, 0)
    }

    func testSenderAcceptStillCountsAgainstLimits() throws {
        let senders = [SenderRule(match: "login:alice", action: .accept)]
        let policy = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("1/1m"))], senders: senders)
        let first = try policy.evaluate(T.smtpFacts(), now: T.at(0))
        XCTAssertEqual(first.action, .accept)
        XCTAssertEqual(first.reason, "senders[0]")
        policy.commit(first)
        let second = try policy.evaluate(T.smtpFacts(), now: T.at(1))
        XCTAssertEqual(second.action, .tempfail)
        XCTAssertEqual(second.reason, "limit logins: 1/1m exceeded for login:alice (2)")
    }

    func testReloadKeepsCountsInTheSameLimiter() throws {
        let limiter = RateLimiter()
        let before = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("2/1m"))], limiter: limiter)
        try T.send(before, at: 0)
        try T.send(before, at: 0)
        // The new configuration raises the count; the window length and the name stay.
        let after = T.policy([LimitRule(name: "logins", level: .login, messages: T.windows("3/1m"))], limiter: limiter)
        XCTAssertNil(try T.send(after, at: 1).action)
        XCTAssertEqual(try T.send(after, at: 1).reason, "limit logins: 3/1m exceeded for login:alice (4)")
        // A renamed rule starts afresh.
        let renamed = T.policy([LimitRule(name: "users", level: .login, messages: T.windows("3/1m"))], limiter: limiter)
        XCTAssertNil(try T.send(renamed, at: 1).action)
    }
}
