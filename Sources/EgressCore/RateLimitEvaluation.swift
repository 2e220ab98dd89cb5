// The limit check of one message, run inside the limiter's lock: suspension check, every
// window of every applicable rule, the choice of the deciding trip, trip histories and new
// suspensions, and the reservation of the message's counts.
//
// The check is all or nothing across the identity chain: either every table gets the
// message's counts (the message will be delivered, unless the caller releases it) or none does.
// It must never count a message that is refused or held, because only accepted mail counts.

import Foundation

/// A rule compiled against a limiter: its table, its effective windows (after a key's
/// override) and its actions. Immutable, shared by every message.
final class CompiledLimit: Sendable {
    let ruleName: String
    let level: LimitLevel
    /// The limiter's table; nil when the rule has no windows (only `max_recipients`).
    let table: Int?
    /// Windows in the table's order: messages first, then recipients.
    let windows: [CompiledWindow]
    let maximumRecipients: Int?
    let smtpAction: Action
    let localAction: Action
    let shadow: Bool
    let suspendAfter: SuspensionThreshold?
    let exemptions: [GlobPattern]

    init(rule: LimitRule, windows: [CompiledWindow], table: Int?, maximumRecipients: Int?) {
        self.ruleName = rule.name
        self.level = rule.level
        self.table = table
        self.windows = windows
        self.maximumRecipients = maximumRecipients
        self.smtpAction = rule.action(on: .smtp)
        self.localAction = rule.action(on: .local)
        self.shadow = rule.shadow
        self.suspendAfter = rule.suspendAfter
        self.exemptions = rule.exempt.map { GlobPattern($0) }
    }

    func action(on path: SubmissionPath) -> Action {
        path == .smtp ? smtpAction : localAction
    }
}

struct CompiledWindow: Sendable {
    var window: RateWindow
    var unit: CountedUnit
    var limit: UInt64 { UInt64(window.limit) }
}

/// One rule applied to one key of a message's identity.
struct LimitCheck: Sendable {
    var limit: CompiledLimit
    var key: String
}

/// The limit step's input for one message.
struct LimitRequest: Sendable {
    var checks: [LimitCheck]
    /// The whole identity, for the suspension check.
    var identity: Identity
    var path: SubmissionPath
    var recipientCount: Int
    /// How many messages this message counts as in message windows: 1, or the scoring
    /// weight for a message that scored as spam.
    var messageWeight: UInt32 = 1
}

/// The cause of a trip: a window of the rule, or its recipient cap.
enum TripCause: Sendable, Equatable {
    case window(Int)
    case maximumRecipients
}

/// A limit exceeded by a message.
struct LimitTrip: Sendable {
    /// Index into the request's checks.
    var check: Int
    var cause: TripCause
    /// The count including this message.
    var count: UInt64

    /// The limit that tripped: "50/1h", "recipients 500/1h" or "max_recipients 50".
    func limitText(_ limit: CompiledLimit) -> String {
        switch cause {
        case .maximumRecipients:
            return "max_recipients \(limit.maximumRecipients ?? 0)"
        case .window(let index):
            var window = limit.windows[index].window
            window.isHard = false
            return limit.windows[index].unit == .messages ? "\(window)" : "recipients \(window)"
        }
    }
}

/// The limit step's result for one message.
struct LimitOutcome: Sendable {
    /// An existing suspension of one of the message's keys; the message is held.
    var suspension: Suspension?
    /// The trip that decides the action, and that action; nil when no enforcing rule tripped.
    var decisive: LimitTrip?
    var decisiveAction: Action?
    /// Every trip, in check order, shadow rules included.
    var trips: [LimitTrip] = []
    /// Keys suspended by this message; the message is held.
    var newSuspensions: [Suspension] = []
    var reservation: LimitReservation?
}

/// The counts a message took, until the daemon commits or releases them.
public struct LimitReservation: Sendable, Hashable {
    let id: UInt64
}

