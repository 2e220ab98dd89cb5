// Decodes the `scoring:` section of the config file into `ScoringSettings`, writes it back
// for `--check-config`, and reads the hosted domains file it names.
//
// As everywhere in the config, an unknown key, a wrong type or an invalid value is a
// `ConfigurationError` at that node. Each admin rule's pattern is compiled here, so a bad
// pattern stops the load with the rule's name, the line and PCRE2's own message instead
// of a rule that silently never fires.

extension ConfigurationKeys {
    static let scoring = ["enabled", "scan_limit", "max_nesting", "thresholds", "local_thresholds", "hosted_domains",
                          "hosted_domains_file", "bulk_recipients", "bulk_recipient_domains", "campaign", "limit_weight",
                          "headers", "subject_prefix", "pattern_match_limit", "pattern_depth_limit", "weights", "disabled", "rules"]
    static let thresholds = ["tag", "hold", "reject"]
    static let campaign = ["enabled", "window", "recipients", "senders", "subject_burst", "subject_window"]
    static let spamHeaders = ["flag", "score", "status"]
    static let customRule = ["name", "target", "header", "pattern", "weight", "description"]
}

extension ConfigurationDecoder {
    /// Decodes the `scoring:` section; keys it leaves out keep their defaults.
    func decodeScoring(_ node: YAMLNode) throws -> ScoringSettings {
        let section = try fields(of: node, at: "scoring", allowed: ConfigurationKeys.scoring)
        var settings = ScoringSettings()

        if let enabled = section["enabled"] {
            settings.enabled = try plainBoolean(enabled, at: "scoring.enabled")
        }
        if let limit = section["scan_limit"] {
            let text = try string(limit, at: "scoring.scan_limit")
            settings.scanLimits.scanLimitBytes = try value(of: limit, at: "scoring.scan_limit") { _ in
                try ScoringValues.parseSize(text, maximum: ScoringSettings.maximumScanLimitBytes)
            }
        }
        if let nesting = section["max_nesting"] {
            settings.scanLimits.maximumNestingDepth = try integer(nesting, at: "scoring.max_nesting", in: ScoringSettings.nestingDepths)
        }
        if let thresholds = section["thresholds"] {
            settings.smtpThresholds = try decodeThresholds(thresholds, at: "scoring.thresholds", defaults: settings.smtpThresholds,
                                                           allowsReject: true)
        }
        if let thresholds = section["local_thresholds"] {
            settings.localThresholds = try decodeThresholds(thresholds, at: "scoring.local_thresholds",
                                                            defaults: settings.localThresholds, allowsReject: false)
        }
        if let domains = section["hosted_domains"] {
            settings.hostedDomains = try scoringDomainList(domains, at: "scoring.hosted_domains")
        }
        if let file = section["hosted_domains_file"] {
            let path = try string(file, at: "scoring.hosted_domains_file")
            settings.hostedDomainsFile = path.isEmpty ? "" : try absolutePath(file, at: "scoring.hosted_domains_file")
        }
        if let count = section["bulk_recipients"] {
            settings.bulkRecipients = try integer(count, at: "scoring.bulk_recipients", in: 2...1_000_000)
        }
        if let count = section["bulk_recipient_domains"] {
            settings.bulkRecipientDomains = try integer(count, at: "scoring.bulk_recipient_domains", in: 2...1_000_000)
        }
        if let campaign = section["campaign"] {
            settings.campaign = try decodeCampaign(campaign)
        }
        if let weight = section["limit_weight"] {
            settings.limitWeight = try integer(weight, at: "scoring.limit_weight", in: ScoringSettings.limitWeights)
        }
        if let headers = section["headers"] {
            settings.headers = try decodeSpamHeaders(headers)
        }
        if let prefix = section["subject_prefix"] {
            let text = try string(prefix, at: "scoring.subject_prefix")
            try value(of: prefix, at: "scoring.subject_prefix") { _ in try ConfigurationValues.checkReason(text) }
            settings.subjectPrefix = text
        }
        if let limit = section["pattern_match_limit"] {
            settings.patternMatchLimit = try integer(limit, at: "scoring.pattern_match_limit", in: ScoringSettings.patternLimits)
        }
        if let limit = section["pattern_depth_limit"] {
            settings.patternDepthLimit = try integer(limit, at: "scoring.pattern_depth_limit", in: ScoringSettings.patternLimits)
        }
        if let rules = section["rules"] {
            settings.rules = try decodeCustomRules(rules, settings: settings)
        }
        let knownSymbols = BuiltInRules.all.map(\.name) + settings.rules.map(\.name)
        if let weights = section["weights"] {
            settings.weights = try decodeWeights(weights, known: knownSymbols)
        }
        if let disabled = section["disabled"] {
            settings.disabled = try decodeSymbolList(disabled, at: "scoring.disabled", known: knownSymbols)
        }
        return settings
    }

