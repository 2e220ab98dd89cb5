// The HTTP endpoint of the Prometheus metrics, served by libmicrohttpd on a socket the daemon
// bound at start-up. GET and HEAD on the configured path return the exposition text; any
// other path gets 404 and any other method 405.
//
// It must never slow or stop mail: libmicrohttpd runs it on one thread of its own, apart from
// libmilter's, with at most `maximumConnections` clients and an idle timeout, and a scrape
// only copies the counters under their lock. The endpoint has no authentication; the
// configuration keeps it on loopback by default (docs/metrics.md shows a reverse proxy).
// libmicrohttpd's own error messages are not logged, because its logger is variadic: a
// failed start shows as a start-up error, and failed requests are invisible.

import CMicroHTTPD
import CMicroHTTPDShim
import EgressCore
import Foundation
import Glibc

/// An HTTP reply of the metrics endpoint, decided without any socket so tests can check it.
struct MetricsResponse: Equatable {
    var status: UInt32
    var contentType: String
    var body: String
    /// The Allow header of a 405 reply.
    var allow: String?
}

/// Routes a request to the metrics or to an error reply.
final class MetricsEndpoint: Sendable {
    /// The media type of the text exposition format 0.0.4.
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    let path: String
    private let render: @Sendable () -> String

    init(path: String, render: @escaping @Sendable () -> String) {
        self.path = path
        self.render = render
    }

    /// Returns the reply to `method` on `url`; the metrics are rendered only for GET and HEAD
    /// on the path. A query string is ignored, as Prometheus sends none.
    func response(method: String, url: String) -> MetricsResponse {
        let requestPath = url.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? url
        guard requestPath == path else {
            return MetricsResponse(status: 404, contentType: "text/plain; charset=utf-8",
                                   body: "not found; the metrics are at \(path)\n")
        }
        guard method == "GET" || method == "HEAD" else {
            return MetricsResponse(status: 405, contentType: "text/plain; charset=utf-8",
                                   body: "method \(method) not allowed; use GET or HEAD\n", allow: "GET, HEAD")
        }
        return MetricsResponse(status: 200, contentType: Self.contentType, body: render())
    }
}

/// A TCP socket bound and listening for the metrics endpoint, opened while the daemon is root.
struct MetricsListener {
    let descriptor: Int32
    let address: MetricsAddress

    /// The connections the kernel queues before the server accepts them.
    static let backlog: Int32 = 16

    /// Creates, binds and listens. Throws StartupError naming the address and the errno text.
    static func open(_ address: MetricsAddress) throws -> MetricsListener {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw StartupError(description: "cannot create the metrics socket: \(String(cString: strerror(errno)))")
        }

        // A restarted daemon must not wait for the old connections in TIME_WAIT.
        var on: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if address.isIPv6 {
            // [::] then means IPv6 only, as written; an IPv4 scraper needs an IPv4 address.
            setsockopt(descriptor, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size))
        }

        let bound = address.isIPv6 ? bindIPv6(descriptor, address) : bindIPv4(descriptor, address)
        guard bound == 0, listen(descriptor, backlog) == 0 else {
            let problem = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw StartupError(description: "cannot listen for metrics on \(address): \(problem); change 'metrics.listen' or stop what uses the port")
        }
        return MetricsListener(descriptor: descriptor, address: address)
    }

    /// The port the socket is bound to: the configured one, or the kernel's choice for port 0.
    var boundPort: UInt16? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { return nil }
        return withUnsafePointer(to: &storage) { pointer in
            if address.isIPv6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    private static func bindIPv4(_ descriptor: Int32, _ address: MetricsAddress) -> Int32 {
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = address.port.bigEndian
        guard inet_pton(AF_INET, address.host, &socketAddress.sin_addr) == 1 else {
            errno = EINVAL
            return -1
        }
        return withUnsafePointer(to: &socketAddress) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    private static func bindIPv6(_ descriptor: Int32, _ address: MetricsAddress) -> Int32 {
        var socketAddress = sockaddr_in6()
        socketAddress.sin6_family = sa_family_t(AF_INET6)
        socketAddress.sin6_port = address.port.bigEndian
        guard inet_pton(AF_INET6, address.host, &socketAddress.sin6_addr) == 1 else {
            errno = EINVAL
            return -1
        }
        return withUnsafePointer(to: &socketAddress) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }
}

/// The running libmicrohttpd server. stop() ends it; calling stop() again does nothing.
final class MetricsServer: @unchecked Sendable {
    /// Scrapers served at the same time; Prometheus uses one connection per target.
    static let maximumConnections: UInt32 = 8
    /// Seconds an idle connection stays open.
    static let idleTimeoutSeconds: UInt32 = 10

    // Set in init and cleared once in stop(). The daemon calls stop() from its main thread
    // only, so no two threads touch these fields at once and @unchecked Sendable is safe.
    private var daemon: OpaquePointer?
    private var context: Unmanaged<MetricsEndpoint>?

    /// Starts serving `endpoint` on the listener's socket; the server owns the socket from here.
    init(listener: MetricsListener, endpoint: MetricsEndpoint) throws {
        let context = Unmanaged.passRetained(endpoint)
        guard let daemon = egress_mhd_start(listener.descriptor, metricsRequestHandler, context.toOpaque(),
                                            Self.maximumConnections, Self.idleTimeoutSeconds) else {
            context.release()
            Glibc.close(listener.descriptor)
            throw StartupError(description: "libmicrohttpd could not start the metrics server on \(listener.address)")
        }
        self.daemon = daemon
        self.context = context
    }

    /// Stops the server thread, closes the socket and releases the endpoint.
    func stop() {
        guard let daemon else { return }
        MHD_stop_daemon(daemon)
        self.daemon = nil
        context?.release()
        context = nil
    }
}

/// libmicrohttpd's request callback. It runs on the server's thread and queues the reply at
/// the first call for a request, because a GET carries no body and other methods get an error.
private func metricsRequestHandler(
    context: UnsafeMutableRawPointer?, connection: OpaquePointer?, url: UnsafePointer<CChar>?,
    method: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?, uploadData: UnsafePointer<CChar>?,
    uploadDataSize: UnsafeMutablePointer<Int>?, connectionContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let context, let connection else { return .NO }
    let endpoint = Unmanaged<MetricsEndpoint>.fromOpaque(context).takeUnretainedValue()
    let reply = endpoint.response(method: method.map { String(cString: $0) } ?? "",
                                  url: url.map { String(cString: $0) } ?? "")

    var body = Array(reply.body.utf8)
    // MHD_RESPMEM_MUST_COPY: the library copies the bytes, so the array may go after the call.
    guard let response = body.withUnsafeMutableBytes({ buffer in
        MHD_create_response_from_buffer(buffer.count, buffer.baseAddress, .RESPMEM_MUST_COPY)
    }) else {
        return .NO
    }
    defer { MHD_destroy_response(response) }
    _ = MHD_add_response_header(response, "Content-Type", reply.contentType)
    if let allow = reply.allow {
        _ = MHD_add_response_header(response, "Allow", allow)
    }
    // For HEAD, libmicrohttpd sends the headers with the Content-Length of the body, but not the body.
    return MHD_queue_response(connection, UInt32(reply.status), response)
}
