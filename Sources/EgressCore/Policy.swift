// The decision for one message: from its facts to a `Verdict` that the daemon applies.
//
// The steps: identity, then content scoring, then the per-sender rules (a matching rule that
// rejects, tempfails or holds decides alone; accept and tag still go through the limits),
// then the limit step (suspensions, then every rate limit rule, which reserves the message's
// counts, spam counting `scoring.limit_weight` times), then the verdict: the most severe of
// the rule's, the limits' and the score's actions. This file must never log, read the clock
// or touch the MTA: it gets the facts and the time and returns a value, so every decision
// can be tested directly.

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
    /// Spam score: the sum of the weights of `symbols`.
    public var score: Double
    /// Names of the scoring symbols that fired, in rule order.
    public var symbols: [String]
    /// The rate limit counts this message took. The daemon passes the verdict to
    /// `Policy.commit` once the MTA accepted the message, or to `Policy.release` when it did
    /// not; nil when nothing was counted.
    public var reservation: LimitReservation?
    /// Keys this message got suspended, for the log.
    public var newSuspensions: [Suspension]
    /// Limits that tripped without deciding (shadow rules, milder actions), for the log.
    public var limitNotes: [String]
    /// Every enforcing limit the message tripped, with its key, for notifications.
    public var trippedLimits: [TrippedLimit] = []
    /// Header fields to delete before delivery (the submission stamp), last occurrence first.
    public var removeHeaders: [HeaderRemoval] = []
    /// Header fields to change before delivery: the Subject prefix of tagged spam.
    public var changeHeaders: [HeaderChange] = []
    /// The score with each symbol's weight, description and matched text, and the
    /// thresholds it was compared with.
    public var scoring: ScoreReport?

    public init(action: Action, reply: ReplyText? = nil, addHeaders: [HeaderField] = [],
                quarantineReason: String? = nil, reason: String, identity: Identity,
                score: Double = 0, symbols: [String] = [], reservation: LimitReservation? = nil,
                newSuspensions: [Suspension] = [], limitNotes: [String] = []) {
        self.action = action
        self.reply = reply
        self.addHeaders = addHeaders
        self.quarantineReason = quarantineReason
        self.reason = reason
        self.identity = identity
        self.score = score
        self.symbols = symbols
        self.reservation = reservation
        self.newSuspensions = newSuspensions
        self.limitNotes = limitNotes
    }
}

/// Decides what happens to messages under one configuration. Immutable, so one instance can
/// serve every connection at once; build a new one when the configuration changes, around the
/// same `RateLimiter`, so counters and suspensions carry over.
public struct Policy: Sendable {
    /// Header added by the tag action, as SpamAssassin writes it, so receivers and mail
    /// clients recognise it.
    public static let spamFlagHeader = HeaderField(name: "X-Spam-Flag", value: "YES")

    public let configuration: Configuration
    public let limiter: RateLimiter
    public let overrides: LimitOverrides
    public let identityResolver: IdentityResolver
    public let scorer: ContentScorer
    private let senderPatterns: [GlobPattern]
    let compiledLimits: CompiledLimits

    /// A policy with its own limiter in memory and no overrides; its counters start empty and
    /// are lost with it.
    public init(configuration: Configuration) {
        self.init(configuration: configuration, limiter: RateLimiter(), overrides: .empty)
    }

    /// A policy whose limits count in `limiter`, with the per-key settings of `overrides`.
    /// `accounts` maps the uids of local submitters to account names (the passwd database in
    /// the daemon, a table in tests).
    public init(configuration: Configuration, limiter: RateLimiter, overrides: LimitOverrides,
                accounts: any AccountDirectory = AccountTable()) {
        self.configuration = configuration
        self.limiter = limiter
        self.overrides = overrides
        self.identityResolver = IdentityResolver(settings: configuration.identity, accounts: accounts)
        self.scorer = ContentScorer(settings: configuration.scoring)
        self.senderPatterns = configuration.senders.map { GlobPattern($0.match) }
        self.compiledLimits = CompiledLimits(configuration: configuration, overrides: overrides, limiter: limiter)
    }

    /// Returns the identity of a message; `now` dates the check of a submission stamp.
    public func identity(for facts: MessageFacts, now: Date) -> Identity {
        identityResolver.resolve(facts, now: now).identity
    }

    /// Decides the action for a message. When the state store fails it returns the
    /// configured fail action with the error as the reason; use `evaluate` to get the error.
    public func decide(_ facts: MessageFacts, now: Date, wallClock: Date? = nil) -> Verdict {
        do {
            return try evaluate(facts, now: now, wallClock: wallClock)
        } catch {
            var action = configuration.failAction
            if action == .reject && facts.path == .local {
                action = .hold
            }
            let resolution = identityResolver.resolve(facts, now: wallClock ?? now)
            var result = verdict(action, reason: "state store failed: \(error)", identity: resolution.identity)
            result.removeHeaders = resolution.removeHeaders
            return result
        }
    }

