// Tests for campaign detection: the content fingerprint, the tracker's windows, and the three
// campaign symbols.

import Foundation
import XCTest
@testable import EgressCore

final class CampaignRulesTests: XCTestCase {
    /// The symbols these tests cover, for the check that every built-in symbol has a test.
    static let symbols: Set<String> = [BuiltInSymbol.campaignBulk, BuiltInSymbol.campaignMultiSender, BuiltInSymbol.subjectBurst]

    private let start = Date(timeIntervalSince1970: 1_700_000_000)

    private static let offer = """
        Dear John,

        our new collection of garden furniture is here, and only this week every chair and
        every table in the shop is cheaper than ever before. Visit the shop today.

        """

    func testFingerprintIgnoresNamesNumbersAndLinkTokens() {
        let first = ContentFingerprint.compute(subject: "Garden sale 2024",
                                               text: Self.offer + "https://shop.example/t/a8f3k2?id=123\n")
        let second = ContentFingerprint.compute(subject: "Garden sale 2025",
                                                text: Self.offer.replacingOccurrences(of: "John", with: "Mary")
                                                    + "https://shop.example/t/zz91q0?id=987\n")
        XCTAssertNotNil(first)
        XCTAssertEqual(first, second)

        let other = ContentFingerprint.compute(subject: "Garden sale 2024", text: Self.offer + "Also new: lamps for the garden.\n")
        XCTAssertNotEqual(first, other)
    }

    func testShortTextsHaveNoFingerprint() {
        XCTAssertNil(ContentFingerprint.compute(subject: "Thanks", text: "Thanks a lot, see you tomorrow."))
    }

    func testTrackerCountsWithinTheWindowOnly() {
        var settings = CampaignSettings()
        settings.windowSeconds = 60
        settings.subjectWindowSeconds = 60
        let tracker = CampaignTracker()
        var counts = tracker.record(content: 1, subject: 2, sender: "login:a", recipients: 10, settings: settings, now: start)
        XCTAssertEqual(counts, CampaignCounts(recipients: 10, senders: 1, subjectMessages: 1))
        counts = tracker.record(content: 1, subject: 2, sender: "login:b", recipients: 5, settings: settings, now: start.addingTimeInterval(30))
        XCTAssertEqual(counts, CampaignCounts(recipients: 15, senders: 2, subjectMessages: 1))
        counts = tracker.record(content: 1, subject: 2, sender: "login:b", recipients: 5, settings: settings, now: start.addingTimeInterval(40))
        XCTAssertEqual(counts, CampaignCounts(recipients: 20, senders: 2, subjectMessages: 2))
        // The window has passed: the counts start again.
        counts = tracker.record(content: 1, subject: 2, sender: "login:a", recipients: 1, settings: settings, now: start.addingTimeInterval(61))
        XCTAssertEqual(counts, CampaignCounts(recipients: 1, senders: 1, subjectMessages: 1))
        XCTAssertEqual(tracker.entryCount, 3)
    }

    private func sample(sender: String, recipients: Int) -> Sample {
        var sample = Sample().setting("Subject", "Garden sale").with(body: Self.offer).configured {
            $0.campaign.recipients = 10
            $0.campaign.senders = 3
            $0.campaign.subjectBurst = 4
        }
        sample.identityKeys = [IdentityKey(level: .login, value: sender), .server]
        sample.recipients = (1...recipients).map { "r\($0)@example.net" }
        return sample
    }

    func testSameContentToManyRecipientsIsACampaign() {
        let tracker = CampaignTracker()
        let first = sample(sender: "a", recipients: 6).score(campaigns: tracker, now: start)
        XCTAssertFalse(first.hits.contains { $0.name == BuiltInSymbol.campaignBulk })
        let second = sample(sender: "a", recipients: 6).score(campaigns: tracker, now: start.addingTimeInterval(1))
        XCTAssertTrue(second.hits.contains { $0.name == BuiltInSymbol.campaignBulk }, "\(second.hits.map(\.name))")
    }

    func testSameContentFromSeveralSendersIsACampaign() {
        let tracker = CampaignTracker()
        for (index, sender) in ["a", "b"].enumerated() {
            let report = sample(sender: sender, recipients: 1).score(campaigns: tracker, now: start.addingTimeInterval(Double(index)))
            XCTAssertFalse(report.hits.contains { $0.name == BuiltInSymbol.campaignMultiSender }, sender)
        }
        let third = sample(sender: "c", recipients: 1).score(campaigns: tracker, now: start.addingTimeInterval(2))
        XCTAssertTrue(third.hits.contains { $0.name == BuiltInSymbol.campaignMultiSender }, "\(third.hits.map(\.name))")
    }

    func testBurstOfOneSubjectFromOneSender() {
        let tracker = CampaignTracker()
        var last: ScoreReport?
        for index in 0..<4 {
            // Different content every time: only the subject repeats.
            let message = sample(sender: "a", recipients: 1).with(body: Self.offer + String(repeating: "more words here ", count: index + 1) + "\n")
            let report = message.score(campaigns: tracker, now: start.addingTimeInterval(Double(index)))
            XCTAssertEqual(report.hits.contains { $0.name == BuiltInSymbol.subjectBurst }, index == 3, "message \(index)")
            last = report
        }
        XCTAssertFalse(last?.hits.contains { $0.name == BuiltInSymbol.campaignBulk } ?? true)
    }

    func testBouncesAreNoCampaign() {
        let tracker = CampaignTracker()
        for index in 0..<12 {
            var bounce = sample(sender: "a", recipients: 1)
            bounce.envelopeSender = ""
            let report = bounce.score(campaigns: tracker, now: start.addingTimeInterval(Double(index)))
            XCTAssertTrue(Set(report.hits.map(\.name)).isDisjoint(with: Self.symbols), "\(report.hits.map(\.name))")
        }
    }

    func testCampaignsCanBeTurnedOff() {
        let tracker = CampaignTracker()
        for index in 0..<3 {
            let report = sample(sender: "a", recipients: 6).configured { $0.campaign.enabled = false }
                .score(campaigns: tracker, now: start.addingTimeInterval(Double(index)))
            XCTAssertTrue(Set(report.hits.map(\.name)).isDisjoint(with: Self.symbols))
        }
        XCTAssertEqual(tracker.entryCount, 0)
    }
}
