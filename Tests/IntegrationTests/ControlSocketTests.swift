// The control socket and egressctl against a running daemon and a real Postfix: status,
// suspend and the hold it causes, keys typed in another case or form than the daemon builds
// them, the list of suspended keys, show with queue IDs, release with --deliver (the held mail
// reaches the sink and leaves the hold queue) and --delete (removed, never delivered), the
// same after a daemon restart, a release that changes nothing when the queue cannot be read, top,
// reload of a broken file, and the exit status when the daemon is down.
//
// The daemon's configuration adds a control socket inside the test's directory and one limit
// rule per sender address, so `top` and `show` have windows to report.
import EgressCore
import Foundation
import XCTest

final class ControlSocketTests: IntegrationTestCase {
    private var control: EgressControlRunner!

    override func prepareEnvironment(_ environment: IntegrationEnvironment) throws {
        guard let executable = EgressControlRunner.locateExecutable() else {
            throw CommandError(description: "egressctl binary not found beside egress-milter; build it (swift build --product egressctl) or set EGRESSCTL_BIN")
        }
        control = EgressControlRunner(
            executable: executable, socketPath: environment.controlSocketPath,
            postfixConfigDirectory: environment.postfix.configDirectory)
        environment.additionalDaemonConfiguration = """
            limits:
              - name: senders
                level: sender
                messages: [100/1h]

            """
    }

    // MARK: status

    func testStatusReportsDecisionsAndStores() throws {
        let accepted = try send(from: "status-accepted@shop.example")
        XCTAssertTrue(waitForSink(token: accepted.token), environment.diagnostics())
        let held = try send(from: RuleSender.hold)
        XCTAssertTrue(waitForHeld(held.queueID), environment.diagnostics())

        let (result, report) = try control.json(StatusReport.self, "status")
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(report.listen, environment.daemon.listenSpec)
        XCTAssertEqual(report.controlSocket, control.socketPath)
        XCTAssertEqual(report.configuration, environment.daemon.configurationPath)
        XCTAssertEqual(report.pid, environment.daemon.processIdentifier)
        XCTAssertGreaterThanOrEqual(report.decided.accept, 1)
        XCTAssertEqual(report.decided.hold, 1)
        XCTAssertEqual(report.heldMessages, 1)
        XCTAssertEqual(report.suspendedKeys, 0)
        XCTAssertGreaterThanOrEqual(report.trackedKeys, 1)
        XCTAssertEqual(report.stores.map(\.name), ["limits", "held"])
        XCTAssertTrue(report.stores.allSatisfy(\.healthy), "\(report.stores)")
        XCTAssertNil(report.reloadError)

        // For people: aligned lines; and the socket path can come from the configuration file.
        let text = try control.runWithoutSocket("status", ["--config", environment.daemon.configurationPath])
        XCTAssertEqual(text.status, 0, text.standardError)
        XCTAssertTrue(text.standardOutput.contains("uptime "), text.standardOutput)
        XCTAssertTrue(text.standardOutput.contains("hold 1"), text.standardOutput)
    }

    // MARK: suspend and show

    func testSuspendedKeyIsHeldAndShown() throws {
        let sender = "suspended@shop.example"
        let key = "sender:\(sender)"
        let suspend = try control.run("suspend", [key, "--reason", "integration test"])
        XCTAssertEqual(suspend.status, 0, suspend.standardError)
        XCTAssertTrue(suspend.standardOutput.contains("suspended \(key)"), suspend.standardOutput)

        let message = try send(from: sender)
        XCTAssertTrue(waitForHeld(message.queueID), environment.diagnostics())
        XCTAssertTrue(environment.daemon.log().contains("suspended \(key) by uid 0 (root): reason=\"integration test\""),
                      environment.daemon.log())

        let (result, report) = try control.json(KeyReport.self, "show", [key])
        XCTAssertEqual(result.status, 1, "show of a suspended key is a finding: \(result.standardError)")
        XCTAssertEqual(report.suspension?.reason, "integration test")
        XCTAssertNil(report.suspension?.rule)
        XCTAssertEqual(report.recentDecisions.first?.queueID, message.queueID)
        XCTAssertEqual(report.recentDecisions.first?.action, "hold")
        XCTAssertEqual(report.heldMessages.map(\.queueID), [message.queueID])
        XCTAssertEqual(report.heldMessages.first?.sender, sender)
        XCTAssertEqual(report.limits.map(\.rule), ["senders"])
        // A held message takes nothing from the windows.
        XCTAssertEqual(report.limits.first?.windows.first?.count, 0)

        let text = try control.run("show", [key])
        XCTAssertEqual(text.status, 1)
        XCTAssertTrue(text.standardOutput.contains(message.queueID), text.standardOutput)
        XCTAssertTrue(text.standardOutput.contains("0/100 per 1h"), text.standardOutput)

        // A key that is not suspended is no finding.
        let other = try control.run("show", ["sender:nobody@shop.example"])
        XCTAssertEqual(other.status, 0, other.standardError)
    }

