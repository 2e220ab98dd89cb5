// The limit step of a decision: compiles the `limits:` rules and the overrides table against
// the limiter, picks the rules that apply to a message's identity, and turns the limiter's
// outcome into an action, a reason and a reservation.
//
// It must never count a key twice for one rule or skip a level of the identity chain: every
// rule is checked against every key of its level, exemptions and overrides aside.

import Foundation

/// The result of the limit step for one message.
public struct LimitDecision: Sendable, Equatable {
    /// The action the limits demand; nil when no enforcing limit tripped and no key is suspended.
    public var action: Action?
    /// Why, for the log and the quarantine reason: the rule, window, key and count, or the
    /// suspension. Nil together with `action`.
    public var reason: String?
    /// The counts the message took; nil when nothing was counted (refused, held, or no rule
    /// applies). The daemon commits or releases it.
    public var reservation: LimitReservation?
    /// Keys this message got suspended.
    public var newSuspensions: [Suspension]
    /// Trips that did not decide: shadow rules ("would tempfail") and milder limits.
    public var notes: [String]
    /// Every enforcing rule this message tripped, with its key, for notifications.
    public var trippedLimits: [TrippedLimit] = []

    public init(action: Action? = nil, reason: String? = nil, reservation: LimitReservation? = nil,
                newSuspensions: [Suspension] = [], notes: [String] = []) {
        self.action = action
        self.reason = reason
        self.reservation = reservation
        self.newSuspensions = newSuspensions
        self.notes = notes
    }
}

/// An enforcing limit that a message tripped (shadow rules excluded).
public struct TrippedLimit: Sendable, Equatable {
    public var key: String
    public var rule: String
    /// "limit accounts: 50/1h exceeded for account:alice (51)".
    public var description: String
    /// The rule's action on the message's path, which applies to the key's mail while the
    /// window is full.
    public var action: Action

    public init(key: String, rule: String, description: String, action: Action) {
        self.key = key
        self.rule = rule
        self.description = description
        self.action = action
    }
}

/// The rules compiled against one limiter and one overrides table.
struct CompiledLimits: Sendable {
    let rules: [CompiledLimit]
    /// Per overridden key, per rule index: the key's own compiled rule, or nil when exempt.
    let overrides: [String: [Int: CompiledLimit?]]

    init(configuration: Configuration, overrides: LimitOverrides, limiter: RateLimiter) {
        var tables: [String: Int] = [:]
        func table(for rule: LimitRule, _ windows: [CompiledWindow]) -> Int? {
            guard !windows.isEmpty else { return nil }
            let shapes = windows.map { WindowShape(unit: $0.unit, seconds: $0.window.seconds) }
            let isWide = CounterTable.needsWideCounters(windows.map(\.window.limit))
            let identifier = CounterTable.identifier(ruleName: rule.name, shapes: shapes, isWide: isWide)
            if let index = tables[identifier] {
                return index
            }
            let index = limiter.table(ruleName: rule.name, shapes: shapes, isWide: isWide)
            tables[identifier] = index
            return index
        }
        func compile(_ rule: LimitRule, messages: [RateWindow], recipients: [RateWindow], cap: Int?) -> CompiledLimit {
            let windows = messages.map { CompiledWindow(window: $0, unit: .messages) }
                + recipients.map { CompiledWindow(window: $0, unit: .recipients) }
            return CompiledLimit(rule: rule, windows: windows, table: table(for: rule, windows), maximumRecipients: cap)
        }

        let rules = configuration.limits.map {
            compile($0, messages: $0.messages, recipients: $0.recipients, cap: $0.maximumRecipients)
        }
        self.rules = rules

        // Keys that share settings share one compiled rule.
        var shared: [String: CompiledLimit] = [:]
        var compiledOverrides: [String: [Int: CompiledLimit?]] = [:]
        for (key, entry) in overrides.entries {
            let level = key.firstIndex(of: ":").map { String(key[..<$0]) } ?? key
            var perRule: [Int: CompiledLimit?] = [:]
            for (index, rule) in configuration.limits.enumerated() where rule.level.rawValue == level {
                if entry.exempt {
                    perRule[index] = .some(nil)
                    continue
                }
                let messages = entry.messages ?? rule.messages
                let recipients = entry.recipients ?? rule.recipients
                let cap = entry.maximumRecipients ?? rule.maximumRecipients
                let signature = "\(index)|\(messages)|\(recipients)|\(cap.map(String.init) ?? "-")"
                if let existing = shared[signature] {
                    perRule[index] = existing
                } else {
                    let compiled = compile(rule, messages: messages, recipients: recipients, cap: cap)
                    shared[signature] = compiled
                    perRule[index] = compiled
                }
            }
            if !perRule.isEmpty {
                compiledOverrides[key] = perRule
            }
        }
        self.overrides = compiledOverrides
    }

