// Tests for the notifier: the notice mail piped to sendmail with its arguments and seal,
// one notice per key and period, and the environment of the notification command (with
// --socket for a control socket off the default). Also a command that hangs, a failing
// sendmail or command quoted in the error line, the notices metric and status health, and
// notices queued from decided messages (suspensions and, with on_limit_trip, limit trips).
// Last, the daily summary sent once per day, and its suspensions released or repeated.

import EgressCore
import EgressMetrics
import Foundation
import XCTest

@testable import egress_milter

final class NotifierTests: XCTestCase {
    private static let identity = "script:alice:/home/alice/public_html/x.php<account:alice<local-unverified<server"

    /// A fixture whose notifications use fake sendmail and command scripts that write into
    /// the fixture's directory.
    private func makeFixture(command: [String] = [], mailTo: [String] = ["admin@example.org"],
                             timeoutSeconds: Int = 10, controlSocket: String? = nil,
                             metrics: DaemonMetrics? = nil) throws -> (ControlFixture, Notifier) {
        let directory = NSTemporaryDirectory() + "egress-notifier-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = Configuration.defaults
        configuration.notifications.mailTo = mailTo
        configuration.notifications.mailFrom = "milter@example.org"
        // Each mail is appended to mail.txt after a separator; the arguments go to args.txt.
        configuration.notifications.sendmailCommand = [
            "/bin/sh", "-c", "echo '----' >> \(directory)/mail.txt; cat >> \(directory)/mail.txt; echo \"$@\" >> \(directory)/args.txt",
            "fake-sendmail",
        ]
        configuration.notifications.command = command.map { $0.replacingOccurrences(of: "DIR", with: directory) }
        configuration.notifications.timeoutSeconds = timeoutSeconds
        if let controlSocket {
            configuration.control.socketPath = controlSocket.replacingOccurrences(of: "DIR", with: directory)
        }
        let fixture = try ControlFixture.make(directory: directory, configuration: configuration)
        let ledger = try NoticeLedger(directory: directory)
        let recorder = DecisionRecorder(logger: fixture.log.logger, metrics: metrics)
        recorder.attach(heldStore: fixture.heldStore, runtime: fixture.runtime)
        let notifier = Notifier(policySource: fixture.policySource, recorder: recorder, ledger: ledger,
                                logger: fixture.log.logger, hostname: "web1.example.org")
        return (fixture, notifier)
    }

    private func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    func testNoticeMailGoesToSendmailWithSeal() throws {
        let (fixture, notifier) = try makeFixture()
        notifier.sendNotice(kind: .suspension, key: "account:alice", reason: "limit accounts: hard limit 50/1h exceeded (51)",
                            identity: Self.identity, queueID: "4AbC", time: Date())

        XCTAssertEqual(read(fixture.directory + "/args.txt"), "-i -f milter@example.org -- admin@example.org\n")
        let mail = read(fixture.directory + "/mail.txt")
        XCTAssertTrue(mail.contains("Subject: egress-milter on web1.example.org: account:alice suspended"), mail)
        XCTAssertTrue(mail.contains("egressctl release account:alice --deliver"), mail)
        XCTAssertTrue(mail.contains("Script:    /home/alice/public_html/x.php"), mail)

        // The seal in the mail is one the notifier accepts, once.
        let fields = mail.components(separatedBy: "\n\n")[0].split(separator: "\n").compactMap { line -> Header? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return Header(name: String(line[..<colon]), value: Array(line[line.index(after: colon)...].utf8))
        }
        XCTAssertEqual(notifier.seal.redeem(headers: fields, now: Date().timeIntervalSince1970), .valid)
        XCTAssertTrue(fixture.log.texts(at: .notice).contains { $0.hasPrefix("suspension notice for account:alice sent: to=admin@example.org") })
    }

    func testSecondNoticeWithinPeriodIsNotSent() throws {
        let (fixture, notifier) = try makeFixture()
        for _ in 0..<3 {
            notifier.sendNotice(kind: .suspension, key: "account:alice", reason: "r", identity: Self.identity, queueID: nil, time: Date())
        }
        notifier.sendNotice(kind: .suspension, key: "account:bob", reason: "r", identity: "account:bob<server", queueID: nil, time: Date())
        let separators = read(fixture.directory + "/mail.txt").components(separatedBy: "----\n").count - 1
        XCTAssertEqual(separators, 2)
    }

