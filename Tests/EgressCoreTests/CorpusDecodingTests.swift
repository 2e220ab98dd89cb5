// Decodes every message of the shared mail corpus (../shared/corpus beside the checkout),
// whole and in small chunks, to show that no real or malformed message crashes the decoder
// or breaks its limits. Skipped with a message when the corpus is absent. The fuzz target
// under fuzz/ covers inputs beyond the corpus.

import Foundation
import XCTest
@testable import EgressCore

final class CorpusDecodingTests: XCTestCase {
    static var corpusDirectory: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/corpus")
    }

    /// Returns every .eml file under the corpus, sorted, and skips the test when there is none.
    static func corpusFiles() throws -> [URL] {
        let root = corpusDirectory
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
            throw XCTSkip("no mail corpus at \(root.path); put the shared corpus beside the checkout to run this test")
        }
        let files = walker.compactMap { $0 as? URL }.filter { $0.pathExtension == "eml" }.sorted { $0.path < $1.path }
        guard !files.isEmpty else {
            throw XCTSkip("no .eml files under \(root.path)")
        }
        return files
    }

    func testEveryCorpusMessageDecodes() throws {
        let limits = ScanLimits.defaults
        var decoded = 0
        for file in try Self.corpusFiles() {
            let bytes = [UInt8](try Data(contentsOf: file))
            let result = MessageScanner.scan(message: bytes)
            let name = file.path
            XCTAssertGreaterThanOrEqual(result.partCount, 1, name)
            XCTAssertLessThanOrEqual(result.partCount, limits.maximumParts, name)
            XCTAssertLessThanOrEqual(result.scannedBytes, limits.scanLimitBytes, name)
            XCTAssertLessThanOrEqual(result.plainText.utf8.count + result.htmlText.utf8.count, limits.maximumTextBytes, name)
            XCTAssertLessThanOrEqual(result.links.count, limits.maximumLinks, name)
            XCTAssertLessThanOrEqual(result.attachments.count, limits.maximumAttachments, name)
            XCTAssertEqual(result.anomalies.scanLimitReached, result.bodyBytes > limits.scanLimitBytes, name)
            decoded += 1
        }
        XCTAssertGreaterThan(decoded, 0)
    }

    /// Feeding the body in 4000-byte chunks, as Postfix does, gives the same text as
    /// feeding it whole.
    func testCorpusMessagesDecodeTheSameInChunks() throws {
        for file in try Self.corpusFiles() {
            let bytes = [UInt8](try Data(contentsOf: file))
            let split = MessageScanner.splitHeaders(of: bytes)
            let whole = MessageScanner.scan(message: bytes)
            let scanner = MessageScanner()
            for header in split.headers {
                scanner.addHeader(name: header.name, value: header.value)
            }
            var offset = 0
            while offset < split.body.count {
                let end = min(split.body.count, offset + 4000)
                scanner.feed(Array(split.body[offset..<end]))
                offset = end
            }
            let chunked = scanner.finish()
            XCTAssertEqual(chunked.plainText, whole.plainText, file.path)
            XCTAssertEqual(chunked.htmlText, whole.htmlText, file.path)
            XCTAssertEqual(chunked.links, whole.links, file.path)
            XCTAssertEqual(chunked.attachments, whole.attachments, file.path)
        }
    }
}
