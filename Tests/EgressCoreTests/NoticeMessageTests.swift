// Tests for the notice text, its mail headers and line lengths, the command's environment,
// the sender samples behind it, and the daily summary.

import Foundation
import XCTest
@testable import EgressCore

final class NoticeMessageTests: XCTestCase {
    private static let script = "/home/alice/public_html/wp-content/uploads/x.php"

    private func makeNotice(key: String = "script:alice:\(script)", kind: SenderNotice.Kind = .suspension) -> SenderNotice {
        let usage = LimitUsage(
            rule: "accounts", level: "account", shadow: false, smtpAction: "tempfail", localAction: "hold",
            overridesTable: nil, exempt: [], maximumRecipients: nil,
            windows: [WindowUsage(unit: "messages", window: "50/1h", seconds: 3600, limit: 50, hard: false, count: 50)])
        return SenderNotice(
            kind: kind, key: key, identity: "\(key)<account:alice<local-unverified<server",
            reason: "limit accounts: 3 trips within 1h, the last 50/1h exceeded (51)",
            time: Date(timeIntervalSince1970: 1_800_000_000), queueID: "4XyZ1234",
            limits: [usage],
            samples: SenderSamples(subjects: ["Your parcel", "Verify your account", "Grüße"],
                                   recipientDomains: ["example.net", "example.com"]),
            hostname: "web1.example.org")
    }

    func testBodyNamesEverythingTheAdminNeeds() {
        let body = makeNotice().body
        let expected = [
            "Key:       script:alice:\(Self.script)",
            "Account:   alice",
            "Script:    \(Self.script)",
            "Reason:    limit accounts: 3 trips within 1h",
            "accounts: 50 of 50/1h messages",
            "  Your parcel", "  Verify your account", "  Grüße",
            "Recipient domains: example.net, example.com",
            "egressctl show script:alice:\(Self.script)",
            "egressctl release script:alice:\(Self.script) --deliver",
            "egressctl release script:alice:\(Self.script) --delete",
            "Queue ID:  4XyZ1234",
        ]
        for line in expected {
            XCTAssertTrue(body.contains(line), "the body lacks '\(line)':\n\(body)")
        }
    }

    func testAccountAndScriptFromIdentity() {
        var notice = makeNotice(key: "account:alice")
        notice.identity = "script:alice:\(Self.script)<account:alice<server"
        XCTAssertEqual(notice.account, "alice")
        XCTAssertEqual(notice.script, Self.script)
        var unverified = makeNotice(key: "local-unverified")
        unverified.identity = "sender:x@example.org<local-unverified<server"
        XCTAssertNil(unverified.account)
        XCTAssertNil(unverified.script)
        XCTAssertTrue(unverified.body.contains("Account:   unknown"))
    }

    func testCommandsQuoteKeysWithSpaces() {
        let notice = makeNotice(key: "script:alice:/home/alice/my site/it's.php")
        XCTAssertEqual(notice.releaseDeliverCommand, "egressctl release 'script:alice:/home/alice/my site/it'\\''s.php' --deliver")
        XCTAssertEqual(shellQuoted("account:alice"), "account:alice")
        XCTAssertEqual(shellQuoted(""), "''")
    }

    func testEnvironmentCarriesTheDetails() {
        let environment = makeNotice().environment
        XCTAssertEqual(environment["EGRESS_KIND"], "suspension")
        XCTAssertEqual(environment["EGRESS_KEY"], "script:alice:\(Self.script)")
        XCTAssertEqual(environment["EGRESS_ACCOUNT"], "alice")
        XCTAssertEqual(environment["EGRESS_SCRIPT"], Self.script)
        XCTAssertEqual(environment["EGRESS_REASON"], "limit accounts: 3 trips within 1h, the last 50/1h exceeded (51)")
        XCTAssertEqual(environment["EGRESS_COUNTS"], "accounts: 50/50 messages in 1h")
        XCTAssertEqual(environment["EGRESS_RELEASE_COMMAND"], "egressctl release script:alice:\(Self.script) --deliver")
        XCTAssertEqual(environment["EGRESS_DELETE_COMMAND"], "egressctl release script:alice:\(Self.script) --delete")
        XCTAssertEqual(environment["EGRESS_QUEUE_ID"], "4XyZ1234")
        XCTAssertEqual(environment["EGRESS_RECIPIENT_DOMAINS"], "example.net example.com")
    }

    func testMailHasStandardHeaders() {
        let notice = makeNotice()
        let mail = String(decoding: NoticeMail.compose(
            from: "egress-milter@web1.example.org", to: ["admin@example.org", "oncall@example.org"],
            subject: notice.subject, body: notice.body, messageID: "<notice.1@web1.example.org>",
            date: Date(timeIntervalSince1970: 1_800_000_000),
            extraHeaders: [HeaderField(name: NoticeSeal.headerName, value: "abc")]), as: UTF8.self)
        let header = mail.components(separatedBy: "\n\n")[0]
        for prefix in ["Date: ", "From: egress-milter@web1.example.org", "To: admin@example.org, oncall@example.org",
                       "Subject: egress-milter on web1.example.org: script:alice:", "Message-ID: <notice.1@web1.example.org>",
                       "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
                       "\(NoticeSeal.headerName): abc"] {
            XCTAssertTrue(header.split(separator: "\n").contains { $0.hasPrefix(prefix) }, "no header line starts with '\(prefix)':\n\(header)")
        }
        XCTAssertTrue(mail.contains("\n\negress-milter on web1.example.org suspended"))
    }

