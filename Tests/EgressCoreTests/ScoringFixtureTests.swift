// Scores real messages kept in Tests/Fixtures/Scoring (with their licences): a Japanese
// advertisement in ISO-2022-JP, the GTUBE test message and a real ham message.

import Foundation
import XCTest
@testable import EgressCore

final class ScoringFixtureTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/Scoring")

    private func report(_ name: String) throws -> (ScanResult, ScoreReport) {
        let bytes = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(name)))
        let facts = MessageFacts(message: bytes)
        let scorer = ContentScorer(settings: ScoringSettings())
        let report = scorer.score(facts, resolution: IdentityResolution(identity: Identity(keys: [.server])), campaigns: nil,
                                  now: Date(timeIntervalSince1970: 1_700_000_000))
        return (try XCTUnwrap(facts.scan), report)
    }

    func testJapaneseAdvertisementIsDecodedAndLabelled() throws {
        let (scan, report) = try report("popfile-iso-2022-jp-advertisement.eml")
        XCTAssertEqual(scan.headerValue("Subject"), "未承諾広告※１万円で開業しませんか！")
        XCTAssertTrue(scan.plainText.contains("このメールを受信拒否の方は"), scan.plainText)
        XCTAssertEqual(scan.anomalies.replacementCharacters, 0)
        XCTAssertTrue(report.hits.contains { $0.name == BuiltInSymbol.subjectAdvertisement })
        XCTAssertTrue(report.isSpam, "\(report.hits.map(\.name))")
    }

    func testGTUBEIsRejectedOnTheSMTPPath() throws {
        let (_, report) = try report("spamassassin-gtube.eml")
        XCTAssertEqual(report.hits.first?.name, BuiltInSymbol.gtube)
        XCTAssertEqual(report.action, .reject)
    }

    func testRealHamIsAccepted() throws {
        let (scan, report) = try report("spamassassin-ham.eml")
        XCTAssertFalse(scan.plainText.isEmpty)
        XCTAssertEqual(report.action, .accept, "\(report.hits.map(\.name))")
    }
}
