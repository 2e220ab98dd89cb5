// The control protocol's line framing and its values: requests and replies survive a round
// trip, a line never contains a newline but its last byte, error replies decode without a
// result, and identity keys given by an admin are checked for their form.

import Foundation
import XCTest
@testable import EgressCore

final class ControlProtocolTests: XCTestCase {
    func testRequestRoundTrip() throws {
        let outcomes = [HeldMessageOutcome(queueID: "4NxT2k0QZGz9vB", action: .delivered, detail: "released")]
        let requests = [
            ControlRequest(command: .status),
            ControlRequest(command: .suspend, key: "account:alice", reason: "ticket 42"),
            ControlRequest(command: .top, order: .recipients, level: "account", count: 5),
            ControlRequest(command: .heldOutcome, key: "account:alice", outcomes: outcomes),
        ]
        for request in requests {
            let line = try ControlProtocol.encodeLine(request)
            XCTAssertEqual(try ControlProtocol.decodeLine(ControlRequest.self, from: line), request)
        }
    }

    func testLineHasOneNewlineAtTheEnd() throws {
        let request = ControlRequest(command: .suspend, key: "account:alice", reason: "first line\nsecond line\r\n")
        let line = try ControlProtocol.encodeLine(request)
        XCTAssertEqual(line.last, UInt8(ascii: "\n"))
        XCTAssertEqual(line.filter { $0 == UInt8(ascii: "\n") }.count, 1, String(decoding: line, as: UTF8.self))
        XCTAssertEqual(try ControlProtocol.decodeLine(ControlRequest.self, from: line).reason, "first line\nsecond line\r\n")
    }

    func testRequestCarriesProtocolVersionAndCommandName() throws {
        let line = String(decoding: try ControlProtocol.encodeLine(ControlRequest(command: .heldOutcome, key: "server")), as: UTF8.self)
        XCTAssertEqual(line, "{\"command\":\"held-outcome\",\"key\":\"server\",\"version\":\(ControlProtocol.version)}\n")
    }

    func testReplyEnvelopes() throws {
        let report = SuspendReport(
            key: "login:crm",
            suspension: SuspensionReport(Suspension(key: "login:crm", reason: "by hand", since: Date(timeIntervalSince1970: 1_700_000_000))),
            alreadySuspended: false)
        let success = try ControlProtocol.encodeLine(ControlReply(result: report))
        let decoded = try ControlProtocol.decodeLine(ControlReply<SuspendReport>.self, from: success)
        XCTAssertTrue(decoded.ok)
        XCTAssertEqual(decoded.result, report)
        XCTAssertTrue(String(decoding: success, as: UTF8.self).contains("\"since\":\"2023-11-14T22:13:20Z\""))

        let failure = try ControlProtocol.encodeLine(ControlReply<EmptyResult>(error: "cannot suspend"))
        let error = try ControlProtocol.decodeLine(ControlReply<SuspendReport>.self, from: failure)
        XCTAssertFalse(error.ok)
        XCTAssertEqual(error.error, "cannot suspend")
        XCTAssertNil(error.result)
    }

    func testFieldNamesAreSnakeCaseOnTheWire() throws {
        let since = Date(timeIntervalSince1970: 1_700_000_000)
        let suspension = Suspension(key: "account:alice", reason: "ticket 42", since: since, adminUID: 1000)
        let report = SuspendedReport(keys: [SuspendedKey(suspension: SuspensionReport(suspension), heldMessages: 2)])
        let line = try ControlProtocol.encodeLine(ControlReply(result: report))
        let text = String(decoding: line, as: UTF8.self)
        XCTAssertTrue(text.contains("\"admin_uid\":1000"), text)
        XCTAssertTrue(text.contains("\"held_messages\":2"), text)
        XCTAssertEqual(try ControlProtocol.decodeLine(ControlReply<SuspendedReport>.self, from: line).result, report)

        let held = HeldMessage(queueID: "4NxT2k0QZGz9vB", heldAt: since, sender: "a@b.example", recipients: 1, reason: "r", identity: "server")
        let heldLine = try ControlProtocol.encodeLine(held)
        let heldText = String(decoding: heldLine, as: UTF8.self)
        XCTAssertTrue(heldText.contains("\"queue_id\":\"4NxT2k0QZGz9vB\""), heldText)
        XCTAssertTrue(heldText.contains("\"held_at\":"), heldText)
        XCTAssertFalse(heldText.contains("queueID"), heldText)
        XCTAssertEqual(try ControlProtocol.decodeLine(HeldMessage.self, from: heldLine), held)
    }

