// Tests for resolving the identity keys of a message on both submission paths: network keys,
// the submission stamp on the local path, PHP's script header, trusted local senders, and
// the IPv6 prefix setting.

import Foundation
import XCTest
@testable import EgressCore

final class IdentityTests: XCTestCase {
    private let resolver = IdentityResolver(settings: IdentitySettings())
    private let now = Date(timeIntervalSince1970: 1_700_000_000)

    private func identity(_ facts: MessageFacts) -> String {
        resolver.resolve(facts, now: now).identity.description
    }

    func testSMTPWithLoginHasEveryLevel() {
        let facts = MessageFacts(path: .smtp, clientAddress: "192.0.2.7", saslLogin: "alice",
                                 envelopeSender: "<alice@shop.example>")
        XCTAssertEqual(identity(facts), "login:alice<sender:alice@shop.example<domain:shop.example<ip:192.0.2.7<server")
        XCTAssertEqual(resolver.resolve(facts, now: now).identity.keys, [
            IdentityKey(level: .login, value: "alice"),
            IdentityKey(level: .sender, value: "alice@shop.example"),
            IdentityKey(level: .domain, value: "shop.example"),
            IdentityKey(level: .ip, value: "192.0.2.7"),
            .server,
        ])
    }

    func testSMTPCases() {
        let cases: [(facts: MessageFacts, expected: String)] = [
            (MessageFacts(path: .smtp, clientAddress: "192.0.2.7", envelopeSender: "bob@shop.example"),
             "sender:bob@shop.example<domain:shop.example<ip:192.0.2.7<server"),
            (MessageFacts(path: .smtp, clientAddress: "192.0.2.7", saslLogin: "", envelopeSender: "<bob@shop.example>"),
             "sender:bob@shop.example<domain:shop.example<ip:192.0.2.7<server"),
            (MessageFacts(path: .smtp, clientAddress: "192.0.2.7", envelopeSender: "<Bob.Smith@Shop.EXAMPLE>"),
             "sender:Bob.Smith@shop.example<domain:shop.example<ip:192.0.2.7<server"),
            (MessageFacts(path: .smtp, clientAddress: "192.0.2.7", envelopeSender: "<bob@shop.example.>"),
             "sender:bob@shop.example<domain:shop.example<ip:192.0.2.7<server"),
            (MessageFacts(path: .smtp, clientAddress: "192.0.2.7", envelopeSender: "<\"a@b\"@shop.example>"),
             "sender:\"a@b\"@shop.example<domain:shop.example<ip:192.0.2.7<server"),
            (MessageFacts(path: .smtp, clientAddress: "192.0.2.7", envelopeSender: "<@relay.example:bob@shop.example>"),
             "sender:bob@shop.example<domain:shop.example<ip:192.0.2.7<server"),
            (MessageFacts(path: .smtp, clientAddress: "192.0.2.7", envelopeSender: "<postmaster>"),
             "sender:postmaster<ip:192.0.2.7<server"),
            (MessageFacts(path: .smtp, clientAddress: nil, saslLogin: "carol", envelopeSender: "<carol@shop.example>"),
             "login:carol<sender:carol@shop.example<domain:shop.example<server"),
            (MessageFacts(path: .smtp, clientAddress: "not an address", envelopeSender: "<x@y.example>"),
             "sender:x@y.example<domain:y.example<server"),
        ]
        for (facts, expected) in cases {
            XCTAssertEqual(identity(facts), expected, "sender \(facts.envelopeSender)")
        }
    }

    func testNullSenderHasNoSenderOrDomain() {
        for sender in ["<>", "", " <> ", "  "] {
            let facts = MessageFacts(path: .smtp, clientAddress: "192.0.2.9", saslLogin: "mailer", envelopeSender: sender)
            XCTAssertEqual(identity(facts), "login:mailer<ip:192.0.2.9<server", "sender \(sender.debugDescription)")
        }
    }

