// The facts about one message (`MessageFacts`) and the identity of its sender (`Identity`).
// An identity is an ordered list of keys, most specific first, that sender rules and rate
// limits match; `IdentityResolver` builds it.
//
// Resolution must never trust what anyone can claim. On the SMTP path only the SASL login, the
// envelope sender and the client address count, because the stamp and PHP headers there are
// text that anyone can write. On the local path Postfix fakes a session from 127.0.0.1 with no
// login, so only a stamp of the submission wrapper that verifies under the key (or, when the
// admin says Postfix enforces it, the envelope sender) names an account. Local mail without
// one is `local-unverified`, a key of its own with its own, stricter limits, so a script that
// bypasses the wrapper can neither escape limits nor charge its mail to another account.
//
// The resolver never reads files or the passwd database itself: the key arrives in
// `IdentitySettings.stampKey` and account names through an `AccountDirectory`.

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
    /// The decoded content (`MessageScanner.finish()`); nil when the body was not scanned,
    /// and then only the identity symbols are scored.
    public var scan: ScanResult?

    public init(queueID: String? = nil, path: SubmissionPath, clientAddress: String? = nil,
                clientHostname: String? = nil, helo: String? = nil, saslLogin: String? = nil,
                envelopeSender: String, recipients: [String] = [], headers: [Header] = [],
                bodyBytes: Int = 0, scan: ScanResult? = nil) {
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
        self.scan = scan
    }
}

/// The kinds of identity key, most specific first.
public enum IdentityLevel: String, Sendable, CaseIterable {
    /// Account and script path from a verified stamp: "script:alice:/home/alice/x.php".
    case script
    /// Local account from a verified stamp, or from a trusted local envelope sender.
    case account
    /// SASL login (SMTP path only).
    case login
    /// Envelope sender address, domain lowercased.
    case sender
    /// Domain of the envelope sender, lowercased.
    case domain
    /// Client IP address; IPv6 grouped by `identity.ipv6_prefix` (SMTP path only).
    case ip
    /// Local mail without a verified account.
    case localUnverified = "local-unverified"
    /// The whole server: the key every message has.
    case server

    /// Whether keys of this level are written without a value ("server", "local-unverified").
    public var hasNoValue: Bool {
        self == .server || self == .localUnverified
    }
}

/// One key of an identity, written "level:value", or the level alone for levels without a value.
public struct IdentityKey: Sendable, Hashable, CustomStringConvertible {
    public var level: IdentityLevel
    public var value: String

    public init(level: IdentityLevel, value: String) {
        self.level = level
        self.value = value
    }

    public static let server = IdentityKey(level: .server, value: "")
    public static let localUnverified = IdentityKey(level: .localUnverified, value: "")

    public var description: String {
        level.hasNoValue ? level.rawValue : "\(level.rawValue):\(value)"
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

    /// Resolves a message with the default settings and no stamp key, so every local message
    /// is local-unverified.
    /// NOTE: only for callers that have no `IdentityResolver` yet; it ignores the
    /// `identity:` settings and cannot verify stamps.
    init(resolving facts: MessageFacts) {
        self = IdentityResolver(settings: IdentitySettings()).resolve(facts, now: Date(timeIntervalSince1970: 0)).identity
    }
}

/// Local accounts, as listed in the passwd database. The daemon implements it with
/// getpwuid_r and getpwnam_r; tests use an `AccountTable`. Implementations are called on
/// libmilter's threads and must be safe to call concurrently.
public protocol AccountDirectory: Sendable {
    /// Returns the account name of `uid`, or nil when there is none.
    func accountName(forUID uid: UInt32) -> String?
    /// Returns the uid of the account `name`, or nil when there is none.
    func uid(forAccount name: String) -> UInt32?
}

/// A fixed table of accounts, for tests and for running without a passwd lookup.
public struct AccountTable: AccountDirectory {
    private let namesByUID: [UInt32: String]
    private let uidsByName: [String: UInt32]

    public init(_ namesByUID: [UInt32: String] = [:]) {
        self.namesByUID = namesByUID
        self.uidsByName = Dictionary(namesByUID.map { ($0.value, $0.key) }, uniquingKeysWith: min)
    }

    public func accountName(forUID uid: UInt32) -> String? {
        namesByUID[uid]
    }

    public func uid(forAccount name: String) -> UInt32? {
        uidsByName[name]
    }
}

/// A header field for the daemon to delete before delivery: the `occurrence`-th field named
/// `name` (1-based, names compared case-insensitively), as smfi_chgheader counts them.
public struct HeaderRemoval: Sendable, Equatable {
    public var name: String
    public var occurrence: Int

