// The rate limiter: counters of every tracked key, pending reservations, trip histories and
// suspensions, behind one mutex, with their durable copy in the state store.
//
// One limiter lives as long as the daemon. A reload builds a new `Policy` around the same
// limiter, and counters carry over for every rule whose name and window lengths stay the same.
//
// Entry points for the daemon:
//   - `init(stateDirectory:clock:)` at start, which restores the last checkpoint;
//   - `checkpoint(now:)` every few seconds, which writes changed counters and expires idle
//     keys (a crash loses the counts since the last checkpoint);
//   - `commit(_:)` when the MTA accepted a message, `release(_:)` when it did not;
//   - `suspend(_:reason:now:)`, `release(_:now:)` and `suspensions()` for the admin.
//
// Why one lock and not shards: a check must reserve atomically across every key of the
// identity chain, which would mean taking several shard locks in order, and the locked work
// per message is well under a microsecond, far below any MTA's message rate.
//
// Times: `now` must come from a clock that does not step while the daemon runs (see
// RestartClock.swift). This type never reads a clock and never logs. A store failure is thrown
// as `StateStoreError`; the in-memory state stays valid and the next checkpoint retries.

import Foundation
import Synchronization

/// Everything the limiter's lock protects.
struct LimiterState {
    /// Pending reservations kept before the oldest half is treated as committed.
    static let maximumPendingReservations = 100_000
    /// How far a caller's time may lag behind the newest one seen before it counts as a clock
    /// step: threads that read the time before taking the lock arrive slightly out of order.
    static let backwardToleranceMilliseconds: Int64 = 2000
    /// Most counter records written in one transaction of a checkpoint.
    static let checkpointBatchSize = 20_000
    /// Shortest time between two sweeps for idle keys.
    static let sweepIntervalMilliseconds: Int64 = 60_000

    var tables: [CounterTable] = []
    var tableIndex: [String: Int] = [:]
    /// The limiter's timeline is the caller's time in milliseconds minus this offset. It
    /// continues across restarts by the downtime `RestartClock` credits.
    var offset: Int64 = 0
    var suspensions: [String: Suspension] = [:]
    /// Suspensions not yet in the store, because their write failed.
    var unsavedSuspensions: Set<String> = []
    var trips: [String: TripHistory] = [:]
    var reservations: [UInt64: PendingReservation] = [:]
    var nextReservationID: UInt64 = 1
    /// The latest timeline time seen; nil before the first check.
    var newestTime: Int64?
    /// Timeline time of the last sweep; nil before the first.
    var lastSweep: Int64?
    /// The clocks passed at open, to compute the time since boot of each checkpoint.
    var openedWall: Int64 = 0
    var openedBootID: String?
    var openedSinceBoot: Int64?

    /// Converts the caller's time to the limiter's timeline, which never runs backwards by
    /// more than `backwardToleranceMilliseconds`. A caller time further back than that means
    /// the caller's clock stepped back (a wall clock passed where a steady one belongs); the
    /// offset then moves so the timeline continues from the newest time seen, instead of
    /// freezing every recently active key until the clock catches up.
    mutating func timeline(_ date: Date) -> Int64 {
        var time = RestartClock.milliseconds(date) &- offset
        if let newest = newestTime, time < newest &- LimiterState.backwardToleranceMilliseconds {
            offset = offset &- (newest &- time)
            time = newest
        }
        newestTime = max(newestTime ?? time, time)
        return time
    }

    mutating func table(ruleName: String, shapes: [WindowShape], isWide: Bool) -> Int {
        let identifier = CounterTable.identifier(ruleName: ruleName, shapes: shapes, isWide: isWide)
        if let index = tableIndex[identifier] {
            return index
        }
        tables.append(CounterTable(ruleName: ruleName, shapes: shapes, isWide: isWide))
        tableIndex[identifier] = tables.count - 1
        return tables.count - 1
    }
}

/// Per-key rate limit state shared by every connection. Thread-safe.
public final class RateLimiter: Sendable {
    private let state: Mutex<LimiterState>
    private let store: LimitStore?
    /// The number of suspended keys, readable without the lock, so a policy without limit
    /// rules skips the limiter while no key is suspended.
    private let suspensionCount = Atomic<Int>(0)
    /// Content fingerprints counted for campaign scoring. Kept here so that the counts carry
    /// over a reload as the rate counters do, and written to the store by `checkpoint`.
    public let campaigns = CampaignTracker()

