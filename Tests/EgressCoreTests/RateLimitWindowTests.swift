// Tests for the counting of rate windows: the edges of a window, the moment a slot frees,
// several windows at once, messages against recipients, the recipient cap, and a brute-force
// check that no interval of the window's length ever admits more than the limit.

import Foundation
import XCTest
@testable import EgressCore

final class RateLimitWindowTests: XCTestCase {
    private typealias T = LimitTesting

    private func rule(messages: [RateWindow] = [], recipients: [RateWindow] = [], cap: Int? = nil) -> LimitRule {
        LimitRule(name: "logins", level: .login, messages: messages, recipients: recipients, maximumRecipients: cap)
    }

    func testLimitAdmitsExactlyNThenRefuses() throws {
        let policy = T.policy([rule(messages: T.windows("3/10s"))])
        for index in 0..<3 {
            let decision = try T.send(policy, at: 0.5)
            XCTAssertNil(decision.action, "message \(index + 1)")
            XCTAssertNotNil(decision.reservation, "message \(index + 1)")
        }
        let refused = try T.send(policy, at: 0.5)
        XCTAssertEqual(refused.action, .tempfail)
        XCTAssertEqual(refused.reason, "limit logins: 3/10s exceeded for login:alice (4)")
        XCTAssertNil(refused.reservation)
    }

    func testSlotFreesWhenItsSubBucketLeavesTheWindow() throws {
        // 3/10s has one-second sub-buckets; three messages at 0.5s sit in the bucket [0s, 1s),
        // which overlaps every interval (t - 10s, t] until t reaches 11s.
        let policy = T.policy([rule(messages: T.windows("3/10s"))])
        for _ in 0..<3 {
            try T.send(policy, at: 0.5)
        }
        let cases: [(seconds: Double, admitted: Bool)] = [
            (1.0, false), (9.999, false), (10.5, false), (10.999, false), (11.0, true),
        ]
        for item in cases {
            let decision = try T.send(policy, at: item.seconds)
            XCTAssertEqual(decision.action == nil, item.admitted, "at \(item.seconds)s")
        }
        // The three slots of the first bucket are free, one was just taken at 11s.
        XCTAssertNil(try T.send(policy, at: 11.0).action)
        XCTAssertNil(try T.send(policy, at: 11.0).action)
        XCTAssertEqual(try T.send(policy, at: 11.0).action, .tempfail)
    }

    func testSlotFreesNoEarlierThanTheWindowLength() throws {
        // A message at the very end of a sub-bucket frees its slot one window length later,
        // rounded up to the next bucket start: here 0.999s + 10s lies in the bucket [10s, 11s).
        let policy = T.policy([rule(messages: T.windows("1/10s"))])
        try T.send(policy, at: 0.999)
        XCTAssertEqual(try T.send(policy, at: 10.998).action, .tempfail)
        XCTAssertEqual(try T.send(policy, at: 10.999).action, .tempfail)
        XCTAssertNil(try T.send(policy, at: 11.0).action)
    }

    func testNoIntervalAdmitsMoreThanTheLimit() throws {
        // A random schedule, some messages with several recipients and some reservations
        // released (a later hold or an abort), checked against every interval of length T.
        var generator = SeededGenerator(seed: 0x5EED)
        let limit = 20
        let length = 60.0
        let width = length / Double(bucketsPerWindow)
        let policy = T.policy([rule(messages: [RateWindow(limit: limit, seconds: Int(length))])])
        var admitted: [Double] = []
        var refusals = 0
        var time = 0.0
        for _ in 0..<4000 {
            time += Double(Int.random(in: 0...1500, using: &generator)) / 1000
            let decision = try policy.decideLimits(for: T.identity(), path: .smtp, recipientCount: 1, now: T.at(time))
            guard let reservation = decision.reservation else {
                refusals += 1
                // A refusal must be justified: within one sub-bucket of slack, the window is full.
                let recent = admitted.filter { $0 > time - length - width - 1e-9 }
                XCTAssertGreaterThanOrEqual(recent.count, limit, "refused at \(time)s with only \(recent.count) admitted")
                continue
            }
            if Int.random(in: 0..<5, using: &generator) == 0 {
                policy.limiter.release(reservation)
            } else {
                policy.limiter.commit(reservation)
                admitted.append(time)
            }
        }
        XCTAssertGreaterThan(refusals, 100, "the schedule should reach the limit often")
        for (index, end) in admitted.enumerated() {
            let inInterval = admitted[...index].filter { $0 > end - length }.count
            XCTAssertLessThanOrEqual(inInterval, limit, "interval ending at \(end)s")
        }
    }

