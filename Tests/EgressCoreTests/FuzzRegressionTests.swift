// Replays the inputs in fuzz/regressions/ (inputs that once broke the decoder) through the
// decoder, whole with the default limits and byte by byte with tiny ones, as the fuzz target
// does. A crash here fails the whole test run, which is the point.

import Foundation
import XCTest
@testable import EgressCore

final class FuzzRegressionTests: XCTestCase {
    private var regressionDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fuzz/regressions")
    }

    func testRegressionInputsDecode() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: regressionDirectory.path)
            .filter { $0 != "README.md" }.sorted()
        var tiny = ScanLimits()
        tiny.maximumNestingDepth = 3
        tiny.maximumParts = 8
        tiny.maximumLineBytes = 40
        tiny.maximumTextBytes = 256
        tiny.maximumLinks = 4
        tiny.maximumAttachments = 2
        tiny.attachmentInspectBytes = 64

        for name in names {
            let bytes = [UInt8](try Data(contentsOf: regressionDirectory.appendingPathComponent(name)))
            let whole = MessageScanner.scan(message: bytes)
            XCTAssertGreaterThanOrEqual(whole.partCount, 1, name)

            let split = MessageScanner.splitHeaders(of: bytes)
            let scanner = MessageScanner(limits: tiny)
            for header in split.headers {
                scanner.addHeader(name: header.name, value: header.value)
            }
            for byte in split.body {
                scanner.feed([byte])
            }
            let chunked = scanner.finish()
            XCTAssertLessThanOrEqual(chunked.partCount, tiny.maximumParts, name)
        }
    }
}
