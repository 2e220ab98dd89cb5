// The sender details that notices and the daily summary report, collected in memory as
// messages are decided. Per identity key it keeps the last few subjects, the recipient
// domains, and hourly counts of the last day. A message is counted (messages, recipients,
// held, refused) once, under its summary key (`summaryKey(of:)`), so the summary's rows add
// up to the traffic and no message shows under four levels. A limit trip is counted under
// the key that tripped, per rule.
//
// It is bounded, because every key of every message passes through it. It keeps at most
// `subjectsPerKey` subjects of at most `maximumSubjectBytes`, `domainsPerKey` domains,
// `hoursKept` hourly buckets and `maximumKeys` keys. Beyond that, the keys idle longest are
// dropped. Nothing is written to disk, so a restart starts with empty counts (the daily
// summary says so). Thread-safe: one mutex, held for a dictionary update per key. It never
// logs and never reads the clock.

import Foundation
import Synchronization

/// A key's recent samples, for a notice.
public struct SenderSamples: Sendable, Equatable {
    /// The last subjects, newest last, decoded and cut to `SenderActivity.maximumSubjectBytes`.
    public var subjects: [String]
    /// Distinct recipient domains in the order first seen.
    public var recipientDomains: [String]

    public init(subjects: [String] = [], recipientDomains: [String] = []) {
        self.subjects = subjects
        self.recipientDomains = recipientDomains
    }
}

/// A key's counts over a time span, for the daily summary.
public struct SenderTotals: Codable, Sendable, Equatable {
    public var key: String
    public var messages = 0
    public var recipients = 0
    public var held = 0
    /// Messages rejected or tempfailed.
    public var refused = 0
    /// Messages that tripped an enforcing limit of this key (under any key, not only the
    /// summary key).
    public var limitTrips = 0

    public init(key: String) {
        self.key = key
    }
}

public final class SenderActivity: Sendable {
    public static let subjectsPerKey = 3
    public static let domainsPerKey = 10
    public static let maximumSubjectBytes = 200
    /// Hourly buckets kept per key: the last day and the hour in progress.
    public static let hoursKept = 25
    /// Keys kept at most; each costs about a kilobyte with full samples.
    public static let maximumKeys = 10_000

    private struct Bucket {
        var hour: Int64
        var totals: SenderTotals
        /// Trips of this key per rule name.
        var tripsByRule: [String: Int] = [:]
    }

    private struct Entry {
        var subjects: [String] = []
        var domains: [String] = []
        var buckets: [Bucket] = []
        var lastUse: UInt64 = 0
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var sequence: UInt64 = 0
    }

    private let state = Mutex(State())
    private let maximumKeys: Int
    /// When the collection started, so a summary can state how far back its counts go.
    public let startedAt: Date

    public init(maximumKeys: Int = SenderActivity.maximumKeys, startedAt: Date = Date()) {
        precondition(maximumKeys > 0, "the activity needs room for one key")
        self.maximumKeys = maximumKeys
        self.startedAt = startedAt
    }

    /// Records one decided message: samples under each of `keys`, its counts under its
    /// summary key, and each of `trips` under the key that tripped.
    public func record(keys: [String], subject: String?, recipients: [String], action: Action,
                       trips: [TrippedLimit], time: Date) {
        let subjectSample = subject.map(Self.sample)
        let domains = Self.domains(of: recipients)
        let hour = Int64((time.timeIntervalSince1970 / 3600).rounded(.down))
        let countedKey = Self.summaryKey(of: keys)
        state.withLock { state in
            state.sequence &+= 1
            for key in keys {
                var entry = state.entries[key] ?? Entry()
                entry.lastUse = state.sequence
                if let subjectSample {
                    entry.subjects.append(subjectSample)
                    if entry.subjects.count > Self.subjectsPerKey {
                        entry.subjects.removeFirst()
                    }
                }
                for domain in domains where entry.domains.count < Self.domainsPerKey && !entry.domains.contains(domain) {
                    entry.domains.append(domain)
                }

                let keyTrips = trips.filter { $0.key == key }
                if key == countedKey || !keyTrips.isEmpty {
                    if entry.buckets.last?.hour != hour {
                        entry.buckets.append(Bucket(hour: hour, totals: SenderTotals(key: key)))
                        entry.buckets.removeAll { $0.hour <= hour - Int64(Self.hoursKept) }
                    }
                    let last = entry.buckets.count - 1
                    if key == countedKey {
                        entry.buckets[last].totals.add(action: action, recipients: recipients.count)
                    }
                    if !keyTrips.isEmpty {
                        entry.buckets[last].totals.limitTrips &+= 1
                    }
                    for rule in Set(keyTrips.map(\.rule)) {
                        entry.buckets[last].tripsByRule[rule, default: 0] &+= 1
                    }
                }
                state.entries[key] = entry
            }
            if state.entries.count > maximumKeys {
                Self.dropIdleKeys(&state, keeping: maximumKeys)
            }
        }
    }