struct PendingReservation: Sendable {
    struct Entry: Sendable {
        var table: Int
        var key: String
        /// The slot's aligned time when the counts were added.
        var time: Int64
    }

    var entries: [Entry]
    /// The message's recipients; a reservation is always one message.
    var recipients: UInt32
    /// What the message counted as in message windows (`LimitRequest.messageWeight`).
    var messages: UInt32 = 1
    var createdAt: Int64
}

extension LimiterState {
    /// Runs the limit step for one message at `now` on the limiter's timeline.
    mutating func evaluate(_ request: LimitRequest, now: Int64, wall: Date) -> LimitOutcome {
        var outcome = LimitOutcome()
        if !suspensions.isEmpty {
            for key in request.identity.keys {
                if let suspension = suspensions[key.description] {
                    outcome.suspension = suspension
                    return outcome
                }
            }
        }

        let recipients = UInt64(max(0, request.recipientCount))
        // Slot and aligned time of each check, for the reservation below.
        var slots = [(slot: Int, time: Int64)](repeating: (-1, now), count: request.checks.count)
        for (index, check) in request.checks.enumerated() {
            let limit = check.limit
            if let cap = limit.maximumRecipients, recipients > UInt64(cap) {
                outcome.trips.append(LimitTrip(check: index, cause: .maximumRecipients, count: recipients))
            }
            guard let table = limit.table else { continue }
            // One mutating call per table, so the table is changed in place, not copied.
            slots[index] = tables[table].check(check.key, windows: limit.windows, recipients: recipients,
                                               messages: UInt64(max(1, request.messageWeight)), now: now,
                                               checkIndex: index, trips: &outcome.trips)
        }

        chooseDecisiveTrip(&outcome, request: request)
        recordTrips(&outcome, request: request, now: now, wall: wall)
        guard outcome.newSuspensions.isEmpty else { return outcome }

        let delivers = outcome.decisiveAction == nil || outcome.decisiveAction == .tag
        if delivers {
            outcome.reservation = reserve(request, slots: slots, recipients: recipients, now: now)
        }
        return outcome
    }

    /// The most severe action among the trips of enforcing rules decides; among equals, the
    /// first trip in rule order.
    private func chooseDecisiveTrip(_ outcome: inout LimitOutcome, request: LimitRequest) {
        for trip in outcome.trips {
            let limit = request.checks[trip.check].limit
            guard !limit.shadow else { continue }
            let action = limit.action(on: request.path)
            if let current = outcome.decisiveAction, current.limitSeverity >= action.limitSeverity {
                continue
            }
            outcome.decisive = trip
            outcome.decisiveAction = action
        }
    }

    /// Adds one trip per tripped enforcing check to its history and suspends keys that
    /// tripped a hard window or reached their rule's threshold.
    private mutating func recordTrips(_ outcome: inout LimitOutcome, request: LimitRequest, now: Int64, wall: Date) {
        var previousCheck = -1
        for trip in outcome.trips where trip.check != previousCheck {
            previousCheck = trip.check
            let check = request.checks[trip.check]
            let limit = check.limit
            guard !limit.shadow, suspensions[check.key] == nil else { continue }

            let tripsOfCheck = outcome.trips.filter { $0.check == trip.check }
            var reason: String?
            if let hard = tripsOfCheck.first(where: { isHard($0, limit) }) {
                reason = "limit \(limit.ruleName): hard limit \(hard.limitText(limit)) exceeded (\(hard.count))"
            } else if let threshold = limit.suspendAfter {
                let historyKey = tripHistoryKey(rule: limit.ruleName, key: check.key)
                let count = trips[historyKey, default: TripHistory()].record(at: now, threshold: threshold)
                if count >= threshold.trips {
                    reason = "limit \(limit.ruleName): \(threshold), the last \(trip.limitText(limit)) exceeded (\(trip.count))"
                    trips[historyKey] = nil
                }
            }
            if let reason {
                let suspension = Suspension(key: check.key, reason: reason, since: wall, rule: limit.ruleName)
                suspensions[check.key] = suspension
                unsavedSuspensions.insert(check.key)
                outcome.newSuspensions.append(suspension)
            }
        }
    }

