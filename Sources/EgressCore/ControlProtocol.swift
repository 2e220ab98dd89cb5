// The messages egressctl and the daemon exchange over the control socket, and their framing.
//
// Framing: one JSON object per line, UTF-8, ended by "\n", over a unix stream socket. JSON
// escapes every control character inside strings, so a newline can only end a message, and a
// reader needs no length prefix: it reads up to the newline and stops at a size limit. A
// client sends a request line and reads one reply line, and may send the next request on the
// same connection.
//
// Every reply has the envelope {"ok": true, "result": {...}} or {"ok": false, "error": "..."}.
// The result's type depends on the command (`StatusReport` for status, and so on). Dates are
// ISO 8601 strings in UTC, so scripts can read them without knowing Swift's epoch. Field
// names are snake_case on the wire ("queue_id" for `queueID`), the same as in egressctl's
// --json output; docs/egressctl.md lists every request and reply.
//
// This file must never touch sockets or files: it only defines values and turns them into
// bytes and back, so both sides and the tests share one definition.

import Foundation

/// Constants and the line codec of the control protocol.
public enum ControlProtocol {
    /// Version of the messages below. A daemon replies to a request of another version with
    /// an error, because the fields of a reply may have changed with it.
    /// Version 2 renamed every field to snake_case.
    public static let version = 2
    /// Maximum request line the daemon reads, in bytes, newline included. The longest
    /// legitimate request is an outcome report, which egressctl sends in batches of
    /// `outcomesPerRequest` (about 100 bytes each).
    public static let maximumRequestBytes = 4 * 1024 * 1024
    /// Outcomes of held messages per held-outcome request.
    public static let outcomesPerRequest = 1000
    /// Maximum reply line egressctl reads, in bytes. By estimate (about 300 bytes a record),
    /// `show` of a key with every one of the 100,000 recordable held messages stays below it.
    public static let maximumReplyBytes = 64 * 1024 * 1024

    /// Encodes a value as one line: compact JSON with sorted keys, then "\n".
    public static func encodeLine<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        var bytes = [UInt8](try makeEncoder().encode(value))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Decodes one line, with or without its final "\n".
    public static func decodeLine<Value: Decodable>(_ type: Value.Type, from line: [UInt8]) throws -> Value {
        var bytes = line
        if bytes.last == UInt8(ascii: "\n") {
            bytes.removeLast()
        }
        return try makeDecoder().decode(type, from: Data(bytes))
    }