    func testCommandGetsNoticeInEnvironment() throws {
        let (fixture, notifier) = try makeFixture(command: ["/bin/sh", "-c", "env > DIR/env.txt; echo done"], mailTo: [])
        notifier.sendNotice(kind: .suspension, key: "script:alice:/home/alice/public_html/x.php", reason: "limit scripts: hard",
                            identity: Self.identity, queueID: "4AbC", time: Date())

        var environment: [String: String] = [:]
        for line in read(fixture.directory + "/env.txt").split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            environment[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        XCTAssertEqual(environment["EGRESS_KIND"], "suspension")
        XCTAssertEqual(environment["EGRESS_KEY"], "script:alice:/home/alice/public_html/x.php")
        XCTAssertEqual(environment["EGRESS_ACCOUNT"], "alice")
        XCTAssertEqual(environment["EGRESS_SCRIPT"], "/home/alice/public_html/x.php")
        XCTAssertEqual(environment["EGRESS_REASON"], "limit scripts: hard")
        XCTAssertEqual(environment["EGRESS_QUEUE_ID"], "4AbC")
        XCTAssertEqual(environment["EGRESS_RELEASE_COMMAND"], "egressctl release script:alice:/home/alice/public_html/x.php --deliver")
        XCTAssertEqual(environment["PATH"], ChildProgram.baseEnvironment["PATH"])
        XCTAssertNil(environment["HOME"], "the daemon's own environment leaked into the command")
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.directory + "/mail.txt"), "a mail was sent without mail_to")
        XCTAssertTrue(fixture.log.texts(at: .notice).contains { $0.contains("passed to /bin/sh: exit status 0") })
    }

    func testHangingCommandIsKilled() throws {
        let (fixture, notifier) = try makeFixture(command: ["/bin/sleep", "30"], mailTo: [], timeoutSeconds: 1)
        notifier.sendNotice(kind: .suspension, key: "account:alice", reason: "r", identity: Self.identity, queueID: nil, time: Date())
        XCTAssertTrue(fixture.log.texts(at: .error).contains { $0.contains("did not finish within 1 s and was killed") },
                      "\(fixture.log.texts(at: .error))")
    }

    func testFailingSendmailIsLogged() throws {
        let (fixture, notifier) = try makeFixture()
        var settings = fixture.policySource.current.configuration.notifications
        settings.sendmailCommand = ["/bin/sh", "-c", "echo 'fatal: no such queue' >&2; exit 75", "fake-sendmail"]
        let problem = notifier.sendMail(subject: "s", body: "b\n", to: ["admin@example.org"], settings: settings,
                                        description: "test mail", kind: .summary)
        XCTAssertNotNil(problem)
        XCTAssertTrue(fixture.log.texts(at: .error).contains { $0.contains("exited with status 75: fatal: no such queue") },
                      "\(fixture.log.texts(at: .error))")
    }

    func testSuspendingMessageQueuesNotice() throws {
        var configuration = try Configuration.parse("""
            limits:
              - name: senders
                level: sender
                messages: [2/1h hard]
            """, file: "test.yaml")
        let directory = NSTemporaryDirectory() + "egress-notifier-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        configuration.notifications.command = ["/bin/sh", "-c", "echo \"$EGRESS_KEY\" >> \(directory)/keys.txt"]
        let fixture = try ControlFixture.make(directory: directory, configuration: configuration)
        let notifier = Notifier(policySource: fixture.policySource, recorder: fixture.recorder,
                                ledger: try NoticeLedger(directory: directory), logger: fixture.log.logger, hostname: "h")
        notifier.start()
        defer { notifier.stop() }

        for index in 0..<5 {
            let facts = MessageFacts(queueID: "Q\(index)", path: .smtp, clientAddress: "192.0.2.7",
                                     envelopeSender: "news@shop.example", recipients: ["r@example.net"],
                                     headers: [Header(name: "Subject", value: Array(" offer \(index)".utf8))])
            let verdict = try fixture.policySource.current.policy.evaluate(facts, now: fixture.policySource.clock.now())
            fixture.policySource.current.policy.commit(verdict)
            notifier.observe(facts: facts, verdict: verdict, time: Date())
        }
        let written = waitUntil(seconds: 20) { FileManager.default.fileExists(atPath: directory + "/keys.txt") }
        XCTAssertTrue(written, "no notice within 20 s: \(fixture.log.texts(at: .error))")
        // Give a duplicate the chance to appear before counting.
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(read(directory + "/keys.txt"), "sender:news@shop.example\n")
        XCTAssertEqual(notifier.activity.samples(for: "sender:news@shop.example").subjects.count, SenderActivity.subjectsPerKey)
    }

    func testLimitTripNotifiesOncePerKey() throws {
        var configuration = try Configuration.parse("""
            limits:
              - name: senders
                level: sender
                messages: [1/1h]
            """, file: "test.yaml")
        let directory = NSTemporaryDirectory() + "egress-notifier-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        configuration.notifications.command = ["/bin/sh", "-c", "echo \"$EGRESS_KIND $EGRESS_KEY\" >> \(directory)/trips.txt"]
        let fixture = try ControlFixture.make(directory: directory, configuration: configuration)
        let notifier = Notifier(policySource: fixture.policySource, recorder: fixture.recorder,
                                ledger: try NoticeLedger(directory: directory), logger: fixture.log.logger, hostname: "h")

        // Without on_limit_trip a trip sends nothing; with it, the first trip per key does.
        for onLimitTrip in [false, true] {
            var changed = configuration
            changed.notifications.onLimitTrip = onLimitTrip
            fixture.policySource.replace(with: ActivePolicy(configuration: changed, overrides: .empty,
                                                      limiter: fixture.policySource.current.policy.limiter))
            for index in 0..<3 {
                let verdict = try fixture.decide(from: "news@shop.example", queueID: "T\(onLimitTrip)\(index)")
                notifier.observe(facts: MessageFacts(path: .smtp, envelopeSender: "news@shop.example"), verdict: verdict, time: Date())
            }
        }
        notifier.start()
        defer { notifier.stop() }
        let written = waitUntil(seconds: 20) { FileManager.default.fileExists(atPath: directory + "/trips.txt") }
        XCTAssertTrue(written, "no notice within 20 s: \(fixture.log.texts(at: .error))")
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(read(directory + "/trips.txt"), "limit-trip sender:news@shop.example\n")
    }

    func testDailySummaryIsSentOncePerDay() throws {
        let (fixture, notifier) = try makeFixture()
        var configuration = fixture.policySource.current.configuration
        configuration.notifications.dailySummary.enabled = true
        configuration.notifications.dailySummary.minuteOfDay = 6 * 60
        fixture.policySource.replace(with: ActivePolicy(configuration: configuration, overrides: .empty,
                                                  limiter: fixture.policySource.current.policy.limiter))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let scheduled = try XCTUnwrap(calendar.date(from: DateComponents(year: 2027, month: 1, day: 15, hour: 6, minute: 0)))

        // Wake-ups before the time send nothing; the one that passes it sends once.
        notifier.sendScheduledSummary(between: scheduled.addingTimeInterval(-90), and: scheduled.addingTimeInterval(-30))
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.directory + "/mail.txt"))
        notifier.sendScheduledSummary(between: scheduled.addingTimeInterval(-30), and: scheduled.addingTimeInterval(1))
        // A restart that passes the time again on the same day sends nothing.
        notifier.sendScheduledSummary(between: scheduled.addingTimeInterval(-1), and: scheduled.addingTimeInterval(20))
        let mail = read(fixture.directory + "/mail.txt")
        XCTAssertEqual(mail.components(separatedBy: "----\n").count - 1, 1, mail)
        XCTAssertTrue(mail.contains("daily summary"), mail)
        XCTAssertTrue(mail.contains("Top senders (each message counted once"), mail)
    }

    func testFailingCommandErrorQuotesStandardError() throws {
        let (fixture, notifier) = try makeFixture(
            command: ["/bin/sh", "-c", "echo progress; printf 'pager down\\n\\033[1mretry\\n' >&2; exit 3"], mailTo: [])
        notifier.sendNotice(kind: .suspension, key: "account:alice", reason: "r", identity: Self.identity, queueID: nil, time: Date())
        let errors = fixture.log.texts(at: .error)
        XCTAssertTrue(errors.contains { $0.hasSuffix("exited with status 3: pager down / ?[1mretry") }, "\(errors)")
        XCTAssertEqual(notifier.health.failed, 1)
        XCTAssertEqual(notifier.health.lastFailure?.contains("pager down"), true)
    }

    func testNoticesAreCountedInMetricsAndHealth() throws {
        let metrics = DaemonMetrics(startTime: Date(), version: "test")
        let (fixture, notifier) = try makeFixture(command: ["/bin/sh", "-c", "exit 1"], metrics: metrics)
        notifier.sendNotice(kind: .suspension, key: "account:alice", reason: "r", identity: Self.identity, queueID: nil, time: Date())
        // Without the worker the queue fills up, and the job beyond it is dropped.
        for index in 0...Notifier.maximumQueuedJobs {
            notifier.enqueue(.notice(.limitTrip, key: "account:u\(index)", reason: "r", action: .tempfail, identity: "account:u<server",
                                     queueID: nil, time: Date()))
        }

        let text = metrics.exposition(suspendedKeys: 0, trackedKeys: 0)
        let expected = [
            #"egress_milter_notices_total{kind="suspension",channel="mail",result="sent"} 1"#,
            #"egress_milter_notices_total{kind="suspension",channel="command",result="failed"} 1"#,
            #"egress_milter_notices_total{kind="limit_trip",channel="mail",result="dropped"} 1"#,
            #"egress_milter_notices_total{kind="limit_trip",channel="command",result="dropped"} 1"#,
            #"egress_milter_notices_total{kind="summary",channel="mail",result="sent"} 0"#,
        ]
        for line in expected {
            XCTAssertTrue(text.contains(line + "\n"), "the exposition lacks \(line)")
        }
        let handler = ControlHandler(policySource: fixture.policySource, recorder: fixture.recorder, runtime: fixture.runtime,
                                     logger: fixture.log.logger, notifier: notifier,
                                     reload: { ReloadReport(succeeded: true, configuration: "test") })
        let health = try XCTUnwrap(handler.status().notifications)
        XCTAssertEqual(health.sent, 1)
        XCTAssertEqual(health.failed, 1)
        XCTAssertEqual(health.dropped, 1)
        XCTAssertNotNil(health.lastFailureAt)
    }

    func testCommandsNameTheControlSocket() throws {
        let (fixture, notifier) = try makeFixture(command: ["/bin/sh", "-c", "env > DIR/env.txt"], mailTo: [],
                                                  controlSocket: "DIR/control.sock")
        notifier.sendNotice(kind: .suspension, key: "account:alice", reason: "r", identity: Self.identity, queueID: nil, time: Date())
        let environment = read(fixture.directory + "/env.txt")
        let option = "--socket \(fixture.directory)/control.sock"
        XCTAssertTrue(environment.contains("EGRESS_RELEASE_COMMAND=egressctl release account:alice --deliver \(option)\n"), environment)
        XCTAssertTrue(environment.contains("EGRESS_SHOW_COMMAND=egressctl show account:alice \(option)\n"), environment)
        XCTAssertEqual(Notifier.socketOption(ControlSettings().socketPath), nil)
        XCTAssertEqual(Notifier.socketOption(""), nil)
    }

    func testSummaryListsReleasedAndRepeatedSuspensions() throws {
        var configuration = try Configuration.parse("""
            limits:
              - name: senders
                level: sender
                messages: [1/1h hard]
            """, file: "test.yaml")
        let directory = NSTemporaryDirectory() + "egress-notifier-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        configuration.notifications.mailTo = []
        let fixture = try ControlFixture.make(directory: directory, configuration: configuration)
        let notifier = Notifier(policySource: fixture.policySource, recorder: fixture.recorder,
                                ledger: try NoticeLedger(directory: directory), logger: fixture.log.logger, hostname: "h")
        let handler = ControlHandler(policySource: fixture.policySource, recorder: fixture.recorder, runtime: fixture.runtime,
                                     logger: fixture.log.logger, notifier: notifier,
                                     reload: { ReloadReport(succeeded: true, configuration: "test") })

        // A rule suspends the sender, and an admin releases it within the day.
        for index in 0..<2 {
            let verdict = try fixture.decide(from: "news@shop.example", queueID: "S\(index)")
            notifier.observe(facts: MessageFacts(path: .smtp, envelopeSender: "news@shop.example"), verdict: verdict, time: Date())
        }
        _ = try handler.release(key: "sender:news@shop.example", by: "uid 0 (root)")
        // An admin suspends another key three times, releasing it twice.
        for round in 0..<3 {
            _ = try handler.suspend(key: "account:bob", reason: "round \(round)", by: "uid 1000 (carol)")
            if round < 2 {
                _ = try handler.release(key: "account:bob", by: "uid 1000 (carol)")
            }
        }

        let summary = notifier.makeSummary(now: Date())
        XCTAssertEqual(summary.suspensions.map(\.key), ["sender:news@shop.example", "account:bob", "account:bob", "account:bob"])
        XCTAssertEqual(summary.suspensions.map(\.isInForce), [false, false, false, true])
        XCTAssertEqual(summary.suspensions.first?.rule, "senders")
        XCTAssertEqual(summary.suspensions.first?.releasedBy, "uid 0 (root)")
        XCTAssertEqual(summary.suspensions.last?.suspendedBy, "uid 1000 (carol)")
        XCTAssertEqual(summary.suspendedNow, 1)
        XCTAssertTrue(summary.subject.contains("4 new suspensions"), summary.subject)
        XCTAssertTrue(summary.body.contains("released "), summary.body)
    }

    private func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition()
    }
}