    private func decodeThresholds(_ node: YAMLNode, at path: String, defaults: ScoreThresholds,
                                  allowsReject: Bool) throws -> ScoreThresholds {
        let section = try fields(of: node, at: path, allowed: ConfigurationKeys.thresholds)
        var result = defaults
        if let tag = section["tag"] {
            result.tag = try threshold(tag, at: "\(path).tag")
        }
        if let hold = section["hold"] {
            result.hold = try threshold(hold, at: "\(path).hold")
        }
        if let reject = section["reject"] {
            guard allowsReject else {
                throw error(at: reject, key: "\(path).reject",
                            "reject is not allowed on the local path, because the bounce would go to a sender a script can forge; use hold")
            }
            result.reject = try threshold(reject, at: "\(path).reject")
        }
        let ordered = [("tag", result.tag), ("hold", result.hold), ("reject", result.reject)].compactMap { name, value in
            value.map { (name, $0) }
        }
        for (lower, higher) in zip(ordered, ordered.dropFirst()) where lower.1 > higher.1 {
            throw error(at: node, key: path, "the \(lower.0) threshold (\(lower.1)) is above the \(higher.0) threshold (\(higher.1))")
        }
        return result
    }

    /// A score, or `off` for an action that no score reaches.
    private func threshold(_ node: YAMLNode, at path: String) throws -> Double? {
        if case .scalar(let text, isPlain: true) = node.content, text == "off" {
            return nil
        }
        return try number(node, at: path)
    }

    private func decodeCampaign(_ node: YAMLNode) throws -> CampaignSettings {
        let section = try fields(of: node, at: "scoring.campaign", allowed: ConfigurationKeys.campaign)
        var campaign = CampaignSettings()
        if let enabled = section["enabled"] {
            campaign.enabled = try plainBoolean(enabled, at: "scoring.campaign.enabled")
        }
        if let window = section["window"] {
            campaign.windowSeconds = try positiveDuration(window, at: "scoring.campaign.window")
        }
        if let count = section["recipients"] {
            campaign.recipients = try integer(count, at: "scoring.campaign.recipients", in: 2...100_000_000)
        }
        if let count = section["senders"] {
            campaign.senders = try integer(count, at: "scoring.campaign.senders", in: 2...CampaignTracker.maximumSendersPerEntry)
        }
        if let count = section["subject_burst"] {
            campaign.subjectBurst = try integer(count, at: "scoring.campaign.subject_burst", in: 2...100_000_000)
        }
        if let window = section["subject_window"] {
            campaign.subjectWindowSeconds = try positiveDuration(window, at: "scoring.campaign.subject_window")
        }
        return campaign
    }

    private func decodeSpamHeaders(_ node: YAMLNode) throws -> SpamHeaderNames {
        let section = try fields(of: node, at: "scoring.headers", allowed: ConfigurationKeys.spamHeaders)
        var names = SpamHeaderNames()
        for key in ConfigurationKeys.spamHeaders {
            guard let field = section[key] else { continue }
            let path = "scoring.headers.\(key)"
            let name = try string(field, at: path)
            if !name.isEmpty {
                try value(of: field, at: path) { _ in try ConfigurationValues.checkHeaderName(name) }
            }
            switch key {
            case "flag": names.flag = name
            case "score": names.score = name
            default: names.status = name
            }
        }
        return names
    }

