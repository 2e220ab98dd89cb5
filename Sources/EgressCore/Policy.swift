// The decision for one message: from its facts to a `Verdict` that the daemon applies.
//
// At this stage the decision comes from the per-sender rules alone: the first rule whose
// pattern matches a key of the sender's identity decides, and no match means accept.
// This file must never log, read the clock or touch the MTA: it gets the facts and the time
// and returns a value, so every decision can be tested directly.

import Foundation

/// A header field to add to a delivered message.
public struct HeaderField: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The decision for one message: the action, its reply or header edits, and the rule behind it.
public struct Verdict: Sendable, Equatable {
    public var action: Action
    /// The SMTP reply for tempfail and reject; nil for the other actions.
    public var reply: ReplyText?
    /// Header fields to add when the message is delivered (accept, tag) or held.
    public var addHeaders: [HeaderField]
    /// Quarantine reason for hold, naming the rule; nil for the other actions.
    public var quarantineReason: String?
    /// The rule that decided ("senders[1]: reason text") or "default"; for the log, never
    /// for the client or recipients.
    public var reason: String
    public var identity: Identity
    /// Spam score; 0 until scoring exists.
    public var score: Double
    /// Names of the scoring rules that fired; empty until scoring exists.
    public var symbols: [String]

    public init(action: Action, reply: ReplyText? = nil, addHeaders: [HeaderField] = [],
                quarantineReason: String? = nil, reason: String, identity: Identity,
                score: Double = 0, symbols: [String] = []) {
        self.action = action
        self.reply = reply
        self.addHeaders = addHeaders
        self.quarantineReason = quarantineReason
        self.reason = reason
        self.identity = identity
        self.score = score
        self.symbols = symbols
    }
}

/// Decides what happens to messages under one configuration. Immutable, so one instance can
/// serve every connection at once; build a new one when the configuration changes.
public struct Policy: Sendable {
    /// Header added by the tag action, as SpamAssassin writes it, so receivers and mail
    /// clients recognise it.
    public static let spamFlagHeader = HeaderField(name: "X-Spam-Flag", value: "YES")

    public let configuration: Configuration
    private let senderPatterns: [GlobPattern]

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.senderPatterns = configuration.senders.map { GlobPattern($0.match) }
    }

    public func identity(for facts: MessageFacts) -> Identity {
        Identity(resolving: facts)
    }

    /// Decides the action for a message. `now` is unused until rate limits exist.
    public func decide(_ facts: MessageFacts, now: Date) -> Verdict {
        let identity = identity(for: facts)
        guard let index = firstMatchingRule(for: identity) else {
            return verdict(.accept, reason: "default", identity: identity)
        }

        let rule = configuration.senders[index]
        var reason = "senders[\(index)]"
        if let text = rule.reason {
            reason += ": \(text)"
        }
        var action = rule.action
        if action == .reject && facts.path == .local {
            // Postfix bounces a message rejected on the local path to its envelope sender,
            // which a local script can forge, so the reject would send backscatter.
            action = .hold
            reason += " (reject held instead on the local path, because the bounce would go to a possibly forged sender)"
        }
        return verdict(action, reason: reason, identity: identity)
    }

    /// Returns the index of the first sender rule whose pattern matches any identity key.
    private func firstMatchingRule(for identity: Identity) -> Int? {
        let keys = identity.keys.map(\.description)
        return senderPatterns.firstIndex { pattern in
            keys.contains { pattern.matches($0) }
        }
    }

    private func verdict(_ action: Action, reason: String, identity: Identity) -> Verdict {
        var verdict = Verdict(action: action, reason: reason, identity: identity)
        switch action {
        case .accept:
            break
        case .tag:
            verdict.addHeaders.append(Self.spamFlagHeader)
        case .hold:
            verdict.quarantineReason = reason
        case .reject:
            verdict.reply = configuration.rejectReply
        case .tempfail:
            verdict.reply = configuration.tempfailReply
        }
        // The value is the action alone: the header travels to the recipients, who must not
        // learn the sender's login, address or the rule.
        if !configuration.statusHeader.isEmpty {
            verdict.addHeaders.append(HeaderField(name: configuration.statusHeader, value: action.rawValue))
        }
        return verdict
    }
}
