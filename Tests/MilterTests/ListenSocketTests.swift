// Tests of the listening socket: stale unix socket removal, file mode and group, TCP
// listeners created with TCP_NODELAY and handed to libmilter as "fd:N", and listen spec parsing.
import Glibc
@testable import Milter
import XCTest

final class ListenSocketTests: ListenerTestCase {
    /// Leaves a unix socket file behind the way a killed milter does: bound, then closed
    /// without unlink.
    private func createStaleSocket(at path: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        defer { close(descriptor) }

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        XCTAssertEqual(result, 0, String(cString: strerror(errno)))
    }

    func testStaleSocketIsRemoved() throws {
        let listener = try prepareListener()
        try createStaleSocket(at: listener.socketPath)
        XCTAssertTrue(FileManager.default.fileExists(atPath: listener.socketPath))

        try listener.start([])

        let client = try listener.negotiatedClient()
        XCTAssertEqual(try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525)).commandCharacter, "c")
    }

    func testKeptStaleSocketFailsToOpen() throws {
        let listener = try prepareListener()
        try createStaleSocket(at: listener.socketPath)

        XCTAssertThrowsError(try listener.start(["--keep-stale-socket"]))

        XCTAssertTrue(listener.waitForExit())
        XCTAssertEqual(listener.terminationStatus, 1)
        XCTAssertTrue(listener.standardError.contains("smfi_opensocket"), listener.standardError)
    }

    func testSocketModeAndGroupAreApplied() throws {
        // Only root may give the socket a group it is not a member of.
        let group = getuid() == 0 ? gid_t(4242) : getgid()
        let listener = try startListener(["--socket-mode", "660", "--socket-group", String(group)])

        var status = stat()
        XCTAssertEqual(stat(listener.socketPath, &status), 0)

        XCTAssertEqual(status.st_mode & S_IFMT, S_IFSOCK)
        XCTAssertEqual(status.st_mode & 0o777, 0o660)
        XCTAssertEqual(status.st_gid, group)
    }

    func testOtherSocketModeIsApplied() throws {
        let listener = try startListener(["--socket-mode", "600"])

        var status = stat()
        XCTAssertEqual(stat(listener.socketPath, &status), 0)

        XCTAssertEqual(status.st_mode & 0o777, 0o600)
    }

    /// Returns a TCP port that was free on `host` a moment ago.
    private func freePort(host: String, family: Int32) throws -> UInt16 {
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        defer { close(descriptor) }

        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, "0", &hints, &results) == 0, let first = results else {
            throw XCTSkip("\(host) is not available here")
        }
        defer { freeaddrinfo(results) }
        guard bind(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw XCTSkip("cannot bind \(host): \(String(cString: strerror(errno)))")
        }

        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    func testInetListenerServesConnections() throws {
        let port = try freePort(host: "127.0.0.1", family: AF_INET)
        let listener = try startListener(listen: "inet:\(port)@127.0.0.1")

        let client = try listener.negotiatedClient()
        let reply = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))

        XCTAssertEqual(reply.commandCharacter, "c")
        let event = try listener.waitForEvent("connect") { $0.event == "connect" }
        XCTAssertEqual(event.host, "192.0.2.7")
    }

    func testInet6ListenerServesConnections() throws {
        let port = try freePort(host: "::1", family: AF_INET6)
        let listener = try startListener(listen: "inet6:\(port)@::1")

        let client = try listener.negotiatedClient()
        let reply = try client.connect(hostname: "client.example", address: .ipv6("2001:db8::1", port: 2525))

        XCTAssertEqual(reply.commandCharacter, "c")
    }

    // MARK: - Listen spec parsing

    func testListenSpecsParse() throws {
        let cases: [(String, ListenAddress)] = [
            ("unix:/run/milter.sock", .unix(path: "/run/milter.sock")),
            ("local:/run/milter.sock", .unix(path: "/run/milter.sock")),
            ("/run/milter.sock", .unix(path: "/run/milter.sock")),
            ("inet:8891@127.0.0.1", .inet(family: AF_INET, port: "8891", host: "127.0.0.1")),
            ("inet:8891", .inet(family: AF_INET, port: "8891", host: nil)),
            ("inet6:8891@::1", .inet(family: AF_INET6, port: "8891", host: "::1")),
            ("inet6:8891@[::1]", .inet(family: AF_INET6, port: "8891", host: "::1")),
            ("fd:3", .passThrough("fd:3")),
        ]
        for (spec, expected) in cases {
            XCTAssertEqual(try ListenAddress(spec: spec), expected, spec)
        }
    }

    func testInvalidListenSpecsThrow() {
        for spec in ["unix:", "inet:0@127.0.0.1", "inet:http@127.0.0.1", "inet:70000", "tcp:25@host"] {
            XCTAssertThrowsError(try ListenAddress(spec: spec), spec)
        }
    }
}
