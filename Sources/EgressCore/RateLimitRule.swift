// The configuration model of a rate limit rule (`limits:` in the config file): which identity
// level it counts, its windows, its action on each submission path, exemptions, shadow mode
// and when it suspends a key.
//
// A rule must never resolve to reject on the local path: Postfix bounces a locally rejected
// message to its envelope sender, which a script can forge. Nor to tempfail there unless the
// rule asks for it with `local_action: tempfail`: Postfix's sendmail command has already
// exited 0 by then, the message stays in the maildrop directory, and pickup offers it again
// and again under new queue IDs, each one another trip.

/// The identity levels a rate limit rule can count, written as in identity keys.
public enum LimitLevel: String, Sendable, CaseIterable {
    /// The script that submitted a local message, as stamped by the submission wrapper.
    case script
    /// The hosting account (uid) that submitted a local message.
    case account
    /// SASL login (SMTP path).
    case login
    /// Envelope sender address.
    case sender
    /// Domain of the envelope sender.
    case domain
    /// Client IPv4 address or IPv6 /64 (SMTP path).
    case ip
    /// Local mail whose submitter could not be verified.
    case localUnverified = "local-unverified"
    /// Every message.
    case server
}

/// A per-key rate limit rule.
public struct LimitRule: Sendable, Equatable {
    /// Most windows of one kind (messages or recipients) in a rule.
    public static let maximumWindowsPerKind = 8

    /// Name used in logs, verdict reasons, suspension reasons and the state store.
    public var name: String
    public var level: LimitLevel
    /// Windows that count messages: each message counts 1.
    public var messages: [RateWindow]
    /// Windows that count recipients: each message counts its number of recipients.
    public var recipients: [RateWindow]
    /// Most recipients one message may have; nil for no cap.
    public var maximumRecipients: Int?
    /// Glob patterns of identity keys; a message any of whose keys matches is not counted.
    public var exempt: [String]
    /// Action on the SMTP path when the rule trips; nil means tempfail.
    public var action: Action?
    /// Action on the local path; nil derives it from `action` (see `action(on:)`).
    public var localAction: Action?
    /// When true the rule only reports what it would do; it never changes the action.
    public var shadow: Bool
    /// Repeated trips that suspend the key; nil for none (hard windows still suspend).
    public var suspendAfter: SuspensionThreshold?

    public init(name: String, level: LimitLevel, messages: [RateWindow] = [], recipients: [RateWindow] = [],
                maximumRecipients: Int? = nil, exempt: [String] = [], action: Action? = nil,
                localAction: Action? = nil, shadow: Bool = false, suspendAfter: SuspensionThreshold? = nil) {
        self.name = name
        self.level = level
        self.messages = messages
        self.recipients = recipients
        self.maximumRecipients = maximumRecipients
        self.exempt = exempt
        self.action = action
        self.localAction = localAction
        self.shadow = shadow
        self.suspendAfter = suspendAfter
    }

    /// Actions a rule may take when it trips; accept would be the same as `shadow: true`.
    public static let actions: [Action] = [.tempfail, .hold, .reject, .tag]

    /// Actions allowed for `local_action`: no reject, because the bounce would go to a sender
    /// a script can forge.
    public static let localActions: [Action] = [.hold, .tag, .tempfail]

    /// The action taken when the rule trips on `path`. SMTP: `action`, default tempfail.
    /// Local: `localAction` when set; else hold for reject, tempfail or no action, and the
    /// rule's action for hold and tag.
    public func action(on path: SubmissionPath) -> Action {
        switch path {
        case .smtp:
            return action ?? .tempfail
        case .local:
            if let localAction {
                return localAction == .reject ? .hold : localAction
            }
            switch action {
            case .tag?:
                return .tag
            case .hold?, .reject?, .tempfail?, .accept?, nil:
                return .hold
            }
        }
    }
}

extension Action {
    /// Rank used when several limits trip at once: the highest decides. Hold ranks above
    /// tempfail because it stops the message until an admin acts, while a tempfail only
    /// delays it.
    var limitSeverity: Int {
        switch self {
        case .accept: return 0
        case .tag: return 1
        case .tempfail: return 2
        case .hold: return 3
        case .reject: return 4
        }
    }
}
