// The `scoring:` section of the configuration: scan limits, thresholds per submission path,
// hosted domains, campaign windows, tag headers, weight overrides and the admin's own rules.
// Its defaults live here, in the property declarations, and nowhere else.
//
// `hostedDomainsFromFile` is the one setting that never comes from YAML: loading a config
// file reads the file named by `hosted_domains_file` and stores its domains here, so the
// policy never reads a file while it decides.

/// Scores at which a message is tagged, held or rejected; nil turns that action off.
public struct ScoreThresholds: Sendable, Equatable {
    public var tag: Double?
    public var hold: Double?
    public var reject: Double?

    public init(tag: Double?, hold: Double?, reject: Double?) {
        self.tag = tag
        self.hold = hold
        self.reject = reject
    }

    /// Returns the action for a score: the most severe threshold it reaches, else accept.
    public func action(for score: Double) -> Action {
        if let reject, score >= reject { return .reject }
        if let hold, score >= hold { return .hold }
        if let tag, score >= tag { return .tag }
        return .accept
    }
}

/// How the same content sent again and again is recognised as a campaign.
public struct CampaignSettings: Sendable, Equatable {
    public var enabled = true
    /// Length of the window in which copies of one content are counted.
    public var windowSeconds = 3600
    /// Recipients of one content within the window from which it scores as a campaign.
    public var recipients = 50
    /// Distinct sender identities of one content within the window from which it scores.
    public var senders = 3
    /// Messages with one subject from one sender within `subjectWindowSeconds` from which
    /// they score as a burst.
    public var subjectBurst = 20
    public var subjectWindowSeconds = 600

    public init() {}
}

/// Names of the headers the tag action adds, SpamAssassin's by default.
public struct SpamHeaderNames: Sendable, Equatable {
    public var flag = "X-Spam-Flag"
    public var score = "X-Spam-Score"
    public var status = "X-Spam-Status"

    public init() {}
}

/// What part of a message an admin's rule matches.
public enum CustomRuleTarget: String, Sendable, CaseIterable {
    /// One header field's decoded value, or every field as "Name: value".
    case header
    /// The visible text: text parts and the text of HTML parts.
    case body
    /// Each link target, from HTML and from plain text.
    case uri
    /// Each attachment's file name, and each entry name of an archive attachment.
    case attachmentName = "attachment_name"
}

/// An admin's rule: a PCRE2 pattern, and the symbol and weight it adds when it matches.
public struct CustomRule: Sendable, Equatable {
    public var name: String
    public var target: CustomRuleTarget
    /// For `header` rules: the field name; nil matches every field as "Name: value".
    public var header: String?
    public var pattern: String
    public var weight: Double
    public var description: String
    /// Line of the rule in the config file, for errors found after parsing; 0 when unknown.
    public var line: Int

    public init(name: String, target: CustomRuleTarget, header: String? = nil, pattern: String, weight: Double,
                description: String = "", line: Int = 0) {
        self.name = name
        self.target = target
        self.header = header
        self.pattern = pattern
        self.weight = weight
        self.description = description
        self.line = line
    }
}

/// Settings of content scoring.
public struct ScoringSettings: Sendable, Equatable {
    /// Whether messages are decoded and scored at all. Off, the identity symbols still
    /// appear in the log, with no weight.
    public var enabled = true

    /// Limits of the decoder; `scan_limit` and `max_nesting` come from the config file.
    public var scanLimits = ScanLimits()

    /// Thresholds on the SMTP path.
    public var smtpThresholds = ScoreThresholds(tag: 5, hold: 12, reject: 20)

    /// Thresholds on the local path, which has no reject: Postfix would bounce the message to
    /// its envelope sender, which a local script can forge.
    public var localThresholds = ScoreThresholds(tag: 5, hold: 10, reject: nil)

    /// Domains this server sends for; a From domain outside them (and their subdomains)
    /// scores FROM_NOT_HOSTED. Empty turns the rule off.
    public var hostedDomains: [String] = []

    /// Absolute path of a file with more hosted domains, one per line ("#" starts a
    /// comment); empty for none.
    public var hostedDomainsFile = ""

    /// The domains read from `hostedDomainsFile` when the configuration was loaded.
    public var hostedDomainsFromFile: [String] = []

    /// Envelope recipients of one message from which it scores BULK_RECIPIENTS.
    public var bulkRecipients = 20

    /// Distinct recipient domains of one message from which it scores MANY_RECIPIENT_DOMAINS.
    public var bulkRecipientDomains = 10

    public var campaign = CampaignSettings()

    /// How many messages a message at or above its path's tag threshold counts as in the
    /// sender's message rate limits, so a spamming account reaches its limits (and
    /// suspension) sooner. 1 counts spam like any message.
    public var limitWeight = 5

    public var headers = SpamHeaderNames()

    /// Text put before the Subject of tagged messages, such as "[SPAM]"; empty leaves the
    /// Subject alone.
    public var subjectPrefix = ""

    /// PCRE2 match limit and depth limit for the admin's patterns and the built-in ones.
    public var patternMatchLimit = Int(RegularExpression.defaultMatchLimit)
    public var patternDepthLimit = Int(RegularExpression.defaultDepthLimit)

    /// Weights that replace the built-in weight of a symbol.
    public var weights: [String: Double] = [:]

    /// Symbols that are never evaluated.
    public var disabled: [String] = []

    /// The admin's own rules.
    public var rules: [CustomRule] = []

    /// The built-in defaults.
    public init() {}

    /// Returns the thresholds of a submission path.
    public func thresholds(for path: SubmissionPath) -> ScoreThresholds {
        path == .smtp ? smtpThresholds : localThresholds
    }

    /// Largest `scan_limit`, in bytes; larger values would let one message hold a thread
    /// for long.
    public static let maximumScanLimitBytes = 64 * 1024 * 1024
    /// Allowed values of `max_nesting`.
    public static let nestingDepths = 1...100
    /// Allowed values of `limit_weight`.
    public static let limitWeights = 1...1000
    /// Allowed values of the pattern limits.
    public static let patternLimits = 1...100_000_000
}