    func testLongKeyKeepsLinesWithinLimit() {
        let longPath = "/home/alice/" + String(repeating: "deep/", count: 900) + "x.php"
        let notice = makeNotice(key: "script:alice:\(longPath)")
        let mail = NoticeMail.compose(from: "egress-milter", to: ["admin@example.org"], subject: notice.subject,
                                      body: notice.body, messageID: "<n@h>", date: Date())
        let lines = mail.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        XCTAssertEqual(lines.filter { $0.count > NoticeMail.maximumLineBytes }.count, 0)
        let text = String(decoding: mail, as: UTF8.self)
        XCTAssertTrue(text.contains("Content-Transfer-Encoding: quoted-printable"))
        // Decoding the quoted-printable body gives back the exact command.
        let body = text.components(separatedBy: "\n\n").dropFirst().joined(separator: "\n\n")
        XCTAssertTrue(decodeQuotedPrintable(body).contains("egressctl release script:alice:\(longPath) --deliver"))
    }

    func testNonASCIISubjectIsEncoded() {
        let encoded = NoticeMail.encodeHeaderText("egress-milter: script:bob:/home/bob/grüße.php suspended")
        XCTAssertTrue(encoded.hasPrefix("=?UTF-8?B?"))
        XCTAssertTrue(encoded.unicodeScalars.allSatisfy(\.isASCII))
    }

    // MARK: Samples

    func testSamplesAreBounded() {
        let activity = SenderActivity()
        let time = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<10 {
            activity.record(keys: ["account:alice", "server"], subject: "subject \(index)",
                            recipients: (0..<5).map { "user@domain\(index)-\($0).example" }, action: .accept,
                            trippedKeys: [], time: time)
        }
        let samples = activity.samples(for: "account:alice")
        XCTAssertEqual(samples.subjects, ["subject 7", "subject 8", "subject 9"])
        XCTAssertEqual(samples.recipientDomains.count, SenderActivity.domainsPerKey)
        XCTAssertEqual(samples.recipientDomains.first, "domain0-0.example")
    }

    func testLongSubjectIsCut() {
        let sample = SenderActivity.sample(String(repeating: "ä", count: 500) + "\u{7}")
        XCTAssertLessThanOrEqual(sample.utf8.count, SenderActivity.maximumSubjectBytes + 3)
        XCTAssertFalse(sample.contains("\u{7}"))
    }

    func testIdleKeysAreDropped() {
        let activity = SenderActivity(maximumKeys: 10)
        let time = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<30 {
            activity.record(keys: ["account:user\(index)"], subject: nil, recipients: ["a@b.example"], action: .accept,
                            trippedKeys: [], time: time)
        }
        let keys = Set(activity.totals(since: time).map(\.key))
        XCTAssertLessThanOrEqual(keys.count, 10)
        XCTAssertTrue(keys.contains("account:user29"))
    }

    func testTotalsCoverTheLastDay() {
        let activity = SenderActivity()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let old = now.addingTimeInterval(-30 * 3600)
        activity.record(keys: ["account:alice"], subject: nil, recipients: ["a@x.example"], action: .accept, trippedKeys: [], time: old)
        activity.record(keys: ["account:alice"], subject: nil, recipients: ["a@x.example", "b@x.example"], action: .accept,
                        trippedKeys: [], time: now.addingTimeInterval(-3600))
        activity.record(keys: ["account:alice"], subject: nil, recipients: ["a@x.example"], action: .hold,
                        trippedKeys: ["account:alice"], time: now)
        let totals = activity.totals(since: now.addingTimeInterval(-86_400))
        XCTAssertEqual(totals.count, 1)
        XCTAssertEqual(totals.first?.messages, 1)
        XCTAssertEqual(totals.first?.recipients, 2)
        XCTAssertEqual(totals.first?.held, 1)
        XCTAssertEqual(totals.first?.limitTrips, 1)
    }

    // MARK: Summary

    func testSummaryListsSendersTripsSuspensionsAndHeld() {
        var alice = SenderTotals(key: "account:alice")
        alice.messages = 40
        alice.limitTrips = 3
        var bob = SenderTotals(key: "account:bob")
        bob.messages = 7
        var server = SenderTotals(key: "server")
        server.messages = 47
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let summary = DailySummary(
            hostname: "web1.example.org", from: now.addingTimeInterval(-86_400), to: now, countsSince: nil,
            senders: [bob, server, alice],
            newSuspensions: [SuspensionReport(Suspension(key: "account:alice", reason: "limit accounts: hard", since: now))],
            suspendedKeys: 2, heldMessages: 12, heldByKey: ["account:alice": 12, "server": 12])
        let body = summary.body
        let aliceLine = body.range(of: "  account:alice  40 ")
        let bobLine = body.range(of: "  account:bob  7 ")
        XCTAssertNotNil(aliceLine, body)
        XCTAssertNotNil(bobLine, body)
        if let aliceLine, let bobLine {
            XCTAssertLessThan(aliceLine.lowerBound, bobLine.lowerBound, "senders are not ordered by messages")
        }
        XCTAssertFalse(body.contains("  server  47"), "the server key is listed as a sender")
        XCTAssertTrue(body.contains("Limit trips by key:\n  account:alice  3"), body)
        XCTAssertTrue(body.contains("New suspensions: 1 (keys suspended now: 2)"), body)
        XCTAssertTrue(body.contains("Held messages recorded now: 12\n  account:alice  12"), body)
        XCTAssertTrue(summary.subject.contains("1 new suspensions, 12 held"))
    }

    private func decodeQuotedPrintable(_ text: String) -> String {
        var bytes: [UInt8] = []
        let input = Array(text.replacingOccurrences(of: "=\n", with: "").utf8)
        var index = 0
        while index < input.count {
            if input[index] == UInt8(ascii: "="), index + 2 < input.count,
               let value = UInt8(String(decoding: input[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) {
                bytes.append(value)
                index += 3
            } else {
                bytes.append(input[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