    func testLocalPathIgnoresLoginAndAddress() {
        let facts = MessageFacts(path: .local, clientAddress: "127.0.0.1", saslLogin: "forged",
                                 envelopeSender: "<www-data@host.example>")
        XCTAssertEqual(identity(facts), "sender:www-data@host.example<domain:host.example<local-unverified<server")
    }

    func testLocalNullSenderIsUnverifiedOnly() {
        let facts = MessageFacts(path: .local, clientAddress: "127.0.0.1", envelopeSender: "<>")
        XCTAssertEqual(identity(facts), "local-unverified<server")
    }

    func testIPAddressKeys() {
        let cases: [(address: String, key: String?)] = [
            ("192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:a:b:c:d", "2001:db8:1:2::/64"),
            ("2001:0DB8:0001:0002:0000:0000:0000:0001", "2001:db8:1:2::/64"),
            ("2001:db8::1", "2001:db8::/64"),
            ("[2001:db8:1:2::5]", "2001:db8:1:2::/64"),
            ("IPv6:2001:db8:1:2::5", "2001:db8:1:2::/64"),
            ("fe80::1%eth0", "fe80::/64"),
            ("::1", "::/64"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            (" 192.0.2.8 ", "192.0.2.8"),
            ("999.0.2.7", nil),
            ("host.example", nil),
            ("", nil),
        ]
        for (address, key) in cases {
            XCTAssertEqual(IPAddressGroup.key(for: address), key, address)
        }
    }

    func testIPv6IdentityIsGroupedBySlash64() {
        let first = MessageFacts(path: .smtp, clientAddress: "2001:db8:1:2::10", envelopeSender: "<>")
        let second = MessageFacts(path: .smtp, clientAddress: "2001:db8:1:2:ffff::99", envelopeSender: "<>")
        XCTAssertEqual(identity(first), "ip:2001:db8:1:2::/64<server")
        XCTAssertEqual(resolver.resolve(first, now: now).identity, resolver.resolve(second, now: now).identity)
    }

    func testIPv6PrefixSetting() {
        let cases: [(prefix: Int, address: String, key: String)] = [
            (64, "2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"),
            (48, "2001:db8:1:2:3:4:5:6", "ip:2001:db8:1::/48"),
            (56, "2001:db8:1:2ff:3:4:5:6", "ip:2001:db8:1:200::/56"),
            (60, "2001:db8:1:2ff:3:4:5:6", "ip:2001:db8:1:2f0::/60"),
            (128, "2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2:3:4:5:6/128"),
            (1, "ffff::1", "ip:8000::/1"),
            (48, "192.0.2.7", "ip:192.0.2.7"),
            (48, "::ffff:192.0.2.7", "ip:192.0.2.7"),
        ]
        for (prefix, address, key) in cases {
            var settings = IdentitySettings()
            settings.ipv6PrefixLength = prefix
            let facts = MessageFacts(path: .smtp, clientAddress: address, envelopeSender: "<>")
            let resolved = IdentityResolver(settings: settings).resolve(facts, now: now).identity
            XCTAssertEqual(resolved.description, "\(key)<server", "\(address) with /\(prefix)")
        }
    }

    func testKeyDescriptions() {
        let cases: [(key: IdentityKey, text: String)] = [
            (IdentityKey(level: .script, value: "alice:/home/alice/x.php"), "script:alice:/home/alice/x.php"),
            (IdentityKey(level: .account, value: "alice"), "account:alice"),
            (IdentityKey(level: .login, value: "alice"), "login:alice"),
            (IdentityKey(level: .sender, value: "a@b.example"), "sender:a@b.example"),
            (IdentityKey(level: .domain, value: "b.example"), "domain:b.example"),
            (IdentityKey(level: .ip, value: "192.0.2.1"), "ip:192.0.2.1"),
            (.localUnverified, "local-unverified"),
            (.server, "server"),
        ]
        for (key, text) in cases {
            XCTAssertEqual(key.description, text)
        }
        XCTAssertEqual(IdentityLevel.allCases.map(\.rawValue),
                       ["script", "account", "login", "sender", "domain", "ip", "local-unverified", "server"])
    }

    // MARK: Stamps on the local path

    private static let key = SubmissionStampTests.key
    private static let accounts = AccountTable([1001: "alice", 1002: "bob", 33: "www-data"])

    private func stampedResolver(_ change: (inout IdentitySettings) -> Void = { _ in }) -> IdentityResolver {
        var settings = IdentitySettings()
        settings.stampKey = Self.key
        change(&settings)
        return IdentityResolver(settings: settings, accounts: Self.accounts)
    }

    /// Returns a stamp as the wrapper writes it, for a message submitted at `now`.
    private func makeStamp(uid: UInt32 = 1001, account: String = "alice", script: String = "/home/alice/public_html/wp-content/uploads/x.php",
                           from: String = "alice@shop.example", time: Int64 = 1_700_000_000,
                           key: StampKey = IdentityTests.key) -> SubmissionStamp {
        var stamp = SubmissionStamp(
            uid: uid, account: account, workingDirectory: "/home/alice/public_html/wp-content/uploads", script: script,
            scriptSource: script.isEmpty ? .none : .phpHeader, timestamp: time, nonce: SubmissionStampTests.nonce,
            messageID: "<m1@shop.example>", envelopeSender: from)
        stamp.sign(with: key)
        return stamp
    }

    private func header(_ stamp: SubmissionStamp, name: String = "X-Egress-Submitter") -> Header {
        Header(name: name, value: Array(stamp.headerValue(nameLength: name.utf8.count).utf8))
    }

    private func localFacts(_ headers: [Header], sender: String = "<alice@shop.example>",
                            messageID: String? = "<m1@shop.example>") -> MessageFacts {
        var all = headers
        if let messageID {
            all.append(Header(name: "Message-ID", value: Array(messageID.utf8)))
        }
        all.append(Header(name: "Subject", value: Array("hello".utf8)))
        return MessageFacts(path: .local, clientAddress: "127.0.0.1", envelopeSender: sender, headers: all)
    }

    func testValidStampGivesScriptAndAccount() {
        let stamp = makeStamp()
        let resolution = stampedResolver().resolve(localFacts([header(stamp)]), now: now)
        XCTAssertEqual(resolution.identity.description,
                       "script:alice:/home/alice/public_html/wp-content/uploads/x.php<account:alice<sender:alice@shop.example<domain:shop.example<server")
        XCTAssertEqual(resolution.stamp, stamp)
        XCTAssertNil(resolution.stampProblem)
        XCTAssertEqual(resolution.symbols, [])
        XCTAssertEqual(resolution.removeHeaders, [HeaderRemoval(name: "X-Egress-Submitter", occurrence: 1)])
    }

    func testValidStampWithoutScriptGivesAccount() {
        let resolution = stampedResolver().resolve(localFacts([header(makeStamp(script: ""))]), now: now)
        XCTAssertEqual(resolution.identity.description, "account:alice<sender:alice@shop.example<domain:shop.example<server")
    }

    func testAccountNameComesFromPasswdLookup() {
        let cases: [(uid: UInt32, stampedName: String, expected: String)] = [
            (1002, "alice", "account:bob"),
            (4000, "gone", "account:gone"),
            (4000, "", "account:#4000"),
        ]
        for (uid, stampedName, expected) in cases {
            let stamp = makeStamp(uid: uid, account: stampedName, script: "")
            let resolution = stampedResolver().resolve(localFacts([header(stamp)]), now: now)
            XCTAssertEqual(resolution.identity.keys.first?.description, expected, "uid \(uid)")
        }
    }

    func testStampFailuresMakeMailUnverified() {
        var tampered = makeStamp()
        tampered.uid = 1002
        let unverified = "sender:alice@shop.example<domain:shop.example<local-unverified<server"
        let cases: [(name: String, headers: [Header], messageID: String?, problem: StampProblem)] = [
            ("tampered field", [header(tampered)], "<m1@shop.example>", .wrongMAC),
            ("wrong key", [header(makeStamp(key: SubmissionStampTests.otherKey))], "<m1@shop.example>", .wrongMAC),
            ("too old", [header(makeStamp(time: 1_700_000_000 - 3601))], "<m1@shop.example>", .expired(ageSeconds: 3601)),
            ("far in the future", [header(makeStamp(time: 1_700_000_000 + 301))], "<m1@shop.example>", .dated(secondsAhead: 301)),
            ("duplicated", [header(makeStamp()), header(makeStamp())], "<m1@shop.example>", .duplicated(count: 2)),
            ("duplicated in other case", [header(makeStamp()), header(makeStamp(), name: "x-egress-submitter")],
             "<m1@shop.example>", .duplicated(count: 2)),
            ("copied to another message", [header(makeStamp())], "<m2@shop.example>", .messageIDChanged),
            ("Message-ID removed", [header(makeStamp())], nil, .messageIDChanged),
            ("unreadable", [Header(name: "X-Egress-Submitter", value: Array("v=1; uid=0".utf8))], "<m1@shop.example>",
             .malformed(SubmissionStampError("stamp field 'account' is missing"))),
        ]
        for item in cases {
            let resolution = stampedResolver().resolve(localFacts(item.headers, messageID: item.messageID), now: now)
            XCTAssertEqual(resolution.identity.description, unverified, item.name)
            XCTAssertEqual(resolution.symbols, [IdentitySymbol.stampForged], item.name)
            XCTAssertEqual(resolution.stampProblem, item.problem, item.name)
            XCTAssertNil(resolution.stamp, item.name)
            XCTAssertEqual(resolution.removeHeaders.count, item.headers.count, item.name)
        }
    }

    func testStampAgeLimits() {
        let cases: [(name: String, age: Int64, maximumAge: Int, verifies: Bool)] = [
            ("fresh", 0, 3600, true),
            ("at the maximum age", 3600, 3600, true),
            ("within small clock skew", -300, 3600, true),
            ("custom maximum age", 120, 60, false),
            ("within custom maximum age", 59, 60, true),
        ]
        for item in cases {
            let stamp = makeStamp(time: 1_700_000_000 - item.age)
            let resolver = stampedResolver { $0.stampMaximumAgeSeconds = item.maximumAge }
            let resolution = resolver.resolve(localFacts([header(stamp)]), now: now)
            XCTAssertEqual(resolution.stamp != nil, item.verifies, item.name)
            XCTAssertEqual(resolution.identity.keys.contains(.localUnverified), !item.verifies, item.name)
        }
    }

    func testStampWithoutKeyIsUnverifiedButNotForged() {
        let resolution = IdentityResolver(settings: IdentitySettings(), accounts: Self.accounts)
            .resolve(localFacts([header(makeStamp())]), now: now)
        XCTAssertEqual(resolution.identity.description, "sender:alice@shop.example<domain:shop.example<local-unverified<server")
        XCTAssertEqual(resolution.stampProblem, .missingKey)
        XCTAssertEqual(resolution.symbols, [])
        XCTAssertEqual(resolution.removeHeaders, [HeaderRemoval(name: "X-Egress-Submitter", occurrence: 1)])
    }

    func testLocalMailWithoutStampIsUnverified() {
        let resolution = stampedResolver().resolve(localFacts([]), now: now)
        XCTAssertEqual(resolution.identity.description, "sender:alice@shop.example<domain:shop.example<local-unverified<server")
        XCTAssertNil(resolution.stampProblem)
        XCTAssertEqual(resolution.symbols, [])
        XCTAssertEqual(resolution.removeHeaders, [])
    }

    func testStampOnSMTPPathIsIgnored() {
        let stamp = makeStamp()
        let facts = MessageFacts(path: .smtp, clientAddress: "192.0.2.7", saslLogin: "mallory", envelopeSender: "<alice@shop.example>",
                                 headers: [header(stamp), Header(name: "Message-ID", value: Array("<m1@shop.example>".utf8)),
                                           Header(name: "X-PHP-Originating-Script", value: Array("1002:x.php".utf8))])
        let resolution = stampedResolver().resolve(facts, now: now)
        XCTAssertEqual(resolution.identity.description, "login:mallory<sender:alice@shop.example<domain:shop.example<ip:192.0.2.7<server")
        XCTAssertNil(resolution.stamp)
        XCTAssertNil(resolution.stampProblem)
        XCTAssertEqual(resolution.symbols, [])
        // Removed all the same, because it names the account and its directories.
        XCTAssertEqual(resolution.removeHeaders, [HeaderRemoval(name: "X-Egress-Submitter", occurrence: 1)])
    }

    func testRemovalsAreLastOccurrenceFirst() {
        let headers = [Header(name: "X-Egress-Submitter", value: []), Header(name: "To", value: []),
                       Header(name: "x-egress-SUBMITTER", value: []), Header(name: "X-Egress-Submitter", value: [])]
        XCTAssertEqual(IdentityResolver.stampRemovals(in: headers, named: "X-Egress-Submitter").map(\.occurrence), [3, 2, 1])
        XCTAssertEqual(IdentityResolver.stampRemovals(in: headers, named: "X-Other"), [])
    }

    func testConfiguredStampHeaderName() {
        let stamp = makeStamp()
        let resolver = stampedResolver { $0.stampHeader = "X-Submitted-By" }
        let resolution = resolver.resolve(localFacts([header(stamp, name: "X-Submitted-By")]), now: now)
        XCTAssertEqual(resolution.identity.keys[1].description, "account:alice")
        XCTAssertEqual(resolution.removeHeaders, [HeaderRemoval(name: "X-Submitted-By", occurrence: 1)])

        // A header under the default name is then just text.
        let other = resolver.resolve(localFacts([header(stamp)]), now: now)
        XCTAssertTrue(other.identity.keys.contains(.localUnverified))
        XCTAssertEqual(other.removeHeaders, [])
    }

    func testStampedSenderDifferingFromEnvelope() {
        let cases: [(stamped: String, envelope: String, changed: Bool)] = [
            ("alice@shop.example", "<alice@shop.example>", false),
            ("<alice@SHOP.example>", "<alice@shop.example>", false),
            ("alice", "<alice@host.example>", false),
            ("", "<anyone@shop.example>", false),
            ("alice@shop.example", "<bob@shop.example>", true),
            ("alice", "<bob@host.example>", true),
        ]
        for (stamped, envelope, changed) in cases {
            let resolution = stampedResolver().resolve(localFacts([header(makeStamp(from: stamped))], sender: envelope), now: now)
            XCTAssertNotNil(resolution.stamp, "\(stamped) vs \(envelope)")
            XCTAssertEqual(resolution.symbols.contains(IdentitySymbol.stampSenderChanged), changed, "\(stamped) vs \(envelope)")
        }
    }

    // MARK: PHP's script header

    func testPHPHeaderAgreeingWithStamp() {
        let php = Header(name: "X-PHP-Originating-Script", value: Array("1001:mailer.php".utf8))
        let resolution = stampedResolver().resolve(localFacts([header(makeStamp(script: "")), php]), now: now)
        XCTAssertEqual(resolution.identity.keys.first?.description, "script:alice:/home/alice/public_html/wp-content/uploads/mailer.php")
        XCTAssertEqual(resolution.symbols, [])
    }

    func testPHPHeaderDoesNotReplaceStampedScript() {
        let php = Header(name: "X-PHP-Originating-Script", value: Array("1001:other.php".utf8))
        let resolution = stampedResolver().resolve(localFacts([header(makeStamp()), php]), now: now)
        XCTAssertEqual(resolution.identity.keys.first?.description, "script:alice:/home/alice/public_html/wp-content/uploads/x.php")
    }

    func testPHPHeaderDisagreeingWithStamp() {
        let php = Header(name: "X-PHP-Originating-Script", value: Array("1002:bob.php".utf8))
        let resolution = stampedResolver().resolve(localFacts([header(makeStamp(script: "")), php, php]), now: now)
        XCTAssertEqual(resolution.identity.description, "account:alice<sender:alice@shop.example<domain:shop.example<server")
        XCTAssertEqual(resolution.symbols, [IdentitySymbol.phpScriptUIDMismatch])
    }

    func testPHPHeaderWithoutVerifiedUIDNamesNothing() {
        let php = Header(name: "X-PHP-Originating-Script", value: Array("1001:x.php".utf8))
        let resolution = stampedResolver().resolve(localFacts([php]), now: now)
        XCTAssertEqual(resolution.identity.description, "sender:alice@shop.example<domain:shop.example<local-unverified<server")
        XCTAssertEqual(resolution.symbols, [])
    }

    // MARK: Trusted local envelope sender

    func testTrustedLocalEnvelopeSender() {
        let cases: [(name: String, trust: Bool, domains: [String], sender: String, expected: String)] = [
            ("off by default", false, ["host.example"], "<alice@host.example>",
             "sender:alice@host.example<domain:host.example<local-unverified<server"),
            ("local domain", true, ["host.example"], "<alice@host.example>",
             "account:alice<sender:alice@host.example<domain:host.example<server"),
            ("local domain in other case", true, ["Host.Example"], "<alice@HOST.example>",
             "account:alice<sender:alice@host.example<domain:host.example<server"),
            ("bare local part", true, [], "<bob>", "account:bob<sender:bob<server"),
            ("foreign domain", true, ["host.example"], "<alice@shop.example>",
             "sender:alice@shop.example<domain:shop.example<local-unverified<server"),
            ("no such account", true, ["host.example"], "<mallory@host.example>",
             "sender:mallory@host.example<domain:host.example<local-unverified<server"),
            ("null sender", true, ["host.example"], "<>", "local-unverified<server"),
        ]
        for item in cases {
            let resolver = stampedResolver {
                $0.trustLocalEnvelopeSender = item.trust
                $0.localSenderDomains = item.domains
            }
            let resolution = resolver.resolve(localFacts([], sender: item.sender), now: now)
            XCTAssertEqual(resolution.identity.description, item.expected, item.name)
        }
    }

    func testTrustedSenderIgnoredWhenStampFails() {
        var tampered = makeStamp()
        tampered.account = "bob"
        let resolver = stampedResolver {
            $0.trustLocalEnvelopeSender = true
            $0.localSenderDomains = ["shop.example"]
        }
        let resolution = resolver.resolve(localFacts([header(tampered)]), now: now)
        XCTAssertTrue(resolution.identity.keys.contains(.localUnverified))
        XCTAssertEqual(resolution.symbols, [IdentitySymbol.stampForged])
    }

    func testTrustedSenderAndPHPHeader() {
        let resolver = stampedResolver {
            $0.trustLocalEnvelopeSender = true
            $0.localSenderDomains = ["host.example"]
        }
        let agreeing = Header(name: "X-PHP-Originating-Script", value: Array("1001:x.php".utf8))
        let disagreeing = Header(name: "X-PHP-Originating-Script", value: Array("33:x.php".utf8))

        let good = resolver.resolve(localFacts([agreeing], sender: "<alice@host.example>"), now: now)
        XCTAssertEqual(good.identity.description, "script:alice:x.php<account:alice<sender:alice@host.example<domain:host.example<server")

        let bad = resolver.resolve(localFacts([disagreeing], sender: "<alice@host.example>"), now: now)
        XCTAssertEqual(bad.identity.description, "account:alice<sender:alice@host.example<domain:host.example<server")
        XCTAssertEqual(bad.symbols, [IdentitySymbol.phpScriptUIDMismatch])
    }
}
