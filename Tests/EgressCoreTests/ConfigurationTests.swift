// Tests for decoding valid configuration files, the summary, and the packaged default file.

import Foundation
import XCTest
@testable import EgressCore

final class ConfigurationTests: XCTestCase {
    /// The repository root, found from this file's path, so the test reads the real Config/.
    private static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()

    private static let defaultFile = repositoryRoot.appendingPathComponent("Config/egress-milter.yaml").path

    private static let everyKeyYAML = """
        listen: inet:8891@127.0.0.1
        socket:
          mode: "0640"
          group: mail
        user: milter
        state_directory: /srv/egress
        timeout: 2m
        fail_action: accept
        log_level: debug
        paths:
          local_daemon_names: [local-submit, pickup-milter]
        headers:
          status: X-Outbound-Check
        replies:
          tempfail:
            code: 452
            status: 4.2.2
            text: "Slow down, please"
          reject:
            code: 554
            status: 5.7.0
            text: "Refused by policy"
        senders:
          - match: "sender:*@blocked.example"
            action: reject
            reason: blocked domain
          - match: login:newsletter
            action: accept
            scoring: false
        """

    // MARK: Defaults

    func testDefaultsMatchDocumentedValues() {
        let defaults = Configuration.defaults
        XCTAssertEqual(defaults.listen, "unix:/var/spool/postfix/egress-milter/milter.sock")
        XCTAssertEqual(defaults.socketMode, 0o660)
        XCTAssertEqual(defaults.socketGroup, "postfix")
        XCTAssertEqual(defaults.user, "egress-milter")
        XCTAssertEqual(defaults.stateDirectory, "/var/lib/egress-milter")
        XCTAssertEqual(defaults.timeoutSeconds, 300)
        XCTAssertEqual(defaults.failAction, .tempfail)
        XCTAssertEqual(defaults.logLevel, .notice)
        XCTAssertEqual(defaults.localDaemonNames, ["egress-local"])
        XCTAssertEqual(defaults.statusHeader, "X-Egress-Milter")
        XCTAssertEqual(defaults.tempfailReply, ReplyText(code: 451, enhancedStatus: "4.7.1", text: "Too much mail from this sender, try again later"))
        XCTAssertEqual(defaults.rejectReply, ReplyText(code: 550, enhancedStatus: "5.7.1", text: "Message rejected by outbound policy"))
        XCTAssertEqual(defaults.senders, [])
        XCTAssertEqual(Configuration(), defaults)
    }

    func testEmptyInputsGiveDefaults() throws {
        let inputs = ["", "\n\n", "# only a comment\n", "---\n", "--- ~\n", "null\n", "---\n...\n"]
        for input in inputs {
            XCTAssertEqual(try Configuration.parse(input, file: "t.yaml"), Configuration.defaults, "input: \(input.debugDescription)")
        }
    }

    func testEmptySectionsKeepDefaults() throws {
        let configuration = try Configuration.parse("socket:\npaths: {}\nheaders:\nreplies:\n  tempfail: {}\nsenders:\n", file: "t.yaml")
        XCTAssertEqual(configuration, Configuration.defaults)
    }

    // MARK: Every key

    func testEveryKeyIsParsed() throws {
        let configuration = try Configuration.parse(Self.everyKeyYAML, file: "t.yaml")

        XCTAssertEqual(configuration.listen, "inet:8891@127.0.0.1")
        XCTAssertEqual(configuration.socketMode, 0o640)
        XCTAssertEqual(configuration.socketGroup, "mail")
        XCTAssertEqual(configuration.user, "milter")
        XCTAssertEqual(configuration.stateDirectory, "/srv/egress")
        XCTAssertEqual(configuration.timeoutSeconds, 120)
        XCTAssertEqual(configuration.failAction, .accept)
        XCTAssertEqual(configuration.logLevel, .debug)
        XCTAssertEqual(configuration.localDaemonNames, ["local-submit", "pickup-milter"])
        XCTAssertEqual(configuration.statusHeader, "X-Outbound-Check")
        XCTAssertEqual(configuration.tempfailReply, ReplyText(code: 452, enhancedStatus: "4.2.2", text: "Slow down, please"))
        XCTAssertEqual(configuration.rejectReply, ReplyText(code: 554, enhancedStatus: "5.7.0", text: "Refused by policy"))
        XCTAssertEqual(configuration.senders, [
            SenderRule(match: "sender:*@blocked.example", action: .reject, reason: "blocked domain"),
            SenderRule(match: "login:newsletter", action: .accept, reason: nil, scoring: false),
        ])
    }

    func testPartialReplyKeepsOtherDefaults() throws {
        let configuration = try Configuration.parse("replies:\n  reject:\n    text: Go away\n", file: "t.yaml")
        XCTAssertEqual(configuration.rejectReply, ReplyText(code: 550, enhancedStatus: "5.7.1", text: "Go away"))
        XCTAssertEqual(configuration.tempfailReply, Configuration.defaults.tempfailReply)
    }

