// Decodes the `limits:` section of the config file into `LimitRule`s, as strictly as the rest
// of the file: an unknown key, a bad window, a duplicate rule name or a rule that counts
// nothing is a `ConfigurationError` at that node's line and column.
//
// It must never turn an invalid rule into a weaker one (for example by dropping a window it
// cannot parse), because the admin would believe a limit is in force that is not.

extension ConfigurationDecoder {
    func decodeLimits(_ node: YAMLNode) throws -> [LimitRule] {
        if node.isNull {
            return []
        }
        guard case .sequence(let items) = node.content else {
            throw error(at: node, key: "limits", "expected a sequence of rules ('- name: ...'), found \(node.kindDescription)")
        }
        var rules: [LimitRule] = []
        var firstByName: [String: YAMLNode] = [:]
        for (index, item) in items.enumerated() {
            let path = "limits[\(index)]"
            let rule = try decodeLimitRule(item, at: path)
            if let first = firstByName[rule.name] {
                throw error(at: item, key: "\(path).name",
                            "duplicate rule name '\(rule.name)'; the rule at line \(first.line), column \(first.column) has it already")
            }
            firstByName[rule.name] = item
            rules.append(rule)
        }
        return rules
    }

    private func decodeLimitRule(_ node: YAMLNode, at path: String) throws -> LimitRule {
        guard case .mapping = node.content else {
            throw error(at: node, key: path, "expected a rule with the keys name, level, messages, ..., found \(node.kindDescription)")
        }
        let fields = try fields(of: node, at: path, allowed: ConfigurationKeys.limitRule)
        guard let nameNode = fields["name"] else {
            throw error(at: node, key: "\(path).name", "missing key; every limit rule needs a name for the logs")
        }
        guard let levelNode = fields["level"] else {
            throw error(at: node, key: "\(path).level", "missing key; every limit rule needs a level such as account, login or ip")
        }
        let name = try nonEmptyString(nameNode, at: "\(path).name")
        try value(of: nameNode, at: "\(path).name") { _ in try LimitConfigurationValues.checkRuleName(name) }
        var rule = LimitRule(name: name, level: try choice(levelNode, at: "\(path).level", among: LimitLevel.allCases))

        if let windows = fields["messages"] {
            rule.messages = try decodeWindows(windows, at: "\(path).messages")
        }
        if let windows = fields["recipients"] {
            rule.recipients = try decodeWindows(windows, at: "\(path).recipients")
        }
        if let cap = fields["max_recipients"] {
            let number = try integer(cap, at: "\(path).max_recipients")
            guard (1...LimitConfigurationValues.maximumRecipientsCap).contains(number) else {
                throw error(at: cap, key: "\(path).max_recipients",
                            "must be from 1 to \(LimitConfigurationValues.maximumRecipientsCap), not \(number)")
            }
            rule.maximumRecipients = number
        }
        guard !rule.messages.isEmpty || !rule.recipients.isEmpty || rule.maximumRecipients != nil else {
            throw error(at: node, key: path, "the rule counts nothing; give it messages, recipients or max_recipients")
        }

        if let exempt = fields["exempt"] {
            rule.exempt = try decodeExemptions(exempt, at: "\(path).exempt")
        }
        if let action = fields["action"] {
            rule.action = try choice(action, at: "\(path).action", among: LimitRule.actions)
        }
        if let localAction = fields["local_action"] {
            let text = try string(localAction, at: "\(path).local_action")
            if text == Action.reject.rawValue {
                throw error(at: localAction, key: "\(path).local_action",
                            "reject is not allowed on the local path, because the bounce would go to a sender a script can forge; use hold")
            }
            rule.localAction = try choice(localAction, at: "\(path).local_action", among: LimitRule.localActions)
        }
        if let shadow = fields["shadow"] {
            rule.shadow = try plainBoolean(shadow, at: "\(path).shadow")
        }
        if let threshold = fields["suspend_after"] {
            let text = try string(threshold, at: "\(path).suspend_after")
            rule.suspendAfter = try value(of: threshold, at: "\(path).suspend_after") { _ in try SuspensionThreshold.parse(text) }
        }
        return rule
    }

