// Tests for per-sender decisions: each action on each submission path, rule order, and the
// headers, replies and reasons a verdict carries.

import Foundation
import XCTest
@testable import EgressCore

final class PolicyTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_700_000_000)

    private func policy(_ rules: [SenderRule], statusHeader: String = "X-Egress-Milter") -> Policy {
        var configuration = Configuration.defaults
        configuration.senders = rules
        configuration.statusHeader = statusHeader
        return Policy(configuration: configuration)
    }

    private func smtpFacts(sender: String = "<bob@shop.example>", login: String? = "bob") -> MessageFacts {
        MessageFacts(queueID: "4ABC", path: .smtp, clientAddress: "192.0.2.7", saslLogin: login, envelopeSender: sender)
    }

    private func localFacts(sender: String = "<bob@shop.example>") -> MessageFacts {
        MessageFacts(queueID: "4ABD", path: .local, clientAddress: "127.0.0.1", envelopeSender: sender)
    }

    private let status = "X-Egress-Milter"

    func testNoRulesAcceptsWithStatusHeader() {
        let verdict = policy([]).decide(smtpFacts(), now: now)
        XCTAssertEqual(verdict.action, .accept)
        XCTAssertEqual(verdict.reason, "default")
        XCTAssertNil(verdict.reply)
        XCTAssertNil(verdict.quarantineReason)
        XCTAssertEqual(verdict.addHeaders, [HeaderField(name: status, value: "accept")])
        XCTAssertEqual(verdict.identity.description, "login:bob<sender:bob@shop.example<domain:shop.example<ip:192.0.2.7<server")
        XCTAssertEqual(verdict.score, 0)
        XCTAssertEqual(verdict.symbols, [])
    }

    func testEachActionOnEachPath() {
        struct Case {
            var action: Action
            var path: SubmissionPath
            var expectedAction: Action
            var expectedReply: ReplyText?
            var expectedHeaders: [HeaderField]
            var expectedQuarantine: String?
            var expectedReason: String
        }
        let defaults = Configuration.defaults
        let reason = "senders[0]: test rule"
        let heldReject = reason + " (reject held instead on the local path, because the bounce would go to a possibly forged sender)"
        let cases = [
            Case(action: .accept, path: .smtp, expectedAction: .accept, expectedReply: nil,
                 expectedHeaders: [HeaderField(name: status, value: "accept")], expectedQuarantine: nil, expectedReason: reason),
            Case(action: .accept, path: .local, expectedAction: .accept, expectedReply: nil,
                 expectedHeaders: [HeaderField(name: status, value: "accept")], expectedQuarantine: nil, expectedReason: reason),
            Case(action: .tag, path: .smtp, expectedAction: .tag, expectedReply: nil,
                 expectedHeaders: [HeaderField(name: "X-Spam-Flag", value: "YES"), HeaderField(name: status, value: "tag")],
                 expectedQuarantine: nil, expectedReason: reason),
            Case(action: .tag, path: .local, expectedAction: .tag, expectedReply: nil,
                 expectedHeaders: [HeaderField(name: "X-Spam-Flag", value: "YES"), HeaderField(name: status, value: "tag")],
                 expectedQuarantine: nil, expectedReason: reason),
            Case(action: .hold, path: .smtp, expectedAction: .hold, expectedReply: nil,
                 expectedHeaders: [HeaderField(name: status, value: "hold")], expectedQuarantine: reason, expectedReason: reason),
            Case(action: .hold, path: .local, expectedAction: .hold, expectedReply: nil,
                 expectedHeaders: [HeaderField(name: status, value: "hold")], expectedQuarantine: reason, expectedReason: reason),
            Case(action: .reject, path: .smtp, expectedAction: .reject, expectedReply: defaults.rejectReply,
                 expectedHeaders: [HeaderField(name: status, value: "reject")], expectedQuarantine: nil, expectedReason: reason),
            Case(action: .reject, path: .local, expectedAction: .hold, expectedReply: nil,
                 expectedHeaders: [HeaderField(name: status, value: "hold")], expectedQuarantine: heldReject, expectedReason: heldReject),
            Case(action: .tempfail, path: .smtp, expectedAction: .tempfail, expectedReply: defaults.tempfailReply,
                 expectedHeaders: [HeaderField(name: status, value: "tempfail")], expectedQuarantine: nil, expectedReason: reason),
            Case(action: .tempfail, path: .local, expectedAction: .tempfail, expectedReply: defaults.tempfailReply,
                 expectedHeaders: [HeaderField(name: status, value: "tempfail")], expectedQuarantine: nil, expectedReason: reason),
        ]
        for item in cases {
            let rules = [SenderRule(match: "domain:shop.example", action: item.action, reason: "test rule")]
            let facts = item.path == .smtp ? smtpFacts() : localFacts()
            let verdict = policy(rules).decide(facts, now: now)
            let context = "\(item.action) on \(item.path)"
            XCTAssertEqual(verdict.action, item.expectedAction, context)
            XCTAssertEqual(verdict.reply, item.expectedReply, context)
            XCTAssertEqual(verdict.addHeaders, item.expectedHeaders, context)
            XCTAssertEqual(verdict.quarantineReason, item.expectedQuarantine, context)
            XCTAssertEqual(verdict.reason, item.expectedReason, context)
        }
    }

    func testConfiguredRepliesAreUsed() throws {
        var configuration = try Configuration.parse("""
            replies:
              tempfail: {code: 452, status: 4.2.2, text: "later"}
              reject: {code: 554, status: 5.7.0, text: "never"}
            senders:
              - {match: "login:slow", action: tempfail}
              - {match: "login:bad", action: reject}
            """, file: "t.yaml")
        configuration.statusHeader = ""
        let policy = Policy(configuration: configuration)
        XCTAssertEqual(policy.decide(smtpFacts(login: "slow"), now: now).reply, ReplyText(code: 452, enhancedStatus: "4.2.2", text: "later"))
        XCTAssertEqual(policy.decide(smtpFacts(login: "bad"), now: now).reply, ReplyText(code: 554, enhancedStatus: "5.7.0", text: "never"))
    }

    func testFirstMatchingRuleWins() {
        let rules = [
            SenderRule(match: "login:alice", action: .reject, reason: "alice"),
            SenderRule(match: "domain:shop.example", action: .hold, reason: "shop"),
            SenderRule(match: "server", action: .tag, reason: "everyone"),
            SenderRule(match: "sender:bob@shop.example", action: .tempfail, reason: "never reached"),
        ]
        let cases: [(facts: MessageFacts, action: Action, reason: String)] = [
            (smtpFacts(sender: "<alice@shop.example>", login: "alice"), .reject, "senders[0]: alice"),
            (smtpFacts(sender: "<bob@shop.example>", login: "bob"), .hold, "senders[1]: shop"),
            (smtpFacts(sender: "<carol@other.example>", login: "carol"), .tag, "senders[2]: everyone"),
            (localFacts(sender: "<dave@other.example>"), .tag, "senders[2]: everyone"),
        ]
        for (facts, action, reason) in cases {
            let verdict = policy(rules).decide(facts, now: now)
            XCTAssertEqual(verdict.action, action, facts.envelopeSender)
            XCTAssertEqual(verdict.reason, reason, facts.envelopeSender)
        }
    }

    func testAcceptRuleStopsLaterRules() {
        let rules = [
            SenderRule(match: "login:newsletter", action: .accept),
            SenderRule(match: "server", action: .reject),
        ]
        let allowed = policy(rules).decide(smtpFacts(login: "newsletter"), now: now)
        XCTAssertEqual(allowed.action, .accept)
        XCTAssertEqual(allowed.reason, "senders[0]")
        let blocked = policy(rules).decide(smtpFacts(login: "other"), now: now)
        XCTAssertEqual(blocked.action, .reject)
        XCTAssertEqual(blocked.reason, "senders[1]")
    }

    func testLocalPathIgnoresLoginAndIPRules() {
        let rules = [
            SenderRule(match: "login:*", action: .reject),
            SenderRule(match: "ip:127.0.0.1", action: .reject),
        ]
        let verdict = policy(rules).decide(localFacts(), now: now)
        XCTAssertEqual(verdict.action, .accept)
        XCTAssertEqual(verdict.reason, "default")
    }

    func testGlobPatternsAgainstIdentity() {
        let cases: [(pattern: String, matches: Bool)] = [
            ("sender:*@shop.example", true),
            ("sender:*@SHOP.EXAMPLE", true),
            ("SENDER:BOB@*", true),
            ("sender:b?b@shop.example", true),
            ("sender:b?@shop.example", false),
            ("*@shop.example", true),
            ("domain:*.example", true),
            ("domain:shop.*", true),
            ("domain:other.example", false),
            ("ip:192.0.2.*", true),
            ("ip:192.0.3.*", false),
            ("login:bo", false),
            ("login:bob*", true),
            ("*", true),
        ]
        for (pattern, matches) in cases {
            let verdict = policy([SenderRule(match: pattern, action: .hold)]).decide(smtpFacts(), now: now)
            XCTAssertEqual(verdict.action, matches ? .hold : .accept, pattern)
        }
    }

    func testIPv6RuleMatchesWholeSlash64() {
        let rules = [SenderRule(match: "ip:2001:db8:1:2::/64", action: .hold)]
        for address in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"] {
            let facts = MessageFacts(path: .smtp, clientAddress: address, envelopeSender: "<x@y.example>")
            XCTAssertEqual(policy(rules).decide(facts, now: now).action, .hold, address)
        }
        let outside = MessageFacts(path: .smtp, clientAddress: "2001:db8:1:3::1", envelopeSender: "<x@y.example>")
        XCTAssertEqual(policy(rules).decide(outside, now: now).action, .accept)
    }

    func testEmptyStatusHeaderAddsNoHeader() {
        let accept = policy([], statusHeader: "").decide(smtpFacts(), now: now)
        XCTAssertEqual(accept.addHeaders, [])
        let tag = policy([SenderRule(match: "server", action: .tag)], statusHeader: "").decide(smtpFacts(), now: now)
        XCTAssertEqual(tag.addHeaders, [HeaderField(name: "X-Spam-Flag", value: "YES")])
    }

    func testStatusHeaderNeverNamesTheSender() {
        let rules = [SenderRule(match: "server", action: .tag, reason: "bob is spamming")]
        let verdict = policy(rules).decide(smtpFacts(), now: now)
        for field in verdict.addHeaders {
            XCTAssertFalse(field.value.lowercased().contains("bob"), field.value)
            XCTAssertFalse(field.value.contains("192.0.2.7"), field.value)
        }
    }
}
