// egressctl's daemon commands against a stand-in daemon: a unix socket in a temporary
// directory that answers each request line with a prepared reply. Checks the exit statuses
// (0 ok, 1 finding, 2 connection error), where the socket path comes from, the request each
// command sends, and the column output.
import EgressCore
import Foundation
import Glibc
import Synchronization
import XCTest

@testable import egressctl

/// A unix socket server that reads request lines and answers each with the next prepared
/// reply, and keeps the requests for the test to read.
final class StandInDaemon: @unchecked Sendable {
    // @unchecked: `requests` is behind a mutex; the descriptor is set once in init.
    let path: String
    private let descriptor: Int32
    private let replies: [ControlReplyLine]
    private let received = Mutex<[ControlRequest]>([])

    struct ControlReplyLine: Sendable {
        var bytes: [UInt8]

        init<Result: Codable & Sendable>(_ result: Result) {
            bytes = try! ControlProtocol.encodeLine(ControlReply(result: result))
        }

        init(error: String) {
            bytes = try! ControlProtocol.encodeLine(ControlReply<EmptyResult>(error: error))
        }
    }

    init(_ test: XCTestCase, replies: [ControlReplyLine]) throws {
        let directory = NSTemporaryDirectory() + "egressctl-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/control.sock"
        self.replies = replies

        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array((directory + "/control.sock").utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0, String(cString: strerror(errno)))
        listen(descriptor, 4)
        test.addTeardownBlock {
            close(descriptor)
            try? FileManager.default.removeItem(atPath: directory)
        }
        Thread { [self] in serve() }.start()
    }

    var requests: [ControlRequest] { received.withLock { $0 } }

    /// Answers one connection per reply, each with one request and one reply, as egressctl
    /// connects once per request.
    private func serve() {
        for reply in replies {
            let connection = accept(descriptor, nil, nil)
            guard connection >= 0 else { return }
            var line: [UInt8] = []
            var byte: UInt8 = 0
            while read(connection, &byte, 1) == 1 {
                line.append(byte)
                if byte == UInt8(ascii: "\n") { break }
            }
            if let request = try? ControlProtocol.decodeLine(ControlRequest.self, from: line) {
                received.withLock { $0.append(request) }
            }
            _ = reply.bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            close(connection)
        }
    }
}

final class DaemonCommandTests: XCTestCase {
    private func status(storeHealthy: Bool = true, reloadError: String? = nil) -> StatusReport {
        StatusReport(
            version: "0.1.0", pid: 4242, startedAt: Date(timeIntervalSince1970: 1_700_000_000), uptimeSeconds: 3725,
            configuration: "/etc/egress-milter/egress-milter.yaml", configurationLoadedAt: Date(timeIntervalSince1970: 1_700_000_000),
            reloadsApplied: 3, reloadsRefused: 3, reloadError: reloadError, listen: "unix:/var/spool/postfix/egress-milter/milter.sock",
            controlSocket: "/run/egress-milter/control.sock", decided: ActionCounts(), trackedKeys: 3, suspendedKeys: 1,
            heldMessages: 2,
            stores: [StoreHealth(name: "limits", path: "/var/lib/egress-milter/limits.sqlite", healthy: storeHealthy,
                                 error: storeHealthy ? nil : "disk I/O error")])
    }

    private func keyReport(suspended: Bool) -> KeyReport {
        let suspension = Suspension(key: "account:alice", reason: "ticket 42", since: Date(timeIntervalSince1970: 1_700_000_000))
        return KeyReport(key: "account:alice", suspension: suspended ? SuspensionReport(suspension) : nil, limits: [], recentDecisions: [],
                         heldMessages: [])
    }

    func testStatusExitsZeroWhenHealthyAndOneOnAFinding() throws {
        let daemon = try StandInDaemon(self, replies: [
            .init(status()), .init(status(storeHealthy: false)), .init(status(reloadError: "x.yaml:1:1: bad")),
        ])
        for expected: Int32 in [0, 1, 1] {
            XCTAssertEqual(statusCommand(["--socket", daemon.path, "--json"]), expected)
        }
        XCTAssertEqual(daemon.requests.map(\.command), [.status, .status, .status])
    }