    func testMultiLineReplyText() throws {
        let configuration = try Configuration.parse("replies:\n  tempfail:\n    text: \"Slow down\\nSee the help page\"\n", file: "t.yaml")
        XCTAssertEqual(configuration.tempfailReply.text, "Slow down\nSee the help page")
    }

    func testTimeoutUnits() throws {
        let cases: [(String, Int)] = [
            ("300", 300), ("45s", 45), ("5m", 300), ("1h", 3600), ("2d", 172_800), ("\"90s\"", 90), ("1", 1),
        ]
        for (text, seconds) in cases {
            let configuration = try Configuration.parse("timeout: \(text)\n", file: "t.yaml")
            XCTAssertEqual(configuration.timeoutSeconds, seconds, "timeout: \(text)")
        }
    }

    func testSocketModeForms() throws {
        let cases: [(String, UInt32)] = [("\"0660\"", 0o660), ("0660", 0o660), ("660", 0o660), ("\"0600\"", 0o600), ("0o640", 0o640)]
        for (text, mode) in cases {
            let configuration = try Configuration.parse("socket:\n  mode: \(text)\n", file: "t.yaml")
            XCTAssertEqual(configuration.socketMode, mode, "mode: \(text)")
        }
    }

    func testListenSpecsAccepted() throws {
        let specs = ["unix:/run/egress/milter.sock", "inet:8891", "inet:8891@127.0.0.1", "inet:8891@localhost", "inet6:8891@[::1]", "inet6:8891"]
        for spec in specs {
            let configuration = try Configuration.parse("listen: \"\(spec)\"\n", file: "t.yaml")
            XCTAssertEqual(configuration.listen, spec)
            XCTAssertNil(Configuration.listenSpecError(spec), spec)
        }
    }

    func testListenSpecErrorForCommandLine() {
        XCTAssertEqual(Configuration.listenSpecError("local:/x.sock"),
                       "unsupported listen type 'local:'; expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST")
        XCTAssertEqual(Configuration.listenSpecError("inet:99999@127.0.0.1"),
                       "invalid port '99999'; expected inet:PORT@HOST with PORT from 1 to 65535")
        XCTAssertEqual(Configuration.listenSpecError("unix:relative.sock"),
                       "the unix socket path must be absolute, as in unix:/run/egress-milter/milter.sock")
    }

    func testEmptyStatusHeaderDisablesIt() throws {
        let configuration = try Configuration.parse("headers:\n  status: \"\"\n", file: "t.yaml")
        XCTAssertEqual(configuration.statusHeader, "")
    }

    func testAliasReusesAnchoredValue() throws {
        let yaml = """
            senders:
              - match: "domain:a.example"
                action: hold
                reason: &abuse "abuse report"
              - match: "domain:b.example"
                action: hold
                reason: *abuse
            """
        let configuration = try Configuration.parse(yaml, file: "t.yaml")
        XCTAssertEqual(configuration.senders.map(\.reason), ["abuse report", "abuse report"])
    }

    func testSubmissionPathFromDaemonName() {
        let configuration = Configuration.defaults
        XCTAssertEqual(configuration.submissionPath(daemonName: "egress-local"), .local)
        XCTAssertEqual(configuration.submissionPath(daemonName: "smtpd"), .smtp)
        XCTAssertEqual(configuration.submissionPath(daemonName: nil), .smtp)
    }

    // MARK: Loading files

    func testLoadReadsFile() throws {
        let path = try writeTemporaryFile("fail_action: reject\nlog_level: warning\n")
        let configuration = try Configuration.load(contentsOf: path)
        XCTAssertEqual(configuration.failAction, .reject)
        XCTAssertEqual(configuration.logLevel, .warning)
    }

    func testLoadErrorNamesFileAndPosition() throws {
        let path = try writeTemporaryFile("log_level: notice\nsenders:\n  - match: server\n    acton: hold\n")
        XCTAssertThrowsError(try Configuration.load(contentsOf: path)) { error in
            XCTAssertEqual("\(error)", "\(path):4:5: senders[0].acton: unknown key; did you mean 'action'?")
        }
    }

    func testLoadMissingFileFails() {
        let path = NSTemporaryDirectory() + "egress-core-missing-\(UUID().uuidString).yaml"
        XCTAssertThrowsError(try Configuration.load(contentsOf: path)) { error in
            let configurationError = error as? ConfigurationError
            XCTAssertEqual(configurationError?.line, 0)
            XCTAssertEqual(configurationError?.description, "\(path): cannot open the config file: No such file or directory")
        }
    }

    func testLoadDirectoryFails() {
        let path = NSTemporaryDirectory()
        XCTAssertThrowsError(try Configuration.load(contentsOf: path)) { error in
            XCTAssertEqual((error as? ConfigurationError)?.message, "not a regular file")
        }
    }

    // MARK: Summary

