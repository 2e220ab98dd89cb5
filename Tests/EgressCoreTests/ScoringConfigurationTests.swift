// Tests for the `scoring:` section of the config file: every key, the errors (bad patterns
// above all), the hosted domains file and the summary.

import Foundation
import XCTest
@testable import EgressCore

final class ScoringConfigurationTests: XCTestCase {
    private static let everyKey = """
        scoring:
          enabled: true
          scan_limit: 512KiB
          max_nesting: 8
          thresholds: {tag: 4.5, hold: 10, reject: off}
          local_thresholds: {tag: 6, hold: 9.5}
          hosted_domains: [Shop.Example, other.example]
          hosted_domains_file: ""
          bulk_recipients: 30
          bulk_recipient_domains: 5
          campaign:
            enabled: false
            window: 30m
            recipients: 100
            senders: 4
            subject_burst: 10
            subject_window: 5m
          limit_weight: 3
          headers:
            flag: X-Outbound-Spam
            score: ""
            status: X-Outbound-Status
          subject_prefix: "[SPAM]"
          pattern_match_limit: 5000
          pattern_depth_limit: 200
          weights: {FROM_FREEMAIL: 0.5, SHOP_CASINO: 4}
          disabled: [SUBJECT_EXCLAMATIONS]
          rules:
            - name: SHOP_CASINO
              target: body
              pattern: '(?i)\\bonline casino\\b'
              weight: 3.5
              description: casino advertising
            - name: CRM_HEADER
              target: header
              header: X-Mailer
              pattern: 'MassMailer'
              weight: 2
        """

    func testEveryKeyIsRead() throws {
        let scoring = try Configuration.parse(Self.everyKey, file: "t.yaml").scoring
        XCTAssertTrue(scoring.enabled)
        XCTAssertEqual(scoring.scanLimits.scanLimitBytes, 512 * 1024)
        XCTAssertEqual(scoring.scanLimits.maximumNestingDepth, 8)
        XCTAssertEqual(scoring.smtpThresholds, ScoreThresholds(tag: 4.5, hold: 10, reject: nil))
        XCTAssertEqual(scoring.localThresholds, ScoreThresholds(tag: 6, hold: 9.5, reject: nil))
        XCTAssertEqual(scoring.hostedDomains, ["shop.example", "other.example"])
        XCTAssertEqual(scoring.bulkRecipients, 30)
        XCTAssertEqual(scoring.bulkRecipientDomains, 5)
        XCTAssertFalse(scoring.campaign.enabled)
        XCTAssertEqual(scoring.campaign.windowSeconds, 1800)
        XCTAssertEqual(scoring.campaign.recipients, 100)
        XCTAssertEqual(scoring.campaign.senders, 4)
        XCTAssertEqual(scoring.campaign.subjectBurst, 10)
        XCTAssertEqual(scoring.campaign.subjectWindowSeconds, 300)
        XCTAssertEqual(scoring.limitWeight, 3)
        XCTAssertEqual(scoring.headers.flag, "X-Outbound-Spam")
        XCTAssertEqual(scoring.headers.score, "")
        XCTAssertEqual(scoring.headers.status, "X-Outbound-Status")
        XCTAssertEqual(scoring.subjectPrefix, "[SPAM]")
        XCTAssertEqual(scoring.patternMatchLimit, 5000)
        XCTAssertEqual(scoring.patternDepthLimit, 200)
        XCTAssertEqual(scoring.weights, [BuiltInSymbol.fromFreeMail: 0.5, "SHOP_CASINO": 4])
        XCTAssertEqual(scoring.disabled, [BuiltInSymbol.subjectExclamations])
        XCTAssertEqual(scoring.rules, [
            CustomRule(name: "SHOP_CASINO", target: .body, pattern: "(?i)\\bonline casino\\b", weight: 3.5,
                       description: "casino advertising", line: 29),
            CustomRule(name: "CRM_HEADER", target: .header, header: "X-Mailer", pattern: "MassMailer", weight: 2, line: 34),
        ])
    }

    func testSummaryReadsBackTheSame() throws {
        let configuration = try Configuration.parse(Self.everyKey, file: "t.yaml")
        let again = try Configuration.parse(configuration.summary(), file: "summary.yaml")
        XCTAssertEqual(again.scoring.rules.map(\.pattern), configuration.scoring.rules.map(\.pattern))
        var expected = configuration.scoring
        var actual = again.scoring
        // Line numbers differ between the two files.
        expected.rules = expected.rules.map { var rule = $0; rule.line = 0; return rule }
        actual.rules = actual.rules.map { var rule = $0; rule.line = 0; return rule }
        XCTAssertEqual(actual, expected)
        XCTAssertEqual(try Configuration.parse(Configuration.defaults.summary(), file: "d.yaml"), Configuration.defaults)
    }

    func testCustomRulesScore() throws {
        let configuration = try Configuration.parse(Self.everyKey, file: "t.yaml")
        var sample = Sample().with(body: "Play at our Online Casino tonight\n").setting("X-Mailer", "MassMailer 2.0")
        sample.configure = { $0 = configuration.scoring }
        let report = sample.score()
        XCTAssertEqual(report.hits.first { $0.name == "SHOP_CASINO" }?.detail, "Online Casino")
        XCTAssertEqual(report.hits.first { $0.name == "SHOP_CASINO" }?.weight, 4)
        XCTAssertEqual(report.hits.first { $0.name == "CRM_HEADER" }?.detail, "MassMailer")
        XCTAssertEqual(report.score, 6)
        XCTAssertEqual(report.action, .tag)
    }

