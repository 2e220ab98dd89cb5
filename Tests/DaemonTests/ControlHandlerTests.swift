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
        XCTAssertEqual(fixture.runtime.reloadsApplied, 1)
        XCTAssertEqual(fixture.policySource.current.configuration.limits.count, 1)

        try "log_level: info\nlimits: [\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = Daemon.reloadRecordingStatus(options: options, policySource: fixture.policySource, runtime: fixture.runtime, logger: logger)
        XCTAssertFalse(bad.succeeded)
        XCTAssertTrue(bad.error?.hasPrefix(path + ":") ?? false, String(describing: bad.error))
        XCTAssertEqual(fixture.runtime.reloadError, bad.error)
        XCTAssertEqual(fixture.policySource.current.configuration.limits.count, 1, "the running configuration stays")
        XCTAssertEqual(fixture.runtime.reloadsApplied, 1)
        XCTAssertEqual(fixture.runtime.reloadsRefused, 1)

        let status = try XCTUnwrap(fixture.request(ControlRequest(command: .status), StatusReport.self).result)
        XCTAssertEqual(status.reloadsApplied, 1)
        XCTAssertEqual(status.reloadsRefused, 1)
    }

    // MARK: Refused requests

    func testRefusedRequestsSayWhy() throws {
        let fixture = try ControlFixture.make(self)
        let cases: [(String, String)] = [
            ("not json\n", "invalid request"),
            ("{\"version\":99,\"command\":\"status\"}\n", "protocol version \(ControlProtocol.version), the request has version 99"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"show\"}\n", "show needs a key"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"show\",\"key\":\"acount:bob\"}\n", "did you mean 'account'"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"suspend\",\"key\":\"server\",\"reason\":\"a\\nb\"}\n", "control character"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"top\",\"level\":\"planet\"}\n", "unknown level 'planet'"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"top\",\"count\":0}\n", "count must be from 1 to 1000"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"top\",\"order\":\"loudest\"}\n", "invalid request"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"suspend\",\"key\":\"ip:999.1.1.1\"}\n", "invalid IP address '999.1.1.1'"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"release\",\"key\":\"sender:<>\"}\n", "null sender"),
            ("{\"version\":\(ControlProtocol.version),\"command\":\"show\",\"key\":\"script:alice\"}\n", "script:ACCOUNT:PATH"),
        ]
        for (line, expected) in cases {
            let reply = try ControlProtocol.decodeLine(ControlReply<EmptyResult>.self, from: fixture.handler.reply(to: Array(line.utf8), from: nil))
            XCTAssertFalse(reply.ok, line)
            XCTAssertTrue(reply.error?.contains(expected) ?? false, "\(line): \(String(describing: reply.error))")
        }
        XCTAssertNil(fixture.policySource.current.policy.limiter.suspension(of: "server"))
        XCTAssertEqual(fixture.policySource.current.policy.limiter.suspensions(), [], "no refused request suspended anything")
    }

    // MARK: Canonical keys

    func testTypedKeysAreCanonicalized() throws {
        var configuration = Configuration.defaults
        configuration.identity.ipv6PrefixLength = 64
        let fixture = try ControlFixture.make(self, configuration: configuration)

        let suspend = try XCTUnwrap(fixture.request(ControlRequest(command: .suspend, key: "sender:Carol@X.Example"), SuspendReport.self).result)
        XCTAssertEqual(suspend.key, "sender:Carol@x.example")
        XCTAssertEqual(suspend.suspension.key, "sender:Carol@x.example")
        XCTAssertEqual(fixture.log.texts(at: .notice).first?.hasPrefix("suspended sender:Carol@x.example by uid 0"), true,
                       "\(fixture.log.texts(at: .notice))")
        // Carol's mail, whose domain the MTA may write in any case, is held now.
        XCTAssertEqual(try fixture.decide(from: "Carol@X.EXAMPLE", queueID: "C1").action, .hold)

        let show = try XCTUnwrap(fixture.request(ControlRequest(command: .show, key: "sender:<Carol@x.example.>"), KeyReport.self).result)
        XCTAssertEqual(show.key, "sender:Carol@x.example")
        XCTAssertEqual(show.heldMessages.map(\.queueID), ["C1"])

        let ip = try XCTUnwrap(fixture.request(ControlRequest(command: .suspend, key: "ip:2001:DB8:1:2::77"), SuspendReport.self).result)
        XCTAssertEqual(ip.key, "ip:2001:db8:1:2::/64")

        let release = try XCTUnwrap(fixture.request(ControlRequest(command: .release, key: "sender:Carol@X.Example"), ReleaseReport.self).result)
        XCTAssertEqual(release.key, "sender:Carol@x.example")
        XCTAssertEqual(release.liftedSuspension?.key, "sender:Carol@x.example")
        XCTAssertEqual(release.heldMessages.map(\.queueID), ["C1"])
        XCTAssertEqual(fixture.policySource.current.policy.limiter.suspensions().map(\.key), ["ip:2001:db8:1:2::/64"])
    }

    // MARK: suspended

    func testSuspendedListsIdleKeys() throws {
        var configuration = Configuration.defaults
        configuration.limits = [LimitRule(name: "logins", level: .login, messages: [RateWindow(limit: 1, seconds: 3600, isHard: true)])]
        let fixture = try ControlFixture.make(self, configuration: configuration)

        let empty = try XCTUnwrap(fixture.request(ControlRequest(command: .suspended), SuspendedReport.self).result)
        XCTAssertEqual(empty.keys, [])

        // A hard window suspends login:crm; an admin suspends account:bob, which never sent.
        try fixture.decide(from: "crm@shop.example", login: "crm", queueID: "L1")
        XCTAssertEqual(try fixture.decide(from: "crm@shop.example", login: "crm", queueID: "L2").action, .hold)
        try fixture.decide(from: "crm@shop.example", login: "crm", queueID: "L3")
        XCTAssertTrue(try fixture.request(ControlRequest(command: .suspend, key: "account:bob", reason: "ticket 7"), SuspendReport.self,
                                          peer: ControlPeer(pid: 2, uid: 1000, gid: 1000)).ok)

        let report = try XCTUnwrap(fixture.request(ControlRequest(command: .suspended), SuspendedReport.self).result)
        XCTAssertEqual(report.keys.map(\.suspension.key), ["login:crm", "account:bob"], "oldest first")
        let login = try XCTUnwrap(report.keys.first)
        XCTAssertEqual(login.suspension.rule, "logins")
        XCTAssertNil(login.suspension.adminUID)
        XCTAssertEqual(login.suspension.origin, "rule logins")
        XCTAssertEqual(login.heldMessages, 2)
        let admin = try XCTUnwrap(report.keys.last)
        XCTAssertEqual(admin.suspension.adminUID, 1000)
        XCTAssertEqual(admin.suspension.origin, "admin uid 1000")
        XCTAssertEqual(admin.suspension.reason, "ticket 7")
        XCTAssertEqual(admin.heldMessages, 0)

        // Top leaves the idle admin suspension out; suspended does not.
        let top = try XCTUnwrap(fixture.request(ControlRequest(command: .top, order: .messages), TopReport.self).result)
        XCTAssertFalse(top.rows.contains { $0.key == "account:bob" })
    }

    // MARK: Trip progress

    func testShowReportsTripsTowardsSuspension() throws {
        var configuration = Configuration.defaults
        configuration.limits = [LimitRule(name: "logins", level: .login, messages: [RateWindow(limit: 1, seconds: 3600)],
                                          suspendAfter: SuspensionThreshold(trips: 3, seconds: 3600))]
        let fixture = try ControlFixture.make(self, configuration: configuration)
        try fixture.decide(from: "crm@shop.example", login: "crm", queueID: "T1")
        XCTAssertEqual(try fixture.decide(from: "crm@shop.example", login: "crm", queueID: "T2").action, .tempfail)

        let report = try XCTUnwrap(fixture.request(ControlRequest(command: .show, key: "login:crm"), KeyReport.self).result)
        let progress = try XCTUnwrap(report.limits.first?.tripProgress)
        XCTAssertEqual(progress.trips, 1)
        XCTAssertEqual(progress.threshold, 3)
        XCTAssertEqual(progress.period, "1h")
        XCTAssertNil(report.suspension)
    }
}