    private func decodeCustomRules(_ node: YAMLNode, settings: ScoringSettings) throws -> [CustomRule] {
        if node.isNull {
            return []
        }
        guard case .sequence(let items) = node.content else {
            throw error(at: node, key: "scoring.rules", "expected a sequence of rules ('- name: ...'), found \(node.kindDescription)")
        }
        var rules: [CustomRule] = []
        for (index, item) in items.enumerated() {
            let path = "scoring.rules[\(index)]"
            let rule = try decodeCustomRule(item, at: path, settings: settings)
            if BuiltInRules.byName[rule.name] != nil || rules.contains(where: { $0.name == rule.name }) {
                throw error(at: item, key: "\(path).name", "the symbol \(rule.name) exists already; give each rule its own name")
            }
            rules.append(rule)
        }
        return rules
    }

    private func decodeCustomRule(_ node: YAMLNode, at path: String, settings: ScoringSettings) throws -> CustomRule {
        guard case .mapping = node.content else {
            throw error(at: node, key: path, "expected a rule with the keys name, target, pattern and weight, found \(node.kindDescription)")
        }
        let rule = try fields(of: node, at: path, allowed: ConfigurationKeys.customRule)
        for key in ["name", "target", "pattern", "weight"] where rule[key] == nil {
            throw error(at: node, key: "\(path).\(key)", "missing key; every scoring rule needs name, target, pattern and weight")
        }
        let nameNode = rule["name"]!
        let name = try string(nameNode, at: "\(path).name")
        try value(of: nameNode, at: "\(path).name") { _ in try ScoringValues.checkSymbolName(name) }
        let target = try choice(rule["target"]!, at: "\(path).target", among: CustomRuleTarget.allCases)

        var header: String?
        if let headerNode = rule["header"] {
            guard target == .header else {
                throw error(at: headerNode, key: "\(path).header", "only rules with target: header name a header")
            }
            let text = try string(headerNode, at: "\(path).header")
            try value(of: headerNode, at: "\(path).header") { _ in try ConfigurationValues.checkHeaderName(text) }
            header = text
        }

        let patternNode = rule["pattern"]!
        let pattern = try string(patternNode, at: "\(path).pattern")
        do {
            _ = try RegularExpression(pattern, options: [.unicodeProperties],
                                      matchLimit: UInt32(clamping: settings.patternMatchLimit),
                                      depthLimit: UInt32(clamping: settings.patternDepthLimit))
        } catch let problem as RegularExpression.CompileError {
            throw error(at: patternNode, key: "\(path).pattern", "invalid PCRE2 pattern in rule \(name): \(problem)")
        }

        let weight = try number(rule["weight"]!, at: "\(path).weight")
        var description = ""
        if let descriptionNode = rule["description"] {
            description = try string(descriptionNode, at: "\(path).description")
            try value(of: descriptionNode, at: "\(path).description") { _ in try ConfigurationValues.checkReason(description) }
        }
        return CustomRule(name: name, target: target, header: header, pattern: pattern, weight: weight,
                          description: description, line: node.line)
    }

    private func decodeWeights(_ node: YAMLNode, known: [String]) throws -> [String: Double] {
        if node.isNull {
            return [:]
        }
        guard case .mapping(let pairs) = node.content else {
            throw error(at: node, key: "scoring.weights", "expected a mapping of symbols to weights such as {FROM_FREEMAIL: 0.5}, found \(node.kindDescription)")
        }
        var weights: [String: Double] = [:]
        for (keyNode, valueNode) in pairs {
            let name = try string(keyNode, at: "scoring.weights")
            let path = "scoring.weights.\(name)"
            try value(of: keyNode, at: path) { _ in try ScoringValues.checkKnownSymbol(name, known: known) }
            guard weights[name] == nil else {
                throw error(at: keyNode, key: path, "duplicate symbol")
            }
            weights[name] = try number(valueNode, at: path)
        }
        return weights
    }

    private func decodeSymbolList(_ node: YAMLNode, at path: String, known: [String]) throws -> [String] {
        if node.isNull {
            return []
        }
        guard case .sequence(let items) = node.content else {
            throw error(at: node, key: path, "expected a sequence of symbols such as [FROM_FREEMAIL], found \(node.kindDescription)")
        }
        return try items.enumerated().map { index, item in
            let name = try string(item, at: "\(path)[\(index)]")
            try value(of: item, at: "\(path)[\(index)]") { _ in try ScoringValues.checkKnownSymbol(name, known: known) }
            return name
        }
    }

    // MARK: Typed values

