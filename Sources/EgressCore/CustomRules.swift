// The admin's pattern rules (`scoring.rules`): each PCRE2 pattern, compiled once, matched
// against its target (a header, the text, the links or the attachment names). A match that
// hits the pattern limits counts as no match and adds PATTERN_LIMIT instead.

/// An admin's rule with its pattern compiled.
struct CompiledCustomRule: Sendable {
    let rule: CustomRule
    let expression: RegularExpression

    init(_ rule: CustomRule, matchLimit: UInt32, depthLimit: UInt32) throws {
        self.rule = rule
        self.expression = try RegularExpression(rule.pattern, options: [.unicodeProperties], matchLimit: matchLimit,
                                                depthLimit: depthLimit)
    }

    /// Adds the rule's symbol when its pattern matches one of its target's values.
    func evaluate(_ input: RuleInput, into hits: inout HitCollector) {
        guard hits.isEnabled(rule.name) else { return }
        for subject in subjects(input) {
            switch expression.firstMatch(in: subject) {
            case .found(let range):
                hits.add(rule.name, detail: ContentRules.substring(subject, range))
                return
            case .limitExceeded:
                hits.add(BuiltInSymbol.patternLimit, detail: rule.name)
            case .notFound:
                continue
            }
        }
    }

    private func subjects(_ input: RuleInput) -> [String] {
        switch rule.target {
        case .header:
            if let name = rule.header {
                return input.scan.headerValues(name)
            }
            return input.scan.headers.map { "\($0.name): \($0.value)" }
        case .body:
            return [input.visibleText]
        case .uri:
            return input.scan.links.map(\.target)
        case .attachmentName:
            return input.scan.attachments.flatMap { [$0.name] + $0.archiveEntries }.filter { !$0.isEmpty }
        }
    }
}
