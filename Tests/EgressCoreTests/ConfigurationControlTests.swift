// The control: section: its defaults, every key, invalid values with their positions, the
// settings summary, and the lenient lookup of the socket path that egressctl uses.

import Foundation
import XCTest
@testable import EgressCore

final class ConfigurationControlTests: XCTestCase {
    func testDefaults() {
        let control = Configuration.defaults.control
        XCTAssertEqual(control.socketPath, "/run/egress-milter/control.sock")
        XCTAssertEqual(control.socketMode, 0o660)
        XCTAssertEqual(control.socketGroup, "root")
    }

    func testEveryKeyIsParsed() throws {
        let configuration = try Configuration.parse("control:\n  socket: /srv/egress/ctl.sock\n  mode: \"0600\"\n  group: mailadmin\n", file: "t.yaml")
        XCTAssertEqual(configuration.control.socketPath, "/srv/egress/ctl.sock")
        XCTAssertEqual(configuration.control.socketMode, 0o600)
        XCTAssertEqual(configuration.control.socketGroup, "mailadmin")
    }

    func testEmptySocketDisablesIt() throws {
        XCTAssertEqual(try Configuration.parse("control:\n  socket: \"\"\n", file: "t.yaml").control.socketPath, "")
    }

    func testInvalidValues() {
        let cases: [(String, String)] = [
            ("control:\n  socket: run/ctl.sock\n", "t.yaml:2:11: control.socket: must be an absolute path"),
            ("control:\n  socket: /\(String(repeating: "d", count: 120))/c.sock\n", "control.socket: is 128 bytes long; a unix socket path may have at most 107"),
            ("control:\n  mode: \"0666\"\n", "control.mode: mode '0666' lets every local user suspend and release senders"),
            ("control:\n  mode: \"99\"\n", "control.mode: invalid mode '99'"),
            ("control:\n  group: \"\"\n", "control.group: must not be empty"),
            ("control:\n  sockt: /x\n", "control.sockt: unknown key; did you mean 'socket'?"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try Configuration.parse(text, file: "t.yaml"), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
    }

    func testSummaryReadsBack() throws {
        var configuration = Configuration.defaults
        configuration.control.socketPath = "/srv/egress/ctl.sock"
        configuration.control.socketMode = 0o640
        configuration.control.socketGroup = "adm"
        XCTAssertEqual(try Configuration.parse(configuration.summary(), file: "summary"), configuration)
    }

    func testSocketPathIsReadFromAFileWithOtherErrors() throws {
        let path = NSTemporaryDirectory() + "egress-control-\(UUID().uuidString).yaml"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }

        try "bogus: 1\ncontrol:\n  socket: /srv/ctl.sock\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Configuration.load(contentsOf: path), "the file itself is invalid")
        XCTAssertEqual(ControlSettings.socketPath(inConfigurationFile: path).path, "/srv/ctl.sock")

        try "log_level: debug\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(ControlSettings.socketPath(inConfigurationFile: path).path, "/run/egress-milter/control.sock")

        try "control: [unclosed\n".write(toFile: path, atomically: true, encoding: .utf8)
        let broken = ControlSettings.socketPath(inConfigurationFile: path)
        XCTAssertNil(broken.path)
        XCTAssertTrue(broken.problem?.hasPrefix(path + ":") ?? false, "\(String(describing: broken.problem))")

        let missing = ControlSettings.socketPath(inConfigurationFile: "/nonexistent/egress.yaml")
        XCTAssertNil(missing.path)
        XCTAssertNotNil(missing.problem)
    }
}