    /// Returns the encoder of replies and requests, which `egressctl --json` prints with too.
    /// It writes property names in snake_case: `queueID` becomes "queue_id".
    public static func makeEncoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    /// Returns the decoder of replies and requests, the inverse of `makeEncoder`.
    public static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.keyDecodingStrategy = .custom { path in
            PropertyKey(stringValue: propertyName(forWireName: path.last?.stringValue ?? ""))
        }
        return decoder
    }

    /// Words written in capitals inside property names (`queueID`, `adminUID`). Foundation's
    /// `.convertFromSnakeCase` would turn "queue_id" into "queueId", which matches no property,
    /// so the decoder maps these words itself. A new property with another such word needs it
    /// added here, or an optional field of that name decodes as nil and a required one fails.
    static let capitalizedWords: [String: String] = ["id": "ID", "uid": "UID"]

    /// Returns the Swift property name of a snake_case field name: "queue_id" → "queueID".
    static func propertyName(forWireName name: String) -> String {
        let words = name.split(separator: "_", omittingEmptySubsequences: false)
        guard words.count > 1, let first = words.first else { return name }
        var property = String(first)
        for word in words.dropFirst() {
            let lower = word.lowercased()
            property += capitalizedWords[lower] ?? (lower.prefix(1).uppercased() + lower.dropFirst())
        }
        return property
    }

    private struct PropertyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }

        init(stringValue: String) {
            self.stringValue = stringValue
        }

        init?(intValue: Int) {
            return nil
        }
    }

    /// Maximum identity key a request may name, in bytes: a script key contains a path of up
    /// to 4096 bytes (PATH_MAX on Linux) after the account name.
    public static let maximumKeyBytes = 8192
    /// Maximum suspension reason an admin may give, in bytes, because it goes into a log line.
    public static let maximumReasonBytes = 500

    /// Returns what is wrong with an identity key given by an admin, or nil when it has the
    /// form of a key: a known level, then ":VALUE" unless the level takes no value.
    public static func keyProblem(_ key: String) -> String? {
        guard !key.isEmpty else {
            return "the key is empty; give a key such as account:alice, as the log's identity= field shows it"
        }
        guard key.utf8.count <= maximumKeyBytes else {
            return "the key is \(key.utf8.count) bytes long; the maximum is \(maximumKeyBytes)"
        }
        guard !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            return "the key contains a control character"
        }
        let levels = IdentityLevel.allCases
        if levels.contains(where: { $0.hasNoValue && $0.rawValue == key }) {
            return nil
        }
        guard let colon = key.firstIndex(of: ":") else {
            return "invalid key '\(key)'; expected LEVEL:VALUE such as account:alice, or server or local-unverified"
        }
        let levelName = String(key[..<colon])
        if let level = levels.first(where: { $0.rawValue == levelName }), level.hasNoValue {
            return "the level '\(levelName)' takes no value; write the key as '\(levelName)'"
        }
        guard levels.contains(where: { $0.rawValue == levelName }) else {
            let names = levels.map(\.rawValue)
            var message = "unknown level '\(levelName)' in key '\(key)'"
            if let near = Suggestion.nearest(to: levelName, among: names) {
                message += "; did you mean '\(near)'?"
            }
            return message + " (levels: \(names.joined(separator: ", ")))"
        }
        guard key.index(after: colon) < key.endIndex else {
            return "the key '\(key)' has no value after '\(levelName):'"
        }
        return nil
    }

    /// Returns the level of a well-formed key: the text before the first ':', or the whole key.
    public static func level(ofKey key: String) -> String {
        key.firstIndex(of: ":").map { String(key[..<$0]) } ?? key
    }
}

// MARK: Requests

/// The commands of the control protocol.
public enum ControlCommand: String, Codable, Sendable, CaseIterable {
    case status
    case show
    case top
    case suspend
    case release
    /// Reports what egressctl did with held messages after a release, so the daemon drops
    /// their records and logs one line per message.
    case heldOutcome = "held-outcome"
    case reload
    /// The summary of the last 24 hours; with `send` also mailed to the summary's recipients.
    case summary
    /// Every suspended key with its reason and held messages.
    case suspended
}

/// The order of `top`.
public enum TopOrder: String, Codable, Sendable, CaseIterable {
    /// Messages in the key's busiest window.
    case messages
    /// Recipients in the key's busiest window.
    case recipients
    /// The highest score among the key's recent decisions.
    case score
    /// Recorded messages in Postfix's hold queue.
    case held
}

/// One request. Fields a command does not use stay nil.
public struct ControlRequest: Codable, Sendable, Equatable {
    public var version: Int
    public var command: ControlCommand
    /// The identity key of show, suspend, release and held-outcome.
    public var key: String?
    /// The admin's reason for suspend.
    public var reason: String?
    /// top: the order, the identity level to list (nil for every level) and the row count.
    public var order: TopOrder?
    public var level: String?
    public var count: Int?
    /// held-outcome: what was done with each held message.
    public var outcomes: [HeldMessageOutcome]?
    /// summary: whether the daemon also mails it.
    public var send: Bool?

    public init(command: ControlCommand, key: String? = nil, reason: String? = nil, order: TopOrder? = nil,
                level: String? = nil, count: Int? = nil, outcomes: [HeldMessageOutcome]? = nil, send: Bool? = nil) {
        self.version = ControlProtocol.version
        self.command = command
        self.key = key
        self.reason = reason
        self.order = order
        self.level = level
        self.count = count
        self.outcomes = outcomes
        self.send = send
    }
}

