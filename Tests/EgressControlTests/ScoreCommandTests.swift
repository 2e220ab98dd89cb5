// egressctl score on real messages (Tests/Fixtures/Scoring): exit statuses, the text report,
// JSON, standard input, custom configurations and usage errors.
import Foundation
import XCTest

@testable import egressctl

final class ScoreCommandTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/Scoring")
    private static let gtube = fixtures.appendingPathComponent("spamassassin-gtube.eml").path
    private static let ham = fixtures.appendingPathComponent("spamassassin-ham.eml").path

    /// Runs `egressctl score` with the built-in defaults, never the installed configuration.
    private func score(_ arguments: [String], input: String = "") throws -> ScoreRun {
        let config = NSTemporaryDirectory() + "score-\(UUID().uuidString).yaml"
        try "log_level: notice\n".write(toFile: config, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: config) }
        let hasConfig = arguments.contains("--config")
        return runScore((hasConfig ? [] : ["--config", config]) + arguments) { Data(input.utf8) }
    }

    func testSpamExitsOneAndListsSymbols() throws {
        let run = try score([Self.gtube])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.output.contains("score 1000.0, tag 5.0, hold 12.0, reject 20.0 (smtp path): reject"), run.output)
        XCTAssertTrue(run.output.contains("1000.0  GTUBE"), run.output)
        XCTAssertEqual(run.errors, "")
    }

    func testHamExitsZero() throws {
        let run = try score([Self.ham])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.hasPrefix(Self.ham + "\n"), run.output)
    }

    func testAnySpamAmongSeveralFilesExitsOne() throws {
        XCTAssertEqual(try score([Self.ham, Self.gtube]).status, 1)
    }

    func testJSONOutput() throws {
        let run = try score(["--json", "--path", "local", Self.gtube])
        XCTAssertEqual(run.status, 1)
        let decoded = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [[String: Any]]
        let message = try XCTUnwrap(decoded?.first)
        XCTAssertEqual(message["file"] as? String, Self.gtube)
        XCTAssertEqual(message["path"] as? String, "local")
        XCTAssertEqual(message["action"] as? String, "hold")
        XCTAssertEqual(message["is_spam"] as? Bool, true)
        XCTAssertEqual((message["thresholds"] as? [String: Double])?["tag"], 5)
        XCTAssertNil((message["thresholds"] as? [String: Double])?["reject"])
        let symbols = try XCTUnwrap(message["symbols"] as? [[String: Any]])
        XCTAssertEqual(symbols.first?["name"] as? String, "GTUBE")
        XCTAssertEqual(symbols.first?["weight"] as? Double, 1000)
    }

    func testStandardInput() throws {
        let run = try score(["-"], input: "Subject: hi\nFrom: a@b.example\n\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n")
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.output.hasPrefix("-\n"), run.output)
    }

    func testCustomRuleFromConfiguration() throws {
        let config = NSTemporaryDirectory() + "score-\(UUID().uuidString).yaml"
        try """
            scoring:
              thresholds: {tag: 2, hold: 50, reject: off}
              rules:
                - name: XIMIAN_MENTION
                  target: body
                  pattern: '(?i)ximian'
                  weight: 2.5
                  description: mentions Ximian
            """.write(toFile: config, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: config) }
        let run = try score(["--config", config, Self.ham])
        XCTAssertEqual(run.status, 1, run.output)
        let line = try XCTUnwrap(run.output.split(separator: "\n").first { $0.contains("XIMIAN_MENTION") })
        XCTAssertTrue(line.hasPrefix("      2.5  XIMIAN_MENTION "), String(line))
        XCTAssertTrue(line.hasSuffix("mentions Ximian: Ximian"), String(line))
        XCTAssertTrue(run.output.contains("reject off"), run.output)

        let listing = try score(["--config", config, "--list-rules"])
        XCTAssertEqual(listing.status, 0)
        XCTAssertTrue(listing.output.contains("XIMIAN_MENTION"), listing.output)
    }

    func testUsageErrorsExitTwo() throws {
        let cases: [([String], String)] = [
            ([], "egressctl score: expected at most one FILE.eml"),
            (["--frobnicate", Self.ham], "egressctl score: unknown option '--frobnicate'"),
            (["--path", "pigeon", Self.ham], "egressctl score: invalid --path 'pigeon'"),
            (["--sender"], "egressctl score: option --sender needs a value"),
            (["-", "-"], "egressctl score: standard input (-) can be read only once"),
            (["/nonexistent/message.eml"], "egressctl score: cannot read /nonexistent/message.eml"),
            (["--config", "/nonexistent/egress.yaml", Self.ham], "egressctl score: /nonexistent/egress.yaml: cannot open the config file"),
        ]
        for (arguments, message) in cases {
            let run = try score(arguments)
            XCTAssertEqual(run.status, 2, "\(arguments)")
            XCTAssertTrue(run.errors.hasPrefix(message) || (arguments.isEmpty && run.errors.contains("expected at least one FILE.eml")),
                          "\(arguments): \(run.errors)")
        }
    }

    func testHelpAndRuleList() throws {
        let help = try score(["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.output.hasPrefix("Usage: egressctl score"))
        let rules = try score(["--list-rules"])
        XCTAssertEqual(rules.status, 0)
        XCTAssertTrue(rules.output.contains("1000.0  GTUBE"), rules.output)
        XCTAssertTrue(rules.output.contains("0.75") || !rules.output.contains("0.8 "), rules.output)
    }
}
