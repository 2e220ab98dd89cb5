// The settings of egress-milter and their built-in defaults.
//
// Every default lives in the property declarations of `Configuration` below and nowhere else:
// `Configuration.defaults`, the YAML decoder (which starts from the defaults and overrides what
// the file sets) and `summary()` all read them from here. Config/egress-milter.yaml documents
// the same values, and a test keeps the two in agreement.
//
// This file must never read files, log or look at the clock: loading is in
// ConfigurationLoading.swift, and the caller decides what to do with an error.

/// The way a message entered the MTA.
public enum SubmissionPath: String, Sendable, CaseIterable {
    /// Received over SMTP (Postfix smtpd, Sendmail's daemon).
    case smtp
    /// Submitted on this host with the `sendmail` command (Postfix pickup and cleanup).
    case local
}

/// The action taken on a message.
public enum Action: String, Sendable, CaseIterable {
    /// Deliver unchanged (apart from the status header).
    case accept
    /// Deliver with `X-Spam-Flag: YES` added.
    case tag
    /// Quarantine: Postfix's hold queue, Sendmail's quarantine.
    case hold
    /// Refuse with the configured 5xx reply.
    case reject
    /// Refuse for now with the configured 4xx reply, so the client retries later.
    case tempfail
}

/// Minimum severity of the daemon's log messages, in syslog's order.
public enum LogLevelSetting: String, Sendable, CaseIterable {
    case debug, info, notice, warning, error
}

/// An SMTP reply that the MTA sends instead of accepting a message.
public struct ReplyText: Sendable, Equatable {
    /// Basic reply code: 400...499 for a tempfail reply, 500...599 for a reject reply.
    public var code: Int
    /// RFC 3463 enhanced status code such as "4.7.1"; its class digit matches the code's first digit.
    public var enhancedStatus: String
    /// Human-readable text; "\n" separates the lines of a multi-line reply.
    public var text: String

    public init(code: Int, enhancedStatus: String, text: String) {
        self.code = code
        self.enhancedStatus = enhancedStatus
        self.text = text
    }
}

/// A per-sender action: the first rule whose pattern matches a key of the sender's identity decides.
public struct SenderRule: Sendable, Equatable {
    /// Glob pattern (`*` any run of characters, `?` one character, case-insensitive) matched
    /// against identity keys such as "login:alice", "sender:bob@shop.example",
    /// "domain:shop.example", "ip:192.0.2.1", "ip:2001:db8:1:2::/64" and "server".
    public var match: String
    public var action: Action
    /// Free text for the log and the quarantine reason; never sent to the client or recipients.
    public var reason: String?
    /// Whether the content score may act on the matching senders' mail. With false, each
    /// message is still scored and logged, but only the rule and the limits decide its action.
    public var scoring = true

    public init(match: String, action: Action, reason: String? = nil, scoring: Bool = true) {
        self.match = match
        self.action = action
        self.reason = reason
        self.scoring = scoring
    }
}

/// The complete settings of the daemon. `Configuration()` and `Configuration.defaults` hold the
/// built-in defaults; `parse` and `load` start from them and override what a YAML file sets.
public struct Configuration: Sendable, Equatable {
    /// Socket the milter listens on, in libmilter syntax: `unix:/absolute/path`,
    /// `inet:PORT@HOST` or `inet6:PORT@HOST`. The default lies inside Postfix's chroot spool
    /// directory, where main.cf names it `unix:/egress-milter/milter.sock`.
    public var listen = "unix:/var/spool/postfix/egress-milter/milter.sock"

    /// Permission bits of the unix socket, so that only the MTA's group can connect.
    public var socketMode: UInt32 = 0o660

    /// Group that owns the unix socket; empty keeps the group of the daemon's user.
    public var socketGroup = "postfix"

    /// Account the daemon switches to after opening the socket as root.
    public var user = "egress-milter"

    /// Directory for persistent state (counters, suspensions).
    public var stateDirectory = "/var/lib/egress-milter"

    /// Seconds libmilter waits for the MTA on an open connection before giving up (smfi_settimeout).
    public var timeoutSeconds = 300

    /// Action when the milter itself fails on a message: tempfail, accept or reject only.
    public var failAction: Action = .tempfail

    public var logLevel: LogLevelSetting = .notice

    /// Values of the MTA's `{daemon_name}` macro that mark a message as locally submitted.
    /// Postfix sends the same name on both paths unless the cleanup service sets
    /// `-o milter_macro_daemon_name=egress-local`.
    public var localDaemonNames = ["egress-local"]

    /// How the sender of a message is identified (the `identity:` section).
    public var identity = IdentitySettings()

    /// Name of the header that records the action on every delivered message; empty disables it.
    public var statusHeader = "X-Egress-Milter"

    /// Reply for the tempfail action. The text names no sender, because the client may share
    /// the server with other customers.
    public var tempfailReply = ReplyText(
        code: 451, enhancedStatus: "4.7.1", text: "Too much mail from this sender, try again later")

    /// Reply for the reject action.
    public var rejectReply = ReplyText(
        code: 550, enhancedStatus: "5.7.1", text: "Message rejected by outbound policy")

    /// Per-sender actions, tried in order; no rule means accept.
    public var senders: [SenderRule] = []

    /// Per-key rate limit rules; every rule whose level appears in a message's identity is
    /// checked, and the most severe trip decides.
    public var limits: [LimitRule] = []

    /// Absolute path of the per-key limits table (`LimitOverrides`); empty for none.
    public var limitsOverrides = ""

    /// The control socket that egressctl uses (the `control:` section).
    public var control = ControlSettings()

    /// Content scoring: scan limits, thresholds, rules (the `scoring:` section).
    public var scoring = ScoringSettings()

    /// Mail and command notices to the admin (the `notifications:` section); off by default.
    public var notifications = NotificationSettings()

    /// The Prometheus metrics endpoint (the `metrics:` section); off by default.
    public var metrics = MetricsSettings()

    /// The built-in defaults.
    public init() {}

    /// The built-in defaults, used where the config file is silent or missing.
    public static let defaults = Configuration()

    /// Actions allowed for `failAction`: hold and tag need a message to act on, which a failed
    /// milter does not have.
    public static let failActions: [Action] = [.tempfail, .accept, .reject]

    /// Returns the path a message took, given the MTA's `{daemon_name}` macro.
    public func submissionPath(daemonName: String?) -> SubmissionPath {
        guard let daemonName, localDaemonNames.contains(daemonName) else { return .smtp }
        return .local
    }
}
