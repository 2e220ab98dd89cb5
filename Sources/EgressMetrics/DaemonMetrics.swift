// The daemon's Prometheus metrics: counters of decisions, rule hits, limit trips, store errors,
// reloads and admin notices, and a histogram of decision latency. Sessions on libmilter's threads record
// into one instance, and the HTTP thread renders it as text on each scrape.
//
// Recording takes one uncontended mutex and a few integer additions. A rendering copies the
// state under the lock and formats it afterwards, so a slow scrape never holds up mail. It
// must never crash or block a session: counters saturate at UInt64.max, and label values
// beyond `maximumLabelValues` per metric are counted under `overflowLabelValue`.
//
// Gauges that describe the rate limiter (suspended and tracked keys) are not stored here: the
// caller reads them from the limiter at scrape time and passes them to `exposition`.

import EgressCore
import Foundation
import Synchronization

public final class DaemonMetrics: Sendable {
    /// Upper bounds in seconds of the decision latency buckets, from a fast in-memory decision
    /// (well under a millisecond) to a slow client that takes seconds to send its DATA.
    public static let latencyBucketBounds: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]

    /// Distinct label values kept per labelled metric (symbols, limit rules, stores). Symbols
    /// and rule names come from the configuration, so the cap is reached only by a
    /// configuration with that many rules, or by many reloads that rename them.
    public static let maximumLabelValues = 1000

    /// The label value that counts what arrives after `maximumLabelValues` were taken.
    public static let overflowLabelValue = "_other"

    /// Names of the state stores that `recordStoreError` counts, listed at zero from the start.
    public static let storeNames = ["limits", "held"]

    private struct State {
        /// Indexed by `messageIndex(path:action:)`.
        var messages: [UInt64]
        var decisionFailures: UInt64 = 0
        var ruleHits: [String: UInt64] = [:]
        var limitTrips: [String: UInt64] = [:]
        var storeErrors: [String: UInt64]
        /// Per bucket, not cumulative; the last element counts observations above every bound.
        var latencyBuckets: [UInt64]
        var latencySum: Double = 0
        var latencyCount: UInt64 = 0
        var scannedBytes: UInt64 = 0
        var reloads: UInt64 = 0
        var reloadFailures: UInt64 = 0
        /// Indexed by `noticeIndex(kind:channel:result:)`.
        var notices = Array(repeating: UInt64(0), count: NoticeKind.allCases.count * NoticeChannel.allCases.count
            * NoticeResult.allCases.count)
    }

    /// The `kind` label of `egress_milter_notices_total`. The three label enums fix the
    /// series to 18, so this metric needs no `maximumLabelValues` cap.
    public enum NoticeKind: String, Sendable, CaseIterable {
        case suspension
        case limitTrip = "limit_trip"
        case summary
    }

    /// The `channel` label: the notice mail, or the notification command.
    public enum NoticeChannel: String, Sendable, CaseIterable {
        case mail
        case command
    }

    /// The `result` label: sent (sendmail or the command exited 0), failed (non-zero exit,
    /// timeout, or the program could not be run), dropped (the notifier's queue was full).
    public enum NoticeResult: String, Sendable, CaseIterable {
        case sent
        case failed
        case dropped
    }

    private let state: Mutex<State>
    /// Seconds since the Unix epoch at which the daemon started.
    public let startTime: Double
    public let version: String

    public init(startTime: Date, version: String) {
        self.startTime = startTime.timeIntervalSince1970
        self.version = version
        state = Mutex(State(
            messages: Array(repeating: 0, count: SubmissionPath.allCases.count * Action.allCases.count),
            storeErrors: Dictionary(uniqueKeysWithValues: Self.storeNames.map { ($0, 0) }),
            latencyBuckets: Array(repeating: 0, count: Self.latencyBucketBounds.count + 1)))
    }

    // MARK: Recording

    /// Counts one decided message. `symbols` are the scoring symbols that fired, and
    /// `limitTrips` has one rule name per identity key that exceeded an enforcing rule.
    /// `seconds` is the time from its first milter event to the decision (nil when unknown),
    /// and `scannedBytes` are the header and body bytes the daemon received for it.
    public func recordDecision(path: SubmissionPath, action: Action, symbols: [String], limitTrips: [String],
                               seconds: Double?, scannedBytes: Int) {
        let index = Self.messageIndex(path: path, action: action)
        let bucket = seconds.map(Self.bucketIndex)
        state.withLock { state in
            Self.increment(&state.messages[index])
            for symbol in symbols {
                Self.increment(&state.ruleHits, symbol)
            }
            for rule in limitTrips {
                Self.increment(&state.limitTrips, rule)
            }
            if let bucket, let seconds {
                Self.increment(&state.latencyBuckets[bucket])
                state.latencySum += seconds
                Self.increment(&state.latencyCount)
            }
            Self.increment(&state.scannedBytes, by: UInt64(clamping: scannedBytes))
        }
    }

    /// Counts a message whose decision, or the application of it, failed; the MTA got the
    /// configured fail action.
    public func recordDecisionFailure() {
        state.withLock { Self.increment(&$0.decisionFailures) }
    }

    /// Counts a failed write or read of a state store, by the store's name in `storeNames`.
    public func recordStoreError(store: String) {
        state.withLock { Self.increment(&$0.storeErrors, store) }
    }

    /// Counts a configuration reload that was requested, and whether it failed.
    public func recordReload(succeeded: Bool) {
        state.withLock { state in
            Self.increment(&state.reloads)
            if !succeeded {
                Self.increment(&state.reloadFailures)
            }
        }
    }

    /// Counts one notice or summary on one channel with its result.
    public func recordNotice(kind: NoticeKind, channel: NoticeChannel, result: NoticeResult) {
        let index = Self.noticeIndex(kind: kind, channel: channel, result: result)
        state.withLock { Self.increment(&$0.notices[index]) }
    }

    // MARK: Rendering

    /// Returns every metric in the Prometheus text exposition format 0.0.4, with the rate
    /// limiter's gauges as the caller read them just now.
    public func exposition(suspendedKeys: Int, trackedKeys: Int) -> String {
        let snapshot = state.withLock { $0 }
        var writer = ExpositionWriter()

        writer.family("egress_milter_messages_total", type: .counter,
                      help: "Messages decided, by submission path and action.")
        for path in SubmissionPath.allCases {
            for action in Action.allCases {
                writer.sample("egress_milter_messages_total", labels: [("path", path.rawValue), ("action", action.rawValue)],
                              value: snapshot.messages[Self.messageIndex(path: path, action: action)])
            }
        }

        writer.family("egress_milter_decision_failures_total", type: .counter,
                      help: "Messages whose decision failed, so the MTA applied the configured fail action.")
        writer.sample("egress_milter_decision_failures_total", value: snapshot.decisionFailures)

        writer.family("egress_milter_rule_hits_total", type: .counter,
                      help: "Scoring symbols that fired, by symbol.")
        for (symbol, count) in snapshot.ruleHits.sorted(by: { $0.key < $1.key }) {
            writer.sample("egress_milter_rule_hits_total", labels: [("symbol", symbol)], value: count)
        }

        writer.family("egress_milter_limit_trips_total", type: .counter,
                      help: "Rate limit trips of enforcing rules, by rule name: one per message and identity key over the limit.")
        for (rule, count) in snapshot.limitTrips.sorted(by: { $0.key < $1.key }) {
            writer.sample("egress_milter_limit_trips_total", labels: [("rule", rule)], value: count)
        }

        writer.family("egress_milter_suspended_keys", type: .gauge,
                      help: "Identity keys suspended now; their mail is held until released.")
        writer.sample("egress_milter_suspended_keys", value: UInt64(clamping: suspendedKeys))

        writer.family("egress_milter_tracked_keys", type: .gauge,
                      help: "Identity keys with rate limit counters in memory now.")
        writer.sample("egress_milter_tracked_keys", value: UInt64(clamping: trackedKeys))

        writer.family("egress_milter_decision_duration_seconds", type: .histogram,
                      help: "Seconds from the first milter event of a message (MAIL FROM) to its decision.")
        var cumulative: UInt64 = 0
        for (index, bound) in Self.latencyBucketBounds.enumerated() {
            cumulative = cumulative.addingReportingOverflow(snapshot.latencyBuckets[index]).overflow
                ? .max : cumulative + snapshot.latencyBuckets[index]
            writer.sample("egress_milter_decision_duration_seconds_bucket",
                          labels: [("le", ExpositionWriter.format(bound))], value: cumulative)
        }
        writer.sample("egress_milter_decision_duration_seconds_bucket", labels: [("le", "+Inf")],
                      value: snapshot.latencyCount)
        writer.sample("egress_milter_decision_duration_seconds_sum", value: snapshot.latencySum)
        writer.sample("egress_milter_decision_duration_seconds_count", value: snapshot.latencyCount)

        writer.family("egress_milter_scanned_bytes_total", type: .counter,
                      help: "Header and body bytes received from the MTA for decided messages.")
        writer.sample("egress_milter_scanned_bytes_total", value: snapshot.scannedBytes)

        writer.family("egress_milter_store_errors_total", type: .counter,
                      help: "Failed operations on a state store, by store.")
        for (store, count) in snapshot.storeErrors.sorted(by: { $0.key < $1.key }) {
            writer.sample("egress_milter_store_errors_total", labels: [("store", store)], value: count)
        }

        writer.family("egress_milter_config_reloads_total", type: .counter,
                      help: "Configuration reloads requested by SIGUSR1 or egressctl reload, failed ones included.")
        writer.sample("egress_milter_config_reloads_total", value: snapshot.reloads)
        writer.family("egress_milter_config_reload_failures_total", type: .counter,
                      help: "Configuration reloads that failed and kept the running configuration.")
        writer.sample("egress_milter_config_reload_failures_total", value: snapshot.reloadFailures)

        writer.family("egress_milter_notices_total", type: .counter,
                      help: "Admin notices and daily summaries, by kind, channel (mail or command) and result (sent, failed or dropped).")
        for kind in NoticeKind.allCases {
            for channel in NoticeChannel.allCases {
                for result in NoticeResult.allCases {
                    writer.sample("egress_milter_notices_total",
                                  labels: [("kind", kind.rawValue), ("channel", channel.rawValue), ("result", result.rawValue)],
                                  value: snapshot.notices[Self.noticeIndex(kind: kind, channel: channel, result: result)])
                }
            }
        }

        writer.family("egress_milter_start_time_seconds", type: .gauge,
                      help: "Start time of the daemon in seconds since the Unix epoch.")
        writer.sample("egress_milter_start_time_seconds", value: startTime)
        writer.family("egress_milter_build_info", type: .gauge,
                      help: "Always 1; the version label names the running build.")
        writer.sample("egress_milter_build_info", labels: [("version", version)], value: UInt64(1))
        return writer.text
    }

    // MARK: Helpers

    private static func messageIndex(path: SubmissionPath, action: Action) -> Int {
        let pathIndex: Int
        switch path {
        case .smtp: pathIndex = 0
        case .local: pathIndex = 1
        }
        let actionIndex: Int
        switch action {
        case .accept: actionIndex = 0
        case .tag: actionIndex = 1
        case .hold: actionIndex = 2
        case .reject: actionIndex = 3
        case .tempfail: actionIndex = 4
        }
        return pathIndex * Action.allCases.count + actionIndex
    }

    private static func noticeIndex(kind: NoticeKind, channel: NoticeChannel, result: NoticeResult) -> Int {
        let kindIndex = NoticeKind.allCases.firstIndex(of: kind) ?? 0
        let channelIndex = NoticeChannel.allCases.firstIndex(of: channel) ?? 0
        let resultIndex = NoticeResult.allCases.firstIndex(of: result) ?? 0
        return (kindIndex * NoticeChannel.allCases.count + channelIndex) * NoticeResult.allCases.count + resultIndex
    }

    /// Returns the index of the first bucket whose bound is at least `seconds`, or the
    /// +Inf bucket after the last bound.
    private static func bucketIndex(_ seconds: Double) -> Int {
        latencyBucketBounds.firstIndex(where: { seconds <= $0 }) ?? latencyBucketBounds.count
    }

    private static func increment(_ counter: inout UInt64, by amount: UInt64 = 1) {
        let (sum, overflow) = counter.addingReportingOverflow(amount)
        counter = overflow ? .max : sum
    }

    /// Adds one under `label`, or under `overflowLabelValue` once the metric has
    /// `maximumLabelValues` distinct values.
    private static func increment(_ counters: inout [String: UInt64], _ label: String) {
        if counters[label] == nil && counters.count >= maximumLabelValues {
            increment(&counters[overflowLabelValue, default: 0])
            return
        }
        increment(&counters[label, default: 0])
    }
}