    func testWireNamesMapToPropertyNames() {
        let cases: [(String, String)] = [
            ("queue_id", "queueID"), ("admin_uid", "adminUID"), ("held_messages", "heldMessages"),
            ("reloads_applied", "reloadsApplied"), ("key", "key"), ("trip_progress", "tripProgress"),
        ]
        for (wire, property) in cases {
            XCTAssertEqual(ControlProtocol.propertyName(forWireName: wire), property, wire)
        }
    }

    func testReportsRoundTripWithSnakeCaseNames() throws {
        let usage = LimitUsage(
            rule: "logins", level: "login", shadow: false, smtpAction: "tempfail", localAction: "hold", overridesTable: nil,
            exempt: [], maximumRecipients: 10,
            windows: [WindowUsage(unit: "messages", window: "30/1m", seconds: 60, limit: 30, hard: false, count: 3)],
            tripProgress: TripProgress(trips: 1, threshold: SuspensionThreshold(trips: 3, seconds: 3600)))
        let decision = DecisionRecord(time: Date(timeIntervalSince1970: 1_700_000_000), queueID: "Q1", action: "accept", reason: "",
                                      path: "smtp", sender: "a@b.example", recipients: 2, score: 1.5, identity: "login:crm<server")
        let report = KeyReport(key: "login:crm", suspension: nil, limits: [usage], recentDecisions: [decision], heldMessages: [])
        let line = try ControlProtocol.encodeLine(ControlReply(result: report))
        XCTAssertEqual(try ControlProtocol.decodeLine(ControlReply<KeyReport>.self, from: line).result, report)
        let text = String(decoding: line, as: UTF8.self)
        for name in ["\"trip_progress\"", "\"maximum_recipients\"", "\"recent_decisions\"", "\"smtp_action\"", "\"period\":\"1h\""] {
            XCTAssertTrue(text.contains(name), name)
        }
    }

    func testUnknownCommandIsADecodingError() {
        let line = Array("{\"version\":1,\"command\":\"explode\"}\n".utf8)
        XCTAssertThrowsError(try ControlProtocol.decodeLine(ControlRequest.self, from: line))
    }

    func testKeyForms() {
        let valid = ["account:alice", "script:alice:/home/alice/x.php", "ip:2001:db8:1:2::/64", "server", "local-unverified",
                     "sender:a@b.example"]
        for key in valid {
            XCTAssertNil(ControlProtocol.keyProblem(key), key)
        }
        let invalid: [(String, String)] = [
            ("", "empty"),
            ("alice", "expected LEVEL:VALUE"),
            ("acount:alice", "did you mean 'account'"),
            ("account:", "no value"),
            ("server:x", "the level 'server' takes no value"),
            ("local-unverified:x", "write the key as 'local-unverified'"),
            ("account:a\nb", "control character"),
            ("script:" + String(repeating: "x", count: ControlProtocol.maximumKeyBytes), "bytes long"),
        ]
        for (key, expected) in invalid {
            let problem = ControlProtocol.keyProblem(key)
            XCTAssertTrue(problem?.contains(expected) ?? false, "\(key.prefix(40)): \(String(describing: problem))")
        }
    }

    func testLevelOfKey() {
        XCTAssertEqual(ControlProtocol.level(ofKey: "script:alice:/x.php"), "script")
        XCTAssertEqual(ControlProtocol.level(ofKey: "server"), "server")
    }

    func testActionCountsAddUp() {
        var counts = ActionCounts()
        for action in [Action.accept, .accept, .tag, .hold, .reject, .tempfail] {
            counts.add(action)
        }
        counts.failed = 2
        XCTAssertEqual(counts.accept, 2)
        XCTAssertEqual(counts.hold, 1)
        XCTAssertEqual(counts.total, 8)
    }

    func testStatusFindings() {
        var report = StatusReport(
            version: "0.1.0", pid: 1, startedAt: Date(), uptimeSeconds: 0, configuration: "/etc/x.yaml",
            configurationLoadedAt: Date(), reloadsApplied: 0, reloadsRefused: 0, reloadError: nil, listen: "unix:/x", controlSocket: "/y",
            decided: ActionCounts(), trackedKeys: 0, suspendedKeys: 0, heldMessages: 0,
            stores: [StoreHealth(name: "limits", path: "/z")])
        XCTAssertFalse(report.hasFinding)
        report.stores[0].healthy = false
        XCTAssertTrue(report.hasFinding)
        report.stores[0].healthy = true
        report.reloadError = "bad file"
        XCTAssertTrue(report.hasFinding)
    }

    func testHeldMessageKeysComeFromItsIdentity() {
        let message = HeldMessage(queueID: "A1", heldAt: Date(), sender: "a@b.example", recipients: 1, reason: "r",
                                  identity: "script:alice:/x.php<account:alice<sender:a@b.example<server")
        XCTAssertEqual(message.keys, ["script:alice:/x.php", "account:alice", "sender:a@b.example", "server"])
    }
}
