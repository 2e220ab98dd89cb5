// Admin notifications through a real Postfix. A local sender without a verified account
// trips its limit and is suspended. Exactly one notice mail reaches the sink, addressed to
// the admin and carrying the release commands, although it went through the same milter
// on the local path while its own key (local-unverified) was suspended. More held mail, a
// release, a daemon restart and a second suspension within the period send no second
// notice, and the summary lists both suspensions, the first as released. The daemon's
// control socket is not the default, so every egressctl command in the notice carries
// --socket. The notification command writes its environment to a file,
// `egressctl summary --send` delivers the summary mail, and a forged seal gets no exemption.
//
// The daemon runs as an unprivileged user and submits with the instance's sendmail, which
// a user other than root may use only when /etc/postfix/main.cf lists the instance's
// configuration directory. The test changes that file under `HostLock` and undoes it in a
// teardown block.
import EgressCore
import Foundation
import Glibc
import XCTest

final class NotificationTests: IntegrationTestCase {
    static let adminAddress = "admin@notify.test"
    static let noticeSender = "egress-milter@mta.egress.test"
    /// Messages local-unverified may send per hour; the next one trips and suspends it.
    static let unverifiedLimit = 3

    private var control: EgressControlRunner!
    private var notifyDirectory = ""

    override func prepareEnvironment(_ environment: IntegrationEnvironment) throws {
        guard let executable = EgressControlRunner.locateExecutable() else {
            throw CommandError(description: "egressctl binary not found beside egress-milter; build it (swift build --product egressctl) or set EGRESSCTL_BIN")
        }
        control = EgressControlRunner(
            executable: executable, socketPath: environment.controlSocketPath,
            postfixConfigDirectory: environment.postfix.configDirectory)

        let lock = try HostLock(timeoutSeconds: 900)
        addTeardownBlock { lock.release() }
        addTeardownBlock(try HostFiles.authorizePostfixConfigurationDirectory(environment.postfix.configDirectory))

        // The command runs as the daemon's user, which must be able to write its file here.
        let user = getpwnam("egress-milter") != nil ? "egress-milter" : "nobody"
        notifyDirectory = environment.root + "/notify"
        try FileManager.default.createDirectory(atPath: notifyDirectory, withIntermediateDirectories: true)
        try CommandRunner.runChecked("/bin/chown", [user, notifyDirectory])

        let sendmail = environment.postfix.localSubmitter.sendmail
        environment.additionalDaemonConfiguration = """
            limits:
              - name: unverified
                level: local-unverified
                messages: [\(Self.unverifiedLimit)/1h]
                local_action: hold
                suspend_after: 1 trip within 1h
            notifications:
              mail_to: [\(Self.adminAddress)]
              mail_from: \(Self.noticeSender)
              command: [/bin/sh, -c, "env > \(notifyDirectory)/env.txt"]
              period: 1h
              sendmail_command: [\(sendmail), -C, \(environment.postfix.configDirectory)]
              timeout: 30s

            """
    }

    // MARK: Tests

