// The admin's view of the rate limits: which rules count a key, with the key's count in each
// window now and its trips towards `suspend_after` (`egressctl show`), and the busiest keys
// (`egressctl top`).
//
// It reads the limiter's counters without moving them: looking at a key never changes what
// the next message of that key may send. Counts are those a check would see at `now` before
// adding a message, so "29 of 30/1m" means one more message fits.

import Foundation

/// A key's busiest windows, for ranking in `top`.
public struct KeyActivity: Sendable, Equatable {
    public var key: String
    /// The largest message count among the key's windows.
    public var messages: Int
    /// The largest recipient count among the key's windows.
    public var recipients: Int
}

extension Policy {
    /// Returns every limit rule at the key's level, with the key's override and its counts.
    public func limitUsage(for key: String, now: Date) -> [LimitUsage] {
        let level = ControlProtocol.level(ofKey: key)
        var usages: [LimitUsage] = []
        for (index, rule) in compiledLimits.rules.enumerated() where rule.level.rawValue == level {
            var compiled = rule
            var overridesTable: String?
            if let perRule = compiledLimits.overrides[key], let entry = perRule[index] {
                overridesTable = entry == nil ? "exempt" : "override"
                compiled = entry ?? rule
            }
            var windows: [WindowUsage] = []
            if overridesTable != "exempt" {
                let counts = compiled.table.flatMap { limiter.counts(table: $0, key: key, now: now) } ?? []
                windows = compiled.windows.enumerated().map { position, window in
                    WindowUsage(
                        unit: window.unit.name, window: window.window.description, seconds: window.window.seconds,
                        limit: window.window.limit, hard: window.window.isHard,
                        count: position < counts.count ? Int(clamping: counts[position]) : 0)
                }
            }
            // Trips count against the threshold in force now, over its period ending now, as
            // the next trip would count them.
            let progress = compiled.suspendAfter.map { threshold in
                TripProgress(trips: limiter.tripCount(rule: compiled.ruleName, key: key, periodSeconds: threshold.seconds, now: now),
                             threshold: threshold)
            }
            usages.append(LimitUsage(
                rule: compiled.ruleName, level: level, shadow: compiled.shadow,
                smtpAction: compiled.smtpAction.rawValue, localAction: compiled.localAction.rawValue,
                overridesTable: overridesTable, exempt: configuration.limits[index].exempt,
                maximumRecipients: compiled.maximumRecipients, windows: windows, tripProgress: progress))
        }
        return usages
    }

    /// Returns every key with counters, of `level` when given, with its largest counts.
    /// It reads each rule's table once under the limiter's lock, so its time grows with the
    /// tracked keys. NOTE: with a million tracked keys, decisions wait for it (not measured).
    public func keyActivity(level: String?, now: Date) -> [KeyActivity] {
        var tables: [Int: CompiledLimit] = [:]
        let overridden = compiledLimits.overrides.values.flatMap { $0.values.compactMap { $0 } }
        for limit in compiledLimits.rules + overridden {
            if let table = limit.table, level == nil || limit.level.rawValue == level {
                tables[table] = limit
            }
        }

        var activity: [String: KeyActivity] = [:]
        for (table, limit) in tables {
            for (key, counts) in limiter.allCounts(table: table, now: now) {
                var entry = activity[key] ?? KeyActivity(key: key, messages: 0, recipients: 0)
                for (position, window) in limit.windows.enumerated() where position < counts.count {
                    let count = Int(clamping: counts[position])
                    if window.unit == .messages {
                        entry.messages = max(entry.messages, count)
                    } else {
                        entry.recipients = max(entry.recipients, count)
                    }
                }
                activity[key] = entry
            }
        }
        return Array(activity.values)
    }
}

extension CountedUnit {
    /// The unit's name in the control protocol: messages or recipients.
    var name: String {
        switch self {
        case .messages: return "messages"
        case .recipients: return "recipients"
        }
    }
}
