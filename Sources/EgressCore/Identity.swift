// The facts about one message (`MessageFacts`) and the identity of its sender (`Identity`).
// An identity is an ordered list of keys, most specific first, that sender rules and later
// rate limits match.
//
// Resolution must never trust what anyone can claim: the SASL login and the client address
// count only on the SMTP path, because on the local path Postfix fakes a session from
// 127.0.0.1 and there is no login. Headers are not used for identity yet.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One header field of a message, with the value as raw bytes as the MTA sent it.
public struct Header: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// The facts about one message that the policy decides on. The daemon collects them from the
/// milter callbacks, and the policy has no other source.
public struct MessageFacts: Sendable {
    /// Queue ID (macro `i`), for logs only.
    public var queueID: String?
    public var path: SubmissionPath
    /// Client IP address as text: IPv4, or IPv6 with or without brackets, an `IPv6:` prefix or
    /// a zone (`%eth0`).
    public var clientAddress: String?
    public var clientHostname: String?
    public var helo: String?
    /// SASL login (macro `{auth_authen}`); nil or empty when the client did not authenticate.
    public var saslLogin: String?
    /// Envelope sender as the MTA sent it, with or without angle brackets; "<>" or "" is the
    /// null sender of bounces.
    public var envelopeSender: String
    public var recipients: [String]
    public var headers: [Header]
    /// Size of the body in bytes.
    public var bodyBytes: Int

    public init(queueID: String? = nil, path: SubmissionPath, clientAddress: String? = nil,
                clientHostname: String? = nil, helo: String? = nil, saslLogin: String? = nil,
                envelopeSender: String, recipients: [String] = [], headers: [Header] = [],
                bodyBytes: Int = 0) {
        self.queueID = queueID
        self.path = path
        self.clientAddress = clientAddress
        self.clientHostname = clientHostname
        self.helo = helo
        self.saslLogin = saslLogin
        self.envelopeSender = envelopeSender
        self.recipients = recipients
        self.headers = headers
        self.bodyBytes = bodyBytes
    }
}

/// The kinds of identity key, most specific first.
public enum IdentityLevel: String, Sendable, CaseIterable {
    /// SASL login (SMTP path only).
    case login
    /// Envelope sender address, domain lowercased.
    case sender
    /// Domain of the envelope sender, lowercased.
    case domain
    /// Client IP address; IPv6 grouped by /64 (SMTP path only).
    case ip
    /// The whole server: the key every message has.
    case server
}

/// One key of an identity, written "level:value" ("server" alone has no value).
public struct IdentityKey: Sendable, Hashable, CustomStringConvertible {
    public var level: IdentityLevel
    public var value: String

    public init(level: IdentityLevel, value: String) {
        self.level = level
        self.value = value
    }

    public static let server = IdentityKey(level: .server, value: "")

    public var description: String {
        level == .server ? level.rawValue : "\(level.rawValue):\(value)"
    }
}

/// The keys that name the sender of a message, most specific first; always ends with `server`.
public struct Identity: Sendable, Equatable, CustomStringConvertible {
    public var keys: [IdentityKey]

    public init(keys: [IdentityKey]) {
        self.keys = keys
    }

    /// The keys joined by "<", most specific first: "login:alice<sender:alice@shop.example<...<server".
    public var description: String {
        keys.map(\.description).joined(separator: "<")
    }

    /// Resolves the identity keys of a message.
    init(resolving facts: MessageFacts) {
        var keys: [IdentityKey] = []
        let onSMTPPath = facts.path == .smtp

        if onSMTPPath, let login = facts.saslLogin?.trimmingCharacters(in: .whitespacesAndNewlines), !login.isEmpty {
            keys.append(IdentityKey(level: .login, value: login))
        }
        if let sender = EnvelopeSender(facts.envelopeSender) {
            keys.append(IdentityKey(level: .sender, value: sender.address))
            if let domain = sender.domain {
                keys.append(IdentityKey(level: .domain, value: domain))
            }
        }
        if onSMTPPath, let address = facts.clientAddress, let group = IPAddressGroup.key(for: address) {
            keys.append(IdentityKey(level: .ip, value: group))
        }
        keys.append(.server)
        self.keys = keys
    }
}

/// An envelope sender split for identity keys; nil for the null sender.
struct EnvelopeSender {
    /// Local part as sent, "@", domain lowercased.
    var address: String
    var domain: String?

    init?(_ raw: String) {
        var text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("<"), text.hasSuffix(">") {
            text = String(text.dropFirst().dropLast())
        }
        // Source routes ("@relay1,@relay2:user@domain") are obsolete; the mailbox follows the colon.
        if text.hasPrefix("@"), let colon = text.firstIndex(of: ":") {
            text = String(text[text.index(after: colon)...])
        }
        guard !text.isEmpty else { return nil }

        // The last "@" separates the domain, because a quoted local part may contain "@".
        guard let at = text.lastIndex(of: "@") else {
            address = text
            domain = nil
            return
        }
        let localPart = text[..<at]
        var domainPart = text[text.index(after: at)...].lowercased()
        if domainPart.hasSuffix(".") {
            domainPart.removeLast()
        }
        address = "\(localPart)@\(domainPart)"
        domain = domainPart.isEmpty ? nil : domainPart
    }
}

/// Turns a client address into its ip key value: IPv4 as is, IPv6 as its /64 network. A
/// provider usually assigns a whole /64 to one customer, who could otherwise rotate addresses.
enum IPAddressGroup {
    /// Returns "192.0.2.7" or "2001:db8:1:2::/64"; an IPv4-mapped IPv6 address counts as IPv4.
    /// Returns nil for text that is no IP address.
    static func key(for raw: String) -> String? {
        var text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.lowercased().hasPrefix("ipv6:") {
            text.removeFirst(5)
        }
        if text.hasPrefix("["), text.hasSuffix("]") {
            text = String(text.dropFirst().dropLast())
        }
        if let percent = text.firstIndex(of: "%") {
            text = String(text[..<percent])
        }

        var ipv4 = in_addr()
        if inet_pton(AF_INET, text, &ipv4) == 1 {
            return format(family: AF_INET, &ipv4)
        }
        var ipv6 = in6_addr()
        guard inet_pton(AF_INET6, text, &ipv6) == 1 else {
            return nil
        }
        return withUnsafeMutableBytes(of: &ipv6) { bytes -> String? in
            let isIPv4Mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
            if isIPv4Mapped {
                var mapped = in_addr()
                withUnsafeMutableBytes(of: &mapped) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[12..<16])) }
                return format(family: AF_INET, &mapped)
            }
            // Keep the network half (the first 64 bits) and let inet_ntop write it canonically.
            for index in 8..<16 {
                bytes[index] = 0
            }
            guard let base = bytes.baseAddress, let network = ntop(family: AF_INET6, base) else { return nil }
            return network + "/64"
        }
    }

    private static func format<Address>(family: Int32, _ address: inout Address) -> String? {
        withUnsafeBytes(of: &address) { bytes in
            bytes.baseAddress.flatMap { ntop(family: family, $0) }
        }
    }

    private static func ntop(family: Int32, _ address: UnsafeRawPointer) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
