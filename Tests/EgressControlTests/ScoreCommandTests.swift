// egressctl score on real messages (Tests/Fixtures/Scoring) and on files written to a temporary
// directory: exit statuses, the text report, JSON, standard input, custom configurations, the
// rule list, unreadable files in a batch, scoring turned off, and usage errors.
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
        XCTAssertTrue(run.output.contains("\n\n" + Self.ham + "\n  score "), run.output)
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
        XCTAssertTrue(run.output.contains("\n\n-\n  score "), run.output)
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
        XCTAssertTrue(line.hasPrefix("  2.5  XIMIAN_MENTION "), String(line))
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
            (["/nonexistent/message.eml"], "egressctl score: /nonexistent/message.eml: No such file or directory"),
            (["--list-rules", Self.ham], "egressctl score: --list-rules takes no FILE, got '\(Self.ham)'"),
            (["--list-rules", "--rcpt", "a@b.example"], "egressctl score: --list-rules takes no --path, --sender or --rcpt"),
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

    // MARK: Files in a temporary directory

    /// Creates a directory under the temporary directory that is removed after the test.
    private func makeDirectory() throws -> String {
        let directory = NSTemporaryDirectory() + "score-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        return directory
    }

    private func write(_ text: String, to name: String, in directory: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private static let gtubeMessage = """
        Subject: test
        From: a@b.example
        To: c@d.example
        Date: Sat, 05 Dec 2026 00:00:00 +0000
        Message-ID: <gtube@b.example>

        XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X

        """

    // MARK: --list-rules

    func testListRulesAsJSON() throws {
        let directory = try makeDirectory()
        let config = try write("""
            scoring:
              disabled: [HTML_ONLY]
            """, to: "egress.yaml", in: directory)
        let run = try score(["--config", config, "--json", "--list-rules"])
        XCTAssertEqual(run.status, 0, run.errors)
        XCTAssertEqual(run.errors, "")
        let rules = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [[String: Any]], run.output)
        let bySymbol = Dictionary(uniqueKeysWithValues: rules.map { ($0["symbol"] as? String ?? "", $0) })

        let gtube = try XCTUnwrap(bySymbol["GTUBE"])
        XCTAssertEqual(gtube["weight"] as? Double, 1000)
        XCTAssertEqual(gtube["enabled"] as? Bool, true)
        XCTAssertEqual(gtube["description"] as? String, "contains GTUBE, the test string that every spam filter must catch")
        XCTAssertNil(gtube["reason"])

        let htmlOnly = try XCTUnwrap(bySymbol["HTML_ONLY"])
        XCTAssertEqual(htmlOnly["enabled"] as? Bool, false)
        XCTAssertEqual(htmlOnly["reason"] as? String, "listed in scoring.disabled")
        XCTAssertEqual(htmlOnly["weight"] as? Double, 1)
    }

    func testRuleListShowsFromNotHostedOff() throws {
        let directory = try makeDirectory()
        let withoutDomains = try write("log_level: notice\n", to: "none.yaml", in: directory)
        let withDomains = try write("scoring:\n  hosted_domains: [shop.example]\n", to: "hosted.yaml", in: directory)

        let off = try score(["--config", withoutDomains, "--list-rules"])
        XCTAssertEqual(off.status, 0)
        let offLine = try XCTUnwrap(off.output.split(separator: "\n").first { $0.contains("FROM_NOT_HOSTED") })
        XCTAssertEqual(offLine.split(separator: " ").prefix(2), ["off", "FROM_NOT_HOSTED"], String(offLine))
        XCTAssertTrue(offLine.hasSuffix("(off: scoring.hosted_domains is empty; weight 3.0)"), String(offLine))

        let on = try score(["--config", withDomains, "--list-rules", "--json"])
        let rules = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(on.output.utf8)) as? [[String: Any]])
        let rule = try XCTUnwrap(rules.first { $0["symbol"] as? String == "FROM_NOT_HOSTED" })
        XCTAssertEqual(rule["enabled"] as? Bool, true)
        XCTAssertEqual(rule["weight"] as? Double, 3)
    }

    func testListRulesWithFileIsUsageError() throws {
        let run = try score(["--list-rules", "--json", Self.ham])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.output, "")
        XCTAssertEqual(run.errors, "egressctl score: --list-rules takes no FILE, got '\(Self.ham)'; score messages in a separate run; "
                       + "see egressctl score --help")
    }

    // MARK: Unreadable files

    func testUnreadableFileDoesNotStopBatch() throws {
        let directory = try makeDirectory()
        let first = try write(Self.gtubeMessage, to: "a.eml", in: directory)
        let last = try write(Self.gtubeMessage, to: "b.eml", in: directory)
        let missing = directory + "/nosuch.eml"

        let run = try score([first, missing, last])
        XCTAssertEqual(run.status, 2, "an unreadable file outranks spam")
        XCTAssertTrue(run.output.contains(first + "\n  score 1000.0"), run.output)
        XCTAssertTrue(run.output.contains(last + "\n  score 1000.0"), run.output)
        XCTAssertFalse(run.output.contains("nosuch.eml"), run.output)
        XCTAssertEqual(run.errors, "egressctl score: \(missing): No such file or directory")
    }

    func testUnreadableFileIsLeftOutOfJSON() throws {
        let directory = try makeDirectory()
        let message = try write(Self.gtubeMessage, to: "a.eml", in: directory)
        let run = try score(["--json", directory + "/nosuch.eml", message])
        XCTAssertEqual(run.status, 2)
        let decoded = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [[String: Any]])
        XCTAssertEqual(decoded.map { $0["file"] as? String }, [message])
    }

    func testDirectoryGetsPlainMessage() throws {
        let directory = try makeDirectory()
        let run = try score([directory])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.errors, "egressctl score: \(directory): Is a directory")
    }

    func testCleanBatchWithUnreadableFileExitsTwo() throws {
        let run = try score([Self.ham, "/nonexistent/message.eml"])
        XCTAssertEqual(run.status, 2)
        XCTAssertTrue(run.output.contains(Self.ham + "\n  score "), run.output)
    }

    // MARK: Which configuration

    func testHeaderAndJSONNameConfiguration() throws {
        let directory = try makeDirectory()
        let config = try write("log_level: notice\n", to: "egress.yaml", in: directory)
        let text = try score(["--config", config, Self.ham])
        XCTAssertTrue(text.output.hasPrefix("configuration: \(config)\n\n\(Self.ham)\n"), text.output)

        let json = try score(["--config", config, "--json", Self.ham])
        let message = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])?.first)
        XCTAssertEqual(message["configuration"] as? String, config)
        XCTAssertEqual(message["scoring_enabled"] as? Bool, true)
    }

    func testBuiltInDefaultsAreNamed() throws {
        let existedBefore = FileManager.default.fileExists(atPath: defaultConfigurationPath)
        let text = runScore([Self.ham]) { Data() }
        let json = runScore(["--json", Self.ham]) { Data() }
        // Checked before and after the runs, because the package tests install that file for a while.
        guard !existedBefore && !FileManager.default.fileExists(atPath: defaultConfigurationPath) else {
            throw XCTSkip("\(defaultConfigurationPath) exists, so score reads it instead of the built-in defaults")
        }

        XCTAssertTrue(text.output.hasPrefix("configuration: built-in defaults (\(defaultConfigurationPath) does not exist)\n"),
                      text.output)
        let decoded = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])
        let message = try XCTUnwrap(decoded.first)
        XCTAssertTrue(message["configuration"] is NSNull, "\(message)")
    }

    // MARK: Scoring turned off

    func testScoringDisabledStillScoresWithNote() throws {
        let directory = try makeDirectory()
        let config = try write("scoring:\n  enabled: false\n", to: "egress.yaml", in: directory)
        let message = try write(Self.gtubeMessage, to: "gtube.eml", in: directory)

        let run = try score(["--config", config, message])
        XCTAssertEqual(run.status, 1, "the exit status still says whether the rules find spam")
        XCTAssertTrue(run.output.contains("score 1000.0"), run.output)
        XCTAssertTrue(run.output.contains("1000.0  GTUBE"), run.output)
        XCTAssertEqual(run.errors, "egressctl score: note: scoring.enabled is false in \(config): the daemon does not score mail; "
                       + "this output shows what its rules would do with scoring on")

        let json = try score(["--config", config, "--json", message])
        let decoded = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]])
        XCTAssertEqual(decoded.first?["scoring_enabled"] as? Bool, false)
        XCTAssertEqual(decoded.first?["score"] as? Double, 1000)
    }

    // MARK: Exit status of an invalid configuration

    func testInvalidConfigurationExitsTwo() throws {
        let directory = try makeDirectory()
        let config = try write("scoring:\n  tresholds: {tag: 3}\n", to: "bad.yaml", in: directory)
        let run = try score(["--config", config, Self.ham])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.output, "")
        XCTAssertTrue(run.errors.hasPrefix("egressctl score: \(config):2:"), run.errors)
        XCTAssertTrue(run.errors.contains("thresholds"), "suggests the valid key: \(run.errors)")
    }

    func testHelpTextsAgreeOnExitStatus() throws {
        let usage = EgressControl.usage
        XCTAssertTrue(usage.contains("check-config  0 valid, 1 invalid or unreadable configuration, 2 usage error"), usage)
        XCTAssertTrue(usage.contains("score         0 no message reached its tag threshold, 1 at least one did,\n"
                                     + "                2 usage error, invalid or unreadable configuration, or unreadable message file"),
                      usage)
        let help = try score(["--help"])
        XCTAssertTrue(help.output.contains("Exit status: 0 no message reached its tag threshold, 1 at least one did, 2 a usage error,\n"
                                           + "an invalid or unreadable configuration"), help.output)
    }

    // MARK: Output layout and details

    func testShortRuleNameKeepsColumnHeader() throws {
        let directory = try makeDirectory()
        let config = try write("""
            scoring:
              rules:
                - name: AB
                  target: body
                  pattern: 'GTUBE'
                  weight: 1
            """, to: "egress.yaml", in: directory)
        let message = try write("""
            Subject: x
            From: a@b.example
            To: c@d.example
            Date: Sat, 05 Dec 2026 00:00:00 +0000
            Message-ID: <short@b.example>

            the word GTUBE alone

            """, to: "m.eml", in: directory)
        let run = try score(["--config", config, message])
        XCTAssertTrue(run.output.contains("\n  pts  symbol  description: matched text\n"), run.output)
        XCTAssertTrue(run.output.contains("\n  1.0  AB      custom rule on body, pattern GTUBE: GTUBE\n"), run.output)

        let listing = try score(["--config", config, "--list-rules"])
        let listed = try XCTUnwrap(listing.output.split(separator: "\n").last, listing.output)
        XCTAssertEqual(listed.split(separator: " ").prefix(2), ["1.0", "AB"], String(listed))
        XCTAssertTrue(listed.hasSuffix("  custom rule on body, pattern GTUBE"), String(listed))
    }

    func testImageCountIsSingularForOneImage() throws {
        let directory = try makeDirectory()
        let message = try write("""
            Subject: picture
            From: a@b.example
            To: c@d.example
            Content-Type: text/html

            <html><body><img src="http://img.example/a.png"><p>Look</p></body></html>

            """, to: "image.eml", in: directory)
        let run = try score([message])
        let line = try XCTUnwrap(run.output.split(separator: "\n").first { $0.contains("HTML_IMAGE_ONLY") }, run.output)
        XCTAssertTrue(line.hasSuffix(": 1 image, 4 text bytes"), String(line))
    }

    func testSplitWordDetailCountsPlaces() throws {
        let directory = try makeDirectory()
        let message = try write("""
            Subject: hello
            From: a@b.example
            To: c@d.example
            Content-Type: text/html

            <html><body><p>Buy V<b>I</b>AGRA and C<i>IA</i>LIS today, dear friend of ours.</p></body></html>

            """, to: "split.eml", in: directory)
        let run = try score([message])
        let line = try XCTUnwrap(run.output.split(separator: "\n").first { $0.contains("HTML_SPLIT_WORDS") }, run.output)
        XCTAssertTrue(line.hasSuffix(": 4 places where markup splits a word"), String(line))
    }
}