    /// Creates a limiter that keeps its state in memory only (tests, `--check-config`).
    public init() {
        state = Mutex(LimiterState())
        store = nil
    }

    /// Opens (or creates) `limits.sqlite` in `stateDirectory` and restores counters, trip
    /// histories and suspensions. `clock` decides how much the restored counters drain for
    /// the downtime. Throws `StateStoreError`.
    public convenience init(stateDirectory: String, clock: ClockReading) throws {
        try self.init(stateDirectory: stateDirectory, clock: clock, busyTimeoutMilliseconds: LimitStore.defaultBusyTimeoutMilliseconds)
    }

    init(stateDirectory: String, clock: ClockReading, busyTimeoutMilliseconds: Int) throws {
        let store = try LimitStore(directory: stateDirectory, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        let stored = try store.load()
        self.store = store
        let restored = Self.restore(stored, clock: clock)
        campaigns.restore(contents: stored.campaigns, subjects: stored.subjectCounts)
        suspensionCount.store(restored.suspensions.count, ordering: .relaxed)
        self.state = Mutex(restored)
    }

    private static func restore(_ stored: StoredState, clock: ClockReading) -> LimiterState {
        var state = LimiterState()
        let wall = RestartClock.milliseconds(clock.wall)
        state.openedWall = wall
        state.openedBootID = clock.bootID
        state.openedSinceBoot = clock.sinceBoot.map(RestartClock.milliseconds)
        if let saved = stored.clock {
            let start = saved.timeline &+ RestartClock.creditedDowntime(since: saved, now: clock)
            state.offset = wall &- start
            state.newestTime = start
        }

        for record in stored.counters {
            guard let layout = CounterTable.parse(identifier: record.table) else { continue }
            let index = state.table(ruleName: layout.ruleName, shapes: layout.shapes, isWide: layout.isWide)
            state.tables[index].restore(key: record.key, latest: record.latest, counters: record.counters)
        }
        for history in stored.trips where !history.times.isEmpty {
            state.trips[tripHistoryKey(rule: history.rule, key: history.key)] =
                TripHistory(times: history.times, periodMilliseconds: history.periodMilliseconds)
        }
        for suspension in stored.suspensions {
            state.suspensions[suspension.key] = suspension
        }
        return state
    }

    /// The path of the database; nil for a limiter in memory.
    public var storePath: String? { store?.path }

    // MARK: Policy interface

    /// Returns the table for a rule's window lengths and counter width, creating it. The same
    /// name, lengths and width give the same table, which is how counters survive a reload.
    func table(ruleName: String, shapes: [WindowShape], isWide: Bool) -> Int {
        state.withLock { $0.table(ruleName: ruleName, shapes: shapes, isWide: isWide) }
    }

    /// Runs the limit step. New suspensions are written to the store before this returns;
    /// when that write fails it throws `StateStoreError`, and the suspension stays in force in
    /// memory and is written by the next checkpoint.
    func evaluate(_ request: LimitRequest, now: Date) throws -> LimitOutcome {
        let outcome = state.withLock { state in
            state.evaluate(request, now: state.timeline(now), wall: now)
        }
        if !outcome.newSuspensions.isEmpty {
            state.withLock { suspensionCount.store($0.suspensions.count, ordering: .relaxed) }
            try save(outcome.newSuspensions)
        }
        return outcome
    }

    private func save(_ suspensions: [Suspension]) throws {
        guard let store else {
            state.withLock { state in
                suspensions.forEach { state.unsavedSuspensions.remove($0.key) }
            }
            return
        }
        for suspension in suspensions {
            try store.save(suspension)
            state.withLock { _ = $0.unsavedSuspensions.remove(suspension.key) }
        }
    }

    // MARK: Reservations

    /// Makes a reservation's counts final: call it once the MTA accepted the message.
    /// Calling it again, or after `release`, does nothing.
    public func commit(_ reservation: LimitReservation) {
        state.withLock { _ = $0.reservations.removeValue(forKey: reservation.id) }
    }

    /// Takes a reservation's counts back: call it when the message was not accepted (abort,
    /// reject, tempfail, hold, or a failure while applying the verdict). Calling it again, or
    /// after `commit`, does nothing.
    public func release(_ reservation: LimitReservation) {
        state.withLock { $0.release(reservation) }
    }

    /// True when at least one key is suspended.
    var hasSuspensions: Bool {
        suspensionCount.load(ordering: .relaxed) > 0
    }

    /// Reservations neither committed nor released yet.
    public var pendingReservationCount: Int {
        state.withLock { $0.reservations.count }
    }

    // MARK: Checkpoints

    /// Writes the counters and campaign counts changed since the last checkpoint, the trip
    /// histories and any suspension whose own write failed. Once a minute it also removes idle keys. Call it
    /// every few seconds with the same kind of time as the checks. Counters go in batches of
    /// `checkpointBatchSize` keys, one transaction each, so the lock is never held for long
    /// and a checkpoint after a burst of new keys needs little extra memory.
    /// Throws `StateStoreError`; what failed to be written is retried next time.
    public func checkpoint(now: Date) throws {
        var batch = state.withLock { state in
            let time = state.timeline(now)
            // A negative elapsed time can only come from a caller whose clock stepped back.
            let isSweepDue = state.lastSweep.map { last in
                let elapsed = time &- last
                return elapsed >= LimiterState.sweepIntervalMilliseconds || elapsed < 0
            } ?? true
            if isSweepDue {
                state.sweep(at: time)
            }
            return state.firstCheckpointBatch(at: time, wall: now)
        }
        while true {
            if let store {
                do {
                    try store.write(batch)
                } catch {
                    state.withLock { $0.restoreCheckpoint(batch) }
                    throw error
                }
            }
            let next: CheckpointData? = state.withLock { state in
                batch.unsavedSuspensions.forEach { state.unsavedSuspensions.remove($0.key) }
                return state.nextCheckpointBatch(clock: batch.clock)
            }
            guard let next else { break }
            batch = next
        }
        if let store {
            let changes = campaigns.takeChanges(now: now)
            do {
                try store.write(changes)
            } catch {
                campaigns.keepChanges(changes)
                throw error
            }
        }
    }

    /// Number of keys with counters, summed over every rule.
    public var trackedKeyCount: Int {
        state.withLock { $0.tables.reduce(0) { $0 + $1.count } }
    }

    // MARK: Inspection

    /// Returns the key's count in each window of `table` at `now`, or nil when the key has
    /// no counters there. Only the timeline moves, as for any call with a time.
    func counts(table: Int, key: String, now: Date) -> [UInt64]? {
        state.withLock { state in
            state.tables[table].counts(of: key, at: state.timeline(now))
        }
    }

    /// Returns every key of `table` with its count in each window at `now`.
    func allCounts(table: Int, now: Date) -> [(key: String, counts: [UInt64])] {
        state.withLock { state in
            state.tables[table].allCounts(at: state.timeline(now))
        }
    }

    /// Returns how many trips of `key` under the rule `rule` lie within the last
    /// `periodSeconds` at `now`; 0 when none is recorded.
    func tripCount(rule: String, key: String, periodSeconds: Int, now: Date) -> Int {
        state.withLock { state in
            let time = state.timeline(now)
            guard let history = state.trips[tripHistoryKey(rule: rule, key: key)] else { return 0 }
            let start = time &- Int64(periodSeconds) &* 1000
            return history.times.count { $0 > start }
        }
    }

    /// Returns the key's suspension, or nil when it is not suspended.
    public func suspension(of key: String) -> Suspension? {
        state.withLock { $0.suspensions[key] }
    }

    // MARK: Suspensions

    /// Suspends a key: all its mail is held until `release`. `adminUID` names the admin who
    /// asked, for `egressctl suspended`. Written to the store before it takes effect; throws
    /// `StateStoreError` and changes nothing when that fails.
    public func suspend(_ key: String, reason: String, now: Date, adminUID: UInt32? = nil) throws {
        let suspension = Suspension(key: key, reason: reason, since: now, adminUID: adminUID)
        try store?.save(suspension)
        state.withLock { state in
            state.suspensions[key] = suspension
            state.unsavedSuspensions.remove(key)
            suspensionCount.store(state.suspensions.count, ordering: .relaxed)
        }
    }

    /// Lifts a key's suspension and gives it a fresh start: its trip histories and window
    /// counts are cleared too, or a hard window still full would suspend it again at once.
    /// Returns whether the key was suspended. Throws `StateStoreError` and changes nothing
    /// when the store fails.
    @discardableResult
    public func release(_ key: String, now: Date) throws -> Bool {
        if let store {
            try store.deleteSuspension(key: key)
            try store.deleteCounters(key: key)
        }
        return state.withLock { state in
            let wasSuspended = state.suspensions.removeValue(forKey: key) != nil
            state.unsavedSuspensions.remove(key)
            suspensionCount.store(state.suspensions.count, ordering: .relaxed)
            state.trips = state.trips.filter { !$0.key.hasSuffix("\u{0}" + key) }
            for index in state.tables.indices {
                state.tables[index].remove(key)
            }
            return wasSuspended
        }
    }

    /// Returns every suspension, oldest first.
    public func suspensions() -> [Suspension] {
        state.withLock { state in
            state.suspensions.values.sorted { ($0.since, $0.key) < ($1.since, $1.key) }
        }
    }
}

extension LimiterState {
    /// Removes idle keys, expired trip histories and reservations older than any window.
    mutating func sweep(at now: Int64) {
        lastSweep = now
        for index in tables.indices {
            _ = tables[index].removeIdle(at: now)
        }
        trips = trips.filter { !$0.value.isExpired(at: now) }

        // A reservation whose buckets left every window has nothing left to release.
        let longest = tables.map(\.drainMilliseconds).max() ?? 0
        reservations = reservations.filter { now &- $0.value.createdAt <= longest }
    }

