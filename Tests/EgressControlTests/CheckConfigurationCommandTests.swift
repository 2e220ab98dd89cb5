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

    func testUnknownCommandIsAUsageError() {
        XCTAssertEqual(EgressControl.main(arguments: ["egressctl", "frobnicate"]), 2)
    }
}
