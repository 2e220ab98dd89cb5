// The `identity:` section of the configuration: how the daemon decides who sent a message.
// Its defaults live here, in the property declarations, and nowhere else.
//
// `stampKey` is the one setting that never comes from YAML: the daemon reads the key file as
// root at start-up and stores the bytes here, so the policy never reads a file while it
// decides. The summary must never print it.

/// Settings of sender identity resolution.
public struct IdentitySettings: Sendable, Equatable {
    /// Header that the submission wrapper writes and the daemon verifies and removes.
    public var stampHeader = "X-Egress-Submitter"

    /// File holding the secret stamp key (mode 0640, owner root, group of the wrapper).
    public var stampKeyFile = "/etc/egress-milter/submit.key"

    /// Maximum age in seconds of a stamp when the daemon checks it. The milter sees a local
    /// message seconds after submission, so an older stamp was copied from another message.
    public var stampMaximumAgeSeconds = 3600

    /// Length of the network prefix that groups IPv6 clients into one `ip:` key. A provider
    /// usually gives one customer a whole /64, in which the customer could rotate addresses.
    public var ipv6PrefixLength = 64

    /// Whether an unstamped local message's envelope sender names its account. Turn it on
    /// only when Postfix's `local_login_sender_maps` (Postfix 3.6 and later) restricts which
    /// sender each local user may give, because otherwise any user can claim any sender.
    public var trustLocalEnvelopeSender = false

    /// Domains whose local part names a local account when `trustLocalEnvelopeSender` is on;
    /// list Postfix's `$myorigin` here. A sender without a domain always qualifies.
    public var localSenderDomains: [String] = []

    /// The stamp key, set by the daemon after reading `stampKeyFile`; nil means stamps
    /// cannot be verified, so every local message is local-unverified.
    public var stampKey: StampKey?

    /// The built-in defaults.
    public init() {}

    /// Allowed values of `ipv6PrefixLength`.
    public static let ipv6PrefixLengths = 1...128

    /// Stamps dated up to this many seconds in the future still verify, for clocks that
    /// step backwards a little between submission and the milter's check.
    public static let allowedClockSkewSeconds = 300
}

extension ConfigurationKeys {
    static let identity = ["stamp_header", "stamp_key_file", "stamp_max_age", "ipv6_prefix",
                           "trust_local_envelope_sender", "local_sender_domains"]
}

extension ConfigurationDecoder {
    /// Decodes the `identity:` section; keys it leaves out keep their defaults.
    func decodeIdentity(_ node: YAMLNode) throws -> IdentitySettings {
        let section = try fields(of: node, at: "identity", allowed: ConfigurationKeys.identity)
        var settings = IdentitySettings()

        if let header = section["stamp_header"] {
            let name = try nonEmptyString(header, at: "identity.stamp_header")
            try value(of: header, at: "identity.stamp_header") { _ in try ConfigurationValues.checkHeaderName(name) }
            settings.stampHeader = name
        }
        if let file = section["stamp_key_file"] {
            settings.stampKeyFile = try absolutePath(file, at: "identity.stamp_key_file")
        }
        if let age = section["stamp_max_age"] {
            let text = try string(age, at: "identity.stamp_max_age")
            settings.stampMaximumAgeSeconds = try value(of: age, at: "identity.stamp_max_age") { _ in
                try ConfigurationValues.parseDuration(text)
            }
        }
        if let prefix = section["ipv6_prefix"] {
            let length = try integer(prefix, at: "identity.ipv6_prefix")
            guard IdentitySettings.ipv6PrefixLengths.contains(length) else {
                throw error(at: prefix, key: "identity.ipv6_prefix",
                            "must be a prefix length from \(IdentitySettings.ipv6PrefixLengths.lowerBound) to \(IdentitySettings.ipv6PrefixLengths.upperBound), not \(length); 64 groups the usual customer network")
            }
            settings.ipv6PrefixLength = length
        }
        if let trust = section["trust_local_envelope_sender"] {
            settings.trustLocalEnvelopeSender = try plainBoolean(trust, at: "identity.trust_local_envelope_sender")
        }
        if let domains = section["local_sender_domains"] {
            settings.localSenderDomains = try domainList(domains, at: "identity.local_sender_domains")
        }
        return settings
    }


    private func domainList(_ node: YAMLNode, at path: String) throws -> [String] {
        if node.isNull {
            return []
        }
        guard case .sequence(let items) = node.content else {
            throw error(at: node, key: path, "expected a sequence of domains such as [host.example], found \(node.kindDescription)")
        }
        return try items.enumerated().map { index, item in
            let itemPath = "\(path)[\(index)]"
            let domain = try nonEmptyString(item, at: itemPath)
            guard !domain.contains("@"), !domain.contains(where: { $0.isWhitespace }) else {
                throw error(at: item, key: itemPath, "invalid domain '\(domain)'; write the domain alone, such as host.example")
            }
            return domain
        }
    }
}
