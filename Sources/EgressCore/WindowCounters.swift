// Sliding-window counters for many keys that share one set of window lengths (a layout), stored
// flat so each tracked key costs a fixed, small amount of memory.
//
// How a window counts. A window of length T is split into B = `bucketsPerWindow` sub-buckets of
// width w = T/B, aligned to multiples of w on the limiter's timeline. The counters keep B + 1
// buckets: the one containing now and the B before it, which are exactly the buckets that
// overlap the interval (now - T, now]. The window's count is their sum. So:
//   - never more than the limit within any interval (t - T, t]: every unit admitted in it lies
//     in one of the summed buckets when t is checked;
//   - conservative by at most one sub-bucket: a unit admitted at s stops counting at the start
//     of bucket floor(s/w) + B + 1, which lies in (s + T, s + T + w]. A slot frees at most T/B
//     late, never early;
//   - no bucket is left that never drains: moving to a later time zeroes every bucket that left
//     the window.
// A fixed window would allow 2N around its boundary and a plain token bucket allows its burst
// plus its refill; the sub-buckets cost B + 1 counters per window instead of one timestamp per
// admitted message.
//
// Counters are 32-bit and saturate; sums are 64-bit. Not thread-safe: the limiter keeps every
// table behind its mutex.

/// Sub-buckets per window. A slot frees at most T/10 late; 10 keeps a 3-window key near 140
/// bytes of counters.
let bucketsPerWindow = 10
/// Counters per window: the B buckets of the window and the one being filled.
let countersPerWindow = bucketsPerWindow + 1

/// The unit a window counts.
enum CountedUnit: String, Sendable {
    case messages = "m"
    case recipients = "r"
}

/// The shape of one window of a layout: what it counts and its length.
struct WindowShape: Sendable, Hashable {
    var unit: CountedUnit
    var seconds: Int

    var milliseconds: Int64 { Int64(seconds) * 1000 }
    /// Width of one sub-bucket; whole milliseconds because every window is whole seconds.
    var bucketMilliseconds: Int64 { milliseconds / Int64(bucketsPerWindow) }
}

/// Rounds toward minus infinity, so bucket numbers stay aligned for negative times too.
@inline(__always)
func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
    let quotient = value / divisor
    return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient
}

/// The counters of every key tracked under one rule and layout.
struct CounterTable {
    /// "RULE|m60,m3600,r3600": the rule name and the window shapes, lengths in seconds. Stored
    /// with each persisted record, so state is restored only into the same layout.
    let identifier: String
    let ruleName: String
    let shapes: [WindowShape]
    private let bucketWidths: [Int64]
    /// Counters per key.
    let stride: Int
    /// Time after which a key's every bucket has left every window: the longest window plus
    /// one sub-bucket.
    let drainMilliseconds: Int64

    private(set) var slotByKey: [String: Int32] = [:]
    /// Per slot: the latest time the slot was moved to; the buckets are aligned to it.
    private var latest: [Int64] = []
    private var counters: [UInt32] = []
    /// Per slot: whether it changed since the last checkpoint.
    private var isDirty: [Bool] = []
    private var freeSlots: [Int32] = []
    /// Keys changed since the last checkpoint, each listed once.
    private(set) var dirtyKeys: [String] = []
    /// Keys removed since the last checkpoint, so the store can delete them.
    private(set) var removedKeys: [String] = []

    init(ruleName: String, shapes: [WindowShape]) {
        self.ruleName = ruleName
        self.shapes = shapes
        self.identifier = CounterTable.identifier(ruleName: ruleName, shapes: shapes)
        self.bucketWidths = shapes.map(\.bucketMilliseconds)
        self.stride = shapes.count * countersPerWindow
        let longest = shapes.map(\.milliseconds).max() ?? 0
        self.drainMilliseconds = longest + longest / Int64(bucketsPerWindow)
    }

