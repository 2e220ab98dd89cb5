// egressctl's option parsing and the usage errors of each daemon command, which end with exit
// status 2 before any connection is tried, and --help, which ends with 0.
import EgressCore
import Foundation
import XCTest

@testable import egressctl

final class CommandArgumentsTests: XCTestCase {
    func testOptionsFlagsAndPositionals() throws {
        let parsed = try CommandArguments(
            ["account:alice", "--reason=ticket 42", "--json", "--socket", "/tmp/c.sock", "--", "--odd"],
            command: "suspend", valued: ["--reason"])
        XCTAssertEqual(parsed.positionals, ["account:alice", "--odd"])
        XCTAssertEqual(parsed.values["--reason"], "ticket 42")
        XCTAssertEqual(parsed.values["--socket"], "/tmp/c.sock")
        XCTAssertTrue(parsed.wantsJSON)
        XCTAssertFalse(parsed.wantsHelp)
    }

    func testParsingErrors() {
        let cases: [([String], String)] = [
            (["--bogus"], "unknown option '--bogus'"),
            (["--socket"], "option --socket needs a value"),
            (["--json=yes"], "unknown option '--json=yes'"),
        ]
        for (arguments, expected) in cases {
            XCTAssertThrowsError(try CommandArguments(arguments, command: "status"), "\(arguments)") { error in
                XCTAssertTrue("\(error)".contains(expected), "\(arguments): \(error)")
            }
        }
    }

    func testKeyIsChecked() throws {
        XCTAssertEqual(try CommandArguments(["login:crm"], command: "show").key(command: "show"), "login:crm")
        for arguments in [[], ["a:b", "c:d"], ["acount:bob"]] {
            XCTAssertThrowsError(try CommandArguments(arguments, command: "show").key(command: "show"), "\(arguments)")
        }
    }

    /// Every case is refused before egressctl tries to connect, so the socket does not exist.
    func testUsageErrorsExitTwo() {
        let socket = ["--socket", "/nonexistent/egress-control.sock"]
        let cases: [[String]] = [
            ["status", "extra"],
            ["show"],
            ["show", "alice"],
            ["suspend", "account:alice", "--reason"],
            ["release", "account:alice", "--deliver", "--delete"],
            ["top", "--by", "loudest"],
            ["top", "--level", "planet"],
            ["top", "-n", "0"],
            ["top", "-n", "many"],
            ["reload", "now"],
            ["status", "--verbose"],
        ]
        for arguments in cases {
            let line = ["egressctl", arguments[0]] + socket + arguments.dropFirst()
            XCTAssertEqual(EgressControl.main(arguments: line), 2, "\(arguments)")
        }
    }

    func testHelpExitsZeroForEveryCommand() {
        for command in EgressControl.subcommands.map(\.name) {
            XCTAssertEqual(EgressControl.main(arguments: ["egressctl", command, "--help"]), 0, command)
        }
    }

    func testEveryDaemonCommandIsListed() {
        let names = EgressControl.subcommands.map(\.name)
        for command in ["status", "top", "show", "suspend", "release", "reload", "check-config"] {
            XCTAssertTrue(names.contains(command), command)
        }
    }
}
