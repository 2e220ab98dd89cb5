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
            reloads: 0, reloadError: reloadError, listen: "unix:/var/spool/postfix/egress-milter/milter.sock",
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
        XCTAssertFalse(lines.contains { $0.hasSuffix(" ") }, "no trailing blanks")
    }
}