    func testTypedKeyIsCanonicalizedAndListed() throws {
        let suspend = try control.run("suspend", ["sender:Typed@Shop.EXAMPLE", "--reason", "case test"])
        XCTAssertEqual(suspend.status, 0, suspend.standardError)
        XCTAssertTrue(suspend.standardOutput.hasPrefix("suspended sender:Typed@shop.example: case test\n"), suspend.standardOutput)

        // The MTA's sender in yet another case carries the same key, so its mail is held.
        let message = try send(from: "Typed@shop.example")
        XCTAssertTrue(waitForHeld(message.queueID), environment.diagnostics())

        let (listResult, list) = try control.json(SuspendedReport.self, "suspended")
        XCTAssertEqual(listResult.status, 0, listResult.standardError)
        XCTAssertEqual(list.keys.map(\.suspension.key), ["sender:Typed@shop.example"])
        XCTAssertEqual(list.keys.first?.suspension.adminUID, 0)
        XCTAssertNil(list.keys.first?.suspension.rule)
        XCTAssertEqual(list.keys.first?.heldMessages, 1)
        XCTAssertTrue(listResult.standardOutput.contains("\"held_messages\" : 1"), "snake_case keys: \(listResult.standardOutput)")

        let text = try control.run("suspended")
        XCTAssertEqual(text.status, 0, text.standardError)
        let row = text.standardOutput.split(separator: "\n").first { $0.hasPrefix("sender:Typed@shop.example") }
        XCTAssertTrue(row?.contains("admin uid 0") ?? false, text.standardOutput)

        // A key no message can carry is rejected and nothing is suspended.
        let invalid = try control.run("suspend", ["ip:999.1.1.1"])
        XCTAssertEqual(invalid.status, 1, invalid.standardOutput)
        XCTAssertTrue(invalid.standardError.contains("invalid IP address '999.1.1.1'"), invalid.standardError)
        XCTAssertEqual(try control.json(SuspendedReport.self, "suspended").1.keys.count, 1)

        // Release in the typed form finds the key and its held message.
        let release = try control.run("release", ["sender:Typed@SHOP.example"])
        XCTAssertEqual(release.status, 0, release.standardError)
        XCTAssertTrue(release.standardOutput.contains("released sender:Typed@shop.example"), release.standardOutput)
        XCTAssertTrue(release.standardOutput.contains(message.queueID), release.standardOutput)
        let empty = try control.run("suspended")
        XCTAssertEqual(empty.status, 0)
        XCTAssertEqual(empty.standardOutput, "no key is suspended\n")
    }

    // MARK: release

    func testReleaseWithUnreadableQueueChangesNothing() throws {
        let sender = "unreadable@shop.example"
        let key = "sender:\(sender)"
        XCTAssertEqual(try control.run("suspend", [key]).status, 0)
        let message = try send(from: sender)
        XCTAssertTrue(waitForHeld(message.queueID), environment.diagnostics())

        // A configuration directory without main.cf makes postqueue -j fail. A stopped Postfix
        // does not: run as root, postqueue then reads the queue directory itself.
        let missing = environment.postfix.configDirectory + "-missing"
        let refused = try control.run("release", [key, "--deliver", "--postfix-config", missing])
        XCTAssertEqual(refused.status, 1, refused.standardOutput + refused.standardError)
        XCTAssertTrue(refused.standardError.contains("cannot read the hold queue, so nothing changed"), refused.standardError)
        XCTAssertTrue(refused.standardError.contains("postqueue -j failed"), refused.standardError)

        let (_, list) = try control.json(SuspendedReport.self, "suspended")
        XCTAssertEqual(list.keys.map(\.suspension.key), [key], "the key stays suspended")
        XCTAssertEqual(list.keys.first?.heldMessages, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: environment.postfix.queueDirectory + "/hold/" + message.queueID),
                      "the message stays in the hold queue")
        XCTAssertFalse(environment.daemon.log().contains("released \(key)"), environment.daemon.log())

