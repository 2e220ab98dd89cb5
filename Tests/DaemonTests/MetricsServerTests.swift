// The metrics endpoint: routing of methods and paths without a socket, then the libmicrohttpd
// server on a loopback port the kernel picks (IPv4 and IPv6), spoken to with plain HTTP/1.0
// requests, and the socket closed after stop().
import EgressCore
import EgressMetrics
import Foundation
import Glibc
import XCTest

@testable import egress_milter

final class MetricsServerTests: XCTestCase {
    private func makeEndpoint() -> MetricsEndpoint {
        let metrics = DaemonMetrics(startTime: Date(timeIntervalSince1970: 1_800_000_000), version: "9.9.9")
        metrics.recordDecision(path: .local, action: .hold, symbols: ["GTUBE"], limitTrips: [], seconds: 0.01, scannedBytes: 10)
        return MetricsEndpoint(path: "/metrics") { metrics.exposition(suspendedKeys: 1, trackedKeys: 7) }
    }

    func testEndpointRoutesMethodsAndPaths() {
        let endpoint = makeEndpoint()
        let cases: [(method: String, url: String, status: UInt32, allow: String?)] = [
            ("GET", "/metrics", 200, nil),
            ("HEAD", "/metrics", 200, nil),
            ("GET", "/metrics?name[]=x", 200, nil),
            ("POST", "/metrics", 405, "GET, HEAD"),
            ("DELETE", "/metrics", 405, "GET, HEAD"),
            ("GET", "/", 404, nil),
            ("GET", "/metrics/", 404, nil),
            ("GET", "/METRICS", 404, nil),
            ("POST", "/other", 404, nil),
        ]
        for item in cases {
            let response = endpoint.response(method: item.method, url: item.url)
            XCTAssertEqual(response.status, item.status, "\(item.method) \(item.url)")
            XCTAssertEqual(response.allow, item.allow, "\(item.method) \(item.url)")
            if item.status == 200 {
                XCTAssertEqual(response.contentType, "text/plain; version=0.0.4; charset=utf-8")
                XCTAssertTrue(response.body.contains("egress_milter_messages_total{path=\"local\",action=\"hold\"} 1\n"), response.body)
                XCTAssertTrue(response.body.contains("egress_milter_tracked_keys 7\n"), response.body)
            } else {
                XCTAssertFalse(response.body.contains("egress_milter"), "\(item.method) \(item.url): \(response.body)")
            }
        }
    }

    func testServerAnswersOverIPv4Loopback() throws {
        try checkServer(on: MetricsAddress(host: "127.0.0.1", port: 0, isIPv6: false))
    }

    func testServerAnswersOverIPv6Loopback() throws {
        try checkServer(on: MetricsAddress(host: "::1", port: 0, isIPv6: true))
    }

    func testPortInUseIsAStartupError() throws {
        let first = try MetricsListener.open(MetricsAddress(host: "127.0.0.1", port: 0, isIPv6: false))
        defer { close(first.descriptor) }
        let port = try XCTUnwrap(first.boundPort)
        XCTAssertThrowsError(try MetricsListener.open(MetricsAddress(host: "127.0.0.1", port: port, isIPv6: false))) { error in
            XCTAssertTrue("\(error)".contains("cannot listen for metrics on 127.0.0.1:\(port): Address already in use"), "\(error)")
        }
    }

    private func checkServer(on address: MetricsAddress, file: StaticString = #filePath, line: UInt = #line) throws {
        let listener = try MetricsListener.open(address)
        let port = try XCTUnwrap(listener.boundPort, file: file, line: line)
        let server = try MetricsServer(listener: listener, endpoint: makeEndpoint())
        var stopped = false
        defer { if !stopped { server.stop() } }

        let get = try httpExchange(address, port: port, request: "GET /metrics HTTP/1.0\r\n\r\n")
        XCTAssertTrue(get.hasPrefix("HTTP/1.0 200") || get.hasPrefix("HTTP/1.1 200"), get, file: file, line: line)
        XCTAssertTrue(get.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), get, file: file, line: line)
        XCTAssertTrue(get.contains("\r\n\r\n# HELP egress_milter_messages_total "), get, file: file, line: line)
        XCTAssertTrue(get.hasSuffix("egress_milter_build_info{version=\"9.9.9\"} 1\n"), get, file: file, line: line)

        let head = try httpExchange(address, port: port, request: "HEAD /metrics HTTP/1.0\r\n\r\n")
        XCTAssertTrue(head.contains(" 200 "), head, file: file, line: line)
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"), "HEAD must carry no body: \(head)", file: file, line: line)

        let post = try httpExchange(address, port: port, request: "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
        XCTAssertTrue(post.contains(" 405 "), post, file: file, line: line)
        XCTAssertTrue(post.contains("Allow: GET, HEAD\r\n"), post, file: file, line: line)

        let missing = try httpExchange(address, port: port, request: "GET /favicon.ico HTTP/1.0\r\n\r\n")
        XCTAssertTrue(missing.contains(" 404 "), missing, file: file, line: line)

        server.stop()
        stopped = true
        XCTAssertThrowsError(try httpExchange(address, port: port, request: "GET /metrics HTTP/1.0\r\n\r\n"),
                             "the socket must be closed after stop()", file: file, line: line)
    }

    /// Sends one request and returns everything the server writes until it closes the connection.
    private func httpExchange(_ address: MetricsAddress, port: UInt16, request: String) throws -> String {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EIO) }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let connected: Int32
        if address.isIPv6 {
            var target = sockaddr_in6()
            target.sin6_family = sa_family_t(AF_INET6)
            target.sin6_port = port.bigEndian
            inet_pton(AF_INET6, address.host, &target.sin6_addr)
            connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var target = sockaddr_in()
            target.sin_family = sa_family_t(AF_INET)
            target.sin_port = port.bigEndian
            inet_pton(AF_INET, address.host, &target.sin_addr)
            connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard connected == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }

        let bytes = Array(request.utf8)
        guard send(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw POSIXError(.EIO) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
