// Shared helpers of the rate limit tests: policies built from rules, identities built from
// keys, times as seconds after a fixed start, and temporary state directories.

import Foundation
import XCTest
@testable import EgressCore

enum LimitTesting {
    /// A start time that is a multiple of 8640 s (a tenth of a day), so the sub-buckets of
    /// every window from 10s to 1d begin exactly on it.
    static let start = Date(timeIntervalSince1970: 1_699_997_760)

    static func at(_ seconds: Double) -> Date {
        start.addingTimeInterval(seconds)
    }

    static func configuration(_ rules: [LimitRule], senders: [SenderRule] = []) -> Configuration {
        var configuration = Configuration.defaults
        configuration.limits = rules
        configuration.senders = senders
        return configuration
    }

    static func policy(_ rules: [LimitRule], limiter: RateLimiter = RateLimiter(),
                       overrides: LimitOverrides = .empty, senders: [SenderRule] = []) -> Policy {
        Policy(configuration: configuration(rules, senders: senders), limiter: limiter, overrides: overrides)
    }

    static func window(_ text: String) -> RateWindow {
        // The tests only pass valid windows; a typo should fail loudly.
        try! RateWindow.parse(text)
    }

    static func windows(_ texts: String...) -> [RateWindow] {
        texts.map(window)
    }

    /// An SMTP identity: login, sender, domain, ip and server.
    static func identity(login: String = "alice", domain: String = "shop.example", ip: String = "192.0.2.7") -> Identity {
        Identity(keys: [
            IdentityKey(level: .login, value: login),
            IdentityKey(level: .sender, value: "\(login)@\(domain)"),
            IdentityKey(level: .domain, value: domain),
            IdentityKey(level: .ip, value: ip),
            .server,
        ])
    }

    static func smtpFacts(login: String = "alice", domain: String = "shop.example", recipients: Int = 1) -> MessageFacts {
        MessageFacts(queueID: "4ABC", path: .smtp, clientAddress: "192.0.2.7", saslLogin: login,
                     envelopeSender: "<\(login)@\(domain)>",
                     recipients: (0..<recipients).map { "r\($0)@example.net" })
    }

    static func localFacts(sender: String = "www-data@shop.example", recipients: Int = 1) -> MessageFacts {
        MessageFacts(queueID: "4ABD", path: .local, clientAddress: "127.0.0.1", envelopeSender: "<\(sender)>",
                     recipients: (0..<recipients).map { "r\($0)@example.net" })
    }

    /// Decides and commits at once, as the daemon does for a delivered message.
    @discardableResult
    static func send(_ policy: Policy, _ identity: Identity = identity(), path: SubmissionPath = .smtp,
                     recipients: Int = 1, at seconds: Double) throws -> LimitDecision {
        let decision = try policy.decideLimits(for: identity, path: path, recipientCount: recipients, now: at(seconds))
        if let reservation = decision.reservation {
            policy.limiter.commit(reservation)
        }
        return decision
    }

    /// A fresh directory under the system's temporary directory, removed after the test.
    static func temporaryDirectory(_ test: XCTestCase) throws -> String {
        let path = NSTemporaryDirectory() + "egress-limits-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
