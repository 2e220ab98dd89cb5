// The daemon's answers to control requests, without a socket: status counts, suspensions that
// are durable and logged once, show with decisions and held messages, release and the outcome
// report, top, reload, and requests that are refused with a reason.
import EgressCore
import Foundation
import Milter
import XCTest

@testable import egress_milter

final class ControlHandlerTests: XCTestCase {
    private let suspendedKey = "sender:alice@shop.example"

    private func holdRule(_ pattern: String) -> Configuration {
        var configuration = Configuration.defaults
        configuration.senders = [SenderRule(match: pattern, action: .hold, reason: "test hold")]
        return configuration
    }

    // MARK: status

    func testStatusCountsDecisionsAndHeldMessages() throws {
        let fixture = try ControlFixture.make(self, configuration: holdRule("sender:held@shop.example"))
        try fixture.decide(from: "ok@shop.example", queueID: "A1")
        try fixture.decide(from: "held@shop.example", queueID: "B2")

        let reply = try fixture.request(ControlRequest(command: .status), StatusReport.self)
        let status = try XCTUnwrap(reply.result, String(describing: reply.error))
        XCTAssertEqual(status.version, egressMilterVersion)
        XCTAssertEqual(status.pid, getpid())
        XCTAssertEqual(status.configuration, "/etc/egress-milter/test.yaml")
        XCTAssertEqual(status.decided.accept, 1)
        XCTAssertEqual(status.decided.hold, 1)
        XCTAssertEqual(status.heldMessages, 1)
        XCTAssertEqual(status.suspendedKeys, 0)
        XCTAssertEqual(status.stores.map(\.name), ["limits", "held"])
        XCTAssertTrue(status.stores.allSatisfy(\.healthy))
        XCTAssertFalse(status.hasFinding)
    }

    func testStatusShowsAFailingStore() throws {
        let fixture = try ControlFixture.make(self)
        fixture.runtime.storeFailed(DaemonRuntime.limitStoreName, error: "disk full", at: Date())
        let status = try XCTUnwrap(fixture.request(ControlRequest(command: .status), StatusReport.self).result)
        XCTAssertEqual(status.stores.first?.healthy, false)
        XCTAssertEqual(status.stores.first?.error, "disk full")
        XCTAssertTrue(status.hasFinding)
    }

    // MARK: suspend and release

    func testSuspensionIsDurableAndLoggedOnce() throws {
        let fixture = try ControlFixture.make(self)
        let reply = try fixture.request(ControlRequest(command: .suspend, key: suspendedKey, reason: "ticket 42"), SuspendReport.self)
        XCTAssertEqual(reply.result?.suspension.reason, "ticket 42")
        XCTAssertEqual(reply.result?.alreadySuspended, false)

        let again = try fixture.request(ControlRequest(command: .suspend, key: suspendedKey, reason: "other"), SuspendReport.self)
        XCTAssertEqual(again.result?.alreadySuspended, true)
        XCTAssertEqual(again.result?.suspension.reason, "ticket 42", "the first reason stays")

        let notices = fixture.log.texts(at: .notice)
        XCTAssertEqual(notices, ["suspended \(suspendedKey) by uid 0 (root): reason=\"ticket 42\"; its mail is held until released"])

        // A daemon started on the same state directory finds the suspension.
        let restarted = try ControlFixture.make(directory: fixture.directory)
        XCTAssertEqual(restarted.policySource.current.policy.limiter.suspension(of: suspendedKey)?.reason, "ticket 42")
        XCTAssertEqual(try restarted.decide(from: "alice@shop.example", queueID: "C3").action, .hold)
    }

    func testShowOfSuspendedKeyListsDecisionsAndHeldMessages() throws {
        let fixture = try ControlFixture.make(self)
        XCTAssertTrue(try fixture.request(ControlRequest(command: .suspend, key: suspendedKey), SuspendReport.self).ok)
        try fixture.decide(from: "alice@shop.example", queueID: "H1", recipients: 3)

        let report = try XCTUnwrap(fixture.request(ControlRequest(command: .show, key: suspendedKey), KeyReport.self).result)
        XCTAssertEqual(report.suspension?.reason, ControlHandler.defaultSuspensionReason)
        XCTAssertEqual(report.recentDecisions.map(\.queueID), ["H1"])
        XCTAssertEqual(report.recentDecisions.first?.action, "hold")
        XCTAssertEqual(report.recentDecisions.first?.recipients, 3)
        XCTAssertEqual(report.heldMessages.map(\.queueID), ["H1"])
        XCTAssertEqual(report.heldMessages.first?.reason, "\(suspendedKey) suspended: \(ControlHandler.defaultSuspensionReason)")
    }