    /// Decides the action for a message: sender rules, then suspensions and rate limits.
    /// Throws `StateStoreError` when a new suspension cannot be written; the daemon then
    /// answers with its fail action.
    ///
    /// `now` is the limiter's steady time; `wallClock` (default `now`) dates submission
    /// stamps, which the wrapper writes with the system clock, so a daemon whose steady time
    /// started from a wrong clock still verifies them once the system clock is right.
    public func evaluate(_ facts: MessageFacts, now: Date, wallClock: Date? = nil) throws -> Verdict {
        let resolution = identityResolver.resolve(facts, now: wallClock ?? now)
        let identity = resolution.identity
        let report = scorer.score(facts, resolution: resolution, campaigns: limiter.campaigns, now: now)
        var action = Action.accept
        var reason = "default"
        var scoreApplies = true
        if let index = firstMatchingRule(for: identity) {
            let rule = configuration.senders[index]
            scoreApplies = rule.scoring
            reason = "senders[\(index)]"
            if let text = rule.reason {
                reason += ": \(text)"
            }
            action = rule.action
            if action == .reject && facts.path == .local {
                // Postfix bounces a message rejected on the local path to its envelope sender,
                // which a local script can forge, so the reject would send backscatter.
                action = .hold
                reason += " (reject held instead on the local path, because the bounce would go to a possibly forged sender)"
            }
            if action != .accept && action != .tag {
                var result = verdict(action, reason: reason, identity: identity)
                addScore(report, facts: facts, to: &result)
                result.removeHeaders = resolution.removeHeaders
                return result
            }
        }

        let weight = report.isSpam && scoreApplies ? configuration.scoring.limitWeight : 1
        let limits = try decideLimits(for: identity, path: facts.path, recipientCount: facts.recipients.count,
                                      messageWeight: weight, now: now)
        if let limitAction = limits.action, let limitReason = limits.reason {
            action = limitAction
            reason = limitReason
        }
        if scoreApplies && report.action.limitSeverity > action.limitSeverity {
            action = report.action
            reason = scoreReason(report)
            if action == .reject && facts.path == .local {
                action = .hold
                reason += " (reject held instead on the local path, because the bounce would go to a possibly forged sender)"
            }
        }
        var result = verdict(action, reason: reason, identity: identity)
        result.reservation = limits.reservation
        result.newSuspensions = limits.newSuspensions
        result.limitNotes = limits.notes
        result.trippedLimits = limits.trippedLimits
        addScore(report, facts: facts, to: &result, scoreApplies: scoreApplies)
        result.removeHeaders = resolution.removeHeaders
        return result
    }

    /// "score 13.5 reached hold (12.0): SYMBOL_A,SYMBOL_B".
    private func scoreReason(_ report: ScoreReport) -> String {
        let thresholds = report.thresholds
        let threshold = [Action.reject: thresholds.reject, .hold: thresholds.hold, .tag: thresholds.tag][report.action] ?? nil
        let limit = threshold.map { " (\(ContentScorer.format($0)))" } ?? ""
        return "score \(ContentScorer.format(report.score)) reached \(report.action.rawValue)\(limit): "
            + report.hits.map(\.name).joined(separator: ",")
    }

    /// Puts the score into the verdict and, for scanned messages that are tagged or held as
    /// spam, the tag headers and the Subject prefix in place of the bare flag.
    private func addScore(_ report: ScoreReport, facts: MessageFacts, to result: inout Verdict, scoreApplies: Bool = true) {
        result.score = report.score
        result.symbols = report.hits.map(\.name)
        result.scoring = report
        guard facts.scan != nil, result.action == .tag || (result.action == .hold && report.isSpam && scoreApplies) else { return }

        var headers = scorer.tagHeaders(for: report)
        if let flag = headers.firstIndex(where: { $0.name == configuration.scoring.headers.flag }) {
            headers[flag].value = "YES"
        }
        result.addHeaders.removeAll { $0 == Self.spamFlagHeader }
        result.addHeaders.insert(contentsOf: headers, at: 0)
        if let change = scorer.subjectChange(for: facts) {
            result.changeHeaders.append(change)
        }
    }

    /// Makes the verdict's rate limit counts final; call it when the MTA accepted the message.
    public func commit(_ verdict: Verdict) {
        if let reservation = verdict.reservation {
            limiter.commit(reservation)
        }
    }

    /// Takes the verdict's rate limit counts back; call it when the message was not accepted
    /// after all (aborted, or the verdict could not be applied).
    public func release(_ verdict: Verdict) {
        if let reservation = verdict.reservation {
            limiter.release(reservation)
        }
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