    func testEveryWindowOfARuleApplies() throws {
        let policy = T.policy([rule(messages: T.windows("3/10s", "5/1m"))])
        for _ in 0..<3 {
            XCTAssertNil(try T.send(policy, at: 0).action)
        }
        XCTAssertEqual(try T.send(policy, at: 5).reason, "limit logins: 3/10s exceeded for login:alice (4)")
        XCTAssertNil(try T.send(policy, at: 12).action)
        XCTAssertNil(try T.send(policy, at: 12).action)
        let refused = try T.send(policy, at: 12)
        XCTAssertEqual(refused.reason, "limit logins: 5/1m exceeded for login:alice (6)")
        // The minute window frees at 66s, one sub-bucket (6s) after 60s.
        XCTAssertEqual(try T.send(policy, at: 65.9).action, .tempfail)
        XCTAssertNil(try T.send(policy, at: 66).action)
    }

    func testRecipientWindowCountsRecipients() throws {
        let policy = T.policy([rule(messages: T.windows("100/1m"), recipients: T.windows("10/1m"))])
        XCTAssertNil(try T.send(policy, recipients: 4, at: 0).action)
        XCTAssertNil(try T.send(policy, recipients: 4, at: 0).action)
        let refused = try T.send(policy, recipients: 4, at: 0)
        XCTAssertEqual(refused.action, .tempfail)
        XCTAssertEqual(refused.reason, "limit logins: recipients 10/1m exceeded for login:alice (12)")
        XCTAssertNil(try T.send(policy, recipients: 2, at: 0).action, "exactly ten recipients fit")
        XCTAssertEqual(try T.send(policy, recipients: 1, at: 0).action, .tempfail)
    }

    func testMessageAndRecipientCapsAreSeparate() throws {
        let policy = T.policy([rule(messages: T.windows("2/1m"), recipients: T.windows("50/1m"))])
        XCTAssertNil(try T.send(policy, recipients: 1, at: 0).action)
        XCTAssertNil(try T.send(policy, recipients: 1, at: 0).action)
        XCTAssertEqual(try T.send(policy, recipients: 1, at: 0).reason, "limit logins: 2/1m exceeded for login:alice (3)")
    }

    func testMaximumRecipientsPerMessage() throws {
        let policy = T.policy([rule(cap: 5)])
        XCTAssertNil(try T.send(policy, recipients: 5, at: 0).action)
        let refused = try T.send(policy, recipients: 6, at: 0)
        XCTAssertEqual(refused.action, .tempfail)
        XCTAssertEqual(refused.reason, "limit logins: max_recipients 5 exceeded for login:alice (6)")
        XCTAssertNil(try T.send(policy, recipients: 5, at: 0).action, "the cap counts nothing over time")
    }

    func testRefusedMessagesDoNotCount() throws {
        let policy = T.policy([rule(messages: T.windows("2/10s"))])
        XCTAssertNil(try T.send(policy, at: 0).action)
        XCTAssertNil(try T.send(policy, at: 0).action)
        for second in 1...10 {
            XCTAssertEqual(try T.send(policy, at: Double(second)).action, .tempfail)
        }
        XCTAssertNil(try T.send(policy, at: 11).action, "the retries did not dig the sender deeper")
        XCTAssertNil(try T.send(policy, at: 11).action)
        XCTAssertEqual(try T.send(policy, at: 11).action, .tempfail)
    }

    func testKeysCountSeparately() throws {
        let policy = T.policy([rule(messages: T.windows("1/1m"))])
        XCTAssertNil(try T.send(policy, T.identity(login: "alice"), at: 0).action)
        XCTAssertNil(try T.send(policy, T.identity(login: "bob"), at: 0).action)
        XCTAssertEqual(try T.send(policy, T.identity(login: "alice"), at: 1).action, .tempfail)
    }

    func testTimeEarlierThanTheLatestCountsAsTheLatest() throws {
        // Two threads may pass their times out of order; the older one must not reopen slots.
        let policy = T.policy([rule(messages: T.windows("1/10s"))])
        XCTAssertNil(try T.send(policy, at: 20).action)
        XCTAssertEqual(try T.send(policy, at: 5).action, .tempfail)
        XCTAssertNil(try T.send(policy, at: 31).action)
    }

    func testLimitAboveSixteenBitsUsesWideCounters() throws {
        let policy = T.policy([rule(recipients: T.windows("100000/1h"))])
        XCTAssertNil(try T.send(policy, recipients: 70_000, at: 0).action)
        XCTAssertEqual(try T.send(policy, recipients: 40_000, at: 0).reason,
                       "limit logins: recipients 100000/1h exceeded for login:alice (110000)")
        XCTAssertNil(try T.send(policy, recipients: 30_000, at: 0).action)
    }
}

/// A small deterministic generator (SplitMix64), so a failing schedule can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