    /// Returns the key a message is counted under in the summary: the most specific key the
    /// daemon verified (script, account or SASL login), else the client IP for SMTP mail or
    /// local-unverified for local mail. The envelope sender and its domain come last,
    /// because any client can write them. Nil for an empty list.
    public static func summaryKey(of keys: [String]) -> String? {
        let believed: Set<String> = [
            IdentityLevel.script.rawValue, IdentityLevel.account.rawValue, IdentityLevel.login.rawValue,
            IdentityLevel.ip.rawValue, IdentityLevel.localUnverified.rawValue,
        ]
        if let key = keys.first(where: { believed.contains(ControlProtocol.level(ofKey: $0)) }) {
            return key
        }
        return keys.first { $0 != IdentityLevel.server.rawValue } ?? keys.first
    }

    /// Returns the key's samples; empty when it sent nothing since start or was dropped.
    public func samples(for key: String) -> SenderSamples {
        state.withLock { state in
            guard let entry = state.entries[key] else { return SenderSamples() }
            return SenderSamples(subjects: entry.subjects, recipientDomains: entry.domains)
        }
    }

    /// Returns every key's totals of the hours that started at or after `since`'s hour.
    public func totals(since: Date) -> [SenderTotals] {
        let firstHour = Int64((since.timeIntervalSince1970 / 3600).rounded(.down))
        return state.withLock { state in
            state.entries.compactMap { key, entry in
                var totals = SenderTotals(key: key)
                for bucket in entry.buckets where bucket.hour >= firstHour {
                    totals.merge(bucket.totals)
                }
                return totals.messages + totals.held + totals.refused + totals.limitTrips > 0 ? totals : nil
            }
        }
    }

    /// Returns the trips of the hours that started at or after `since`'s hour, per rule
    /// name and key.
    public func tripsByRule(since: Date) -> [String: [String: Int]] {
        let firstHour = Int64((since.timeIntervalSince1970 / 3600).rounded(.down))
        return state.withLock { state in
            var trips: [String: [String: Int]] = [:]
            for (key, entry) in state.entries {
                for bucket in entry.buckets where bucket.hour >= firstHour {
                    for (rule, count) in bucket.tripsByRule {
                        trips[rule, default: [:]][key, default: 0] &+= count
                    }
                }
            }
            return trips
        }
    }

    /// Subjects are decoded (RFC 2047), stripped of control characters and cut on a
    /// character boundary, because they go into a mail and environment variables.
    static func sample(_ raw: String) -> String {
        var text = ""
        for character in raw where !character.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            if text.utf8.count + character.utf8.count > maximumSubjectBytes {
                return text + "..."
            }
            text.append(character)
        }
        return text
    }

    /// Lowercased domains of the recipients, each once, in order; addresses without '@' skipped.
    static func domains(of recipients: [String]) -> [String] {
        var seen: [String] = []
        for recipient in recipients {
            guard let at = recipient.lastIndex(of: "@") else { continue }
            let domain = recipient[recipient.index(after: at)...].lowercased()
            if !domain.isEmpty, !seen.contains(domain), seen.count < domainsPerKey {
                seen.append(sample(domain))
            }
        }
        return seen
    }

    /// Decodes a raw Subject field value.
    public static func decodeSubject(_ value: [UInt8]) -> String {
        HeaderText.decode(HeaderText.unfold(value), converter: CharsetConverter()).trimmingCharacters(in: .whitespaces)
    }

    private static func dropIdleKeys(_ state: inout State, keeping limit: Int) {
        let target = max(1, limit - limit / 10)
        let byAge = state.entries.sorted { $0.value.lastUse < $1.value.lastUse }
        for (key, _) in byAge.prefix(state.entries.count - target) {
            state.entries.removeValue(forKey: key)
        }
    }
}

extension SenderTotals {
    mutating func add(action: Action, recipients: Int) {
        switch action {
        case .accept, .tag:
            messages &+= 1
            self.recipients &+= recipients
        case .hold:
            held &+= 1
        case .reject, .tempfail:
            refused &+= 1
        }
    }

    mutating func merge(_ other: SenderTotals) {
        messages &+= other.messages
        recipients &+= other.recipients
        held &+= other.held
        refused &+= other.refused
        limitTrips &+= other.limitTrips
    }
}
