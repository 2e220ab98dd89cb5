// Tests for the `identity:` section of the config file: defaults, every key, errors with their
// position, the summary, and sender patterns for the new identity levels.

import Foundation
import XCTest
@testable import EgressCore

final class IdentitySettingsTests: XCTestCase {
    func testDefaults() {
        let settings = Configuration.defaults.identity
        XCTAssertEqual(settings.stampHeader, "X-Egress-Submitter")
        XCTAssertEqual(settings.stampKeyFile, "/etc/egress-milter/submit.key")
        XCTAssertEqual(settings.stampMaximumAgeSeconds, 3600)
        XCTAssertEqual(settings.ipv6PrefixLength, 64)
        XCTAssertFalse(settings.trustLocalEnvelopeSender)
        XCTAssertEqual(settings.localSenderDomains, [])
        XCTAssertNil(settings.stampKey)
    }

    func testEveryKeyIsParsed() throws {
        let yaml = """
            identity:
              stamp_header: X-Submitted-By
              stamp_key_file: /srv/keys/stamp.key
              stamp_max_age: 10m
              ipv6_prefix: 56
              trust_local_envelope_sender: true
              local_sender_domains: [host.example, Web1.Example]
            """
        let settings = try Configuration.parse(yaml, file: "t.yaml").identity
        XCTAssertEqual(settings.stampHeader, "X-Submitted-By")
        XCTAssertEqual(settings.stampKeyFile, "/srv/keys/stamp.key")
        XCTAssertEqual(settings.stampMaximumAgeSeconds, 600)
        XCTAssertEqual(settings.ipv6PrefixLength, 56)
        XCTAssertTrue(settings.trustLocalEnvelopeSender)
        XCTAssertEqual(settings.localSenderDomains, ["host.example", "Web1.Example"])
    }

    func testBooleanForms() throws {
        let cases: [(String, Bool)] = [("true", true), ("True", true), ("TRUE", true), ("false", false), ("False", false)]
        for (text, value) in cases {
            let settings = try Configuration.parse("identity:\n  trust_local_envelope_sender: \(text)\n", file: "t.yaml").identity
            XCTAssertEqual(settings.trustLocalEnvelopeSender, value, text)
        }
    }

    func testErrorsNamePositionAndKey() {
        let cases: [(yaml: String, error: String)] = [
            ("identity:\n  stamp_heder: X-A\n",
             "t.yaml:2:3: identity.stamp_heder: unknown key; did you mean 'stamp_header'?"),
            ("identity:\n  stamp_header: \"X A\"\n",
             "t.yaml:2:17: identity.stamp_header: invalid header name 'X A'; use letters, digits and '-', without ':' or spaces"),
            ("identity:\n  stamp_header: \"\"\n",
             "t.yaml:2:17: identity.stamp_header: must not be empty"),
            ("identity:\n  stamp_key_file: submit.key\n",
             "t.yaml:2:19: identity.stamp_key_file: must be an absolute path, such as /var/lib/egress-milter"),
            ("identity:\n  stamp_max_age: 1 week\n",
             "t.yaml:2:18: identity.stamp_max_age: invalid duration '1 week'; expected seconds, or a number with the unit s, m, h or d, such as 30s, 5m or 1h"),
            ("identity:\n  stamp_max_age: 0\n",
             "t.yaml:2:18: identity.stamp_max_age: must be at least 1 second"),
            ("identity:\n  ipv6_prefix: 129\n",
             "t.yaml:2:16: identity.ipv6_prefix: must be a prefix length from 1 to 128, not 129; 64 groups the usual customer network"),
            ("identity:\n  ipv6_prefix: /64\n",
             "t.yaml:2:16: identity.ipv6_prefix: expected an integer, found '/64'"),
            ("identity:\n  trust_local_envelope_sender: yes\n",
             "t.yaml:2:32: identity.trust_local_envelope_sender: expected true or false, found 'yes'"),
            ("identity:\n  trust_local_envelope_sender: \"true\"\n",
             "t.yaml:2:32: identity.trust_local_envelope_sender: expected true or false, found the string \"true\""),
            ("identity:\n  local_sender_domains: host.example\n",
             "t.yaml:2:25: identity.local_sender_domains: expected a sequence of domains such as [host.example], found 'host.example'"),
            ("identity:\n  local_sender_domains: [\"a@host.example\"]\n",
             "t.yaml:2:26: identity.local_sender_domains[0]: invalid domain 'a@host.example'; write the domain alone, such as host.example"),
            ("identity: [1]\n",
             "t.yaml:1:11: identity: expected a mapping with the keys stamp_header, stamp_key_file, stamp_max_age, ipv6_prefix, trust_local_envelope_sender, local_sender_domains, found a sequence"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try Configuration.parse(yaml, file: "t.yaml"), yaml) { error in
                XCTAssertEqual("\(error)", expected, yaml)
            }
        }
    }

