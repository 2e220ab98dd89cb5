// Tests for resolving the identity keys of a message on both submission paths.

import XCTest
@testable import EgressCore

final class IdentityTests: XCTestCase {
    private let policy = Policy(configuration: .defaults)

    private func identity(_ facts: MessageFacts) -> String {
        policy.identity(for: facts).description
    }

    func testSMTPWithLoginHasEveryLevel() {
        let facts = MessageFacts(path: .smtp, clientAddress: "192.0.2.7", saslLogin: "alice",
                                 envelopeSender: "<alice@shop.example>")
        XCTAssertEqual(identity(facts), "login:alice<sender:alice@shop.example<domain:shop.example<ip:192.0.2.7<server")
        XCTAssertEqual(policy.identity(for: facts).keys, [
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
        XCTAssertEqual(identity(facts), "sender:www-data@host.example<domain:host.example<server")
    }

    func testLocalNullSenderIsServerOnly() {
        let facts = MessageFacts(path: .local, clientAddress: "127.0.0.1", envelopeSender: "<>")
        XCTAssertEqual(identity(facts), "server")
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
        XCTAssertEqual(policy.identity(for: first), policy.identity(for: second))
    }
}