    private func isHard(_ trip: LimitTrip, _ limit: CompiledLimit) -> Bool {
        guard case .window(let index) = trip.cause else { return false }
        return limit.windows[index].window.isHard
    }

    /// Adds the message's counts to every check's table and records the reservation.
    private mutating func reserve(_ request: LimitRequest, slots: [(slot: Int, time: Int64)], recipients: UInt64,
                                  now: Int64) -> LimitReservation? {
        let recipientAmount = UInt32(clamping: recipients)
        let messageAmount = max(1, request.messageWeight)
        var entries: [PendingReservation.Entry] = []
        for (index, check) in request.checks.enumerated() {
            guard let table = check.limit.table else { continue }
            let (slot, time) = slots[index]
            tables[table].reserve(slot, at: time, recipients: recipientAmount, messages: messageAmount)
            entries.append(PendingReservation.Entry(table: table, key: check.key, time: time))
        }
        guard !entries.isEmpty else { return nil }

        let id = nextReservationID
        nextReservationID += 1
        reservations[id] = PendingReservation(entries: entries, recipients: recipientAmount, messages: messageAmount, createdAt: now)
        if reservations.count > LimiterState.maximumPendingReservations {
            forgetOldestReservations()
        }
        return LimitReservation(id: id)
    }

    /// Takes back a reservation's counts; a no-op for one already committed or released.
    mutating func release(_ reservation: LimitReservation) {
        guard let pending = reservations.removeValue(forKey: reservation.id) else { return }
        for entry in pending.entries {
            tables[entry.table].release(entry.key, addedAt: entry.time, recipients: pending.recipients, messages: pending.messages)
        }
    }

    /// Treats the older half of the pending reservations as committed, so a caller that never
    /// commits cannot grow the table without bound. Their counts stay.
    mutating func forgetOldestReservations() {
        let keep = UInt64(LimiterState.maximumPendingReservations / 2)
        let threshold = nextReservationID > keep ? nextReservationID - keep : 0
        reservations = reservations.filter { $0.key >= threshold }
    }
}

extension CounterTable {
    /// Moves the key's counters to `now` and appends a trip for every window the message would
    /// exceed, the message counting as `messages` in message windows. Returns the key's slot
    /// and the time its buckets are aligned to.
    mutating func check(_ key: String, windows: [CompiledWindow], recipients: UInt64, messages: UInt64 = 1, now: Int64,
                        checkIndex: Int, trips: inout [LimitTrip]) -> (slot: Int, time: Int64) {
        let slot = slot(creating: key, now: now)
        let time = advance(slot, to: now)
        for (position, window) in windows.enumerated() {
            let amount: UInt64 = window.unit == .messages ? messages : recipients
            let count = sum(slot, window: position) &+ amount
            if count > window.limit {
                trips.append(LimitTrip(check: checkIndex, cause: .window(position), count: count))
            }
        }
        return (slot, time)
    }

    /// Adds one message with `recipients` recipients, counted as `messages` messages, to the
    /// slot at its aligned `time`.
    mutating func reserve(_ slot: Int, at time: Int64, recipients: UInt32, messages: UInt32 = 1) {
        for position in shapes.indices {
            add(shapes[position].unit == .messages ? messages : recipients, to: slot, window: position, at: time)
        }
        markDirty(slot)
    }

    /// Takes back one message reserved at `time`, where its buckets are still in the window.
    mutating func release(_ key: String, addedAt time: Int64, recipients: UInt32, messages: UInt32 = 1) {
        guard let slot = slot(for: key) else { return }
        for position in shapes.indices {
            subtract(shapes[position].unit == .messages ? messages : recipients, from: slot, window: position, addedAt: time)
        }
        markDirty(slot)
    }
}