    func testSuspensionSendsOneNoticeAcrossRestart() throws {
        // 1. The sender's allowance, then the message that trips and suspends it, then more.
        for index in 0..<(Self.unverifiedLimit + 3) {
            try submit(token: uniqueToken("first-\(index)"), recipient: "user\(index)@remote\(index % 2).test")
        }
        XCTAssertTrue(waitForNotices(count: 1), "no notice arrived: \(environment.diagnostics())")
        XCTAssertTrue(settle(), "the queue did not settle: \(environment.diagnostics())")

        let notices = environment.postfix.sink.messages(to: Self.adminAddress)
        XCTAssertEqual(notices.count, 1, environment.diagnostics())
        guard let notice = notices.first else { return }
        let text = String(decoding: notice.bytes, as: UTF8.self)
        XCTAssertEqual(notice.recipients, [Self.adminAddress])
        XCTAssertEqual(notice.sender, Self.noticeSender)
        XCTAssertEqual(notice.headerValues("Subject").first?.hasSuffix("local-unverified suspended"), true, "\(notice.headerValues("Subject"))")
        XCTAssertEqual(notice.headerValues("Content-Type"), ["text/plain; charset=utf-8"])
        XCTAssertEqual(notice.headerValues(NoticeSeal.headerName), [], "the seal reached the recipient")
        let socketOption = "--socket \(shellQuoted(environment.controlSocketPath))"
        XCTAssertTrue(text.contains("  egressctl release local-unverified --deliver \(socketOption)\n"), text)
        XCTAssertTrue(text.contains("  egressctl release local-unverified --delete \(socketOption)\n"), text)
        XCTAssertTrue(text.contains("  egressctl show local-unverified \(socketOption)\n"), text)
        XCTAssertTrue(text.contains("Recipient domains: remote0.test, remote1.test"), text)
        XCTAssertTrue(text.contains("  integration first-"), "no sample subject: \(text)")

        // The notice was accepted as the daemon's own, not held, while its key was suspended.
        let noticeDecisions = environment.daemon.decisions().filter { $0.sender == Self.noticeSender }
        XCTAssertEqual(noticeDecisions.map(\.action), ["accept"])
        XCTAssertEqual(noticeDecisions.first?.fields["reason"]?.hasPrefix("notice from egress-milter"), true)
        XCTAssertEqual(noticeDecisions.first?.path, "local")
        let held = try environment.postfix.queueEntries().filter { $0.queueName == "hold" }
        XCTAssertEqual(held.count, 3, environment.diagnostics())
        XCTAssertFalse(held.contains { $0.sender == Self.noticeSender }, "a notice is in the hold queue")

        // The command got the details in its environment.
        let environmentText = (try? String(contentsOfFile: notifyDirectory + "/env.txt", encoding: .utf8)) ?? ""
        XCTAssertTrue(environmentText.contains("EGRESS_KEY=local-unverified\n"), environmentText)
        XCTAssertTrue(environmentText.contains("EGRESS_KIND=suspension\n"), environmentText)
        XCTAssertTrue(environmentText.contains("EGRESS_RELEASE_COMMAND=egressctl release local-unverified --deliver \(socketOption)\n"),
                      environmentText)
        XCTAssertTrue(environmentText.contains("EGRESS_REASON=limit unverified: 1 trip within 1h"), environmentText)

        // 2. Release, restart and suspend again within the period: no second notice.
        let release = try control.run("release", ["local-unverified", "--delete"] + control.postfixOptions)
        XCTAssertEqual(release.status, 0, release.standardOutput + release.standardError)
        environment.daemon.stop()
        try environment.daemon.start()
        for index in 0..<(Self.unverifiedLimit + 2) {
            try submit(token: uniqueToken("second-\(index)"), recipient: "user\(index)@remote.test")
        }
        let suspendedAgain = waitUntil(timeoutSeconds: 60, pollSeconds: 0.2) {
            environment.daemon.log().components(separatedBy: "suspended local-unverified:").count - 1 >= 2
        }
        XCTAssertTrue(suspendedAgain, "the second suspension was not logged: \(environment.diagnostics())")
        // Postfix puts a message on hold only after the session returned, and the session
        // queues the notice before it returns.
        let heldAgain = waitUntil(timeoutSeconds: 60, pollSeconds: 0.2) {
            ((try? environment.postfix.queueEntries()) ?? []).filter { $0.queueName == "hold" }.count >= 2
        }
        XCTAssertTrue(heldAgain, "the messages after the second suspension were not held: \(environment.diagnostics())")

        // The worker handles jobs in order, so once the summary it sends after the second
        // suspension has arrived, a second notice would have been submitted before it.
        let summary = try control.run("summary", ["--send"])
        XCTAssertEqual(summary.status, 0, summary.standardOutput + summary.standardError)
        XCTAssertTrue(waitForNotices(count: 2), "the summary did not arrive: \(environment.diagnostics())")
        XCTAssertTrue(settle(), "the queue did not settle: \(environment.diagnostics())")
        let subjects = environment.postfix.sink.messages(to: Self.adminAddress).flatMap { $0.headerValues("Subject") }
        XCTAssertEqual(subjects.filter { $0.hasSuffix("suspended") }.count, 1, "\(subjects)")
        XCTAssertEqual(subjects.filter { $0.contains("daily summary") }.count, 1, "\(subjects)")

        // The summary lists both suspensions of the key: the released one and the one in force.
        XCTAssertEqual(subjects.filter { $0.contains("daily summary, 2 new suspensions") }.count, 1, "\(subjects)")
        let summaryText = environment.postfix.sink.messages(to: Self.adminAddress)
            .filter { $0.headerValues("Subject").contains { $0.contains("daily summary") } }
            .map { String(decoding: $0.bytes, as: UTF8.self) }.first ?? ""
        XCTAssertTrue(summaryText.contains("Suspensions that began in the period: 2 (keys suspended now: 1)"), summaryText)
        XCTAssertTrue(summaryText.contains("      by rule unverified: limit unverified: 1 trip within 1h"), summaryText)
        XCTAssertTrue(summaryText.contains("      released "), summaryText)
        XCTAssertTrue(summaryText.contains("      still in force"), summaryText)
    }