    /// The checks for a message: each rule against each key of its level that is neither
    /// exempt by pattern nor by the overrides table.
    func request(for identity: Identity, path: SubmissionPath, recipientCount: Int) -> LimitRequest {
        var checks: [LimitCheck] = []
        var descriptions: [String]?
        for (index, rule) in rules.enumerated() {
            let level = rule.level.rawValue
            for key in identity.keys where key.level.rawValue == level {
                let keyText = key.description
                var compiled = rule
                if !overrides.isEmpty, let perRule = overrides[keyText], let entry = perRule[index] {
                    guard let own = entry else { continue }
                    compiled = own
                }
                if !compiled.exemptions.isEmpty {
                    let all = descriptions ?? identity.keys.map(\.description)
                    descriptions = all
                    if compiled.exemptions.contains(where: { pattern in all.contains { pattern.matches($0) } }) {
                        continue
                    }
                }
                checks.append(LimitCheck(limit: compiled, key: keyText))
            }
        }
        return LimitRequest(checks: checks, identity: identity, path: path, recipientCount: recipientCount)
    }
}

extension Policy {
    /// Runs the limit step for an identity: suspension check, then every applicable window,
    /// reserving the message's counts when it may be delivered. The message counts as
    /// `messageWeight` messages in message windows (the scoring weight of spam). Throws
    /// `StateStoreError` when a new suspension cannot be written.
    public func decideLimits(for identity: Identity, path: SubmissionPath, recipientCount: Int, messageWeight: Int = 1,
                             now: Date) throws -> LimitDecision {
        if compiledLimits.rules.isEmpty, !limiter.hasSuspensions {
            return LimitDecision()
        }
        var request = compiledLimits.request(for: identity, path: path, recipientCount: recipientCount)
        request.messageWeight = UInt32(clamping: max(1, messageWeight))
        let outcome = try limiter.evaluate(request, now: now)
        return Self.decision(from: outcome, request: request)
    }

    static func decision(from outcome: LimitOutcome, request: LimitRequest) -> LimitDecision {
        var decision = LimitDecision(reservation: outcome.reservation, newSuspensions: outcome.newSuspensions)
        if let suspension = outcome.suspension ?? outcome.newSuspensions.first {
            decision.action = .hold
            decision.reason = suspension.holdReason
        } else if let trip = outcome.decisive, let action = outcome.decisiveAction {
            decision.action = action
            decision.reason = describe(trip, request: request)
        }

        var noted = Set<Int>()
        for trip in outcome.trips where !noted.contains(trip.check) {
            noted.insert(trip.check)
            let check = request.checks[trip.check]
            if !check.limit.shadow {
                decision.trippedLimits.append(TrippedLimit(
                    key: check.key, rule: check.limit.ruleName, description: describe(trip, request: request),
                    action: check.limit.action(on: request.path)))
            }
            if let decisive = outcome.decisive, decisive.check == trip.check, outcome.suspension == nil,
               outcome.newSuspensions.isEmpty {
                continue
            }
            let limit = request.checks[trip.check].limit
            let action = limit.action(on: request.path).rawValue
            let text = describe(trip, request: request)
            decision.notes.append(limit.shadow ? "\(text), would \(action) (shadow)" : "\(text), \(action)")
        }
        return decision
    }

    /// "limit accounts: 50/1h exceeded for account:alice (51)".
    static func describe(_ trip: LimitTrip, request: LimitRequest) -> String {
        let check = request.checks[trip.check]
        return "limit \(check.limit.ruleName): \(trip.limitText(check.limit)) exceeded for \(check.key) (\(trip.count))"
    }
}