    func testSummaryOfDefaultsIsTheDocumentedLayout() {
        let expected = """
            # Effective settings: the built-in defaults, overridden by what the configuration file sets.
            listen: unix:/var/spool/postfix/egress-milter/milter.sock
            socket:
              mode: "0660"
              group: postfix
            user: egress-milter
            state_directory: /var/lib/egress-milter
            timeout: 5m
            fail_action: tempfail
            log_level: notice
            paths:
              local_daemon_names: [egress-local]
            identity:
              stamp_header: X-Egress-Submitter
              stamp_key_file: /etc/egress-milter/submit.key
              stamp_max_age: 1h
              ipv6_prefix: 64
              trust_local_envelope_sender: false
              local_sender_domains: []
            headers:
              status: X-Egress-Milter
            replies:
              tempfail:
                code: 451
                status: "4.7.1"
                text: "Too much mail from this sender, try again later"
              reject:
                code: 550
                status: "5.7.1"
                text: "Message rejected by outbound policy"
            senders: []
            limits_overrides: ""
            limits: []
            control:
              socket: /run/egress-milter/control.sock
              mode: "0660"
              group: root
            scoring:
              enabled: true
              scan_limit: 1MiB
              max_nesting: 16
              thresholds: {tag: 5.0, hold: 12.0, reject: 20.0}
              local_thresholds: {tag: 5.0, hold: 10.0}
              hosted_domains: []
              hosted_domains_file: ""
              bulk_recipients: 20
              bulk_recipient_domains: 10
              campaign:
                enabled: true
                window: 1h
                recipients: 50
                senders: 3
                subject_burst: 20
                subject_window: 10m
              limit_weight: 5
              headers:
                flag: X-Spam-Flag
                score: X-Spam-Score
                status: X-Spam-Status
              subject_prefix: ""
              pattern_match_limit: 100000
              pattern_depth_limit: 1000
              weights: {}
              disabled: []
              rules: []
            notifications:
              mail_to: []
              mail_from: egress-milter
              command: []
              on_limit_trip: false
              period: 1h
              sendmail_command: [/usr/sbin/sendmail]
              timeout: 30s
              daily_summary:
                enabled: false
                at: "06:00"
                mail_to: []
            metrics:
              enabled: false
              listen: "127.0.0.1:9899"
              path: /metrics

            """
        XCTAssertEqual(Configuration.defaults.summary(), expected)
    }

    func testSummaryParsesBackToSameConfiguration() throws {
        var tricky = try Configuration.parse(Self.everyKeyYAML, file: "t.yaml")
        tricky.socketGroup = ""
        tricky.user = "1000"
        tricky.localDaemonNames = ["yes", "a b", "#hash", "x: y", "-dash", "*star", "ünïcode", "tab\there",
                                   "next\u{85}line", "line\u{2028}separator", "bell\u{7}", "~", "0x1F", "1e3"]
        tricky.tempfailReply.text = "Line \"one\" with \\ and %\nLine two: 'quoted'"
        tricky.senders.append(SenderRule(match: "ip:2001:db8:1:2::/64", action: .tag, reason: "é, ✓ and \"quotes\" kept"))
        tricky.senders.append(SenderRule(match: "server", action: .tempfail, reason: "null"))

        for configuration in [Configuration.defaults, tricky] {
            let summary = configuration.summary()
            let parsed = try Configuration.parse(summary, file: "summary.yaml")
            XCTAssertEqual(parsed, configuration, summary)
        }
    }

    // MARK: Packaged default file

    func testDefaultFileEqualsBuiltInDefaults() throws {
        let configuration = try Configuration.load(contentsOf: Self.defaultFile)
        XCTAssertEqual(configuration, Configuration.defaults)
    }

    func testDefaultFileSetsEveryKey() throws {
        let fileKeys = try keyPaths(of: String(contentsOfFile: Self.defaultFile, encoding: .utf8))
        let summaryKeys = try keyPaths(of: Configuration.defaults.summary())
        XCTAssertEqual(fileKeys, summaryKeys)
        XCTAssertEqual(summaryKeys.count, 85)
    }

    func testDefaultFileCommentsEveryKey() throws {
        let lines = try String(contentsOfFile: Self.defaultFile, encoding: .utf8).components(separatedBy: "\n")
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            let previous = lines[index - 1].trimmingCharacters(in: .whitespaces)
            XCTAssertTrue(previous.hasPrefix("#"), "line \(index + 1) '\(trimmed)' has no comment above it")
        }
    }

    // MARK: Helpers

    /// Returns the dotted paths of all mapping keys in a YAML text, sequences written as [].
    private func keyPaths(of text: String) throws -> Set<String> {
        var paths = Set<String>()
        func walk(_ node: YAMLNode, _ path: String) {
            switch node.content {
            case .scalar:
                break
            case .sequence(let items):
                items.forEach { walk($0, path + "[]") }
            case .mapping(let pairs):
                for (key, value) in pairs {
                    guard case .scalar(let name, _) = key.content else { continue }
                    let keyPath = path.isEmpty ? name : "\(path).\(name)"
                    paths.insert(keyPath)
                    walk(value, keyPath)
                }
            }
        }
        if let root = try YAMLTree.parse(Array(text.utf8)) {
            walk(root, "")
        }
        return paths
    }

    private func writeTemporaryFile(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "egress-core-\(UUID().uuidString).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
