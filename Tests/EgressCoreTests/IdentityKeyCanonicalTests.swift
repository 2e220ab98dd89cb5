// Identity keys typed by an admin, turned into the form the identity resolver builds, and
// the keys that no message can carry rejected with a reason. The last test resolves real
// messages and checks that their keys come out of canonicalKey unchanged.

import Foundation
import XCTest
@testable import EgressCore

final class IdentityKeyCanonicalTests: XCTestCase {
    private let resolver = IdentityResolver(settings: IdentitySettings())

    func testCanonicalForms() throws {
        let cases: [(String, String)] = [
            ("sender:Carol@X.Example", "sender:Carol@x.example"),
            ("sender:<Carol@X.Example.>", "sender:Carol@x.example"),
            ("sender:carol", "sender:carol"),
            ("domain:X.Example", "domain:x.example"),
            ("domain:shop.example.", "domain:shop.example"),
            ("ip:192.0.2.7", "ip:192.0.2.7"),
            ("ip:2001:DB8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"),
            ("ip:2001:db8:1:2::/64", "ip:2001:db8:1:2::/64"),
            ("ip:[2001:db8:1:2::9]", "ip:2001:db8:1:2::/64"),
            ("ip:::ffff:192.0.2.7", "ip:192.0.2.7"),
            ("login: crm ", "login:crm"),
            ("login:CRM", "login:CRM"),
            ("account:alice", "account:alice"),
            ("account:#1001", "account:#1001"),
            ("script:alice:/home/alice/public_html/wp content/x.php", "script:alice:/home/alice/public_html/wp content/x.php"),
            ("local-unverified", "local-unverified"),
            ("server", "server"),
        ]
        for (typed, canonical) in cases {
            XCTAssertEqual(try resolver.canonicalKey(typed), canonical, typed)
        }
    }

    func testIPv6GroupingFollowsTheConfiguredPrefix() throws {
        var settings = IdentitySettings()
        settings.ipv6PrefixLength = 48
        let wide = IdentityResolver(settings: settings)
        XCTAssertEqual(try wide.canonicalKey("ip:2001:db8:1:2::9"), "ip:2001:db8:1::/48")
        XCTAssertThrowsError(try wide.canonicalKey("ip:2001:db8:1:2::/64")) { error in
            XCTAssertTrue("\(error)".contains("identity.ipv6_prefix is 48"), "\(error)")
        }
    }

    func testInvalidKeysAreRejected() {
        let cases: [(String, String)] = [
            ("ip:999.1.1.1", "invalid IP address '999.1.1.1'"),
            ("ip:shop.example", "invalid IP address"),
            ("ip:192.0.2.7/24", "IPv4 keys are single addresses"),
            ("ip:2001:db8::/x", "invalid prefix length"),
            ("planet:earth", "unknown level 'planet'"),
            ("acount:alice", "did you mean 'account'"),
            ("sender:", "no value"),
            ("sender:<>", "null sender"),
            ("login:   ", "empty value"),
            ("account: ", "empty value"),
            ("domain:a@b.example", "invalid domain"),
            ("script:alice", "expected script:ACCOUNT:PATH"),
            ("script::/x.php", "expected script:ACCOUNT:PATH"),
            ("script:alice:", "expected script:ACCOUNT:PATH"),
            ("", "empty"),
            ("server:x", "takes no value"),
        ]
        for (typed, expected) in cases {
            XCTAssertThrowsError(try resolver.canonicalKey(typed), typed) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(typed): \(error)")
            }
        }
    }

    func testResolvedKeysAreCanonicalAlready() throws {
        let facts = MessageFacts(path: .smtp, clientAddress: "IPv6:2001:DB8:5:6::1", saslLogin: "crm",
                                 envelopeSender: "<Info@Shop.Example>")
        let keys = resolver.resolve(facts, now: Date()).identity.keys.map(\.description)
        XCTAssertEqual(keys, ["login:crm", "sender:Info@shop.example", "domain:shop.example", "ip:2001:db8:5:6::/64", "server"])
        for key in keys {
            XCTAssertEqual(try resolver.canonicalKey(key), key)
        }
    }
}
