// The control socket on a real unix socket in a temporary directory: its mode, several
// requests on one connection, the peer's credentials, a line over the size limit, a stale
// socket file, a second daemon on a live socket, and the file's removal at stop.
import EgressCore
import Foundation
import Milter
import Glibc
import XCTest

@testable import egress_milter

final class ControlServerTests: XCTestCase {
    private func socketPath(_ fixture: ControlFixture) -> String {
        fixture.directory + "/run/control.sock"
    }

    private func startServer(_ fixture: ControlFixture) throws -> ControlServer {
        let listener = try ControlListener.open(path: socketPath(fixture), mode: 0o660, group: nil, owner: nil)
        let server = ControlServer(listener: listener, handler: fixture.handler, logger: fixture.log.logger)
        server.start()
        addTeardownBlock { server.stop() }
        return server
    }

    func testSocketHasTheConfiguredMode() throws {
        let fixture = try ControlFixture.make(self)
        _ = try startServer(fixture)
        var status = stat()
        XCTAssertEqual(stat(socketPath(fixture), &status), 0)
        XCTAssertEqual(status.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(status.st_mode & 0o777, 0o660)
    }

    func testSeveralRequestsOnOneConnection() throws {
        let fixture = try ControlFixture.make(self)
        _ = try startServer(fixture)
        let connection = try ControlConnection.connect(to: socketPath(fixture))
        defer { connection.close() }

        let requests = try ControlProtocol.encodeLine(ControlRequest(command: .suspend, key: "login:crm", reason: "test"))
            + ControlProtocol.encodeLine(ControlRequest(command: .show, key: "login:crm"))
        try connection.write(requests)

        let first = try XCTUnwrap(connection.readLine(maximumBytes: ControlProtocol.maximumReplyBytes))
        XCTAssertEqual(try ControlProtocol.decodeLine(ControlReply<SuspendReport>.self, from: first).result?.key, "login:crm")
        let second = try XCTUnwrap(connection.readLine(maximumBytes: ControlProtocol.maximumReplyBytes))
        XCTAssertEqual(try ControlProtocol.decodeLine(ControlReply<KeyReport>.self, from: second).result?.suspension?.reason, "test")

        // The log names the peer by its uid, read from the socket.
        let uid = getuid()
        XCTAssertTrue(fixture.log.texts(at: .notice).contains { $0.contains("by uid \(uid)") }, "\(fixture.log.texts(at: .notice))")
    }

    func testOverlongLineGetsAnErrorAndTheConnectionCloses() throws {
        let fixture = try ControlFixture.make(self)
        _ = try startServer(fixture)
        let connection = try ControlConnection.connect(to: socketPath(fixture))
        defer { connection.close() }

        // The daemon may close before reading everything; the error line is still there to read.
        try? connection.write([UInt8](repeating: UInt8(ascii: "x"), count: ControlProtocol.maximumRequestBytes + 1))
        let line = try XCTUnwrap(connection.readLine(maximumBytes: ControlProtocol.maximumReplyBytes))
        let reply = try ControlProtocol.decodeLine(ControlReply<EmptyResult>.self, from: line)
        XCTAssertFalse(reply.ok)
        XCTAssertTrue(reply.error?.contains("line longer than") ?? false, String(describing: reply.error))
        XCTAssertNil(try connection.readLine(maximumBytes: 1024), "the daemon closed the connection")
    }

    func testStaleSocketIsReplacedAndLiveOneRefused() throws {
        let fixture = try ControlFixture.make(self)
        let path = socketPath(fixture)

        // A crashed daemon leaves its socket file with nobody listening.
        let stale = try ControlListener.open(path: path, mode: 0o600, group: nil, owner: nil)
        Glibc.close(stale.descriptor)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))

        let server = try startServer(fixture)
        XCTAssertThrowsError(try ControlListener.open(path: path, mode: 0o600, group: nil, owner: nil)) { error in
            XCTAssertTrue("\(error)".contains("another process listens on \(path)"), "\(error)")
        }
        XCTAssertNotNil(try? ControlConnection.connect(to: path), "the running server keeps its socket")

        server.stop()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "stop removes the socket file")
    }

    func testFileThatIsNotASocketIsRefused() throws {
        let fixture = try ControlFixture.make(self)
        let path = fixture.directory + "/not-a-socket"
        try "x".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ControlListener.open(path: path, mode: 0o600, group: nil, owner: nil)) { error in
            XCTAssertTrue("\(error)".contains("exists and is not a socket"), "\(error)")
        }
    }
}