    func testShowExitsOneForASuspendedKey() throws {
        let daemon = try StandInDaemon(self, replies: [.init(keyReport(suspended: true)), .init(keyReport(suspended: false))])
        XCTAssertEqual(showCommand(["account:alice", "--socket", daemon.path]), 1)
        XCTAssertEqual(showCommand(["account:alice", "--socket", daemon.path]), 0)
        XCTAssertEqual(daemon.requests.first?.key, "account:alice")
    }

    func testDaemonErrorExitsOne() throws {
        let daemon = try StandInDaemon(self, replies: [.init(error: "cannot suspend account:alice: disk full; nothing changed")])
        XCTAssertEqual(suspendCommand(["account:alice", "--reason", "ticket", "--socket", daemon.path]), 1)
        XCTAssertEqual(daemon.requests.first?.reason, "ticket")
    }

    func testReloadExitsOneWhenRefused() throws {
        let daemon = try StandInDaemon(self, replies: [
            .init(ReloadReport(succeeded: true, configuration: "x.yaml", limits: 2)),
            .init(ReloadReport(succeeded: false, configuration: "x.yaml", error: "x.yaml:3:1: bogus: unknown key")),
        ])
        XCTAssertEqual(reloadCommand(["--socket", daemon.path]), 0)
        XCTAssertEqual(reloadCommand(["--socket", daemon.path]), 1)
    }

    func testTopSendsItsOptions() throws {
        let daemon = try StandInDaemon(self, replies: [.init(TopReport(order: .held, level: "account", rows: []))])
        XCTAssertEqual(topCommand(["--by", "held", "--level", "account", "-n", "3", "--socket", daemon.path]), 0)
        let request = try XCTUnwrap(daemon.requests.first)
        XCTAssertEqual(request.order, .held)
        XCTAssertEqual(request.level, "account")
        XCTAssertEqual(request.count, 3)
    }

