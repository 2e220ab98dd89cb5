// Parsing of libmilter listen specs, and the TCP listening socket the server creates itself.
// libmilter's own TCP listener leaves Nagle's algorithm on, and every small reply then waits
// for the peer's delayed ACK (about 40 ms on Linux). Creating the socket here with
// TCP_NODELAY and handing libmilter "fd:N" avoids that. This file must never accept
// connections; that stays with libmilter.
//
// NOTE: TCP stays slower than a unix socket when the MTA leaves Nagle's algorithm on, as
// Postfix does. Its next packet after a macro packet, which gets no reply, waits for this
// side's delayed ACK. TCP_QUICKACK set on the listening socket is not inherited, and
// libmilter does not expose the accepted sockets. A route to the MTA with `quickack 1`
// removes the wait (on loopback, the route "local 127.0.0.1" in table local).
import Glibc

/// A listen spec split into its kind.
enum ListenAddress: Equatable {
    case unix(path: String)
    case inet(family: Int32, port: String, host: String?)
    /// A spec passed to libmilter unchanged ("fd:N").
    case passThrough(String)

    /// Splits a spec as libmilter reads it: "unix:" and "local:" name a socket file, a spec
    /// without a colon is a socket file too, "inet:" and "inet6:" take "PORT@HOST" (HOST
    /// optional, meaning every address).
    init(spec: String) throws {
        guard let colon = spec.firstIndex(of: ":") else {
            self = .unix(path: spec)
            return
        }
        let kind = spec[..<colon].lowercased()
        let rest = String(spec[spec.index(after: colon)...])

        switch kind {
        case "unix", "local":
            guard !rest.isEmpty else {
                throw MilterError(operation: "parse listen spec", detail: "\(spec): missing socket path")
            }
            self = .unix(path: rest)
        case "inet", "inet6":
            let family = kind == "inet" ? AF_INET : AF_INET6
            let parts = rest.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
            let port = String(parts[0])
            guard let number = UInt16(port), number > 0 else {
                throw MilterError(operation: "parse listen spec", detail: "\(spec): invalid port \"\(port)\"")
            }
            var host = parts.count > 1 ? String(parts[1]) : nil
            if let bracketed = host, bracketed.hasPrefix("["), bracketed.hasSuffix("]") {
                host = String(bracketed.dropFirst().dropLast())
            }
            self = .inet(family: family, port: String(number), host: host?.isEmpty == true ? nil : host)
        case "fd":
            self = .passThrough(spec)
        default:
            throw MilterError(operation: "parse listen spec", detail: "\(spec): unknown kind \"\(kind)\"; use unix:, inet:, inet6: or fd:")
        }
    }
}

/// Creates a listening TCP socket with TCP_NODELAY (which accepted sockets inherit on Linux)
/// and SO_REUSEADDR, and returns its descriptor.
func openTCPListener(family: Int32, port: String, host: String?, backlog: Int32) throws -> Int32 {
    var hints = addrinfo()
    hints.ai_family = family
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV

    var results: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(host, port, &hints, &results)
    guard status == 0, let first = results else {
        let reason = String(cString: gai_strerror(status))
        throw MilterError(operation: "getaddrinfo", detail: "\(host ?? "*") port \(port): \(reason)")
    }
    defer { freeaddrinfo(results) }

    let descriptor = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else {
        throw MilterError.system("socket", "\(host ?? "*") port \(port)")
    }

    do {
        try setSocketOption(descriptor, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR")
        try setSocketOption(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, "TCP_NODELAY")
        guard bind(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw MilterError.system("bind", "\(host ?? "*") port \(port)")
        }
        guard listen(descriptor, backlog) == 0 else {
            throw MilterError.system("listen", "\(host ?? "*") port \(port)")
        }
    } catch {
        Glibc.close(descriptor)
        throw error
    }
    return descriptor
}

private func setSocketOption(_ descriptor: Int32, _ level: Int32, _ option: Int32, _ name: String) throws {
    var on: Int32 = 1
    guard setsockopt(descriptor, level, option, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
        throw MilterError.system("setsockopt", name)
    }
}
