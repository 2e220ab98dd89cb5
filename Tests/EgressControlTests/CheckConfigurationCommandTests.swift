// egressctl check-config on real files.
import Foundation
import XCTest

@testable import egressctl

final class CheckConfigurationCommandTests: XCTestCase {
    private func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "egressctl-\(UUID().uuidString).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testValidFileExitsZero() throws {
        let path = try write("log_level: debug\n")
        XCTAssertEqual(checkConfigurationCommand([path]), 0)
    }

    func testInvalidFileExitsOne() throws {
        let path = try write("log_levle: debug\n")
        XCTAssertEqual(checkConfigurationCommand([path]), 1)
    }

    func testMissingFileExitsOne() {
        XCTAssertEqual(checkConfigurationCommand(["/nonexistent/egress-milter.yaml"]), 1)
    }

    func testTwoFilesAreAUsageError() {
        XCTAssertEqual(checkConfigurationCommand(["a.yaml", "b.yaml"]), 2)
    }

    func testJSONOfValidFile() throws {
        let path = try write("log_level: debug\n")
        let output = try captureStandardOutput { checkConfigurationCommand(["--json", path]) }
        XCTAssertEqual(output.status, 0)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.text.utf8)) as? [String: Any])
        XCTAssertEqual(object["file"] as? String, path)
        XCTAssertEqual(object["valid"] as? Bool, true)
        XCTAssertTrue(object["error"] is NSNull, "\(String(describing: object["error"]))")
        XCTAssertTrue((object["settings"] as? String)?.contains("log_level: debug") ?? false, output.text)
    }

    func testJSONOfInvalidFileNamesThePlace() throws {
        let path = try write("log_level: debug\nlog_levle: info\n")
        let output = try captureStandardOutput { checkConfigurationCommand([path, "--json"]) }
        XCTAssertEqual(output.status, 1)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.text.utf8)) as? [String: Any])
        XCTAssertEqual(object["valid"] as? Bool, false)
        XCTAssertTrue(object["settings"] is NSNull)
        let error = try XCTUnwrap(object["error"] as? [String: Any], output.text)
        XCTAssertEqual(error["line"] as? Int, 2)
        XCTAssertEqual(error["column"] as? Int, 1)
        XCTAssertEqual(error["key"] as? String, "log_levle")
        XCTAssertTrue((error["message"] as? String)?.contains("log_level") ?? false, "suggests the nearest key: \(output.text)")
    }

    func testOptionsAreParsedBeforeTheFile() throws {
        let path = try write("log_level: debug\n")
        XCTAssertEqual(checkConfigurationCommand(["--config", path]), 0)
        XCTAssertEqual(checkConfigurationCommand(["--bogus", path]), 2)
        XCTAssertEqual(checkConfigurationCommand(["--socket", "/run/x.sock", path]), 2)
        XCTAssertEqual(checkConfigurationCommand(["--config", "/other.yaml", path]), 2)
        XCTAssertEqual(EgressControl.main(arguments: ["egressctl", "--json", "check-config", path]), 0)
    }

    func testUnknownCommandIsAUsageError() {
        XCTAssertEqual(EgressControl.main(arguments: ["egressctl", "frobnicate"]), 2)
    }
}
