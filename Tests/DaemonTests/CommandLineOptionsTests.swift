// Command-line parsing and configuration loading of the daemon, without starting it.
import Foundation
import XCTest

@testable import egress_milter

final class CommandLineOptionsTests: XCTestCase {
    func testNoArgumentsGiveDefaults() throws {
        let options = try parseCommandLine(["egress-milter"])
        XCTAssertEqual(options, CommandLineOptions())
        XCTAssertEqual(options.configurationPath, "/etc/egress-milter/egress-milter.yaml")
        XCTAssertFalse(options.configurationPathGiven)
    }

    func testEveryOptionIsParsed() throws {
        let options = try parseCommandLine([
            "egress-milter", "--config", "/tmp/x.yaml", "--listen=inet:8891@127.0.0.1",
            "--check-config", "--foreground", "--help", "--version",
        ])
        XCTAssertEqual(options.configurationPath, "/tmp/x.yaml")
        XCTAssertTrue(options.configurationPathGiven)
        XCTAssertEqual(options.listen, "inet:8891@127.0.0.1")
        XCTAssertTrue(options.checkConfiguration)
        XCTAssertTrue(options.foreground)
        XCTAssertTrue(options.showHelp)
        XCTAssertTrue(options.showVersion)
    }

    func testUsageErrors() {
        let cases: [([String], String)] = [
            (["--bogus"], "unknown option '--bogus'"),
            (["--config"], "option --config requires a value"),
            (["--listen", "--foreground"], "option --listen requires a value"),
        ]
        for (arguments, expected) in cases {
            XCTAssertThrowsError(try parseCommandLine(["egress-milter"] + arguments), "\(arguments)") { error in
                XCTAssertTrue("\(error)".contains(expected), "\(arguments): \(error)")
            }
        }
    }

    func testMissingDefaultFileGivesBuiltInDefaults() throws {
        var options = CommandLineOptions()
        options.configurationPath = "/nonexistent/egress-milter.yaml"
        let (configuration, source) = try Daemon.loadConfiguration(options)
        XCTAssertEqual(configuration.listen, "unix:/var/spool/postfix/egress-milter/milter.sock")
        XCTAssertTrue(source.hasPrefix("built-in defaults"), source)
    }

    func testMissingNamedFileIsAnError() {
        var options = CommandLineOptions()
        options.configurationPath = "/nonexistent/egress-milter.yaml"
        options.configurationPathGiven = true
        XCTAssertThrowsError(try Daemon.loadConfiguration(options)) { error in
            XCTAssertTrue("\(error)".contains("not found"), "\(error)")
        }
    }

    func testListenOverrideIsValidated() throws {
        var options = CommandLineOptions()
        options.configurationPath = "/nonexistent/egress-milter.yaml"
        options.listen = "inet:8891@127.0.0.1"
        XCTAssertEqual(try Daemon.loadConfiguration(options).0.listen, "inet:8891@127.0.0.1")

        options.listen = "tcp:8891"
        XCTAssertThrowsError(try Daemon.loadConfiguration(options)) { error in
            XCTAssertTrue("\(error)".contains("invalid listen spec 'tcp:8891'"), "\(error)")
        }
    }

    func testAngleBracketsAreStripped() {
        XCTAssertEqual(stripAngleBrackets("<alice@shop.example>"), "alice@shop.example")
        XCTAssertEqual(stripAngleBrackets("<>"), "")
        XCTAssertEqual(stripAngleBrackets("bob@shop.example"), "bob@shop.example")
    }

    func testLogValuesWithSpacesAreQuoted() {
        XCTAssertEqual(logValue("default"), "default")
        XCTAssertEqual(logValue("senders[0]: site hacked"), "\"senders[0]: site hacked\"")
        XCTAssertEqual(logValue("say \"hi\""), "\"say \\\"hi\\\"\"")
        XCTAssertEqual(logValue(""), "\"\"")
    }
}