    func testSocketPathComesFromTheConfigurationFile() throws {
        let daemon = try StandInDaemon(self, replies: [.init(status())])
        let configuration = NSTemporaryDirectory() + "egressctl-\(UUID().uuidString).yaml"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: configuration) }
        // An unknown key elsewhere in the file does not stop egressctl from finding the socket.
        try "unknown_key: 1\ncontrol:\n  socket: \(daemon.path)\n".write(toFile: configuration, atomically: true, encoding: .utf8)
        XCTAssertEqual(statusCommand(["--config", configuration]), 0)

        try "control:\n  socket: \"\"\n".write(toFile: configuration, atomically: true, encoding: .utf8)
        XCTAssertEqual(statusCommand(["--config", configuration]), 2, "a disabled control socket")
        XCTAssertEqual(statusCommand(["--config", "/nonexistent/egress-milter.yaml"]), 2)
    }

    func testConnectionErrorsExitTwoAndNameThePath() throws {
        let missing = NSTemporaryDirectory() + "egressctl-missing-\(UUID().uuidString.prefix(8)).sock"
        XCTAssertEqual(statusCommand(["--socket", missing]), 2)
        let client = ControlClient(socketPath: missing, pathSource: "--socket")
        let message = client.connectionProblem(ENOENT)
        XCTAssertTrue(message.contains(missing), message)
        XCTAssertTrue(message.contains("is egress-milter running"), message)
        XCTAssertTrue(client.connectionProblem(EACCES).contains("control.group"))
    }

    func testStatusColumnsLineUp() {
        let text = renderStatus(status(storeHealthy: false))
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.first, "version         0.1.0 (pid 4242)")
        XCTAssertTrue(lines.contains("uptime          1h 2m (since 2023-11-14 22:13:20Z)"), text)
        XCTAssertTrue(lines.contains("store limits    FAILING /var/lib/egress-milter/limits.sqlite: disk I/O error"), text)
        XCTAssertTrue(lines.contains("reloads         3 applied, 3 refused"), text)
        XCTAssertTrue(lines.contains("suspended keys  1 (list them with: egressctl suspended)"), text)
        XCTAssertFalse(lines.contains { $0.hasSuffix(" ") }, "no trailing blanks")
    }

    // MARK: Keys as the daemon writes them

    func testSuspendPrintsTheDaemonsKeyQuoted() throws {
        let key = "script:alice:/home/alice/public_html/wp content/x.php"
        let suspension = SuspensionReport(Suspension(key: key, reason: "by hand", since: Date(timeIntervalSince1970: 1_700_000_000)))
        let daemon = try StandInDaemon(self, replies: [.init(SuspendReport(key: key, suspension: suspension, alreadySuspended: false))])
        let output = try captureStandardOutput { suspendCommand([key, "--socket", daemon.path]) }
        XCTAssertEqual(output.status, 0)
        XCTAssertTrue(output.text.contains("suspended 'script:alice:/home/alice/public_html/wp content/x.php': by hand"), output.text)
        XCTAssertTrue(output.text.contains("egressctl release 'script:alice:/home/alice/public_html/wp content/x.php' [--deliver|--delete]"), output.text)
    }

    func testSuspendShowsCanonicalKeyFromTheReply() throws {
        let canonical = "sender:Carol@x.example"
        let suspension = SuspensionReport(Suspension(key: canonical, reason: "r", since: Date(timeIntervalSince1970: 1_700_000_000)))
        let daemon = try StandInDaemon(self, replies: [.init(SuspendReport(key: canonical, suspension: suspension, alreadySuspended: false))])
        let output = try captureStandardOutput { suspendCommand(["sender:Carol@X.Example", "--socket", daemon.path]) }
        XCTAssertEqual(daemon.requests.first?.key, "sender:Carol@X.Example", "the daemon canonicalizes, not egressctl")
        XCTAssertTrue(output.text.hasPrefix("suspended sender:Carol@x.example: r\n"), output.text)
    }

    // MARK: show

    func testShowPrintsTripProgressAndQuotedReleaseHint() throws {
        let key = "login:crm user"
        let usage = LimitUsage(rule: "logins", level: "login", shadow: false, smtpAction: "tempfail", localAction: "hold",
                               overridesTable: nil, exempt: [], maximumRecipients: nil, windows: [],
                               tripProgress: TripProgress(trips: 1, threshold: SuspensionThreshold(trips: 3, seconds: 3600)))
        let suspension = Suspension(key: key, reason: "by hand", since: Date(timeIntervalSince1970: 1_700_000_000), adminUID: 0)
        let report = KeyReport(key: key, suspension: SuspensionReport(suspension), limits: [usage], recentDecisions: [], heldMessages: [])
        let text = renderKeyReport(report)
        XCTAssertTrue(text.contains("trips       1 of 3 within 1h for rule logins\n"), text)
        XCTAssertTrue(text.contains("release with: egressctl release 'login:crm user' [--deliver|--delete]"), text)
        XCTAssertTrue(text.contains("by admin uid 0: by hand"), text)
    }

    // MARK: suspended

    func testSuspendedListsKeysAndEmptyListExitsZero() throws {
        let since = Date(timeIntervalSince1970: 1_700_000_000)
        let keys = [
            SuspendedKey(suspension: SuspensionReport(Suspension(key: "login:crm", reason: "limit logins: 3 trips within 1h", since: since,
                                                                 rule: "logins")), heldMessages: 4),
            SuspendedKey(suspension: SuspensionReport(Suspension(key: "account:bob", reason: "ticket 7", since: since, adminUID: 1000)),
                         heldMessages: 0),
        ]
        let daemon = try StandInDaemon(self, replies: [.init(SuspendedReport(keys: [])), .init(SuspendedReport(keys: keys)),
                                                       .init(SuspendedReport(keys: keys))])
        let empty = try captureStandardOutput { suspendedCommand(["--socket", daemon.path]) }
        XCTAssertEqual(empty.status, 0)
        XCTAssertEqual(empty.text, "no key is suspended\n")

        let listed = try captureStandardOutput { suspendedCommand(["--socket", daemon.path]) }
        XCTAssertEqual(listed.status, 0)
        let lines = listed.text.split(separator: "\n")
        XCTAssertTrue(lines.first?.hasPrefix("KEY") ?? false, listed.text)
        let login = try XCTUnwrap(lines.first { $0.hasPrefix("login:crm") }, listed.text)
        XCTAssertTrue(login.contains("rule logins"), String(login))
        XCTAssertTrue(login.contains(" 4 "), String(login))
        let admin = try XCTUnwrap(lines.first { $0.hasPrefix("account:bob") }, listed.text)
        XCTAssertTrue(admin.contains("admin uid 1000"), String(admin))
        XCTAssertTrue(admin.hasSuffix("ticket 7"), String(admin))

        let json = try captureStandardOutput { suspendedCommand(["--socket", daemon.path, "--json"]) }
        XCTAssertEqual(json.status, 0)
        XCTAssertTrue(json.text.contains("\"admin_uid\" : 1000"), json.text)
        XCTAssertTrue(json.text.contains("\"held_messages\" : 4"), json.text)
        XCTAssertEqual(daemon.requests.map(\.command), [.suspended, .suspended, .suspended])
    }

    // MARK: Global options

    func testGlobalOptionsMayPrecedeTheCommand() throws {
        let daemon = try StandInDaemon(self, replies: [.init(status()), .init(status()), .init(SuspendedReport(keys: []))])
        XCTAssertEqual(EgressControl.main(arguments: ["egressctl", "--socket", daemon.path, "status"]), 0)
        XCTAssertEqual(EgressControl.main(arguments: ["egressctl", "--socket=\(daemon.path)", "--json", "status"]), 0)
        let json = try captureStandardOutput { EgressControl.main(arguments: ["egressctl", "--json", "--socket", daemon.path, "suspended"]) }
        XCTAssertEqual(json.status, 0)
        XCTAssertTrue(json.text.contains("\"keys\""), json.text)
        XCTAssertEqual(daemon.requests.map(\.command), [.status, .status, .suspended])

        XCTAssertEqual(EgressControl.main(arguments: ["egressctl", "--socket"]), 2, "a missing value")
        XCTAssertEqual(EgressControl.main(arguments: ["egressctl", "--reason", "x", "status"]), 2, "not a global option")
        XCTAssertEqual(EgressControl.main(arguments: ["egressctl", "--socket", daemon.path]), 2, "no command")
    }

    func testSplitGlobalOptions() throws {
        let split = try EgressControl.splitGlobalOptions(["--socket", "/s", "--json", "show", "--config", "/c", "server"])
        XCTAssertEqual(split.options, ["--socket", "/s", "--json"])
        XCTAssertEqual(split.rest, ["show", "--config", "/c", "server"])
        XCTAssertEqual(try EgressControl.splitGlobalOptions(["--help"]).rest, ["--help"])
    }

    // MARK: release

    func testReleaseRefusesUnreadableHoldQueue() throws {
        // No reply is prepared: the release must not reach the daemon at all.
        let daemon = try StandInDaemon(self, replies: [])
        let missing = NSTemporaryDirectory() + "egressctl-no-postfix-\(UUID().uuidString.prefix(8))"
        for mode in ["--deliver", "--delete"] {
            let output = try captureStandardError {
                releaseCommand(["account:alice", mode, "--postfix-config", missing, "--socket", daemon.path])
            }
            XCTAssertEqual(output.status, 1, mode)
            XCTAssertTrue(output.text.contains("nothing changed"), output.text)
        }
        XCTAssertEqual(daemon.requests, [])
    }
}
