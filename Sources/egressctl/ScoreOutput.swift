// The output of `egressctl score`: scored messages and the rule list, as columns for people
// and as JSON for scripts. The shapes of the JSON objects here are part of the command's
// documented output (docs/egressctl.md), so rename no key without changing that page.
//
// Rendering never reads files or the configuration file: everything it shows comes in as
// values.

import EgressCore
import Foundation

/// The configuration of one `score` run, and the scoring switches as the file sets them.
struct ScoringSource {
    /// The configuration to score with: scoring turned on and campaign counting off, whatever
    /// the file sets, because files are scored one by one and the admin wants to see what
    /// the rules give.
    var configuration: Configuration
    /// The file that was read, or nil for the built-in defaults.
    var path: String?
    /// `scoring.enabled` as the file sets it.
    var scoringEnabled: Bool
    /// `scoring.campaign.enabled` as the file sets it.
    var campaignEnabled: Bool

    /// "configuration: PATH", or the built-in defaults with the reason they were used.
    var headerLine: String {
        if let path {
            return "configuration: \(path)"
        }
        return "configuration: built-in defaults (\(defaultConfigurationPath) does not exist)"
    }
}

/// One scored message, as --json prints it.
struct ScoredMessage: Encodable {
    struct Symbol: Encodable {
        var name: String
        var weight: Double
        var description: String
        var matched: String
    }

    var file: String
    /// The configuration file, or nil (JSON null) for the built-in defaults.
    var configuration: String?
    var scoringEnabled: Bool
    var path: String
    var score: Double
    var thresholds: [String: Double]
    var action: String
    var isSpam: Bool
    var symbols: [Symbol]

    enum CodingKeys: String, CodingKey {
        case file, configuration, scoringEnabled = "scoring_enabled", path, score, thresholds, action, isSpam = "is_spam", symbols
    }

    // Written by hand so that "configuration" is null for the built-in defaults instead of
    // missing, which scripts could take for an older egressctl.
    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(file, forKey: .file)
        try container.encode(configuration, forKey: .configuration)
        try container.encode(scoringEnabled, forKey: .scoringEnabled)
        try container.encode(path, forKey: .path)
        try container.encode(score, forKey: .score)
        try container.encode(thresholds, forKey: .thresholds)
        try container.encode(action, forKey: .action)
        try container.encode(isSpam, forKey: .isSpam)
        try container.encode(symbols, forKey: .symbols)
    }
}

extension ScoredMessage {
    init(_ report: ScoreReport, file: String, path: SubmissionPath, source: ScoringSource) {
        var thresholds: [String: Double] = [:]
        thresholds["tag"] = report.thresholds.tag
        thresholds["hold"] = report.thresholds.hold
        thresholds["reject"] = report.thresholds.reject
        let rules = source.configuration.scoring.rules
        let symbols = report.hits.map { hit in
            Symbol(name: hit.name, weight: hit.weight, description: displayedDescription(hit.description, symbol: hit.name, rules: rules),
                   matched: hit.detail)
        }
        self.init(file: file, configuration: source.path, scoringEnabled: source.scoringEnabled, path: path.rawValue,
                  score: report.score, thresholds: thresholds, action: report.action.rawValue, isSpam: report.isSpam,
                  symbols: symbols)
    }
}

/// One symbol of the configuration, as `--list-rules --json` prints it.
struct ListedRule: Encodable {
    var symbol: String
    /// The weight the symbol adds when it fires, also for a rule that is off.
    var weight: Double
    var description: String
    var enabled: Bool
    /// The setting that turns the rule off, or nil (left out of the JSON) when it is enabled.
    var reason: String?
}

/// Returns every symbol of the configuration, built-in rules first, with its effective weight,
/// and the ones that never fire marked off with the setting that turns them off.
func listedRules(_ source: ScoringSource) -> [ListedRule] {
    // A scorer without the disabled list gives the weight of every symbol, with the
    // precedence the daemon uses: scoring.weights over a rule's own weight.
    var everything = source.configuration.scoring
    everything.disabled = []
    let scorer = ContentScorer(settings: everything)

    let settings = source.configuration.scoring
    return scorer.effectiveRules().map { rule in
        let reason = offReason(rule.name, settings: settings, campaignEnabled: source.campaignEnabled)
        return ListedRule(symbol: rule.name, weight: rule.weight,
                          description: displayedDescription(rule.description, symbol: rule.name, rules: settings.rules),
                          enabled: reason == nil, reason: reason)
    }
}