/// The envelope of every reply: `result` when `ok`, `error` when not.
public struct ControlReply<Result: Codable & Sendable>: Codable, Sendable {
    public var ok: Bool
    public var error: String?
    public var result: Result?

    public init(result: Result) {
        ok = true
        error = nil
        self.result = result
    }

    public init(error: String) {
        ok = false
        self.error = error
        result = nil
    }
}

/// The result of a reply whose result carries nothing, used to read `ok` and `error` alone.
public struct EmptyResult: Codable, Sendable, Equatable {
    public init() {}
}

// MARK: Shared values

/// Messages decided since the daemon started, by action.
public struct ActionCounts: Codable, Sendable, Equatable {
    public var accept = 0
    public var tag = 0
    public var hold = 0
    public var reject = 0
    public var tempfail = 0
    /// Messages whose decision failed, so they got the configured fail action.
    public var failed = 0

    public init() {}

    /// Adds one message decided with `action`.
    public mutating func add(_ action: Action) {
        switch action {
        case .accept: accept &+= 1
        case .tag: tag &+= 1
        case .hold: hold &+= 1
        case .reject: reject &+= 1
        case .tempfail: tempfail &+= 1
        }
    }

    public var total: Int { accept &+ tag &+ hold &+ reject &+ tempfail &+ failed }
}

/// A suspension as the control protocol reports it.
public struct SuspensionReport: Codable, Sendable, Equatable {
    public var key: String
    public var reason: String
    public var since: Date
    /// The limit rule that suspended the key; nil for an admin's suspension.
    public var rule: String?
    /// The uid of the admin who suspended the key. It is nil for a rule's suspension, and for
    /// an admin's suspension stored by a release that did not record the uid.
    public var adminUID: UInt32?

    public init(_ suspension: Suspension) {
        key = suspension.key
        reason = suspension.reason
        since = suspension.since
        rule = suspension.rule
        adminUID = suspension.adminUID
    }

    /// "rule logins", "admin uid 0", or "admin" when the uid was not recorded.
    public var origin: String {
        if let rule {
            return "rule \(rule)"
        }
        return adminUID.map { "admin uid \($0)" } ?? "admin"
    }
}

/// One decided message, as `show` lists it.
public struct DecisionRecord: Codable, Sendable, Equatable {
    public var time: Date
    /// Postfix's queue ID; nil when the MTA sent none.
    public var queueID: String?
    /// The action's name: accept, tag, hold, reject or tempfail.
    public var action: String
    public var reason: String
    /// smtp or local.
    public var path: String
    /// The envelope sender; empty for the null sender.
    public var sender: String
    public var recipients: Int
    public var score: Double
    /// The identity keys joined by "<", as in the log line.
    public var identity: String

    public init(time: Date, queueID: String?, action: String, reason: String, path: String, sender: String,
                recipients: Int, score: Double, identity: String) {
        self.time = time
        self.queueID = queueID
        self.action = action
        self.reason = reason
        self.path = path
        self.sender = sender
        self.recipients = recipients
        self.score = score
        self.identity = identity
    }
}

/// A message the daemon held, recorded so a release can find it in Postfix's hold queue.
public struct HeldMessage: Codable, Sendable, Equatable {
    public var queueID: String
    public var heldAt: Date
    public var sender: String
    public var recipients: Int
    /// The quarantine reason given to Postfix.
    public var reason: String
    /// The identity keys joined by "<".
    public var identity: String

    public init(queueID: String, heldAt: Date, sender: String, recipients: Int, reason: String, identity: String) {
        self.queueID = queueID
        self.heldAt = heldAt
        self.sender = sender
        self.recipients = recipients
        self.reason = reason
        self.identity = identity
    }

    /// The identity keys, most specific first.
    public var keys: [String] {
        identity.split(separator: "<").map(String.init)
    }
}

