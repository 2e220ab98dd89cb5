// Turns an identity key typed by an admin ("sender:Carol@X.Example") into the key the
// resolver builds for the same sender ("sender:Carol@x.example"), so a suspension, release or
// show acts on the key that messages carry.
//
// It must never build a key by rules of its own: each level goes through the same code the
// resolver uses (`EnvelopeSender`, `IPAddressGroup`, the login trimming), so the two cannot
// drift apart. Keys that no message can carry (an invalid IP address, an empty value, an
// unknown level) are rejected with a message that names the key and the expected form.

import Foundation

/// A key an admin typed that no message can carry, with the reason and the expected form.
public struct IdentityKeyError: Error, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

extension IdentityResolver {
    /// Returns the canonical form of an admin-typed key, as `resolve` writes it under these
    /// settings: sender domains and domains lower-cased with a final dot removed, the local
    /// part kept as typed, IPv6 addresses grouped by `identity.ipv6_prefix`, IPv4 addresses as
    /// inet_ntop writes them, a SASL login trimmed. Throws `IdentityKeyError`.
    public func canonicalKey(_ text: String) throws -> String {
        if let problem = ControlProtocol.keyProblem(text) {
            throw IdentityKeyError(problem)
        }
        let levelName = ControlProtocol.level(ofKey: text)
        guard let level = IdentityLevel(rawValue: levelName) else {
            // keyProblem accepts only known levels, so this is unreachable for checked keys.
            throw IdentityKeyError("unknown level '\(levelName)' in key '\(text)'")
        }
        if level.hasNoValue {
            // keyProblem rejects a value after these levels, so the key is the level alone.
            return text
        }
        let value = String(text.dropFirst(levelName.count + 1))
        return IdentityKey(level: level, value: try canonicalValue(value, level: level, key: text)).description
    }

    private func canonicalValue(_ value: String, level: IdentityLevel, key: String) throws -> String {
        switch level {
        case .login:
            let login = value.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !login.isEmpty else { throw Self.emptyValue(key) }
            return login

        case .sender:
            guard let sender = EnvelopeSender(value) else {
                throw IdentityKeyError("the key '\(key)' names the null sender, which has no sender key; bounces are counted under their other keys")
            }
            return sender.address

        case .domain:
            guard !value.contains("@") else {
                throw IdentityKeyError("invalid domain in key '\(key)'; a domain key names the part after '@', such as domain:shop.example")
            }
            guard let domain = EnvelopeSender("postmaster@" + value)?.domain else { throw Self.emptyValue(key) }
            return domain

        case .ip:
            return try canonicalAddressGroup(value, key: key)

        case .script:
            let parts = value.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw IdentityKeyError("invalid script key '\(key)'; expected script:ACCOUNT:PATH such as script:alice:/home/alice/public_html/x.php")
            }
            return value

        case .account:
            guard !value.trimmingCharacters(in: .whitespaces).isEmpty else { throw Self.emptyValue(key) }
            return value

        case .localUnverified, .server:
            return value
        }
    }

    /// Groups an address as the resolver does. A key copied from the log already carries the
    /// prefix ("2001:db8:1:2::/64"). That prefix must be the configured one, because keys of
    /// any other length never occur.
    private func canonicalAddressGroup(_ value: String, key: String) throws -> String {
        var address = value
        var prefixLength: Int?
        if let slash = value.lastIndex(of: "/") {
            address = String(value[..<slash])
            guard let length = Int(value[value.index(after: slash)...]) else {
                throw IdentityKeyError("invalid prefix length in key '\(key)'; expected ip:ADDRESS, or ip:NETWORK/\(settings.ipv6PrefixLength) for IPv6")
            }
            prefixLength = length
        }
        guard let group = IPAddressGroup.key(for: address, ipv6PrefixLength: settings.ipv6PrefixLength) else {
            throw IdentityKeyError("invalid IP address '\(address)' in key '\(key)'; expected an IPv4 address such as ip:192.0.2.7 or an IPv6 address such as ip:2001:db8::1")
        }
        if let prefixLength {
            guard group.contains("/") else {
                throw IdentityKeyError("the key '\(key)' gives a prefix length, but IPv4 keys are single addresses; write ip:\(group)")
            }
            guard prefixLength == settings.ipv6PrefixLength else {
                throw IdentityKeyError("the key '\(key)' has prefix length /\(prefixLength), but identity.ipv6_prefix is \(settings.ipv6PrefixLength), so IPv6 keys look like ip:\(group)")
            }
        }
        return group
    }

    private static func emptyValue(_ key: String) -> IdentityKeyError {
        IdentityKeyError("the key '\(key)' has an empty value")
    }
}