    /// Returns a plain YAML number (integer or decimal) that is finite.
    func number(_ node: YAMLNode, at path: String) throws -> Double {
        guard case .scalar(let text, isPlain: true) = node.content, let number = Double(text), number.isFinite,
              text.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) ?? false else {
            throw error(at: node, key: path, "expected a number such as 5 or 2.5, found \(node.kindDescription)")
        }
        return number
    }

    private func integer(_ node: YAMLNode, at path: String, in range: ClosedRange<Int>) throws -> Int {
        let number = try integer(node, at: path)
        guard range.contains(number) else {
            throw error(at: node, key: path, "must be from \(range.lowerBound) to \(range.upperBound), not \(number)")
        }
        return number
    }

    private func positiveDuration(_ node: YAMLNode, at path: String) throws -> Int {
        let text = try string(node, at: path)
        let seconds = try value(of: node, at: path) { _ in try ConfigurationValues.parseDuration(text) }
        guard seconds > 0 else {
            throw error(at: node, key: path, "must be longer than 0 seconds")
        }
        return seconds
    }


    private func scoringDomainList(_ node: YAMLNode, at path: String) throws -> [String] {
        if node.isNull {
            return []
        }
        guard case .sequence(let items) = node.content else {
            throw error(at: node, key: path, "expected a sequence of domains such as [shop.example], found \(node.kindDescription)")
        }
        return try items.enumerated().map { index, item in
            let domain = try nonEmptyString(item, at: "\(path)[\(index)]")
            try value(of: item, at: "\(path)[\(index)]") { _ in try ScoringValues.checkDomain(domain) }
            return domain.lowercased()
        }
    }
}

enum ScoringValues {
    /// Parses a size in bytes: a number, optionally with k, KiB, M or MiB (powers of 1024).
    static func parseSize(_ text: String, maximum: Int) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1024 * 1024), ("k", 1024), ("K", 1024), ("M", 1024 * 1024), ("B", 1)]
        var digits = trimmed
        var factor = 1
        for (suffix, size) in units where trimmed.hasSuffix(suffix) {
            digits = String(trimmed.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            factor = size
            break
        }
        guard let number = Int(digits), number > 0, !digits.hasPrefix("+") else {
            throw ValueError(message: "invalid size '\(text)'; write bytes, or a number with KiB or MiB, such as 1MiB")
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: factor)
        guard !overflow, bytes <= maximum else {
            throw ValueError(message: "\(text) is more than the maximum of \(formatSize(maximum))")
        }
        guard bytes >= 1024 else {
            throw ValueError(message: "\(text) is less than the minimum of 1KiB")
        }
        return bytes
    }

    static func formatSize(_ bytes: Int) -> String {
        if bytes % (1024 * 1024) == 0 { return "\(bytes / (1024 * 1024))MiB" }
        if bytes % 1024 == 0 { return "\(bytes / 1024)KiB" }
        return "\(bytes)"
    }

    /// Checks a rule name: capital letters, digits and "_", starting with a letter, as the
    /// built-in symbols are, so it is one token in the log and in X-Spam-Status.
    static func checkSymbolName(_ name: String) throws {
        let isValid = (1...64).contains(name.utf8.count) && name.utf8.first.map { $0 >= 0x41 && $0 <= 0x5A } == true
            && name.utf8.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
        guard isValid else {
            throw ValueError(message: "invalid rule name '\(name)'; use capital letters, digits and '_', such as SHOP_CASINO (at most 64)")
        }
    }

    static func checkKnownSymbol(_ name: String, known: [String]) throws {
        guard known.contains(name) else {
            var message = "unknown symbol '\(name)'"
            if let near = Suggestion.nearest(to: name, among: known) {
                message += "; did you mean '\(near)'?"
            }
            throw ValueError(message: message + " (see egressctl score --list-rules)")
        }
    }

    static func checkDomain(_ domain: String) throws {
        guard !domain.contains("@"), !domain.contains("/"), !domain.contains(where: { $0.isWhitespace }), domain.contains(".") else {
            throw ValueError(message: "invalid domain '\(domain)'; write the domain alone, such as shop.example")
        }
    }
}

extension Configuration {
    /// Largest hosted domains file read, in bytes.
    public static let maximumHostedDomainsFileBytes = 16 * 1024 * 1024