    /// The first batch of a checkpoint: removed keys, trip histories, unsaved suspensions,
    /// the clocks, and the first changed counters.
    mutating func firstCheckpointBatch(at now: Int64, wall: Date) -> CheckpointData {
        let wallMilliseconds = RestartClock.milliseconds(wall)
        let clock = CheckpointClock(timeline: now, wall: wallMilliseconds, bootID: openedBootID,
                                    sinceBoot: openedSinceBoot.map { $0 &+ (wallMilliseconds &- openedWall) })
        var data = nextCheckpointBatch(clock: clock) ?? CheckpointData(clock: clock)
        for index in tables.indices {
            let identifier = tables[index].identifier
            data.removedCounters.append(contentsOf: tables[index].takeRemoved().map { (identifier, $0) })
        }
        var stored: [StoredTrips] = []
        for (historyKey, history) in trips {
            let parts = historyKey.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { continue }
            stored.append(StoredTrips(rule: String(parts[0]), key: String(parts[1]),
                                      periodMilliseconds: history.periodMilliseconds, times: history.times))
        }
        data.trips = stored
        data.unsavedSuspensions = unsavedSuspensions.compactMap { suspensions[$0] }
        return data
    }

    /// Up to `checkpointBatchSize` changed counters; nil when none are left.
    mutating func nextCheckpointBatch(clock: CheckpointClock) -> CheckpointData? {
        var data = CheckpointData(clock: clock)
        for index in tables.indices where data.counters.count < LimiterState.checkpointBatchSize {
            data.counters.append(contentsOf: tables[index].takeDirty(limit: LimiterState.checkpointBatchSize - data.counters.count))
        }
        return data.counters.isEmpty ? nil : data
    }

    /// Lists a failed checkpoint's keys as changed again.
    mutating func restoreCheckpoint(_ data: CheckpointData) {
        var dirtyByTable: [String: [String]] = [:]
        for record in data.counters {
            dirtyByTable[record.table, default: []].append(record.key)
        }
        var removedByTable: [String: [String]] = [:]
        for record in data.removedCounters {
            removedByTable[record.table, default: []].append(record.key)
        }
        for index in tables.indices {
            let identifier = tables[index].identifier
            tables[index].restoreChanges(dirty: dirtyByTable[identifier] ?? [], removed: removedByTable[identifier] ?? [])
        }
    }
}
