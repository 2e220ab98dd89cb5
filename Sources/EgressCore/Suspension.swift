// Suspensions: keys whose every message is held until an admin releases them, and the trip
// history that leads to one.
//
// A suspension must never be lost: the limiter writes it to the state store before it returns
// the verdict that created it, and keeps it in memory even when that write fails, so the key
// stays contained while the store is broken.

import Foundation

/// A suspended identity key.
public struct Suspension: Sendable, Equatable {
    /// The identity key, such as "account:alice".
    public var key: String
    /// Why: the rule and what tripped, or the admin's text.
    public var reason: String
    /// When it was suspended, as passed by the caller.
    public var since: Date
    /// The rule that suspended the key; nil for an admin's suspension.
    public var rule: String?
    /// The uid of the admin who suspended the key over the control socket. It is nil for a
    /// rule's suspension, and for an admin's suspension stored before the uid was recorded.
    public var adminUID: UInt32?

    public init(key: String, reason: String, since: Date, rule: String? = nil, adminUID: UInt32? = nil) {
        self.key = key
        self.reason = reason
        self.since = since
        self.rule = rule
        self.adminUID = adminUID
    }

    /// The quarantine reason of a message held because of this suspension.
    public var holdReason: String {
        "\(key) suspended: \(reason)"
    }
}

/// The recent trips of one key under one rule: at most `SuspensionThreshold.maximumTrips`
/// times on the limiter's timeline, oldest first.
struct TripHistory: Sendable {
    var times: [Int64] = []
    /// The threshold's period when the last trip was recorded.
    var periodMilliseconds: Int64 = 0

    /// Records a trip and returns how many trips lie within the threshold's period.
    mutating func record(at now: Int64, threshold: SuspensionThreshold) -> Int {
        periodMilliseconds = Int64(threshold.seconds) * 1000
        let start = now - periodMilliseconds
        times.removeAll { $0 <= start }
        times.append(now)
        if times.count > threshold.trips {
            times.removeFirst(times.count - threshold.trips)
        }
        return times.count
    }

    /// True when every trip has left the period, so the history can go.
    func isExpired(at now: Int64) -> Bool {
        guard let last = times.last else { return true }
        return last <= now - periodMilliseconds
    }
}

/// Key of a trip history: the rule name and the identity key, which contain no NUL byte.
func tripHistoryKey(rule: String, key: String) -> String {
    rule + "\u{0}" + key
}
