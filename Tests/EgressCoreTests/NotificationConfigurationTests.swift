// Tests for the `notifications:` section: decoding every key, the errors that name file,
// line and key, and the summary that reads back as the same settings.

import XCTest
@testable import EgressCore

final class NotificationConfigurationTests: XCTestCase {
    private static let everyKey = """
        notifications:
          mail_to: [admin@example.org, oncall@example.org]
          mail_from: milter@mx.example.org
          command: [/usr/local/bin/page-admin, --urgent]
          on_limit_trip: true
          period: 6h
          sendmail_command: [/usr/sbin/sendmail, -C, /etc/postfix-out]
          timeout: 1m
          daily_summary:
            enabled: true
            at: "07:30"
            mail_to: [reports@example.org]
        """

    func testDefaultsAreOff() {
        let settings = Configuration.defaults.notifications
        XCTAssertFalse(settings.isEnabled)
        XCTAssertEqual(settings.mailTo, [])
        XCTAssertEqual(settings.command, [])
        XCTAssertEqual(settings.mailFrom, "egress-milter")
        XCTAssertEqual(settings.periodSeconds, 3600)
        XCTAssertEqual(settings.sendmailCommand, ["/usr/sbin/sendmail"])
        XCTAssertFalse(settings.onLimitTrip)
        XCTAssertFalse(settings.dailySummary.enabled)
        XCTAssertEqual(settings.dailySummary.timeText, "06:00")
    }

    func testEveryKeyDecodes() throws {
        let settings = try Configuration.parse(Self.everyKey, file: "test.yaml").notifications
        XCTAssertTrue(settings.isEnabled)
        XCTAssertEqual(settings.mailTo, ["admin@example.org", "oncall@example.org"])
        XCTAssertEqual(settings.mailFrom, "milter@mx.example.org")
        XCTAssertEqual(settings.command, ["/usr/local/bin/page-admin", "--urgent"])
        XCTAssertTrue(settings.onLimitTrip)
        XCTAssertEqual(settings.periodSeconds, 6 * 3600)
        XCTAssertEqual(settings.sendmailCommand, ["/usr/sbin/sendmail", "-C", "/etc/postfix-out"])
        XCTAssertEqual(settings.timeoutSeconds, 60)
        XCTAssertTrue(settings.dailySummary.enabled)
        XCTAssertEqual(settings.dailySummary.minuteOfDay, 7 * 60 + 30)
        XCTAssertEqual(settings.dailySummary.mailTo, ["reports@example.org"])
    }

    func testSummaryReadsBackAsSameSettings() throws {
        let configuration = try Configuration.parse(Self.everyKey, file: "test.yaml")
        let reread = try Configuration.parse(configuration.summary(), file: "summary.yaml")
        XCTAssertEqual(reread.notifications, configuration.notifications)
    }

    func testInvalidValuesNameLineAndKey() {
        let cases: [(yaml: String, key: String, line: Int, fragment: String)] = [
            ("notifications:\n  mail_to: [\"-oQ/tmp\"]\n", "notifications.mail_to[0]", 2, "option"),
            ("notifications:\n  mail_to: [\"a@b, c@d\"]\n", "notifications.mail_to[0]", 2, "plain address"),
            ("notifications:\n  mail_to: admin@example.org\n", "notifications.mail_to", 2, "sequence"),
            ("notifications:\n  command: [page-admin]\n", "notifications.command", 2, "absolute path"),
            ("notifications:\n  sendmail_command: []\n", "notifications.sendmail_command", 2, "must name a program"),
            ("notifications:\n  period: 0\n", "notifications.period", 2, "at least 1 second"),
            ("notifications:\n  timeout: 2h\n", "notifications.timeout", 2, "at most"),
            ("notifications:\n  on_limit_trip: yes\n", "notifications.on_limit_trip", 2, "true or false"),
            ("notifications:\n  daily_summary:\n    at: \"25:00\"\n", "notifications.daily_summary.at", 3, "HH:MM"),
            ("notifications:\n  mail_too: [a@b]\n", "notifications.mail_too", 2, "did you mean 'mail_to'"),
        ]
        for entry in cases {
            XCTAssertThrowsError(try Configuration.parse(entry.yaml, file: "bad.yaml"), entry.yaml) { error in
                guard let error = error as? ConfigurationError else {
                    return XCTFail("not a ConfigurationError: \(error)")
                }
                XCTAssertEqual(error.key, entry.key, entry.yaml)
                XCTAssertEqual(error.line, entry.line, entry.yaml)
                XCTAssertEqual(error.file, "bad.yaml")
                XCTAssertTrue(error.message.contains(entry.fragment), "\(error.message) lacks '\(entry.fragment)'")
            }
        }
    }
}