    /// Decodes one window ("30/1m") or a sequence of them; the lengths must differ.
    private func decodeWindows(_ node: YAMLNode, at path: String) throws -> [RateWindow] {
        let items: [(node: YAMLNode, path: String)]
        switch node.content {
        case .scalar where node.isNull:
            return []
        case .scalar:
            items = [(node, path)]
        case .sequence(let nodes):
            items = nodes.enumerated().map { ($1, "\(path)[\($0)]") }
        case .mapping:
            throw error(at: node, key: path, "expected a window such as 30/1m or a sequence such as [30/1m, 200/1h], found a mapping")
        }
        guard items.count <= LimitRule.maximumWindowsPerKind else {
            throw error(at: node, key: path, "has \(items.count) windows; the maximum is \(LimitRule.maximumWindowsPerKind)")
        }

        var windows: [RateWindow] = []
        for item in items {
            let text = try string(item.node, at: item.path)
            let window = try value(of: item.node, at: item.path) { _ in try RateWindow.parse(text) }
            if let same = windows.first(where: { $0.seconds == window.seconds }) {
                throw error(at: item.node, key: item.path,
                            "window \(window) has the same length as \(same); give each length one count")
            }
            windows.append(window)
        }
        return windows
    }

    private func decodeExemptions(_ node: YAMLNode, at path: String) throws -> [String] {
        let items: [(node: YAMLNode, path: String)]
        switch node.content {
        case .scalar where node.isNull:
            return []
        case .scalar:
            items = [(node, path)]
        case .sequence(let nodes):
            items = nodes.enumerated().map { ($1, "\(path)[\($0)]") }
        case .mapping:
            throw error(at: node, key: path, "expected a sequence of key patterns such as [\"account:newsletter\"], found a mapping")
        }
        return try items.map { item in
            let pattern = try string(item.node, at: item.path)
            try value(of: item.node, at: item.path) { _ in try LimitConfigurationValues.checkKeyPattern(pattern) }
            return pattern
        }
    }

}

enum LimitConfigurationValues {
    /// Largest `max_recipients`; Postfix's own default recipient limit is 1000 per message.
    static let maximumRecipientsCap = 1_000_000

    /// Longest rule name in bytes; names go into every log line that a rule decides.
    static let maximumRuleNameBytes = 64

    /// Checks a rule name: letters, digits, '.', '_' and '-', so it is one token in a log line.
    static func checkRuleName(_ name: String) throws {
        guard name.utf8.count <= maximumRuleNameBytes else {
            throw ValueError(message: "is \(name.utf8.count) bytes long; the maximum is \(maximumRuleNameBytes)")
        }
        let allowed: (Unicode.Scalar) -> Bool = { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "._-".unicodeScalars.contains(scalar))
        }
        guard name.unicodeScalars.allSatisfy(allowed) else {
            throw ValueError(message: "invalid rule name '\(name)'; use letters, digits, '.', '_' and '-'")
        }
    }

    /// Level names that may start an identity key pattern.
    static var keyLevels: [String] {
        var levels = LimitLevel.allCases.map(\.rawValue)
        for level in IdentityLevel.allCases.map(\.rawValue) where !levels.contains(level) {
            levels.append(level)
        }
        return levels
    }

    /// Checks that an exemption pattern can match some identity key, so a typo in the level
    /// does not leave an exemption that silently never applies.
    static func checkKeyPattern(_ pattern: String) throws {
        guard !pattern.isEmpty else {
            throw ValueError(message: "must not be empty; write a pattern such as account:newsletter")
        }
        let lowered = pattern.lowercased()
        let isGlob: (Character) -> Bool = { $0 == "*" || $0 == "?" }
        let level = lowered.firstIndex(of: ":").map { String(lowered[..<$0]) } ?? lowered
        if level.contains(where: isGlob) {
            return
        }
        let levels = keyLevels
        guard levels.contains(level) else {
            var message = "unknown identity level '\(level)'"
            if let near = Suggestion.nearest(to: level, among: levels) {
                message += "; did you mean '\(near)'?"
            }
            message += " (levels: \(levels.joined(separator: ", ")))"
            throw ValueError(message: message)
        }
    }
}