    func testSummaryRoundTripWithoutKey() throws {
        var configuration = Configuration.defaults
        configuration.identity.stampHeader = "X-Submitted-By"
        configuration.identity.stampKeyFile = "/srv/keys/a key"
        configuration.identity.stampMaximumAgeSeconds = 90
        configuration.identity.ipv6PrefixLength = 48
        configuration.identity.trustLocalEnvelopeSender = true
        configuration.identity.localSenderDomains = ["host.example", "yes"]
        configuration.identity.stampKey = try StampKey(bytes: Array("secret-secret-secret".utf8))

        let summary = configuration.summary()
        XCTAssertFalse(summary.contains("secret"), summary)
        XCTAssertTrue(summary.contains("identity:\n  stamp_header: X-Submitted-By\n"), summary)

        var expected = configuration
        expected.identity.stampKey = nil
        XCTAssertEqual(try Configuration.parse(summary, file: "summary.yaml"), expected)
    }

    // MARK: Sender patterns

    func testSenderPatternsForNewLevels() throws {
        let patterns = ["account:alice", "script:alice:*", "local-unverified", "LOCAL-UNVERIFIED", "script:*/uploads/*"]
        for pattern in patterns {
            let yaml = "senders:\n  - match: \"\(pattern)\"\n    action: hold\n"
            XCTAssertEqual(try Configuration.parse(yaml, file: "t.yaml").senders.first?.match, pattern)
        }
    }

    func testSenderPatternErrors() {
        let cases: [(yaml: String, error: String)] = [
            ("senders:\n  - match: \"local-unverified:x\"\n    action: hold\n",
             "t.yaml:2:12: senders[0].match: the local-unverified key has no value; write just 'local-unverified'"),
            ("senders:\n  - match: \"acount:alice\"\n    action: hold\n",
             "t.yaml:2:12: senders[0].match: unknown identity level 'acount'; did you mean 'account'? (levels: script, account, login, sender, domain, ip, local-unverified, server)"),
            ("identity:\n  ipv6_prefix: 48\nsenders:\n  - match: \"ip:2001:db8:1::/64\"\n    action: hold\n",
             "t.yaml:4:12: senders[0].match: pattern 'ip:2001:db8:1::/64' never matches: IPv4 keys have no prefix length and IPv6 keys end in /48 (identity.ipv6_prefix); match ranges with a glob such as ip:192.0.2.*"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try Configuration.parse(yaml, file: "t.yaml"), yaml) { error in
                XCTAssertEqual("\(error)", expected, yaml)
            }
        }
    }

    func testIPv6PatternWithConfiguredPrefix() throws {
        let yaml = "senders:\n  - match: \"ip:2001:db8:1::/48\"\n    action: hold\nidentity:\n  ipv6_prefix: 48\n"
        XCTAssertEqual(try Configuration.parse(yaml, file: "t.yaml").senders.first?.match, "ip:2001:db8:1::/48")
    }
}