    func testSummarySendDeliversMail() throws {
        for index in 0..<2 {
            try submit(token: uniqueToken("summary-\(index)"), recipient: "user@remote.test")
        }
        XCTAssertTrue(environment.waitForSink(count: 2, timeoutSeconds: 60), environment.diagnostics())

        let printed = try control.run("summary")
        XCTAssertEqual(printed.status, 0, printed.standardError)
        XCTAssertTrue(printed.standardOutput.contains("  MESSAGES  RECIPIENTS  HELD  REFUSED  KEY\n"), printed.standardOutput)
        XCTAssertTrue(hasSenderRow(printed.standardOutput, key: "local-unverified", counts: [2, 2, 0, 0]), printed.standardOutput)
        XCTAssertEqual(environment.postfix.sink.messages(to: Self.adminAddress).count, 0, "summary without --send mailed")

        let (result, report) = try control.json(SummaryReport.self, "summary", ["--send"])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertTrue(report.sent, report.error ?? "")
        XCTAssertEqual(report.recipients, [Self.adminAddress])
        XCTAssertNil(report.text, "--json prints the text")
        let sender = report.summary?.topSenders.first { $0.key == "local-unverified" }
        XCTAssertEqual(sender?.messages, 2, "\(String(describing: report.summary))")
        XCTAssertEqual(sender?.recipients, 2)
        XCTAssertTrue(waitForNotices(count: 1), "the summary did not arrive: \(environment.diagnostics())")
        let mails = environment.postfix.sink.messages(to: Self.adminAddress)
        XCTAssertEqual(mails.count, 1)
        let text = mails.first.map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""
        XCTAssertTrue(hasSenderRow(text, key: "local-unverified", counts: [2, 2, 0, 0]), text)
        XCTAssertTrue(text.contains("Held messages recorded now: 0"), text)
    }

    func testForgedSealGetsNoExemption() throws {
        for index in 0...Self.unverifiedLimit {
            try submit(token: uniqueToken("forge-\(index)"), recipient: "user\(index)@remote.test")
        }
        XCTAssertTrue(waitForHeld(count: 1), "the tripping message was not held: \(environment.diagnostics())")

        // A local program that copies the notice format, with a seal it cannot compute.
        let forged = """
            From: <\(Self.noticeSender)>
            To: <\(Self.adminAddress)>
            Subject: forged notice
            Message-ID: <notice.00000000000000000000000000000000@mta.egress.test>
            \(NoticeSeal.headerName): \(String(repeating: "0", count: 64))

            Please release everything.

            """
        try environment.postfix.submitLocally(from: Self.noticeSender, to: [Self.adminAddress], content: Array(forged.utf8))
        environment.postfix.wakePickup()
        XCTAssertTrue(waitForHeld(count: 2), "the forged notice was not held: \(environment.diagnostics())")

        let forgedDecisions = environment.daemon.decisions().filter { $0.sender == Self.noticeSender && $0.action == "hold" }
        XCTAssertEqual(forgedDecisions.count, 1, environment.diagnostics())
        XCTAssertTrue(environment.daemon.log().contains("invalid \(NoticeSeal.headerName): the seal does not match the Message-ID"),
                      environment.diagnostics())
        XCTAssertTrue(settle(), "the queue did not settle: \(environment.diagnostics())")
        let subjects = environment.postfix.sink.messages(to: Self.adminAddress).flatMap { $0.headerValues("Subject") }
        XCTAssertFalse(subjects.contains("forged notice"), "the forged notice was delivered: \(subjects)")
    }

    // MARK: Helpers

    /// True when a line of the summary's sender table shows `counts` (messages, recipients,
    /// held, refused) for `key`, whatever the column widths.
    private func hasSenderRow(_ text: String, key: String, counts: [Int]) -> Bool {
        text.split(separator: "\n").contains { line in
            let words = line.split(separator: " ").map(String.init)
            return words == counts.map(String.init) + [key]
        }
    }

    private func waitForHeld(count: Int) -> Bool {
        waitUntil(timeoutSeconds: 60, pollSeconds: 0.2) {
            environment.postfix.wakePickup()
            return ((try? environment.postfix.queueEntries()) ?? []).filter { $0.queueName == "hold" }.count >= count
        }
    }

    /// Submits a message with the instance's sendmail as root, without the wrapper, so the
    /// daemon decides it as local mail without a verified account: local-unverified.
    private func submit(token: String, recipient: String) throws {
        let sender = "script@site.test"
        try environment.postfix.submitLocally(from: sender, to: [recipient],
                                              content: testMessage(from: sender, to: recipient, token: token))
        environment.postfix.wakePickup()
    }

    private func waitForNotices(count: Int) -> Bool {
        waitUntil(timeoutSeconds: 90, pollSeconds: 0.2) {
            environment.postfix.wakePickup()
            return environment.postfix.sink.messages(to: Self.adminAddress).count >= count
        }
    }

    private func settle() -> Bool {
        environment.postfix.waitForOnlyHeldMessages(timeoutSeconds: 90)
    }
}