/// One window of a limit with the key's count in it now.
public struct WindowUsage: Codable, Sendable, Equatable {
    /// messages or recipients.
    public var unit: String
    /// The window as the configuration writes it: "30/1m", "1000/1d hard".
    public var window: String
    public var seconds: Int
    public var limit: Int
    public var hard: Bool
    /// The units counted in the window now; the next message trips the window when this
    /// count plus its own amount exceeds `limit`.
    public var count: Int

    public init(unit: String, window: String, seconds: Int, limit: Int, hard: Bool, count: Int) {
        self.unit = unit
        self.window = window
        self.seconds = seconds
        self.limit = limit
        self.hard = hard
        self.count = count
    }
}

/// A key's progress towards suspension under a rule with `suspend_after`.
public struct TripProgress: Codable, Sendable, Equatable {
    /// Trips of the key under the rule within the last `seconds`.
    public var trips: Int
    /// The trips within `seconds` that suspend the key.
    public var threshold: Int
    public var seconds: Int
    /// `seconds` as the configuration writes durations: "1h".
    public var period: String

    public init(trips: Int, threshold: SuspensionThreshold) {
        self.trips = trips
        self.threshold = threshold.trips
        self.seconds = threshold.seconds
        self.period = ConfigurationValues.formatDuration(threshold.seconds)
    }
}

/// One limit rule as it applies to one key.
public struct LimitUsage: Codable, Sendable, Equatable {
    public var rule: String
    public var level: String
    public var shadow: Bool
    /// The action when the rule trips, on each path.
    public var smtpAction: String
    public var localAction: String
    /// "exempt" or "override" when the overrides table names the key; nil otherwise.
    public var overridesTable: String?
    /// The rule's exemption patterns; a message any of whose keys matches one is not counted.
    public var exempt: [String]
    public var maximumRecipients: Int?
    /// Empty when the key is exempt in the overrides table.
    public var windows: [WindowUsage]
    /// The key's recent trips against the rule's `suspend_after`; nil for a rule without one.
    public var tripProgress: TripProgress?

    public init(rule: String, level: String, shadow: Bool, smtpAction: String, localAction: String,
                overridesTable: String?, exempt: [String], maximumRecipients: Int?, windows: [WindowUsage],
                tripProgress: TripProgress? = nil) {
        self.rule = rule
        self.level = level
        self.shadow = shadow
        self.smtpAction = smtpAction
        self.localAction = localAction
        self.overridesTable = overridesTable
        self.exempt = exempt
        self.maximumRecipients = maximumRecipients
        self.windows = windows
        self.tripProgress = tripProgress
    }
}

/// The health of one SQLite file of the state directory.
public struct StoreHealth: Codable, Sendable, Equatable {
    /// "limits" (counters and suspensions) or "held" (held messages).
    public var name: String
    /// The database file; nil for a store kept in memory.
    public var path: String?
    public var healthy: Bool
    /// The last failure, while the store is unhealthy.
    public var error: String?
    public var failedAt: Date?
    /// The last successful write, when one happened since start.
    public var lastWriteAt: Date?

    public init(name: String, path: String?, healthy: Bool = true, error: String? = nil, failedAt: Date? = nil, lastWriteAt: Date? = nil) {
        self.name = name
        self.path = path
        self.healthy = healthy
        self.error = error
        self.failedAt = failedAt
        self.lastWriteAt = lastWriteAt
    }
}

// MARK: Results

/// Result of status.
public struct StatusReport: Codable, Sendable, Equatable {
    public var version: String
    public var pid: Int32
    public var startedAt: Date
    public var uptimeSeconds: Int
    /// The configuration file in force, or a note that the built-in defaults apply.
    public var configuration: String
    public var configurationLoadedAt: Date
    /// Reloads since start that put a new configuration in force.
    public var reloadsApplied: Int
    /// Reloads since start that failed and kept the running configuration. The metric
    /// egress_milter_config_reloads_total counts both kinds.
    public var reloadsRefused: Int
    /// The last reload's error, when the last reload failed and the previous configuration
    /// stayed in force.
    public var reloadError: String?
    public var listen: String
    public var controlSocket: String
    public var decided: ActionCounts
    public var trackedKeys: Int
    public var suspendedKeys: Int
    public var heldMessages: Int
    public var stores: [StoreHealth]
    /// Notices and summaries sent, failed and dropped since start; nil when the daemon
    /// runs without the notifier.
    public var notifications: NotificationHealth?

