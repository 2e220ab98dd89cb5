// Tests for the notice text (suspension and limit trip, wrapped prose, the --socket option),
// its mail headers and line lengths, the command's environment, and the sender samples and
// counts behind notices and the daily summary.

import Foundation
import XCTest
@testable import EgressCore

final class NoticeMessageTests: XCTestCase {
    private static let script = "/home/alice/public_html/wp-content/uploads/x.php"

    private func makeNotice(key: String = "script:alice:\(script)", kind: SenderNotice.Kind = .suspension,
                            tripAction: Action? = nil, controlSocket: String? = nil) -> SenderNotice {
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
            hostname: "web1.example.org", tripAction: tripAction, controlSocket: controlSocket)
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
                            trips: [], time: time)
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
                            trips: [], time: time)
        }
        let keys = Set(activity.totals(since: time).map(\.key))
        XCTAssertLessThanOrEqual(keys.count, 10)
        XCTAssertTrue(keys.contains("account:user29"))
    }

    func testTotalsCoverTheLastDay() {
        let activity = SenderActivity()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let old = now.addingTimeInterval(-30 * 3600)
        activity.record(keys: ["account:alice"], subject: nil, recipients: ["a@x.example"], action: .accept, trips: [], time: old)
        activity.record(keys: ["account:alice"], subject: nil, recipients: ["a@x.example", "b@x.example"], action: .accept,
                        trips: [], time: now.addingTimeInterval(-3600))
        activity.record(keys: ["account:alice"], subject: nil, recipients: ["a@x.example"], action: .hold,
                        trips: [TrippedLimit(key: "account:alice", rule: "accounts", description: "d", action: .hold)], time: now)
        let totals = activity.totals(since: now.addingTimeInterval(-86_400))
        XCTAssertEqual(totals.count, 1)
        XCTAssertEqual(totals.first?.messages, 1)
        XCTAssertEqual(totals.first?.recipients, 2)
        XCTAssertEqual(totals.first?.held, 1)
        XCTAssertEqual(totals.first?.limitTrips, 1)
    }

    // MARK: Limit trips, wrapping and the control socket

    func testTripNoticeSaysWhatHappensToTheMail() {
        let cases: [(Action, String)] = [
            (.tempfail, "refused with a temporary error"),
            (.hold, "put in Postfix's hold queue"),
            (.reject, "rejected with a permanent error"),
            (.tag, "still delivered, with the spam tag headers"),
        ]
        for (action, expected) in cases {
            let body = makeNotice(key: "account:alice", kind: .limitTrip, tripAction: action).body
            let prose = body.components(separatedBy: "\n\n")[0].replacingOccurrences(of: "\n", with: " ")
            XCTAssertTrue(prose.contains("The key is not suspended."), "\(action): \(prose)")
            XCTAssertTrue(prose.contains(expected), "\(action): \(prose)")
            XCTAssertTrue(body.contains("  egressctl show account:alice\n"), "\(action): \(body)")
            XCTAssertFalse(body.contains("lift the suspension"), "\(action): a trip notice offers to lift a suspension:\n\(body)")
            XCTAssertFalse(body.contains("--delete"), "\(action): \(body)")
        }
        // Only held mail has something to release.
        XCTAssertTrue(makeNotice(key: "account:alice", kind: .limitTrip, tripAction: .hold).body
            .contains("egressctl release account:alice --deliver"))
        XCTAssertFalse(makeNotice(key: "account:alice", kind: .limitTrip, tripAction: .tempfail).body
            .contains("egressctl release"))
    }

    func testSuspensionNoticeOffersReleaseCommands() {
        let body = makeNotice(key: "account:alice").body
        XCTAssertTrue(body.contains("To lift the suspension and deliver its held messages:\n  egressctl release account:alice --deliver\n"), body)
        XCTAssertTrue(body.contains("To lift the suspension and delete its held messages:\n  egressctl release account:alice --delete\n"), body)
        XCTAssertFalse(body.contains("not suspended"), body)
    }

    func testProseLinesAreWrapped() {
        let longKey = "script:alice:/home/alice/public_html/wp-content/uploads/2024/07/cache/x.php"
        for kind in SenderNotice.Kind.allCases {
            let body = makeNotice(key: longKey, kind: kind, tripAction: .tempfail).body
            let prose = body.components(separatedBy: "\n\n")[0].split(separator: "\n")
            XCTAssertGreaterThan(prose.count, 1, "\(kind): \(body)")
            for line in prose where line != Substring(longKey) && !line.contains(longKey) {
                XCTAssertLessThanOrEqual(line.count, SenderNotice.wrapColumn, "\(kind): '\(line)'")
            }
        }
        XCTAssertEqual(SenderNotice.wrap("aaa bbb ccc", width: 7), ["aaa bbb", "ccc"])
        XCTAssertEqual(SenderNotice.wrap("a \(String(repeating: "k", count: 20)) b", width: 10),
                       ["a", String(repeating: "k", count: 20), "b"])
    }

    func testCommandsNameNonDefaultSocket() {
        let notice = makeNotice(key: "account:alice", controlSocket: "/srv/egress/control dir/c.sock")
        let option = "--socket '/srv/egress/control dir/c.sock'"
        XCTAssertEqual(notice.showCommand, "egressctl show account:alice \(option)")
        XCTAssertEqual(notice.releaseDeliverCommand, "egressctl release account:alice --deliver \(option)")
        XCTAssertEqual(notice.releaseDeleteCommand, "egressctl release account:alice --delete \(option)")
        let environment = notice.environment
        for name in ["EGRESS_SHOW_COMMAND", "EGRESS_RELEASE_COMMAND", "EGRESS_DELETE_COMMAND"] {
            XCTAssertEqual(environment[name]?.hasSuffix(option), true, "\(name): \(environment[name] ?? "unset")")
        }
        XCTAssertTrue(notice.body.contains("  egressctl show account:alice \(option)\n"), notice.body)
        XCTAssertFalse(makeNotice(key: "account:alice").body.contains("--socket"))
    }

    // MARK: Summary counts

    func testMessageCountsOnceUnderSummaryKey() {
        let activity = SenderActivity()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let smtp = ["login:shop1", "sender:news@shop.example", "domain:shop.example", "ip:192.0.2.7", "server"]
        activity.record(keys: smtp, subject: nil, recipients: ["a@x.example", "b@x.example"], action: .accept,
                        trips: [TrippedLimit(key: "domain:shop.example", rule: "domains", description: "d", action: .tempfail)],
                        time: now)
        let totals = Dictionary(uniqueKeysWithValues: activity.totals(since: now.addingTimeInterval(-3600)).map { ($0.key, $0) })
        XCTAssertEqual(totals["login:shop1"]?.messages, 1)
        XCTAssertEqual(totals["login:shop1"]?.recipients, 2)
        XCTAssertNil(totals["ip:192.0.2.7"], "the message is counted under a second key")
        XCTAssertNil(totals["sender:news@shop.example"])
        XCTAssertEqual(totals["domain:shop.example"]?.messages, 0)
        XCTAssertEqual(totals["domain:shop.example"]?.limitTrips, 1)
        XCTAssertEqual(activity.tripsByRule(since: now), ["domains": ["domain:shop.example": 1]])
        // Samples still go to every key, for notices about any of them.
        XCTAssertEqual(activity.samples(for: "ip:192.0.2.7").recipientDomains, ["x.example"])
    }

    func testSummaryKeyPrefersVerifiedKeys() {
        let cases: [([String], String?)] = [
            (["script:alice:/x.php", "account:alice", "server"], "script:alice:/x.php"),
            (["account:alice", "domain:a.example", "server"], "account:alice"),
            (["login:shop1", "sender:a@b.example", "ip:192.0.2.7", "server"], "login:shop1"),
            (["sender:a@b.example", "domain:b.example", "ip:192.0.2.7", "server"], "ip:192.0.2.7"),
            (["sender:a@b.example", "local-unverified", "server"], "local-unverified"),
            (["sender:a@b.example", "server"], "sender:a@b.example"),
            (["server"], "server"),
            ([], nil),
        ]
        for (keys, expected) in cases {
            XCTAssertEqual(SenderActivity.summaryKey(of: keys), expected, "\(keys)")
        }
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
