// Content scoring for one configuration: compiles the built-in phrase patterns and the
// admin's rules once, then scores messages from their facts, their scan result and their
// identity, and maps the score to an action with the thresholds of the message's path.
//
// It never logs, never reads files and never reads the clock (the time comes in for the
// campaign windows). A pattern that hits its match limit is recorded as PATTERN_LIMIT and
// counts as no match, so a hostile message cannot stall the thread. `ContentScorer` is
// immutable and shared by every connection.

import Foundation

/// The score of one message and what it means.
public struct ScoreReport: Sendable, Equatable {
    /// Sum of the weights of `hits`, rounded to three decimals.
    public var score: Double
    /// Symbols that fired, in rule order.
    public var hits: [SymbolHit]
    /// The thresholds of the message's path.
    public var thresholds: ScoreThresholds
    /// The action the score alone leads to: accept, tag, hold or reject.
    public var action: Action

    public init(score: Double, hits: [SymbolHit], thresholds: ScoreThresholds, action: Action) {
        self.score = score
        self.hits = hits
        self.thresholds = thresholds
        self.action = action
    }

    /// Whether the score reached the tag threshold (or a higher one).
    public var isSpam: Bool {
        action != .accept
    }
}

/// A header field to change before delivery: the `occurrence`-th field named `name`.
public struct HeaderChange: Sendable, Equatable {
    public var name: String
    public var occurrence: Int
    public var value: String

    public init(name: String, occurrence: Int, value: String) {
        self.name = name
        self.occurrence = occurrence
        self.value = value
    }
}

/// Scores messages under one `ScoringSettings`. Immutable and thread-safe.
public final class ContentScorer: Sendable {
    public let settings: ScoringSettings
    let weights: [String: Double]
    let disabled: Set<String>
    let hostedDomains: [String]
    let phrases: CompiledPhrases?
    let customRules: [CompiledCustomRule]
    /// Admin rules that failed to compile, as "NAME: message". Always empty for settings
    /// that came from a config file, which rejects bad patterns when it is loaded.
    public let invalidRules: [String]

    public init(settings: ScoringSettings) {
        self.settings = settings
        var weights = Dictionary(uniqueKeysWithValues: BuiltInRules.all.map { ($0.name, $0.weight) })
        for rule in settings.rules {
            weights[rule.name] = rule.weight
        }
        for (name, weight) in settings.weights {
            weights[name] = weight
        }
        self.weights = weights
        self.disabled = Set(settings.disabled)
        self.hostedDomains = (settings.hostedDomains + settings.hostedDomainsFromFile).map { $0.lowercased() }

        let matchLimit = UInt32(clamping: settings.patternMatchLimit)
        let depthLimit = UInt32(clamping: settings.patternDepthLimit)
        self.phrases = settings.enabled ? CompiledPhrases(matchLimit: matchLimit, depthLimit: depthLimit) : nil
        var compiled: [CompiledCustomRule] = []
        var invalid: [String] = []
        for rule in settings.rules {
            do {
                compiled.append(try CompiledCustomRule(rule, matchLimit: matchLimit, depthLimit: depthLimit))
            } catch {
                invalid.append("\(rule.name): \(error)")
            }
        }
        self.customRules = compiled
        self.invalidRules = invalid
    }

    /// Returns every symbol this scorer can add, built-in and custom, with its effective
    /// weight; disabled symbols are left out.
    public func effectiveRules() -> [RuleDescription] {
        let all = BuiltInRules.all + settings.rules.map { RuleDescription(name: $0.name, weight: $0.weight, description: $0.description) }
        return all.compactMap { rule in
            self.rule(rule.name).map { RuleDescription(name: rule.name, weight: $0.weight, description: $0.description) }
        }
    }

    /// Returns the weight and description a symbol adds, or nil when it is disabled.
    func rule(_ name: String) -> (weight: Double, description: String)? {
        guard !disabled.contains(name) else { return nil }
        let description = BuiltInRules.byName[name]?.description
            ?? settings.rules.first { $0.name == name }?.description ?? ""
        return (weights[name] ?? 0, description)
    }

    /// Scores a message. Without a scan result only the identity symbols count; campaigns
    /// are counted in `campaigns` at `now`.
    public func score(_ facts: MessageFacts, resolution: IdentityResolution, campaigns: CampaignTracker?,
                      now: Date) -> ScoreReport {
        var hits = HitCollector(scorer: self)
        for symbol in resolution.symbols {
            hits.add(symbol)
        }
        let thresholds = settings.thresholds(for: facts.path)
        guard settings.enabled else {
            // Scoring is off: keep the identity symbols for the log, without weight.
            let unweighted = hits.hits.map { SymbolHit(name: $0.name, weight: 0, description: $0.description, detail: $0.detail) }
            return ScoreReport(score: 0, hits: unweighted, thresholds: thresholds, action: .accept)
        }
        if let scan = facts.scan, let phrases {
            let message = RuleInput(facts: facts, scan: scan, resolution: resolution)
            ContentRules(scorer: self, phrases: phrases, input: message).evaluate(into: &hits)
            if settings.campaign.enabled, let campaigns {
                evaluateCampaign(message, campaigns: campaigns, now: now, into: &hits)
            }
            for rule in customRules {
                rule.evaluate(message, into: &hits)
            }
        }
        let total = (hits.hits.reduce(0) { $0 + $1.weight } * 1000).rounded() / 1000
        return ScoreReport(score: total, hits: hits.hits, thresholds: thresholds, action: thresholds.action(for: total))
    }