    static func identifier(ruleName: String, shapes: [WindowShape]) -> String {
        ruleName + "|" + shapes.map { "\($0.unit.rawValue)\($0.seconds)" }.joined(separator: ",")
    }

    /// Parses an identifier back into its rule name and shapes; nil when it is malformed.
    static func parse(identifier: String) -> (ruleName: String, shapes: [WindowShape])? {
        guard let bar = identifier.lastIndex(of: "|") else { return nil }
        let ruleName = String(identifier[..<bar])
        var shapes: [WindowShape] = []
        for part in identifier[identifier.index(after: bar)...].split(separator: ",") {
            guard let unit = part.first.flatMap({ CountedUnit(rawValue: String($0)) }),
                  let seconds = Int(part.dropFirst()), seconds > 0, seconds <= RateWindow.maximumSeconds else {
                return nil
            }
            shapes.append(WindowShape(unit: unit, seconds: seconds))
        }
        return shapes.isEmpty ? nil : (ruleName, shapes)
    }

    var count: Int { slotByKey.count }

    // MARK: Slots

    func slot(for key: String) -> Int? {
        slotByKey[key].map(Int.init)
    }

    /// Returns the key's slot, creating an empty one aligned to `now`.
    mutating func slot(creating key: String, now: Int64) -> Int {
        if let slot = slotByKey[key] {
            return Int(slot)
        }
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = Int(free)
            latest[slot] = now
        } else {
            slot = latest.count
            growIfFull()
            latest.append(now)
            counters.append(contentsOf: repeatElement(0, count: stride))
            isDirty.append(false)
        }
        slotByKey[key] = Int32(slot)
        return slot
    }

    /// Grows the arrays by a quarter instead of Swift's doubling, so a large table wastes at
    /// most a fifth of its memory on spare capacity.
    private mutating func growIfFull() {
        guard latest.count == latest.capacity else { return }
        let slots = latest.count + latest.count / 4 + 64
        latest.reserveCapacity(slots)
        isDirty.reserveCapacity(slots)
        counters.reserveCapacity(slots * stride)
    }

    mutating func remove(_ key: String) {
        guard let slot = slotByKey.removeValue(forKey: key) else { return }
        let base = Int(slot) * stride
        for index in base..<(base + stride) {
            counters[index] = 0
        }
        isDirty[Int(slot)] = false
        freeSlots.append(slot)
        removedKeys.append(key)
    }

    // MARK: Counting

    /// Moves the slot's buckets forward to `now` and returns the time they are aligned to,
    /// which is never earlier than before: a `now` older than the slot's latest time (two
    /// threads passing times out of order) counts as the latest time.
    mutating func advance(_ slot: Int, to now: Int64) -> Int64 {
        let previous = latest[slot]
        guard now > previous else { return previous }
        let base = slot * stride
        for window in 0..<shapes.count {
            let width = bucketWidths[window]
            let oldBucket = floorDivide(previous, width)
            let newBucket = floorDivide(now, width)
            guard newBucket > oldBucket else { continue }
            let windowBase = base + window * countersPerWindow
            if newBucket - oldBucket >= Int64(countersPerWindow) {
                for index in windowBase..<(windowBase + countersPerWindow) {
                    counters[index] = 0
                }
            } else {
                var bucket = oldBucket + 1
                while bucket <= newBucket {
                    counters[windowBase + Int(bucket % Int64(countersPerWindow))] = 0
                    bucket += 1
                }
            }
        }
        latest[slot] = now
        return now
    }

    /// The window's count after `advance`: the sum of its B + 1 buckets.
    func sum(_ slot: Int, window: Int) -> UInt64 {
        let windowBase = slot * stride + window * countersPerWindow
        var total: UInt64 = 0
        for index in windowBase..<(windowBase + countersPerWindow) {
            total &+= UInt64(counters[index])
        }
        return total
    }

    /// Adds `amount` to the bucket containing `time`, which must be the slot's aligned time.
    /// The caller marks the slot dirty.
    mutating func add(_ amount: UInt32, to slot: Int, window: Int, at time: Int64) {
        let index = position(slot, window: window, bucket: floorDivide(time, bucketWidths[window]))
        let (sum, overflow) = counters[index].addingReportingOverflow(amount)
        counters[index] = overflow ? .max : sum
    }

    /// Takes back `amount` added at `time`, unless that bucket has already left the window.
    mutating func subtract(_ amount: UInt32, from slot: Int, window: Int, addedAt time: Int64) {
        let width = bucketWidths[window]
        let bucket = floorDivide(time, width)
        let head = floorDivide(latest[slot], width)
        guard bucket <= head, head - bucket < Int64(countersPerWindow) else { return }
        let index = position(slot, window: window, bucket: bucket)
        counters[index] = counters[index] >= amount ? counters[index] - amount : 0
    }

    /// Zeroes every counter of the slot.
    mutating func clear(_ slot: Int) {
        let base = slot * stride
        for index in base..<(base + stride) {
            counters[index] = 0
        }
    }

    /// True when every bucket of the slot has left its window at `now`, or holds nothing.
    func isIdle(_ slot: Int, at now: Int64) -> Bool {
        let previous = latest[slot]
        for window in 0..<shapes.count {
            let width = bucketWidths[window]
            if floorDivide(now, width) - floorDivide(previous, width) >= Int64(countersPerWindow) {
                continue
            }
            if sum(slot, window: window) != 0 {
                return false
            }
        }
        return true
    }

    @inline(__always)
    private func position(_ slot: Int, window: Int, bucket: Int64) -> Int {
        // The bucket number modulo B + 1, made non-negative for times before the epoch.
        var ring = Int(bucket % Int64(countersPerWindow))
        if ring < 0 {
            ring += countersPerWindow
        }
        return slot * stride + window * countersPerWindow + ring
    }

    /// Lists the key for the next checkpoint. The caller passes the key because the table
    /// keeps no reverse index from slot to key, which would cost 16 bytes a key.
    mutating func markDirty(_ slot: Int, key: String) {
        if !isDirty[slot] {
            isDirty[slot] = true
            dirtyKeys.append(key)
        }
    }

    // MARK: Persistence

    /// The slot's aligned time and counters, for a checkpoint.
    func record(_ slot: Int) -> (latest: Int64, counters: ArraySlice<UInt32>) {
        let base = slot * stride
        return (latest[slot], counters[base..<(base + stride)])
    }

    /// Loads a persisted record into a fresh slot; ignores records of another size.
    mutating func restore(key: String, latest time: Int64, counters values: [UInt32]) {
        guard values.count == stride else { return }
        let slot = slot(creating: key, now: time)
        latest[slot] = time
        let base = slot * stride
        for (offset, value) in values.enumerated() {
            counters[base + offset] = value
        }
    }

    /// Takes the lists of changed and removed keys and marks every slot clean.
    mutating func takeChanges() -> (dirty: [String], removed: [String]) {
        let changes = (dirtyKeys, removedKeys)
        for key in dirtyKeys {
            if let slot = slotByKey[key] {
                isDirty[Int(slot)] = false
            }
        }
        dirtyKeys = []
        removedKeys = []
        return changes
    }

    /// Lists keys again after a checkpoint failed to write them.
    mutating func restoreChanges(dirty: [String], removed: [String]) {
        for key in dirty {
            guard let slot = slotByKey[key], !isDirty[Int(slot)] else { continue }
            isDirty[Int(slot)] = true
            dirtyKeys.append(key)
        }
        removedKeys.append(contentsOf: removed.filter { slotByKey[$0] == nil })
    }

    /// Removes every idle key and returns how many went.
    mutating func removeIdle(at now: Int64) -> Int {
        var idle: [String] = []
        for (key, slot) in slotByKey where isIdle(Int(slot), at: now) {
            idle.append(key)
        }
        for key in idle {
            remove(key)
        }
        return idle.count
    }
}
