// The `metrics:` section of the config file: whether the daemon serves Prometheus metrics over
// HTTP, on which address and under which path.
//
// The endpoint has no authentication, so the default address is loopback and the section is
// off by default. An address must be a numeric IPv4 address or a bracketed IPv6 address: a
// host name would need a DNS lookup at start-up and could resolve to a public address.

import Foundation
import Glibc

/// Settings of the metrics endpoint.
public struct MetricsSettings: Sendable, Equatable {
    /// Whether the daemon serves metrics at all.
    public var enabled = false
    /// `HOST:PORT` with a numeric IPv4 host, or `[IPV6]:PORT`.
    public var listen = "127.0.0.1:9899"
    /// URL path of the metrics; every other path gets 404.
    public var path = "/metrics"

    public init() {}

    /// The parsed `listen` address; valid for every value the decoder accepts.
    public var address: MetricsAddress? {
        try? MetricsAddress(parsing: listen)
    }
}

/// A numeric host and a TCP port, parsed from `HOST:PORT` or `[IPV6]:PORT`.
public struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var isIPv6: Bool

    public init(host: String, port: UInt16, isIPv6: Bool) {
        self.host = host
        self.port = port
        self.isIPv6 = isIPv6
    }

    /// Parses `127.0.0.1:9899` or `[::1]:9899`. Throws `ValueError` with the reason.
    init(parsing text: String) throws {
        let example = "such as 127.0.0.1:9899 or [::1]:9899"
        let hostText: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ValueError(message: "invalid address '\(text)'; an IPv6 address needs brackets and a port, \(example)")
            }
            hostText = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            isIPv6 = true
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw ValueError(message: "invalid address '\(text)'; expected HOST:PORT, \(example)")
            }
            hostText = text[..<colon]
            portText = text[text.index(after: colon)...]
            isIPv6 = false
        }

        guard let number = Int(portText), portText.allSatisfy(\.isASCII), (1...65535).contains(number) else {
            throw ValueError(message: "invalid port '\(portText)' in '\(text)'; expected a number from 1 to 65535")
        }
        guard Self.isNumericAddress(String(hostText), family: isIPv6 ? AF_INET6 : AF_INET) else {
            let kind = isIPv6 ? "IPv6" : "IPv4"
            throw ValueError(message: "invalid \(kind) address '\(hostText)' in '\(text)'; expected a numeric address, \(example)")
        }
        host = String(hostText)
        port = UInt16(number)
    }

    /// True for 127.0.0.0/8 and ::1, the addresses only this host reaches.
    public var isLoopback: Bool {
        isIPv6 ? host == "::1" || host == "0:0:0:0:0:0:0:1" : host.hasPrefix("127.")
    }

    public var description: String {
        isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func isNumericAddress(_ host: String, family: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(family, host, &buffer) == 1
    }
}

extension ConfigurationKeys {
    static let metrics = ["enabled", "listen", "path"]
}

extension ConfigurationDecoder {
    func decodeMetrics(_ node: YAMLNode) throws -> MetricsSettings {
        var settings = MetricsSettings()
        let fields = try fields(of: node, at: "metrics", allowed: ConfigurationKeys.metrics)
        if let enabled = fields["enabled"] {
            settings.enabled = try plainBoolean(enabled, at: "metrics.enabled")
        }
        if let listen = fields["listen"] {
            let text = try string(listen, at: "metrics.listen")
            _ = try value(of: listen, at: "metrics.listen") { _ in try MetricsAddress(parsing: text) }
            settings.listen = text
        }
        if let path = fields["path"] {
            let text = try string(path, at: "metrics.path")
            try value(of: path, at: "metrics.path") { _ in try MetricsSettings.checkPath(text) }
            settings.path = text
        }
        return settings
    }

}

extension MetricsSettings {
    /// Longest path accepted, in bytes; far more than any sensible path needs.
    static let maximumPathBytes = 200

    /// Checks a URL path: absolute, printable ASCII, no query or fragment, because the daemon
    /// compares it with the request path byte for byte.
    static func checkPath(_ path: String) throws {
        guard path.hasPrefix("/") else {
            throw ValueError(message: "must start with '/', such as /metrics")
        }
        guard path.utf8.count <= maximumPathBytes else {
            throw ValueError(message: "is \(path.utf8.count) bytes long; the maximum is \(maximumPathBytes)")
        }
        guard path.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "?" && $0 != "#" }) else {
            throw ValueError(message: "invalid path '\(path)'; use printable ASCII without spaces, '?' or '#'")
        }
    }
}

extension Configuration {
    /// Returns the lines of the `metrics:` section for `summary()`.
    func metricsSummary() -> [String] {
        [
            "metrics:",
            "  enabled: \(metrics.enabled)",
            "  listen: \(YAMLText.scalar(metrics.listen))",
            "  path: \(YAMLText.scalar(metrics.path))",
        ]
    }
}