    private func evaluateCampaign(_ message: RuleInput, campaigns: CampaignTracker, now: Date, into hits: inout HitCollector) {
        // Bounces are the MTA's own, and one template goes to many people by nature.
        guard !message.isNullSender else { return }
        let wanted = [BuiltInSymbol.campaignBulk, BuiltInSymbol.campaignMultiSender, BuiltInSymbol.subjectBurst]
        guard wanted.contains(where: { rule($0) != nil }) else { return }

        let subject = message.subject
        let fingerprint = ContentFingerprint.compute(subject: subject, text: message.visibleText)
        let sender = message.resolution.identity.keys.first?.description ?? "server"
        let counts = campaigns.record(content: fingerprint, subject: ContentFingerprint.subjectKey(subject), sender: sender,
                                      recipients: message.facts.recipients.count, settings: settings.campaign, now: now)
        let campaign = settings.campaign
        if fingerprint != nil && counts.recipients >= campaign.recipients {
            hits.add(BuiltInSymbol.campaignBulk, detail: "\(counts.recipients) recipients in \(campaign.windowSeconds)s")
        }
        if fingerprint != nil && counts.senders >= campaign.senders {
            hits.add(BuiltInSymbol.campaignMultiSender, detail: "\(counts.senders) senders in \(campaign.windowSeconds)s")
        }
        if counts.subjectMessages >= campaign.subjectBurst {
            hits.add(BuiltInSymbol.subjectBurst, detail: "\(counts.subjectMessages) messages in \(campaign.subjectWindowSeconds)s")
        }
    }

    // MARK: Tag headers

    /// Returns the headers the tag action adds: flag, score and status, SpamAssassin style.
    public func tagHeaders(for report: ScoreReport) -> [HeaderField] {
        let names = settings.headers
        let required = report.thresholds.tag ?? report.thresholds.hold ?? report.thresholds.reject ?? 0
        var fields: [HeaderField] = []
        if !names.flag.isEmpty {
            fields.append(HeaderField(name: names.flag, value: report.isSpam ? "YES" : "NO"))
        }
        if !names.score.isEmpty {
            fields.append(HeaderField(name: names.score, value: Self.format(report.score)))
        }
        if !names.status.isEmpty {
            let tests = report.hits.map(\.name).sorted()
            let head = "\(report.isSpam ? "Yes" : "No"), score=\(Self.format(report.score)) required=\(Self.format(required))"
            fields.append(HeaderField(name: names.status, value: Self.folded(head, tests: tests)))
        }
        return fields
    }

    /// Formats a score with one decimal, as SpamAssassin writes it.
    public static func format(_ score: Double) -> String {
        String(format: "%.1f", score)
    }

    /// Writes "HEAD tests=A,B,..." folded before a symbol whenever a line would pass 78
    /// bytes; the fold is "\n\t", which smfi_addheader accepts inside a value.
    static func folded(_ head: String, tests: [String]) -> String {
        var value = head + " tests="
        var lineLength = value.utf8.count + "X-Spam-Status: ".utf8.count
        for (index, test) in tests.enumerated() {
            let piece = test + (index < tests.count - 1 ? "," : "")
            if lineLength + piece.utf8.count > 78 && index > 0 {
                value += "\n\t"
                lineLength = 8
            }
            value += piece
            lineLength += piece.utf8.count
        }
        if tests.isEmpty {
            value += "none"
        }
        return value
    }

    /// Returns the Subject change that adds the configured prefix, or nil when there is no
    /// prefix or the Subject already starts with it. An ASCII prefix goes in front as it is;
    /// any other prefix becomes an RFC 2047 word that ends with its own space, because
    /// readers drop the white space between two encoded words.
    public func subjectChange(for facts: MessageFacts) -> HeaderChange? {
        let prefix = settings.subjectPrefix
        guard !prefix.isEmpty else { return nil }
        let raw = facts.headers.first { $0.name.caseInsensitiveEquals("Subject") }
        let decoded = facts.scan?.headerValue("Subject") ?? raw.map { String(decoding: $0.value, as: UTF8.self) } ?? ""
        if decoded.hasPrefix(prefix) {
            return nil
        }
        let isPlainASCII = prefix.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
            && !prefix.contains("=?")
        let encodedPrefix = isPlainASCII
            ? prefix
            : "=?UTF-8?B?" + Data((prefix + " ").utf8).base64EncodedString() + "?="
        let original = raw.map { String(decoding: $0.value, as: UTF8.self) } ?? ""
        let value = original.isEmpty ? encodedPrefix : encodedPrefix + " " + original
        return HeaderChange(name: "Subject", occurrence: 1, value: value)
    }
}

/// Collects the symbols that fire, with their weights, skipping disabled ones.
struct HitCollector {
    let scorer: ContentScorer
    private(set) var hits: [SymbolHit] = []

    init(scorer: ContentScorer) {
        self.scorer = scorer
    }

    func isEnabled(_ name: String) -> Bool {
        !scorer.disabled.contains(name)
    }

    /// Adds a symbol once; `detail` is cut to a readable length.
    mutating func add(_ name: String, detail: String = "") {
        guard let rule = scorer.rule(name), !hits.contains(where: { $0.name == name }) else { return }
        hits.append(SymbolHit(name: name, weight: rule.weight, description: rule.description, detail: Self.shortened(detail)))
    }

    /// Longest detail kept, in characters.
    static let maximumDetailCharacters = 120

    static func shortened(_ text: String) -> String {
        let flat = text.map { $0.isNewline || $0 == "\t" ? " " : $0 }
        guard flat.count > maximumDetailCharacters else { return String(flat) }
        return String(flat.prefix(maximumDetailCharacters - 1)) + "…"
    }
}
