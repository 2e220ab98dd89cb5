// The SMTP client's address as the MTA reports it at connect, converted from the sockaddr
// that libmilter passes. It reads the sockaddr only during the call and keeps no pointer.
import Glibc

/// The address of the SMTP client that the MTA reports at connect.
public enum PeerAddress: Sendable, Equatable, CustomStringConvertible {
    case ipv4(String, port: UInt16)
    case ipv6(String, port: UInt16)
    /// A local (unix-domain) client with the socket path the MTA sent.
    case unix(String)
    /// The MTA sent no address, for example for mail submitted on standard input.
    case unknown

    /// The IP address as text for `ipv4` and `ipv6`; nil otherwise.
    public var host: String? {
        switch self {
        case .ipv4(let host, _), .ipv6(let host, _): host
        case .unix, .unknown: nil
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let host, let port): "\(host):\(port)"
        case .ipv6(let host, let port): "[\(host)]:\(port)"
        case .unix(let path): "unix:\(path)"
        case .unknown: "unknown"
        }
    }

    /// Converts the address libmilter gives to xxfi_connect; nil or an unsupported family
    /// becomes `unknown`.
    init(socketAddress: UnsafePointer<sockaddr>?) {
        guard let socketAddress else {
            self = .unknown
            return
        }

        switch Int32(socketAddress.pointee.sa_family) {
        case AF_INET:
            self = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                let text = withUnsafeBytes(of: address.pointee.sin_addr) { ip in
                    Self.presentation(AF_INET, ip, length: Int(INET_ADDRSTRLEN))
                }
                return .ipv4(text, port: UInt16(bigEndian: address.pointee.sin_port))
            }
        case AF_INET6:
            self = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                let text = withUnsafeBytes(of: address.pointee.sin6_addr) { ip in
                    Self.presentation(AF_INET6, ip, length: Int(INET6_ADDRSTRLEN))
                }
                return .ipv6(text, port: UInt16(bigEndian: address.pointee.sin6_port))
            }
        case AF_UNIX:
            self = socketAddress.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { address in
                // sun_path need not be NUL-terminated when it is full, so bound the read.
                withUnsafeBytes(of: address.pointee.sun_path) { raw in
                    let bytes = raw.prefix { $0 != 0 }
                    return .unix(String(decoding: bytes, as: UTF8.self))
                }
            }
        default:
            self = .unknown
        }
    }

    /// Formats a binary IPv4 or IPv6 address with inet_ntop; returns "" if that fails.
    private static func presentation(_ family: Int32, _ address: UnsafeRawBufferPointer, length: Int) -> String {
        var buffer = [CChar](repeating: 0, count: length)
        guard inet_ntop(family, address.baseAddress, &buffer, socklen_t(length)) != nil else {
            return ""
        }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