        // With the instance's directory, the same command delivers the message.
        let release = try control.run("release", [key, "--deliver"] + control.postfixOptions)
        XCTAssertEqual(release.status, 0, release.standardOutput + release.standardError)
        XCTAssertTrue(waitForSink(token: message.token), environment.diagnostics())
    }

    func testReleaseDeliverSendsHeldMessagesOn() throws {
        let sender = "deliver@shop.example"
        let key = "sender:\(sender)"
        XCTAssertEqual(try control.run("suspend", [key]).status, 0)
        let first = try send(from: sender)
        let second = try send(from: sender)
        XCTAssertTrue(waitForHeld(first.queueID) && waitForHeld(second.queueID), environment.diagnostics())

        let release = try control.run("release", [key, "--deliver"] + control.postfixOptions)
        XCTAssertEqual(release.status, 0, release.standardOutput + release.standardError)
        XCTAssertTrue(release.standardOutput.contains("released \(key)"), release.standardOutput)
        for queueID in [first.queueID, second.queueID] {
            let line = release.standardOutput.split(separator: "\n").first { $0.hasPrefix(queueID) }
            XCTAssertTrue(line?.contains("delivered") ?? false, release.standardOutput)
        }

        XCTAssertTrue(waitForSink(token: first.token) && waitForSink(token: second.token), environment.diagnostics())
        XCTAssertTrue(environment.postfix.waitForEmptyQueue(timeoutSeconds: 30), environment.diagnostics())
        let (_, status) = try control.json(StatusReport.self, "status")
        XCTAssertEqual(status.suspendedKeys, 0)
        XCTAssertEqual(status.heldMessages, 0)
        let log = environment.daemon.log()
        XCTAssertTrue(log.contains("released \(key) by uid 0 (root)"), log)
        XCTAssertTrue(log.contains("\(first.queueID): held message of \(key) released for delivery"), log)

        // Released, the key's mail flows again.
        let after = try send(from: sender)
        XCTAssertTrue(waitForSink(token: after.token), environment.diagnostics())
    }

    func testReleaseDeleteRemovesHeldMessages() throws {
        let sender = "delete@shop.example"
        let key = "sender:\(sender)"
        XCTAssertEqual(try control.run("suspend", [key]).status, 0)
        let message = try send(from: sender)
        XCTAssertTrue(waitForHeld(message.queueID), environment.diagnostics())

        let (result, output) = try control.json(ReleaseCommandOutput.self, "release", [key, "--delete"] + control.postfixOptions)
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(output.mode, "delete")
        XCTAssertEqual(output.release.liftedSuspension?.key, key)
        XCTAssertEqual(output.outcomes.map(\.queueID), [message.queueID])
        XCTAssertEqual(output.outcomes.map(\.action), [.deleted])
        XCTAssertFalse(try environment.postfix.queueEntries().contains { $0.queueID == message.queueID })

        // A later message arrives; the deleted one never does.
        let later = try send(from: sender)
        XCTAssertTrue(waitForSink(token: later.token), environment.diagnostics())
        XCTAssertTrue(environment.postfix.sink.messages().filter { $0.headerValues("Subject").contains("integration \(message.token)") }.isEmpty)
        let (_, report) = try control.json(KeyReport.self, "show", [key])
        XCTAssertTrue(report.heldMessages.isEmpty, "\(report.heldMessages)")
        XCTAssertTrue(environment.daemon.log().contains("\(message.queueID): held message of \(key) deleted by uid 0 (root)"))
    }

    func testReleaseWithoutOptionKeepsMessagesHeld() throws {
        let sender = "keep@shop.example"
        let key = "sender:\(sender)"
        XCTAssertEqual(try control.run("suspend", [key]).status, 0)
        let message = try send(from: sender)
        XCTAssertTrue(waitForHeld(message.queueID), environment.diagnostics())

        let release = try control.run("release", [key])
        XCTAssertEqual(release.status, 0, release.standardError)
        XCTAssertTrue(release.standardOutput.contains(message.queueID), release.standardOutput)
        XCTAssertTrue(try environment.postfix.queueEntries().contains { $0.queueID == message.queueID && $0.queueName == "hold" })
        let (_, report) = try control.json(KeyReport.self, "show", [key])
        XCTAssertNil(report.suspension)
        XCTAssertEqual(report.heldMessages.map(\.queueID), [message.queueID])
    }

    func testReleaseFindsHeldMessagesAfterRestart() throws {
        let sender = "restart@shop.example"
        let key = "sender:\(sender)"
        XCTAssertEqual(try control.run("suspend", [key]).status, 0)
        let message = try send(from: sender)
        XCTAssertTrue(waitForHeld(message.queueID), environment.diagnostics())

        environment.daemon.stop()
        try environment.daemon.start()
        XCTAssertTrue(waitUntil(timeoutSeconds: 10) { FileManager.default.fileExists(atPath: control.socketPath) })

        let (_, status) = try control.json(StatusReport.self, "status")
        XCTAssertEqual(status.suspendedKeys, 1)
        XCTAssertEqual(status.heldMessages, 1)
        let release = try control.run("release", [key, "--deliver"] + control.postfixOptions)
        XCTAssertEqual(release.status, 0, release.standardOutput + release.standardError)
        XCTAssertTrue(waitForSink(token: message.token), environment.diagnostics())
        XCTAssertTrue(environment.postfix.waitForEmptyQueue(timeoutSeconds: 30), environment.diagnostics())
    }

    // MARK: top

    func testTopRanksBusiestSenders() throws {
        let busy = "busy@shop.example"
        let quiet = "quiet@shop.example"
        var tokens: [String] = []
        for sender in [busy, busy, busy, quiet] {
            tokens.append(try send(from: sender).token)
        }
        for token in tokens {
            XCTAssertTrue(waitForSink(token: token), environment.diagnostics())
        }

        let (result, report) = try control.json(TopReport.self, "top", ["--level", "sender", "-n", "5"])
        XCTAssertEqual(result.status, 0, result.standardError)
        XCTAssertEqual(report.order, .messages)
        XCTAssertEqual(report.rows.first?.key, "sender:\(busy)")
        XCTAssertEqual(report.rows.first?.limits.first?.windows.first?.count, 3)
        XCTAssertEqual(report.rows.first?.limits.first?.windows.first?.limit, 100)
        XCTAssertEqual(report.rows.first { $0.key == "sender:\(quiet)" }?.busiestCount(unit: "messages"), 1)
        XCTAssertTrue(report.rows.allSatisfy { $0.key.hasPrefix("sender:") }, "\(report.rows.map(\.key))")

        let text = try control.run("top", ["--level", "sender"])
        XCTAssertEqual(text.status, 0)
        XCTAssertTrue(text.standardOutput.contains("sender:\(busy)"), text.standardOutput)
        XCTAssertTrue(text.standardOutput.contains("3/100 per 1h"), text.standardOutput)
    }

    // MARK: reload

    func testReloadOfBrokenFileKeepsRunningConfiguration() throws {
        let path = environment.daemon.configurationPath
        let original = try String(contentsOfFile: path, encoding: .utf8)
        try (original + "bogus_setting: 1\n").write(toFile: path, atomically: true, encoding: .utf8)

        let reload = try control.run("reload")
        XCTAssertEqual(reload.status, 1, reload.standardOutput + reload.standardError)
        XCTAssertTrue(reload.standardError.contains("bogus_setting: unknown key"), reload.standardError)
        let (statusResult, status) = try control.json(StatusReport.self, "status")
        XCTAssertEqual(statusResult.status, 1, "status after a refused reload is a finding")
        XCTAssertTrue(status.reloadError?.contains("bogus_setting") ?? false, "\(String(describing: status.reloadError))")

        // The running configuration still contains the hold rule's sender.
        let held = try send(from: RuleSender.hold)
        XCTAssertTrue(waitForHeld(held.queueID), environment.diagnostics())

        try original.write(toFile: path, atomically: true, encoding: .utf8)
        let fixed = try control.run("reload")
        XCTAssertEqual(fixed.status, 0, fixed.standardError)
        XCTAssertEqual(try control.run("status").status, 0)
    }

    // MARK: daemon down

    func testDaemonDownIsConnectionError() throws {
        environment.daemon.stop()
        XCTAssertFalse(FileManager.default.fileExists(atPath: control.socketPath), "the daemon removes its control socket at exit")

        for arguments in [["status"], ["show", "server"], ["suspend", "server"], ["reload"]] {
            let result = try control.run(arguments[0], Array(arguments.dropFirst()))
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.standardError)")
            XCTAssertTrue(result.standardError.contains(control.socketPath), result.standardError)
            XCTAssertTrue(result.standardError.contains("is egress-milter running"), result.standardError)
        }
    }

    // MARK: Helpers

    private struct SentMessage {
        var queueID: String
        var token: String
    }

    /// Sends one message over SMTP and returns its queue ID and the token in its Subject.
    private func send(from sender: String) throws -> SentMessage {
        let token = uniqueToken("control")
        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))
        XCTAssertEqual(result.outcome, .accepted, "\(String(describing: result.reply)) \(String(describing: result.error))")
        return SentMessage(queueID: try XCTUnwrap(result.queueID), token: token)
    }

    private func waitForHeld(_ queueID: String) -> Bool {
        waitUntil(timeoutSeconds: 30, pollSeconds: 0.2) {
            ((try? environment.postfix.queueEntries()) ?? []).contains { $0.queueID == queueID && $0.queueName == "hold" }
        }
    }

    private func waitForSink(token: String) -> Bool {
        waitUntil(timeoutSeconds: 30, pollSeconds: 0.2) {
            environment.postfix.sink.messages().contains { $0.headerValues("Subject").contains("integration \(token)") }
        }
    }
}
