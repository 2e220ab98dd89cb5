// The daemon's memory of recent decisions, for `egressctl show` and `status`: the last few
// decisions of each identity key, and how many messages each action decided since start.
//
// It is bounded, because every sender key of every message passes through it: at most
// `decisionsPerKey` decisions per key and `maximumKeys` keys. When a new key would exceed the
// bound, the keys that saw no message for longest are dropped. One decision is stored once
// and shared by the rings of all its keys (Swift strings share their storage on copy).
// Nothing here is written to disk: a restart starts with an empty journal. Held messages,
// which a release needs after a restart, live in `HeldMessageStore`.
//
// Thread-safe: one mutex, held for a dictionary update per message. It never logs and never
// reads the clock; the caller puts the time into each record.

import Synchronization

public final class DecisionJournal: Sendable {
    /// Decisions kept per key, newest replacing oldest.
    public static let decisionsPerKey = 10
    /// Keys kept at most; about 10,000 keys of 10 shared records cost a few megabytes.
    public static let maximumKeys = 10_000

    private struct Ring {
        var records: [DecisionRecord] = []
        /// Index of the oldest record once the ring is full.
        var start = 0
        /// The journal's sequence number of the last record, for dropping idle keys.
        var lastUse: UInt64 = 0

        mutating func append(_ record: DecisionRecord, limit: Int) {
            if records.count < limit {
                records.append(record)
            } else {
                records[start] = record
                start = (start + 1) % limit
            }
        }

        /// Newest first.
        var newestFirst: [DecisionRecord] {
            let ordered = records[start...] + records[..<start]
            return ordered.reversed()
        }
    }

    private struct State {
        var rings: [String: Ring] = [:]
        var sequence: UInt64 = 0
        var counts = ActionCounts()
    }

    private let state = Mutex(State())
    private let decisionsPerKey: Int
    private let maximumKeys: Int

    public convenience init() {
        self.init(decisionsPerKey: Self.decisionsPerKey, maximumKeys: Self.maximumKeys)
    }

    /// Creates a journal with other bounds, for tests.
    public init(decisionsPerKey: Int, maximumKeys: Int) {
        precondition(decisionsPerKey > 0 && maximumKeys > 0, "a journal needs room for one decision of one key")
        self.decisionsPerKey = decisionsPerKey
        self.maximumKeys = maximumKeys
    }

    /// Records a decided message under each of `keys` and counts its action.
    public func record(_ decision: DecisionRecord, action: Action, keys: [String]) {
        state.withLock { state in
            state.counts.add(action)
            state.sequence &+= 1
            for key in keys {
                state.rings[key, default: Ring()].append(decision, limit: decisionsPerKey)
                state.rings[key]?.lastUse = state.sequence
            }
            if state.rings.count > maximumKeys {
                Self.dropIdleKeys(&state, keeping: maximumKeys)
            }
        }
    }

    /// Counts a message whose decision failed (it got the configured fail action).
    public func recordFailure() {
        state.withLock { $0.counts.failed &+= 1 }
    }

    /// Returns the key's recorded decisions, newest first.
    public func recentDecisions(for key: String) -> [DecisionRecord] {
        state.withLock { $0.rings[key]?.newestFirst ?? [] }
    }

    /// Returns the highest score among each key's recorded decisions, for the keys in `keys`.
    public func highestScores(for keys: [String]) -> [String: Double] {
        state.withLock { state in
            var scores: [String: Double] = [:]
            for key in keys {
                if let ring = state.rings[key] {
                    scores[key] = ring.records.map(\.score).max() ?? 0
                }
            }
            return scores
        }
    }

    /// Keys with at least one recorded decision, for ranking by score.
    public var keys: [String] {
        state.withLock { Array($0.rings.keys) }
    }

    /// Messages decided since the journal was made, by action.
    public var actionCounts: ActionCounts {
        state.withLock { $0.counts }
    }

    /// Drops the keys used longest ago, down to nine tenths of `limit`, so the sort runs once
    /// per many new keys instead of once per message.
    private static func dropIdleKeys(_ state: inout State, keeping limit: Int) {
        let target = max(1, limit - limit / 10)
        let byAge = state.rings.sorted { $0.value.lastUse < $1.value.lastUse }
        for (key, _) in byAge.prefix(state.rings.count - target) {
            state.rings.removeValue(forKey: key)
        }
    }
}