    func testReleaseReturnsHeldMessagesAndOutcomesForgetThem() throws {
        let fixture = try ControlFixture.make(self)
        XCTAssertTrue(try fixture.request(ControlRequest(command: .suspend, key: suspendedKey), SuspendReport.self).ok)
        try fixture.decide(from: "alice@shop.example", queueID: "H1")
        try fixture.decide(from: "alice@shop.example", queueID: "H2")

        let release = try XCTUnwrap(fixture.request(ControlRequest(command: .release, key: suspendedKey), ReleaseReport.self).result)
        XCTAssertEqual(release.liftedSuspension?.key, suspendedKey)
        XCTAssertEqual(release.heldMessages.map(\.queueID), ["H1", "H2"])
        XCTAssertNil(fixture.policySource.current.policy.limiter.suspension(of: suspendedKey))
        XCTAssertEqual(try fixture.decide(from: "alice@shop.example", queueID: "A3").action, .accept)

        let outcomes = [
            HeldMessageOutcome(queueID: "H1", action: .delivered),
            HeldMessageOutcome(queueID: "H2", action: .failed, detail: "postsuper: fatal"),
            HeldMessageOutcome(queueID: "ZZ", action: .deleted),
        ]
        let report = try fixture.request(ControlRequest(command: .heldOutcome, key: suspendedKey, outcomes: outcomes), HeldOutcomeReport.self)
        XCTAssertEqual(report.result?.forgotten, 1, "H1 left the hold queue; H2 failed; ZZ was never recorded under the key")
        XCTAssertEqual(try fixture.heldStore.messages(forKey: suspendedKey).map(\.queueID), ["H2"])

        let notices = fixture.log.texts(at: .notice)
        XCTAssertTrue(notices.contains { $0.hasPrefix("released \(suspendedKey) by uid 0 (root): suspended since ") }, "\(notices)")
        XCTAssertTrue(notices.contains("H1: held message of \(suspendedKey) released for delivery by uid 0 (root)"), "\(notices)")
        XCTAssertFalse(notices.contains { $0.hasPrefix("ZZ") })
        XCTAssertEqual(fixture.log.texts(at: .warning), ["H2: release of the held message of \(suspendedKey) by uid 0 (root) failed: postsuper: fatal; it stays held"])
    }

    func testReleaseOfKeyThatIsNotSuspended() throws {
        let fixture = try ControlFixture.make(self)
        let reply = try fixture.request(ControlRequest(command: .release, key: "account:bob"), ReleaseReport.self)
        XCTAssertTrue(reply.ok)
        XCTAssertNil(reply.result?.liftedSuspension)
        XCTAssertEqual(reply.result?.heldMessages, [])
        XCTAssertEqual(fixture.log.texts(at: .notice), [], "nothing changed, so no notice")
    }

    // MARK: top

    func testTopRanksByMessagesAndByHeld() throws {
        var configuration = holdRule("sender:held@shop.example")
        configuration.limits = [LimitRule(name: "logins", level: .login, messages: [RateWindow(limit: 100, seconds: 3600)])]
        let fixture = try ControlFixture.make(self, configuration: configuration)
        for number in 0..<3 {
            try fixture.decide(from: "busy@shop.example", login: "busy", queueID: "B\(number)")
        }
        try fixture.decide(from: "quiet@shop.example", login: "quiet", queueID: "Q1")
        try fixture.decide(from: "held@shop.example", queueID: "H1")

        let byMessages = try XCTUnwrap(fixture.request(ControlRequest(command: .top, order: .messages, count: 5), TopReport.self).result)
        XCTAssertEqual(byMessages.rows.map(\.key), ["login:busy", "login:quiet"])
        XCTAssertEqual(byMessages.rows.first?.busiestCount(unit: "messages"), 3)

        let byHeld = try XCTUnwrap(fixture.request(ControlRequest(command: .top, order: .held, level: "sender"), TopReport.self).result)
        XCTAssertEqual(byHeld.rows.map(\.key), ["sender:held@shop.example"])
        XCTAssertEqual(byHeld.rows.first?.heldMessages, 1)

        let one = try XCTUnwrap(fixture.request(ControlRequest(command: .top, count: 1), TopReport.self).result)
        XCTAssertEqual(one.rows.count, 1)
    }

