// The seal by which the daemon recognizes its own notices when they come back through the
// local MTA.
//
// A notice is submitted with the MTA's sendmail, so Postfix passes it through the same
// milter on the local path, where it would count against limits and, from a suspended key
// such as local-unverified, be held. Exempting the daemon's own uid would be weaker:
// anything that runs as that user, or a local sender the identity cannot tell from it,
// would get the exemption too. So each notice carries the header `X-Egress-Notice` whose
// value is an HMAC-SHA256 over its Message-ID, keyed with 32 random bytes drawn at start
// and never written anywhere. The daemon also remembers each Message-ID it issued and
// accepts it once: a forged header fails the HMAC, a copied one fails the second time.
// The daemon deletes the header from every message, valid or not, so it never reaches a
// recipient.
//
// Known limits: the secret and the outstanding Message-IDs live in memory, so a notice that
// is still in the maildrop directory when the daemon restarts is judged as ordinary mail
// (it may be held). Only `maximumOutstanding` Message-IDs are remembered; the oldest go
// first. It never logs and never reads the clock; the caller passes the time.

import Foundation
import Synchronization

public final class NoticeSeal: Sendable {
    /// The header that carries the seal.
    public static let headerName = "X-Egress-Notice"
    /// Message-IDs remembered at most; each notice adds one until it returns.
    public static let maximumOutstanding = 10_000
    /// Seconds a Message-ID is remembered; a notice that reaches the milter later is
    /// judged as ordinary mail.
    public static let lifetimeSeconds = 2 * 86_400.0
    /// Random bytes per Message-ID.
    static let messageIDRandomBytes = 16

    /// The result of checking a message's seal.
    public enum Check: Sendable, Equatable {
        /// The message carries no seal header.
        case absent
        /// A seal this daemon issued and that was not used before.
        case valid
        /// A seal that fails the HMAC, names another or no Message-ID, or was used already.
        case invalid(String)
    }

    private struct Outstanding {
        var issued: [String: Double] = [:]
        var order: [String] = []
    }

    private let secret: [UInt8]
    private let outstanding = Mutex(Outstanding())

    /// Creates a seal with a fresh random secret.
    public convenience init() {
        var generator = SystemRandomNumberGenerator()
        self.init(secret: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Creates a seal with a given secret, for tests.
    public init(secret: [UInt8]) {
        precondition(!secret.isEmpty, "a seal needs a secret")
        self.secret = secret
    }

    /// Returns a new random Message-ID ("<hex@domain>") and the seal header value for it,
    /// and remembers the Message-ID until it is redeemed or expires.
    public func issue(domain: String, now: Double) -> (messageID: String, sealValue: String) {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<Self.messageIDRandomBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let messageID = "<notice." + hex(random) + "@" + domain + ">"
        outstanding.withLock { state in
            state.issued[messageID] = now
            state.order.append(messageID)
            Self.expire(&state, now: now)
        }
        return (messageID, sealValue(for: messageID))
    }

    /// Checks the seal of a message with the given header fields and, when it is valid,
    /// removes the Message-ID from the outstanding ones, so the same seal never works twice.
    public func redeem(headers: [Header], now: Double) -> Check {
        let seals = headers.filter { $0.name.lowercased() == Self.headerName.lowercased() }
        guard !seals.isEmpty else { return .absent }
        guard seals.count == 1 else { return .invalid("\(seals.count) \(Self.headerName) fields") }
        let messageIDs = headers.filter { $0.name.lowercased() == "message-id" }
        guard messageIDs.count == 1 else { return .invalid("\(messageIDs.count) Message-ID fields") }

        let messageID = trimmed(messageIDs[0].value)
        let presented = trimmed(seals[0].value)
        guard constantTimeEqual(Array(presented.utf8), Array(sealValue(for: messageID).utf8)) else {
            return .invalid("the seal does not match the Message-ID")
        }
        return outstanding.withLock { state in
            Self.expire(&state, now: now)
            guard state.issued.removeValue(forKey: messageID) != nil else {
                return .invalid("the seal was used before or has expired")
            }
            state.order.removeAll { $0 == messageID }
            return .valid
        }
    }

    /// Message-IDs issued and not yet redeemed.
    public var outstandingCount: Int {
        outstanding.withLock { $0.issued.count }
    }

    private func sealValue(for messageID: String) -> String {
        hex(HMACSHA256.authenticationCode(for: Array(("egress-milter notice\u{0}" + messageID).utf8), key: secret))
    }

    /// Drops expired Message-IDs and the oldest beyond `maximumOutstanding`.
    private static func expire(_ state: inout Outstanding, now: Double) {
        var dropped = 0
        while dropped < state.order.count {
            let id = state.order[dropped]
            let issuedAt = state.issued[id]
            let tooMany = state.order.count - dropped > maximumOutstanding
            guard issuedAt == nil || tooMany || now - issuedAt! > lifetimeSeconds else { break }
            state.issued.removeValue(forKey: id)
            dropped += 1
        }
        if dropped > 0 {
            state.order.removeFirst(dropped)
        }
    }

    private func trimmed(_ value: [UInt8]) -> String {
        String(decoding: value, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