    func testErrors() {
        let cases: [(String, String)] = [
            ("scoring:\n  rules:\n    - name: SHOP_CASINO\n      target: body\n      pattern: 'casino(('\n      weight: 1\n",
             "t.yaml:5:16: scoring.rules[0].pattern: invalid PCRE2 pattern in rule SHOP_CASINO: missing closing parenthesis at offset 8"),
            ("scoring:\n  rules:\n    - name: shop casino\n      target: body\n      pattern: x\n      weight: 1\n",
             "t.yaml:3:13: scoring.rules[0].name: invalid rule name 'shop casino'; use capital letters, digits and '_', such as SHOP_CASINO (at most 64)"),
            ("scoring:\n  rules:\n    - name: GTUBE\n      target: body\n      pattern: x\n      weight: 1\n",
             "t.yaml:3:7: scoring.rules[0].name: the symbol GTUBE exists already; give each rule its own name"),
            ("scoring:\n  rules:\n    - name: A1\n      target: bodies\n      pattern: x\n      weight: 1\n",
             "t.yaml:4:15: scoring.rules[0].target: invalid value 'bodies' (expected one of: header, body, uri, attachment_name)"),
            ("scoring:\n  rules:\n    - name: A1\n      target: body\n      weight: 1\n",
             "t.yaml:3:7: scoring.rules[0].pattern: missing key; every scoring rule needs name, target, pattern and weight"),
            ("scoring:\n  rules:\n    - name: A1\n      target: body\n      header: Subject\n      pattern: x\n      weight: 1\n",
             "t.yaml:5:15: scoring.rules[0].header: only rules with target: header name a header"),
            ("scoring:\n  weights: {FROM_FREMAIL: 1}\n",
             "t.yaml:2:13: scoring.weights.FROM_FREMAIL: unknown symbol 'FROM_FREMAIL'; did you mean 'FROM_FREEMAIL'? (see egressctl score --list-rules)"),
            ("scoring:\n  weights: {FROM_FREEMAIL: lots}\n",
             "t.yaml:2:28: scoring.weights.FROM_FREEMAIL: expected a number such as 5 or 2.5, found 'lots'"),
            ("scoring:\n  disabled: [GTUBEE]\n",
             "t.yaml:2:14: scoring.disabled[0]: unknown symbol 'GTUBEE'; did you mean 'GTUBE'? (see egressctl score --list-rules)"),
            ("scoring:\n  local_thresholds: {reject: 20}\n",
             "t.yaml:2:30: scoring.local_thresholds.reject: reject is not allowed on the local path, because the bounce would go to a sender a script can forge; use hold"),
            ("scoring:\n  thresholds: {tag: 9, hold: 5}\n",
             "t.yaml:2:15: scoring.thresholds: the tag threshold (9.0) is above the hold threshold (5.0)"),
            ("scoring:\n  scan_limit: 100GiB\n",
             "t.yaml:2:15: scoring.scan_limit: invalid size '100GiB'; write bytes, or a number with KiB or MiB, such as 1MiB"),
            ("scoring:\n  scan_limit: 128MiB\n",
             "t.yaml:2:15: scoring.scan_limit: 128MiB is more than the maximum of 64MiB"),
            ("scoring:\n  max_nesting: 0\n", "t.yaml:2:16: scoring.max_nesting: must be from 1 to 100, not 0"),
            ("scoring:\n  hosted_domains: [\"alice@shop.example\"]\n",
             "t.yaml:2:20: scoring.hosted_domains[0]: invalid domain 'alice@shop.example'; write the domain alone, such as shop.example"),
            ("scoring:\n  hosted_domains_file: domains.txt\n",
             "t.yaml:2:24: scoring.hosted_domains_file: must be an absolute path, such as /var/lib/egress-milter"),
            ("scoring:\n  campaign: {senders: 40}\n", "t.yaml:2:23: scoring.campaign.senders: must be from 2 to 16, not 40"),
            ("scoring:\n  sacn_limit: 1MiB\n", "t.yaml:2:3: scoring.sacn_limit: unknown key; did you mean 'scan_limit'?"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try Configuration.parse(yaml, file: "t.yaml"), yaml) { error in
                XCTAssertEqual("\(error)", expected, yaml)
            }
        }
    }

    func testHostedDomainsFile() throws {
        let directory = NSTemporaryDirectory() + "scoring-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let domains = directory + "/hosted"
        try "# customers\nShop.Example\n  other.example   # second\n\n".write(toFile: domains, atomically: true, encoding: .utf8)
        let config = directory + "/egress-milter.yaml"
        try "scoring:\n  hosted_domains_file: \(domains)\n".write(toFile: config, atomically: true, encoding: .utf8)

        let configuration = try Configuration.load(contentsOf: config)
        XCTAssertEqual(configuration.scoring.hostedDomainsFromFile, ["shop.example", "other.example"])
        let sample = Sample().setting("From", "x@elsewhere.example").configured { $0 = configuration.scoring }
        XCTAssertTrue(sample.symbols.contains(BuiltInSymbol.fromNotHosted))
        XCTAssertFalse(Sample().configured { $0 = configuration.scoring }.symbols.contains(BuiltInSymbol.fromNotHosted))

        try "shop.example\nnot a domain\n".write(toFile: domains, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Configuration.load(contentsOf: config)) { error in
            XCTAssertEqual("\(error)", "\(domains):2:1: invalid domain 'not a domain'; write the domain alone, such as shop.example")
        }
        try FileManager.default.removeItem(atPath: domains)
        XCTAssertThrowsError(try Configuration.load(contentsOf: config)) { error in
            XCTAssertEqual("\(error)", "\(domains): cannot open the hosted domains file: No such file or directory")
        }
    }

    func testPackagedFileHasTheDefaults() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Config/egress-milter.yaml").path
        XCTAssertEqual(try Configuration.load(contentsOf: path).scoring, ScoringSettings())
    }
}