    public init(version: String, pid: Int32, startedAt: Date, uptimeSeconds: Int, configuration: String,
                configurationLoadedAt: Date, reloadsApplied: Int, reloadsRefused: Int, reloadError: String?,
                listen: String, controlSocket: String,
                decided: ActionCounts, trackedKeys: Int, suspendedKeys: Int, heldMessages: Int, stores: [StoreHealth]) {
        self.version = version
        self.pid = pid
        self.startedAt = startedAt
        self.uptimeSeconds = uptimeSeconds
        self.configuration = configuration
        self.configurationLoadedAt = configurationLoadedAt
        self.reloadsApplied = reloadsApplied
        self.reloadsRefused = reloadsRefused
        self.reloadError = reloadError
        self.listen = listen
        self.controlSocket = controlSocket
        self.decided = decided
        self.trackedKeys = trackedKeys
        self.suspendedKeys = suspendedKeys
        self.heldMessages = heldMessages
        self.stores = stores
    }

    /// True when something needs the admin: a store that fails, or a configuration file that
    /// did not load.
    public var hasFinding: Bool {
        reloadError != nil || stores.contains { !$0.healthy }
    }
}

/// Result of show.
public struct KeyReport: Codable, Sendable, Equatable {
    public var key: String
    public var suspension: SuspensionReport?
    public var limits: [LimitUsage]
    /// The key's recent decisions, newest first; at most `DecisionJournal.decisionsPerKey`.
    public var recentDecisions: [DecisionRecord]
    /// Recorded held messages whose identity contains the key, oldest first.
    public var heldMessages: [HeldMessage]

    public init(key: String, suspension: SuspensionReport?, limits: [LimitUsage], recentDecisions: [DecisionRecord],
                heldMessages: [HeldMessage]) {
        self.key = key
        self.suspension = suspension
        self.limits = limits
        self.recentDecisions = recentDecisions
        self.heldMessages = heldMessages
    }
}

/// Result of suspend.
public struct SuspendReport: Codable, Sendable, Equatable {
    public var key: String
    public var suspension: SuspensionReport
    /// True when the key was suspended already; the earlier suspension and its reason stay.
    public var alreadySuspended: Bool

    public init(key: String, suspension: SuspensionReport, alreadySuspended: Bool) {
        self.key = key
        self.suspension = suspension
        self.alreadySuspended = alreadySuspended
    }
}

/// Result of release: the lifted suspension and the key's recorded held messages, which
/// egressctl delivers or deletes when asked to.
public struct ReleaseReport: Codable, Sendable, Equatable {
    public var key: String
    /// The suspension that was lifted; nil when the key was not suspended.
    public var liftedSuspension: SuspensionReport?
    public var heldMessages: [HeldMessage]

    public init(key: String, liftedSuspension: SuspensionReport?, heldMessages: [HeldMessage]) {
        self.key = key
        self.liftedSuspension = liftedSuspension
        self.heldMessages = heldMessages
    }
}

/// What egressctl did with one recorded held message.
public enum HeldMessageAction: String, Codable, Sendable, CaseIterable {
    /// Released from the hold queue and scheduled for delivery.
    case delivered
    /// Deleted from the hold queue.
    case deleted
    /// No longer in Postfix's queue: delivered or deleted by someone else.
    case missing
    /// In the queue but not on hold any more (released by someone else); left alone.
    case notHeld = "not-held"
    /// The queue ID now names a message of another sender, because Postfix reuses IDs; left alone.
    case otherMessage = "other-message"
    /// postsuper or postqueue failed; the message is still held and stays recorded.
    case failed
}