/// Returns the setting that keeps `symbol` from ever firing, or nil when it can fire.
private func offReason(_ symbol: String, settings: ScoringSettings, campaignEnabled: Bool) -> String? {
    if settings.disabled.contains(symbol) {
        return "listed in scoring.disabled"
    }
    if symbol == BuiltInSymbol.fromNotHosted && settings.hostedDomains.isEmpty && settings.hostedDomainsFromFile.isEmpty {
        return settings.hostedDomainsFile.isEmpty
            ? "scoring.hosted_domains is empty"
            : "scoring.hosted_domains is empty and scoring.hosted_domains_file names no domain"
    }
    let campaignSymbols = [BuiltInSymbol.campaignBulk, BuiltInSymbol.campaignMultiSender, BuiltInSymbol.subjectBurst]
    if !campaignEnabled && campaignSymbols.contains(symbol) {
        return "scoring.campaign.enabled is false"
    }
    return nil
}

/// Returns `description`, or for an admin's rule written without one, its target and pattern.
private func displayedDescription(_ description: String, symbol: String, rules: [CustomRule]) -> String {
    guard description.isEmpty, let rule = rules.first(where: { $0.name == symbol }) else {
        return description
    }
    let maximumPatternCharacters = 60
    let pattern = rule.pattern.count > maximumPatternCharacters
        ? String(rule.pattern.prefix(maximumPatternCharacters - 1)) + "…"
        : rule.pattern
    let target = rule.header.map { "\(rule.target.rawValue) \($0)" } ?? rule.target.rawValue
    return "custom rule on \(target), pattern \(pattern)"
}

/// Renders one message in the manner of `spamassassin -t`: a summary line, then one row per
/// symbol with its weight, name, description and the matched text.
func render(_ message: ScoredMessage) -> String {
    func format(_ value: Double?) -> String {
        value.map { ContentScorer.format($0) } ?? "off"
    }
    var text = "\(message.file)\n"
    text += "  score \(ContentScorer.format(message.score)), tag \(format(message.thresholds["tag"])), "
        + "hold \(format(message.thresholds["hold"])), reject \(format(message.thresholds["reject"])) "
        + "(\(message.path) path): \(message.action)\n"
    guard !message.symbols.isEmpty else {
        return text + "  no symbols\n\n"
    }
    var table = TextTable(header: ["pts", "symbol", "description: matched text"], rightAligned: [0], indent: "  ")
    for symbol in message.symbols {
        let description = symbol.matched.isEmpty ? symbol.description : "\(symbol.description): \(symbol.matched)"
        table.append([formatWeight(symbol.weight), symbol.name, description])
    }
    return text + table.render() + "\n"
}

/// Renders the `--list-rules` table, one row per symbol. A rule that is off shows "off" in
/// place of its weight, and the setting that turns it off after its description.
func render(_ rules: [ListedRule]) -> String {
    var table = TextTable(header: ["pts", "symbol", "description"], rightAligned: [0], indent: "  ")
    for rule in rules {
        if let reason = rule.reason {
            table.append(["off", rule.symbol, "\(rule.description) (off: \(reason); weight \(formatWeight(rule.weight)))"])
        } else {
            table.append([formatWeight(rule.weight), rule.symbol, rule.description])
        }
    }
    return table.render()
}

/// Formats a weight with one decimal, or two when it needs them (0.75).
private func formatWeight(_ weight: Double) -> String {
    (weight * 10).rounded() == weight * 10 ? String(format: "%.1f", weight) : String(format: "%.2f", weight)
}

/// Returns pretty JSON with sorted keys and a final line break.
func encodeScoreJSON<Value: Encodable>(_ value: Value) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    // Every value here is a string, number, boolean or array of them, which always encode.
    let data = (try? encoder.encode(value)) ?? Data("[]".utf8)
    return String(decoding: data, as: UTF8.self) + "\n"
}
