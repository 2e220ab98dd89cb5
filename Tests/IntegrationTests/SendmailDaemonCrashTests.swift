// The daemon killed with SIGKILL in the middle of a burst of mail on both paths through
// Sendmail. With F=T on INPUT_MAIL_FILTER, Sendmail must reply 4xx to every SMTP message it
// could not filter, and the MSP must keep every local submission that the MTA deferred in its
// client queue. After a restart of the daemon and one run of the client queue, every message
// that the MTA accepted or that was submitted locally must reach the sink exactly once, and no
// message that got a 4xx reply may arrive.
import Foundation
import Synchronization
import XCTest

/// Results of the sending threads, shared with the test's thread.
private final class SendmailCrashTally: Sendable {
    let smtpResults = Mutex<[Int: SMTPDeliveryResult]>([:])
    let localFailures = Mutex<[Int: String]>([:])
    let acceptedCount = Atomic<Int>(0)
    let finishedThreads = Atomic<Int>(0)
}

final class SendmailDaemonCrashTests: SendmailTestCase {
    static let smtpMessageCount = 80
    static let localMessageCount = 40
    static let smtpThreadCount = 2
    static let localThreadCount = 1
    /// The daemon is killed once this many SMTP messages were accepted, well before the end.
    static let acceptedBeforeKill = 15