/// One line of an outcome report.
public struct HeldMessageOutcome: Codable, Sendable, Equatable {
    public var queueID: String
    public var action: HeldMessageAction
    /// What postsuper said, or why nothing was done.
    public var detail: String?

    public init(queueID: String, action: HeldMessageAction, detail: String? = nil) {
        self.queueID = queueID
        self.action = action
        self.detail = detail
    }

    /// Whether the daemon forgets the message: every action but a failure ends its stay in
    /// the hold queue or shows it has ended.
    public var endsRecord: Bool { action != .failed }
}

/// Result of held-outcome.
public struct HeldOutcomeReport: Codable, Sendable, Equatable {
    /// Recorded held messages the daemon forgot.
    public var forgotten: Int

    public init(forgotten: Int) {
        self.forgotten = forgotten
    }
}

/// Result of reload.
public struct ReloadReport: Codable, Sendable, Equatable {
    public var succeeded: Bool
    /// The file read, or the note that the built-in defaults apply.
    public var configuration: String
    /// Why the new file was refused; the previous configuration stays in force.
    public var error: String?
    /// Changed settings that take effect only after a restart.
    public var restartRequired: [String]
    public var limits: Int
    public var overrides: Int

    public init(succeeded: Bool, configuration: String, error: String? = nil, restartRequired: [String] = [],
                limits: Int = 0, overrides: Int = 0) {
        self.succeeded = succeeded
        self.configuration = configuration
        self.error = error
        self.restartRequired = restartRequired
        self.limits = limits
        self.overrides = overrides
    }
}

/// One sender in top.
public struct TopRow: Codable, Sendable, Equatable {
    public var key: String
    public var limits: [LimitUsage]
    public var heldMessages: Int
    /// The highest score among the key's recent decisions; 0 when none is recorded.
    public var highestScore: Double
    public var suspended: Bool

    public init(key: String, limits: [LimitUsage], heldMessages: Int, highestScore: Double, suspended: Bool) {
        self.key = key
        self.limits = limits
        self.heldMessages = heldMessages
        self.highestScore = highestScore
        self.suspended = suspended
    }

    /// The largest count among the windows of `unit` (messages or recipients).
    public func busiestCount(unit: String) -> Int {
        limits.flatMap(\.windows).filter { $0.unit == unit }.map(\.count).max() ?? 0
    }
}

/// One suspended key, as `suspended` lists it.
public struct SuspendedKey: Codable, Sendable, Equatable {
    public var suspension: SuspensionReport
    /// Recorded held messages whose identity contains the key.
    public var heldMessages: Int

    public init(suspension: SuspensionReport, heldMessages: Int) {
        self.suspension = suspension
        self.heldMessages = heldMessages
    }
}

/// Result of suspended: every suspended key, oldest suspension first.
public struct SuspendedReport: Codable, Sendable, Equatable {
    public var keys: [SuspendedKey]

    public init(keys: [SuspendedKey]) {
        self.keys = keys
    }
}

/// Result of top.
public struct TopReport: Codable, Sendable, Equatable {
    public var order: TopOrder
    public var level: String?
    public var rows: [TopRow]

    public init(order: TopOrder, level: String?, rows: [TopRow]) {
        self.order = order
        self.level = level
        self.rows = rows
    }
}

/// Result of summary.
public struct SummaryReport: Codable, Sendable, Equatable {
    /// The summary's plain text, as the mail carries it. egressctl leaves it out of its
    /// --json output, which has `summary` instead.
    public var text: String?
    public var subject: String
    /// True when sendmail accepted the mail.
    public var sent: Bool
    /// The addresses the mail went to; empty when it was not sent.
    public var recipients: [String]
    /// The reason the mail was not sent, when sending was requested.
    public var error: String?
    /// The summary as data; nil when the notifier gave no reply in time.
    public var summary: DailySummary?

    public init(text: String?, subject: String, sent: Bool, recipients: [String], error: String?,
                summary: DailySummary? = nil) {
        self.text = text
        self.subject = subject
        self.sent = sent
        self.recipients = recipients
        self.error = error
        self.summary = summary
    }
}