    public init(name: String, occurrence: Int) {
        self.name = name
        self.occurrence = occurrence
    }
}

/// Scoring symbols that identity resolution reports.
public enum IdentitySymbol {
    /// A stamp header on the local path that did not verify: wrong MAC, unreadable, too old,
    /// dated in the future, copied from another message or present more than once.
    public static let stampForged = "STAMP_FORGED"
    /// An `X-PHP-Originating-Script` uid that differs from the verified uid of the submitter.
    public static let phpScriptUIDMismatch = "PHP_SCRIPT_UID_MISMATCH"
    /// A verified stamp whose `-f` sender differs from the envelope sender the MTA reports.
    /// Postfix's canonical maps can cause it, so it is a hint, not a forgery.
    public static let stampSenderChanged = "STAMP_SENDER_CHANGED"
}

/// The identity of one message and what resolving it found on the way.
public struct IdentityResolution: Sendable, Equatable {
    public var identity: Identity
    /// Symbols for scoring, such as `STAMP_FORGED`; empty when nothing was suspicious.
    public var symbols: [String]
    /// Stamp headers to delete before delivery, last occurrence first so that deleting one
    /// does not renumber the others. Set on both paths: a stamp must not reach recipients,
    /// because it names the account, its directories and the script.
    public var removeHeaders: [HeaderRemoval]
    /// The stamp that verified; nil when there was none or it failed.
    public var stamp: SubmissionStamp?
    /// The reason a stamp on the local path did not verify; nil when it did or there was none.
    public var stampProblem: StampProblem?

    public init(identity: Identity, symbols: [String] = [], removeHeaders: [HeaderRemoval] = [],
                stamp: SubmissionStamp? = nil, stampProblem: StampProblem? = nil) {
        self.identity = identity
        self.symbols = symbols
        self.removeHeaders = removeHeaders
        self.stamp = stamp
        self.stampProblem = stampProblem
    }
}

/// Resolves the identity of messages under one set of identity settings. Immutable and
/// `Sendable`, so one instance serves every connection.
public struct IdentityResolver: Sendable {
    public let settings: IdentitySettings
    public let accounts: any AccountDirectory

    public init(settings: IdentitySettings, accounts: any AccountDirectory = AccountTable()) {
        self.settings = settings
        self.accounts = accounts
    }

    /// Resolves the identity keys of a message; `now` dates the stamp check.
    public func resolve(_ facts: MessageFacts, now: Date) -> IdentityResolution {
        var resolution = IdentityResolution(identity: Identity(keys: []))
        resolution.removeHeaders = Self.stampRemovals(in: facts.headers, named: settings.stampHeader)

        var keys: [IdentityKey] = []
        let sender = EnvelopeSender(facts.envelopeSender)
        switch facts.path {
        case .smtp:
            if let login = facts.saslLogin?.trimmingCharacters(in: .whitespacesAndNewlines), !login.isEmpty {
                keys.append(IdentityKey(level: .login, value: login))
            }
            appendSenderKeys(sender, to: &keys)
            if let address = facts.clientAddress,
               let group = IPAddressGroup.key(for: address, ipv6PrefixLength: settings.ipv6PrefixLength) {
                keys.append(IdentityKey(level: .ip, value: group))
            }

        case .local:
            let submitter = localSubmitter(facts, sender: sender, now: now, into: &resolution)
            if let submitter {
                if !submitter.script.isEmpty {
                    keys.append(IdentityKey(level: .script, value: "\(submitter.account):\(submitter.script)"))
                }
                keys.append(IdentityKey(level: .account, value: submitter.account))
            }
            appendSenderKeys(sender, to: &keys)
            if submitter == nil {
                keys.append(.localUnverified)
            }
        }

        keys.append(.server)
        resolution.identity = Identity(keys: keys)
        return resolution
    }

    /// Returns the stamp headers of a message as removals, last occurrence first.
    public static func stampRemovals(in headers: [Header], named name: String) -> [HeaderRemoval] {
        let count = headers.count { $0.name.lowercased() == name.lowercased() }
        return stride(from: count, through: 1, by: -1).map { HeaderRemoval(name: name, occurrence: $0) }
    }

    private func appendSenderKeys(_ sender: EnvelopeSender?, to keys: inout [IdentityKey]) {
        guard let sender else { return }
        keys.append(IdentityKey(level: .sender, value: sender.address))
        if let domain = sender.domain {
            keys.append(IdentityKey(level: .domain, value: domain))
        }
    }

    /// A local submitter that someone vouched for.
    private struct VerifiedSubmitter: Equatable {
        var uid: UInt32
        var account: String
        /// Script path; empty when unknown.
        var script: String
    }