    func testKilledDaemonLosesNoMail() throws {
        let run = uniqueToken("sendmail-crash")
        let port = environment.sendmail.smtpPort
        let submitter = environment.sendmail.localSubmitter
        let tally = SendmailCrashTally()

        for thread in 0..<Self.smtpThreadCount {
            Thread {
                for index in stride(from: thread, to: Self.smtpMessageCount, by: Self.smtpThreadCount) {
                    let token = Self.token(run: run, path: "smtp", index: index)
                    let sender = "smtp-\(index)@shop.example"
                    let result = SMTPConnection.sendOne(
                        port: port, from: sender, to: ["friend@remote.example"],
                        content: testMessage(from: sender, to: "friend@remote.example", token: token))
                    tally.smtpResults.withLock { $0[index] = result }
                    if result.outcome == .accepted {
                        tally.acceptedCount.add(1, ordering: .relaxed)
                    }
                }
                tally.finishedThreads.add(1, ordering: .relaxed)
            }.start()
        }
        for thread in 0..<Self.localThreadCount {
            Thread {
                for index in stride(from: thread, to: Self.localMessageCount, by: Self.localThreadCount) {
                    let token = Self.token(run: run, path: "local", index: index)
                    let sender = "local-\(index)@shop.example"
                    do {
                        try submitter.submit(
                            from: sender, to: ["friend@remote.example"],
                            content: testMessage(from: sender, to: "friend@remote.example", token: token))
                    } catch {
                        tally.localFailures.withLock { $0[index] = "\(error)" }
                    }
                }
                tally.finishedThreads.add(1, ordering: .relaxed)
            }.start()
        }

        // Kill the daemon while the senders are busy, then let them finish against a dead milter.
        let threadCount = Self.smtpThreadCount + Self.localThreadCount
        let reachedKillPoint = waitUntil(timeoutSeconds: 120, pollSeconds: 0.005) {
            tally.acceptedCount.load(ordering: .relaxed) >= Self.acceptedBeforeKill
                || tally.finishedThreads.load(ordering: .relaxed) == threadCount
        }
        XCTAssertTrue(reachedKillPoint, "senders stalled: \(environment.diagnostics())")
        let killedPID = environment.daemon.processIdentifier
        environment.daemon.send(signal: SIGKILL)
        XCTAssertFalse(environment.daemon.isRunning)

        let sendersFinished = waitUntil(timeoutSeconds: 300, pollSeconds: 0.05) {
            tally.finishedThreads.load(ordering: .relaxed) == threadCount
        }
        XCTAssertTrue(sendersFinished, "senders did not finish: \(environment.diagnostics())")

        let results = tally.smtpResults.withLock { $0 }
        let localFailures = tally.localFailures.withLock { $0 }
        let accepted = Set(results.filter { $0.value.outcome == .accepted }.keys)
        let deferred = Set(results.filter { $0.value.outcome == .deferred }.keys)
        let others = results.filter { $0.value.outcome != .accepted && $0.value.outcome != .deferred }

        print("daemon killed after \(accepted.count) of \(Self.smtpMessageCount) SMTP messages were accepted by Sendmail; \(deferred.count) were deferred")
        XCTAssertEqual(results.count, Self.smtpMessageCount)
        XCTAssertGreaterThanOrEqual(accepted.count, Self.acceptedBeforeKill)
        XCTAssertFalse(deferred.isEmpty, "no SMTP message was deferred, so the kill did not happen while sending")
        XCTAssertTrue(others.isEmpty, "SMTP messages neither accepted nor deferred: \(others.sorted { $0.key < $1.key }.prefix(5))")
        XCTAssertTrue(localFailures.isEmpty, "local submissions failed: \(localFailures.sorted { $0.key < $1.key }.prefix(5))")
        for (index, result) in results where result.outcome == .deferred {
            XCTAssertEqual(result.reply.map { $0.code / 100 }, 4, "message \(index): \(String(describing: result.reply))")
        }
        // While the milter is down, the local submissions it could not filter wait in the
        // client queue, and none of them reached the sink unfiltered.
        let waitingLocally = environment.sendmail.queueFiles(prefix: "qf", in: environment.sendmail.clientQueueDirectory).count
        XCTAssertGreaterThan(waitingLocally, 0, "no local submission waits in the client queue: \(environment.diagnostics())")
        let unfiltered = environment.sendmail.sink.messages().filter { $0.headerValues(statusHeaderName).isEmpty }
        XCTAssertEqual(unfiltered.map(\.fileName), [], "messages delivered without the milter's header")

        // Restart, then offer the client queue to the MTA again, as Debian's cron job would.
        try environment.daemon.start()
        XCTAssertNotEqual(environment.daemon.processIdentifier, killedPID)
        try environment.sendmail.runClientQueue()

        let expectedCount = accepted.count + Self.localMessageCount
        XCTAssertTrue(environment.waitForSink(count: expectedCount, timeoutSeconds: 180), environment.diagnostics())

        // Count each token in the sink; anything but exactly one copy of the expected set fails.
        var copies: [String: Int] = [:]
        for message in environment.sendmail.sink.messages() {
            XCTAssertEqual(message.headerValues(statusHeaderName).count, 1, "\(message.fileName) was not filtered")
            for messageID in message.headerValues("Message-ID") {
                copies[messageID, default: 0] += 1
            }
        }
        var expected = Set(accepted.map { "<\(Self.token(run: run, path: "smtp", index: $0))@client.egress.test>" })
        for index in 0..<Self.localMessageCount {
            expected.insert("<\(Self.token(run: run, path: "local", index: index))@client.egress.test>")
        }
        let missing = expected.filter { copies[$0] == nil }.sorted()
        let duplicated = copies.filter { $0.value > 1 }.keys.sorted()
        let unexpected = copies.keys.filter { !expected.contains($0) }.sorted()
        XCTAssertEqual(missing.count, 0, "lost: \(missing.prefix(10)) \(environment.diagnostics())")
        XCTAssertEqual(duplicated.count, 0, "delivered more than once: \(duplicated.prefix(10))")
        XCTAssertEqual(unexpected.count, 0, "delivered although deferred or never sent: \(unexpected.prefix(10))")
        XCTAssertEqual(copies.values.reduce(0, +), expectedCount)

        let localSenders = Set(environment.daemon.decisions().filter { $0.path == "local" }.compactMap(\.sender))
        XCTAssertEqual(localSenders.count, Self.localMessageCount)
        XCTAssertTrue(environment.daemon.isRunning)
    }

    private static func token(run: String, path: String, index: Int) -> String {
        "\(run)-\(path)-\(index)"
    }
}