    // MARK: reload

    func testReloadAnswersWithTheReloadReport() throws {
        let fixture = try ControlFixture.make(self, reload: { ReloadReport(succeeded: false, configuration: "x.yaml", error: "x.yaml:1:1: bad") })
        let reply = try fixture.request(ControlRequest(command: .reload), ReloadReport.self)
        XCTAssertEqual(reply.result?.succeeded, false)
        XCTAssertEqual(reply.result?.error, "x.yaml:1:1: bad")
    }

    func testReloadOfBrokenFileKeepsTheRunningConfiguration() throws {
        let fixture = try ControlFixture.make(self)
        let path = fixture.directory + "/egress-milter.yaml"
        try "log_level: info\nlimits:\n  - name: logins\n    level: login\n    messages: 5/1m\n".write(toFile: path, atomically: true, encoding: .utf8)
        var options = CommandLineOptions()
        options.configurationPath = path
        options.configurationPathGiven = true
        let logger = fixture.log.logger

        let good = Daemon.reloadRecordingStatus(options: options, policySource: fixture.policySource, runtime: fixture.runtime, logger: logger)
        XCTAssertTrue(good.succeeded, String(describing: good.error))
        XCTAssertEqual(good.limits, 1)
        XCTAssertEqual(fixture.runtime.reloads, 1)
        XCTAssertEqual(fixture.policySource.current.configuration.limits.count, 1)

        try "log_level: info\nlimits: [\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = Daemon.reloadRecordingStatus(options: options, policySource: fixture.policySource, runtime: fixture.runtime, logger: logger)
        XCTAssertFalse(bad.succeeded)
        XCTAssertTrue(bad.error?.hasPrefix(path + ":") ?? false, String(describing: bad.error))
        XCTAssertEqual(fixture.runtime.reloadError, bad.error)
        XCTAssertEqual(fixture.policySource.current.configuration.limits.count, 1, "the running configuration stays")
        XCTAssertEqual(fixture.runtime.reloads, 1)
    }

    // MARK: Refused requests

    func testRefusedRequestsSayWhy() throws {
        let fixture = try ControlFixture.make(self)
        let cases: [(String, String)] = [
            ("not json\n", "invalid request"),
            ("{\"version\":99,\"command\":\"status\"}\n", "protocol version 1, the request has version 99"),
            ("{\"version\":1,\"command\":\"show\"}\n", "show needs a key"),
            ("{\"version\":1,\"command\":\"show\",\"key\":\"acount:bob\"}\n", "did you mean 'account'"),
            ("{\"version\":1,\"command\":\"suspend\",\"key\":\"server\",\"reason\":\"a\\nb\"}\n", "control character"),
            ("{\"version\":1,\"command\":\"top\",\"level\":\"planet\"}\n", "unknown level 'planet'"),
            ("{\"version\":1,\"command\":\"top\",\"count\":0}\n", "count must be from 1 to 1000"),
            ("{\"version\":1,\"command\":\"top\",\"order\":\"loudest\"}\n", "invalid request"),
        ]
        for (line, expected) in cases {
            let reply = try ControlProtocol.decodeLine(ControlReply<EmptyResult>.self, from: fixture.handler.reply(to: Array(line.utf8), from: nil))
            XCTAssertFalse(reply.ok, line)
            XCTAssertTrue(reply.error?.contains(expected) ?? false, "\(line): \(String(describing: reply.error))")
        }
        XCTAssertNil(fixture.policySource.current.policy.limiter.suspension(of: "server"))
    }
}
