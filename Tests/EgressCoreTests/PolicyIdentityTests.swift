// The decision path from a stamped local message to its limits: the verified account is the
// key that gets counted, a forged stamp falls under local-unverified, and the verdict deletes
// every stamp header before delivery.
import Foundation
import XCTest
@testable import EgressCore

final class PolicyIdentityTests: XCTestCase {
    private typealias T = LimitTesting
    private static let accounts = AccountTable([1001: "alice", 1002: "bob"])
    /// The wrapper's clock when it stamped; the limiter's steady time is unrelated on purpose.
    private static let stampTime: Int64 = 1_700_000_000

    private func policy() -> Policy {
        var configuration = T.configuration([
            LimitRule(name: "accounts", level: .account, messages: T.windows("2/1h")),
            LimitRule(name: "unverified", level: .localUnverified, messages: T.windows("1/1h")),
        ])
        configuration.identity.stampKey = SubmissionStampTests.key
        return Policy(configuration: configuration, limiter: RateLimiter(), overrides: .empty, accounts: Self.accounts)
    }

    private func stampedFacts(uid: UInt32, account: String, key: StampKey = SubmissionStampTests.key) -> MessageFacts {
        var stamp = SubmissionStamp(
            uid: uid, account: account, workingDirectory: "/home/\(account)/public_html", script: "/home/\(account)/public_html/x.php",
            scriptSource: .environment, timestamp: Self.stampTime, nonce: SubmissionStampTests.nonce,
            messageID: "<m@\(account).example>", envelopeSender: "\(account)@shop.example")
        stamp.sign(with: key)
        let name = "X-Egress-Submitter"
        let headers = [
            Header(name: name, value: Array(stamp.headerValue(nameLength: name.utf8.count).utf8)),
            Header(name: "Message-ID", value: Array("<m@\(account).example>".utf8)),
        ]
        return MessageFacts(queueID: "Q1", path: .local, clientAddress: "127.0.0.1",
                            envelopeSender: "<\(account)@shop.example>", recipients: ["r@example.net"], headers: headers)
    }

    private func decide(_ policy: Policy, _ facts: MessageFacts, at seconds: Double) throws -> Verdict {
        let verdict = try policy.evaluate(facts, now: T.at(seconds),
                                          wallClock: Date(timeIntervalSince1970: TimeInterval(Self.stampTime + 10)))
        if verdict.action == .accept {
            policy.commit(verdict)
        } else {
            policy.release(verdict)
        }
        return verdict
    }

    func testVerifiedAccountIsCountedAndHeldPastItsLimit() throws {
        let policy = policy()
        let alice = stampedFacts(uid: 1001, account: "alice")

        let first = try decide(policy, alice, at: 0)
        XCTAssertEqual(first.action, .accept)
        XCTAssertEqual(first.identity.description,
                       "script:alice:/home/alice/public_html/x.php<account:alice<sender:alice@shop.example<domain:shop.example<server")
        XCTAssertEqual(first.removeHeaders, [HeaderRemoval(name: "X-Egress-Submitter", occurrence: 1)])
        XCTAssertEqual(try decide(policy, alice, at: 1).action, .accept)

        let third = try decide(policy, alice, at: 2)
        XCTAssertEqual(third.action, .hold, third.reason)
        XCTAssertTrue(third.reason.contains("account:alice"), third.reason)
        XCTAssertEqual(third.removeHeaders.count, 1)

        // Another account keeps its own allowance.
        XCTAssertEqual(try decide(policy, stampedFacts(uid: 1002, account: "bob"), at: 3).action, .accept)
    }

    func testForgedStampIsUnverifiedAndChargesNoAccount() throws {
        let policy = policy()
        let wrongKey = try StampKey(bytes: Array("another key, another key, 32 by".utf8))
        let forged = stampedFacts(uid: 1001, account: "alice", key: wrongKey)

        let first = try decide(policy, forged, at: 0)
        XCTAssertEqual(first.action, .accept)
        XCTAssertTrue(first.identity.description.contains("local-unverified"), first.identity.description)
        XCTAssertFalse(first.identity.description.contains("account:alice"), first.identity.description)
        XCTAssertEqual(first.symbols, [IdentitySymbol.stampForged])
        XCTAssertEqual(first.removeHeaders, [HeaderRemoval(name: "X-Egress-Submitter", occurrence: 1)])
        XCTAssertEqual(try decide(policy, forged, at: 1).action, .hold)

        // Alice's real mail was not charged for the forged ones.
        let alice = stampedFacts(uid: 1001, account: "alice")
        XCTAssertEqual(try decide(policy, alice, at: 2).action, .accept)
        XCTAssertEqual(try decide(policy, alice, at: 3).action, .accept)
    }

    func testRejectedSenderStillLosesItsStamp() throws {
        var configuration = Configuration.defaults
        configuration.identity.stampKey = SubmissionStampTests.key
        configuration.senders = [SenderRule(match: "account:alice", action: .hold, reason: "investigating")]
        let policy = Policy(configuration: configuration, limiter: RateLimiter(), overrides: .empty, accounts: Self.accounts)

        let verdict = try decide(policy, stampedFacts(uid: 1001, account: "alice"), at: 0)
        XCTAssertEqual(verdict.action, .hold)
        XCTAssertEqual(verdict.removeHeaders, [HeaderRemoval(name: "X-Egress-Submitter", occurrence: 1)])
    }
}
