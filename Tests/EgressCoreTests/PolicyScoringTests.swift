// Tests for scoring inside the decision: thresholds per path, the tag headers, the Subject
// prefix, spam counted against rate limits, and how the score combines with sender rules.

import Foundation
import XCTest
@testable import EgressCore

final class PolicyScoringTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_700_000_000)

    /// Scores 7.5: PHISH_ACCOUNT_VERIFY (3), PHISH_PASSWORD_EXPIRY (3), URL_SHORTENER (1.5).
    private static let phishingBody = """
        Your password will expire today. Please verify your account here:
        https://bit.ly/3keep

        """

    private func facts(_ sample: Sample, path: SubmissionPath = .smtp) -> MessageFacts {
        var facts = sample.facts
        facts.path = path
        facts.saslLogin = path == .smtp ? "alice" : nil
        return facts
    }

    private func policy(_ change: (inout Configuration) -> Void = { _ in }) -> Policy {
        var configuration = Configuration.defaults
        change(&configuration)
        return Policy(configuration: configuration)
    }

    func testSpamIsTaggedWithSpamAssassinHeaders() throws {
        let verdict = try policy().evaluate(facts(Sample().with(body: Self.phishingBody)), now: now)
        XCTAssertEqual(verdict.action, .tag)
        XCTAssertEqual(verdict.score, 7.5)
        XCTAssertEqual(verdict.symbols, [BuiltInSymbol.urlShortener, BuiltInSymbol.phishAccountVerify, BuiltInSymbol.phishPasswordExpiry])
        XCTAssertEqual(verdict.addHeaders, [
            HeaderField(name: "X-Spam-Flag", value: "YES"),
            HeaderField(name: "X-Spam-Score", value: "7.5"),
            HeaderField(name: "X-Spam-Status", value: "Yes, score=7.5 required=5.0 tests=PHISH_ACCOUNT_VERIFY,\n\tPHISH_PASSWORD_EXPIRY,URL_SHORTENER"),
            HeaderField(name: "X-Egress-Milter", value: "tag"),
        ])
        XCTAssertEqual(verdict.reason, "score 7.5 reached tag (5.0): URL_SHORTENER,PHISH_ACCOUNT_VERIFY,PHISH_PASSWORD_EXPIRY")
        XCTAssertEqual(verdict.scoring?.thresholds, ScoreThresholds(tag: 5, hold: 12, reject: 20))
        XCTAssertEqual(verdict.changeHeaders, [])
    }

    func testCleanMessageIsAcceptedWithoutSpamHeaders() throws {
        let verdict = try policy().evaluate(facts(Sample()), now: now)
        XCTAssertEqual(verdict.action, .accept)
        XCTAssertEqual(verdict.score, 0)
        XCTAssertEqual(verdict.addHeaders, [HeaderField(name: "X-Egress-Milter", value: "accept")])
    }

    func testThresholdsPerPath() throws {
        let gtube = Sample().with(body: "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n")
        let smtp = try policy().evaluate(facts(gtube), now: now)
        XCTAssertEqual(smtp.action, .reject)
        XCTAssertEqual(smtp.reply, Configuration.defaults.rejectReply)

        // The local path has no reject: the bounce would go to a sender a script can forge.
        let local = try policy().evaluate(facts(gtube, path: .local), now: now)
        XCTAssertEqual(local.action, .hold)
        XCTAssertTrue(local.quarantineReason?.hasPrefix("score 1000.0 reached hold (10.0)") ?? false, local.reason)
        XCTAssertTrue(local.addHeaders.contains(HeaderField(name: "X-Spam-Flag", value: "YES")))

        // Even a local reject threshold set in code ends as hold.
        let forced = try policy { $0.scoring.localThresholds.reject = 15 }.evaluate(facts(gtube, path: .local), now: now)
        XCTAssertEqual(forced.action, .hold)
        XCTAssertTrue(forced.reason.hasSuffix("(reject held instead on the local path, because the bounce would go to a possibly forged sender)"))

        let held = try policy { $0.scoring.smtpThresholds = ScoreThresholds(tag: 3, hold: 7, reject: nil) }
            .evaluate(facts(Sample().with(body: Self.phishingBody)), now: now)
        XCTAssertEqual(held.action, .hold)
        XCTAssertEqual(held.quarantineReason, held.reason)
    }

    func testSubjectPrefix() throws {
        struct Case {
            var prefix: String
            var subject: String
            var expected: String?
        }
        let cases = [
            Case(prefix: "[SPAM]", subject: "Account notice", expected: "[SPAM] Account notice"),
            Case(prefix: "[SPAM]", subject: "[SPAM] Account notice", expected: nil),
            Case(prefix: "[SPAM]", subject: "=?utf-8?q?Gr=C3=BC=C3=9Fe?=", expected: "[SPAM] =?utf-8?q?Gr=C3=BC=C3=9Fe?="),
            Case(prefix: "[ВНИМАНИЕ]", subject: "=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
                 expected: "=?UTF-8?B?W9CS0J3QmNCc0JDQndCY0JVdIA==?= =?utf-8?q?Gr=C3=BC=C3=9Fe?="),
        ]
        for item in cases {
            let sample = Sample().setting("Subject", item.subject).with(body: Self.phishingBody)
            let verdict = try policy { $0.scoring.subjectPrefix = item.prefix }.evaluate(facts(sample), now: now)
            XCTAssertEqual(verdict.changeHeaders.first?.value, item.expected, item.subject)
            if let value = item.expected {
                XCTAssertEqual(verdict.changeHeaders, [HeaderChange(name: "Subject", occurrence: 1, value: value)])
                // The new value still decodes: the prefix, a space, the old subject.
                let decoded = HeaderText.decode(Array(value.utf8), converter: CharsetConverter())
                let oldDecoded = HeaderText.decode(Array(item.subject.utf8), converter: CharsetConverter())
                XCTAssertEqual(decoded, item.prefix + " " + oldDecoded)
            }
        }
    }

    func testSpamCountsMoreAgainstRateLimits() throws {
        let limiter = RateLimiter()
        var configuration = Configuration.defaults
        configuration.limits = [LimitRule(name: "logins", level: .login, messages: [RateWindow(limit: 10, seconds: 3600)])]
        configuration.scoring.limitWeight = 5
        let policy = Policy(configuration: configuration, limiter: limiter, overrides: .empty)

        for offset in 0..<2 {
            let spam = try policy.evaluate(facts(Sample().with(body: Self.phishingBody)), now: now.addingTimeInterval(Double(offset)))
            XCTAssertEqual(spam.action, .tag)
            policy.commit(spam)
        }
        // Two spam messages count as ten messages: the next message is over the limit.
        let next = try policy.evaluate(facts(Sample()), now: now.addingTimeInterval(2))
        XCTAssertEqual(next.action, .tempfail, next.reason)
    }

    func testHeldSpamDoesNotCount() throws {
        var configuration = Configuration.defaults
        configuration.limits = [LimitRule(name: "logins", level: .login, messages: [RateWindow(limit: 2, seconds: 3600)])]
        configuration.scoring.smtpThresholds = ScoreThresholds(tag: 3, hold: 7, reject: nil)
        let policy = Policy(configuration: configuration, limiter: RateLimiter(), overrides: .empty)
        for offset in 0..<3 {
            let held = try policy.evaluate(facts(Sample().with(body: Self.phishingBody)), now: now.addingTimeInterval(Double(offset)))
            XCTAssertEqual(held.action, .hold)
            policy.release(held)
        }
        XCTAssertEqual(try policy.evaluate(facts(Sample()), now: now.addingTimeInterval(4)).action, .accept)
    }

    func testSenderRuleStillDecidesAndKeepsTheScore() throws {
        let verdict = try policy { $0.senders = [SenderRule(match: "login:alice", action: .hold, reason: "review")] }
            .evaluate(facts(Sample().with(body: Self.phishingBody)), now: now)
        XCTAssertEqual(verdict.action, .hold)
        XCTAssertEqual(verdict.reason, "senders[0]: review")
        XCTAssertEqual(verdict.score, 7.5)
        XCTAssertEqual(verdict.addHeaders.first, HeaderField(name: "X-Spam-Flag", value: "YES"))
    }

    func testAcceptRuleDoesNotHideSpam() throws {
        let verdict = try policy { $0.senders = [SenderRule(match: "login:alice", action: .accept)] }
            .evaluate(facts(Sample().with(body: Self.phishingBody)), now: now)
        XCTAssertEqual(verdict.action, .tag)
    }

    func testSenderRuleCanTurnScoringOff() throws {
        let trusted = policy { $0.senders = [SenderRule(match: "login:alice", action: .accept, reason: "transactional mail", scoring: false)] }
        let verdict = try trusted.evaluate(facts(Sample().with(body: Self.phishingBody)), now: now)
        XCTAssertEqual(verdict.action, .accept)
        XCTAssertEqual(verdict.reason, "senders[0]: transactional mail")
        XCTAssertEqual(verdict.score, 7.5, "the score is still computed for the log")
        XCTAssertEqual(verdict.addHeaders, [HeaderField(name: "X-Egress-Milter", value: "accept")])

        var other = facts(Sample().with(body: Self.phishingBody))
        other.saslLogin = "bob"
        XCTAssertEqual(try trusted.evaluate(other, now: now).action, .tag, "other senders are still scored")
    }

    func testStatusHeaderIsFolded() {
        let tests = (1...12).map { "A_LONG_SYMBOL_NAME_\($0)" }
        let value = ContentScorer.folded("Yes, score=30.0 required=5.0", tests: tests)
        let lines = value.components(separatedBy: "\n\t")
        XCTAssertGreaterThan(lines.count, 1)
        XCTAssertEqual(lines.joined(), "Yes, score=30.0 required=5.0 tests=" + tests.joined(separator: ","))
        XCTAssertTrue(lines.allSatisfy { $0.count <= 78 }, value)
        XCTAssertEqual(ContentScorer.folded("No, score=0.0 required=5.0", tests: []), "No, score=0.0 required=5.0 tests=none")
    }
}