    /// Reads the hosted domains file named by `scoring.hosted_domains_file` into
    /// `scoring.hostedDomainsFromFile`. Throws `ConfigurationError` naming that file and line.
    mutating func loadHostedDomainsFile() throws {
        let path = scoring.hostedDomainsFile
        guard !path.isEmpty else { return }
        let bytes = try Configuration.readFile(path, kind: "hosted domains file", maximumBytes: Self.maximumHostedDomainsFileBytes)
        var domains: [String] = []
        for (index, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var text = Substring(line)
            if let hash = text.firstIndex(of: "#") {
                text = text[..<hash]
            }
            let domain = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !domain.isEmpty else { continue }
            do {
                try ScoringValues.checkDomain(domain)
            } catch let problem as ValueError {
                throw ConfigurationError(file: path, line: index + 1, column: 1, key: "", message: problem.message)
            }
            domains.append(domain.lowercased())
        }
        scoring.hostedDomainsFromFile = domains
    }

    /// The `scoring:` section in the config file's layout, every key included.
    func scoringSummary() -> [String] {
        let settings = scoring
        func format(_ value: Double?) -> String {
            value.map { String($0) } ?? "off"
        }
        var lines = ["scoring:"]
        lines.append("  enabled: \(settings.enabled)")
        lines.append("  scan_limit: \(ScoringValues.formatSize(settings.scanLimits.scanLimitBytes))")
        lines.append("  max_nesting: \(settings.scanLimits.maximumNestingDepth)")
        let smtp = settings.smtpThresholds
        lines.append("  thresholds: {tag: \(format(smtp.tag)), hold: \(format(smtp.hold)), reject: \(format(smtp.reject))}")
        let local = settings.localThresholds
        lines.append("  local_thresholds: {tag: \(format(local.tag)), hold: \(format(local.hold))}")
        lines.append("  hosted_domains: \(YAMLText.flowSequence(settings.hostedDomains))")
        lines.append("  hosted_domains_file: \(YAMLText.scalar(settings.hostedDomainsFile))")
        lines.append("  bulk_recipients: \(settings.bulkRecipients)")
        lines.append("  bulk_recipient_domains: \(settings.bulkRecipientDomains)")
        let campaign = settings.campaign
        lines.append("  campaign:")
        lines.append("    enabled: \(campaign.enabled)")
        lines.append("    window: \(ConfigurationValues.formatDuration(campaign.windowSeconds))")
        lines.append("    recipients: \(campaign.recipients)")
        lines.append("    senders: \(campaign.senders)")
        lines.append("    subject_burst: \(campaign.subjectBurst)")
        lines.append("    subject_window: \(ConfigurationValues.formatDuration(campaign.subjectWindowSeconds))")
        lines.append("  limit_weight: \(settings.limitWeight)")
        lines.append("  headers:")
        lines.append("    flag: \(YAMLText.scalar(settings.headers.flag))")
        lines.append("    score: \(YAMLText.scalar(settings.headers.score))")
        lines.append("    status: \(YAMLText.scalar(settings.headers.status))")
        lines.append("  subject_prefix: \(YAMLText.scalar(settings.subjectPrefix))")
        lines.append("  pattern_match_limit: \(settings.patternMatchLimit)")
        lines.append("  pattern_depth_limit: \(settings.patternDepthLimit)")
        if settings.weights.isEmpty {
            lines.append("  weights: {}")
        } else {
            lines.append("  weights:")
            for name in settings.weights.keys.sorted() {
                lines.append("    \(name): \(settings.weights[name]!)")
            }
        }
        lines.append("  disabled: \(YAMLText.flowSequence(settings.disabled))")
        if settings.rules.isEmpty {
            lines.append("  rules: []")
        } else {
            lines.append("  rules:")
            for rule in settings.rules {
                lines.append("    - name: \(rule.name)")
                lines.append("      target: \(rule.target.rawValue)")
                if let header = rule.header {
                    lines.append("      header: \(YAMLText.scalar(header))")
                }
                lines.append("      pattern: \(YAMLText.scalar(rule.pattern))")
                lines.append("      weight: \(rule.weight)")
                lines.append("      description: \(YAMLText.scalar(rule.description))")
            }
        }
        return lines
    }
}