    /// Returns the verified submitter of a local message, or nil for local-unverified, and
    /// records the stamp, its problem and the symbols in `resolution`.
    private func localSubmitter(_ facts: MessageFacts, sender: EnvelopeSender?, now: Date,
                                into resolution: inout IdentityResolution) -> VerifiedSubmitter? {
        var submitter: VerifiedSubmitter?
        var workingDirectory = ""

        let verifier = SubmissionStampVerifier(settings: settings)
        switch verifier.verify(facts.headers, now: now) {
        case nil:
            // No stamp at all: only a sender that Postfix restricts can name the account.
            submitter = trustedEnvelopeAccount(sender)
        case .failure(let problem):
            resolution.stampProblem = problem
            if problem.isForgerySignal {
                resolution.symbols.append(IdentitySymbol.stampForged)
            }
        case .success(let stamp):
            resolution.stamp = stamp
            let account = accounts.accountName(forUID: stamp.uid) ?? (stamp.account.isEmpty ? "#\(stamp.uid)" : stamp.account)
            submitter = VerifiedSubmitter(uid: stamp.uid, account: account, script: stamp.script)
            workingDirectory = stamp.workingDirectory
            if !stamp.envelopeSender.isEmpty, !Self.sameSender(stamp.envelopeSender, sender) {
                resolution.symbols.append(IdentitySymbol.stampSenderChanged)
            }
        }

        // PHP's header names the script only when its uid is the verified one; any other
        // uid means someone wrote the header by hand.
        guard var verified = submitter else { return nil }
        for header in facts.headers where header.name.lowercased() == SubmissionStamper.phpScriptHeader.lowercased() {
            guard let php = PHPOriginatingScript(header.value) else { continue }
            if php.uid != verified.uid {
                if !resolution.symbols.contains(IdentitySymbol.phpScriptUIDMismatch) {
                    resolution.symbols.append(IdentitySymbol.phpScriptUIDMismatch)
                }
            } else if verified.script.isEmpty {
                verified.script = SubmissionStamper.joined(workingDirectory, php.file)
            }
        }
        return verified
    }

    /// Returns the account named by the envelope sender's local part, when the settings trust
    /// local senders, the domain is local (or absent) and the account exists.
    private func trustedEnvelopeAccount(_ sender: EnvelopeSender?) -> VerifiedSubmitter? {
        guard settings.trustLocalEnvelopeSender, let sender, !sender.localPart.isEmpty else { return nil }
        if let domain = sender.domain {
            guard settings.localSenderDomains.contains(where: { $0.lowercased() == domain }) else { return nil }
        }
        guard let uid = accounts.uid(forAccount: sender.localPart) else { return nil }
        return VerifiedSubmitter(uid: uid, account: sender.localPart, script: "")
    }

    /// Compares the `-f` sender of a stamp with the envelope sender the MTA reports. A sender
    /// without a domain gets `$myorigin` from Postfix, so then only the local parts count.
    private static func sameSender(_ stamped: String, _ actual: EnvelopeSender?) -> Bool {
        guard let stamped = EnvelopeSender(stamped) else { return actual == nil }
        guard let actual else { return false }
        if stamped.domain == nil {
            return stamped.localPart == actual.localPart
        }
        return stamped.address == actual.address
    }
}

/// An envelope sender split for identity keys; nil for the null sender.
struct EnvelopeSender {
    /// Local part as sent, "@", domain lowercased.
    var address: String
    /// Local part as sent: everything before the last "@", or the whole address without one.
    var localPart: String
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
            localPart = text
            domain = nil
            return
        }
        let localPart = text[..<at]
        var domainPart = text[text.index(after: at)...].lowercased()
        if domainPart.hasSuffix(".") {
            domainPart.removeLast()
        }
        address = "\(localPart)@\(domainPart)"
        self.localPart = String(localPart)
        domain = domainPart.isEmpty ? nil : domainPart
    }
}

/// Turns a client address into its ip key value: IPv4 as is, IPv6 as its network of the
/// configured prefix length (64 by default). A provider usually assigns a whole /64 to one
/// customer, who could otherwise rotate addresses.
enum IPAddressGroup {
    /// Returns "192.0.2.7" or "2001:db8:1:2::/64"; an IPv4-mapped IPv6 address counts as IPv4.
    /// Returns nil for text that is no IP address.
    static func key(for raw: String, ipv6PrefixLength: Int = IdentitySettings().ipv6PrefixLength) -> String? {
        precondition(IdentitySettings.ipv6PrefixLengths.contains(ipv6PrefixLength), "IPv6 prefix length out of range")
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
            // Keep the network bits and let inet_ntop write the network canonically.
            for index in 0..<16 {
                let networkBits = min(max(ipv6PrefixLength - index * 8, 0), 8)
                bytes[index] &= UInt8(truncatingIfNeeded: 0xFF << (8 - networkBits))
            }
            guard let base = bytes.baseAddress, let network = ntop(family: AF_INET6, base) else { return nil }
            return "\(network)/\(ipv6PrefixLength)"
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
