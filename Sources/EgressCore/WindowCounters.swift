// Sliding-window counters for many keys that share one set of window lengths (a layout). They
// are stored flat, so each tracked key costs a fixed, small amount of memory: one record of
// 32-bit words per key (its latest time, its key, its counters) in one array, and an
// open-addressing index of record numbers. A key of up to 24 bytes sits in its record, so a lookup reads two places in
// memory (index entry, record); a longer key goes to a byte arena. There are no Swift strings or
// dictionaries per key, because their headers and spare capacity alone would cost more than
// the counters.
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
// Counters are 16-bit when every limit of the table fits (the usual case) and 32-bit
// otherwise; they saturate, and sums are 64-bit. Not thread-safe: the limiter keeps every table
// behind its mutex.

/// Sub-buckets per window. A slot frees at most T/10 late, and a key with three windows needs
/// 33 counters.
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
    /// "RULE|m60,m3600,r3600" or, with 32-bit counters, "RULE|m60,m3600,r3600|w": the rule name,
    /// the window shapes (lengths in seconds) and the counter width. Stored with each persisted
    /// record, so state is restored only into the same layout.
    let identifier: String
    let ruleName: String
    let shapes: [WindowShape]
    /// True for 32-bit counters, false for 16-bit ones.
    let isWide: Bool
    private let bucketWidths: [Int64]
    /// Counters per key.
    let counterCount: Int
    /// Words per record: the header and the counters.
    private let stride: Int
    /// Time after which a key's every bucket has left every window: the longest window plus
    /// one sub-bucket.
    let drainMilliseconds: Int64

    // Record header words.
    private static let latestLowWord = 0
    private static let latestHighWord = 1
    private static let hashWord = 2
    /// Offset of the key in `keyBytes`, for keys longer than `inlineKeyBytes`.
    private static let keyOffsetWord = 3
    /// Key length in the low 24 bits, and the flags below.
    private static let keyLengthWord = 4
    /// First of the words that hold a short key, four bytes a word, little-endian.
    private static let inlineKeyWord = 5
    private static let inlineKeyBytes = 24
    private static let headerWords = inlineKeyWord + inlineKeyBytes / 4
    private static let liveFlag: UInt32 = 1 << 31
    private static let dirtyFlag: UInt32 = 1 << 30
    private static let keyLengthMask: UInt32 = (1 << 24) - 1
    /// Longest key a table tells apart, in bytes: longer keys are cut to this length, so two
    /// keys that share their first 16 KiB share counters. A script path is at most 4 KiB
    /// (PATH_MAX on Linux), so real keys are far shorter.
    static let maximumKeyBytes = 16_384

    // An index entry holds the key's hash in its high half and the record number + 2 in its
    // low half, so probing past other keys compares hashes without reading their records.
    private static let emptyBucket: UInt64 = 0
    private static let deletedBucket: UInt64 = 1

    private var records: [UInt32] = []
    /// Open addressing with linear probing; each entry is a record number, empty or deleted.
    private var buckets: [UInt64] = Array(repeating: emptyBucket, count: 16)
    /// Live and deleted entries in `buckets`.
    private var usedBuckets = 0
    private var keyBytes: [UInt8] = []
    /// Bytes of `keyBytes` that belong to removed keys.
    private var garbageBytes = 0
    private var freeSlots: [Int32] = []
    private var dirtySlots: [Int32] = []
    /// Keys removed since the last checkpoint, so the store can delete them.
    private var removedKeys: [String] = []
    private(set) var count = 0

    init(ruleName: String, shapes: [WindowShape], isWide: Bool) {
        self.ruleName = ruleName
        self.shapes = shapes
        self.isWide = isWide
        self.identifier = CounterTable.identifier(ruleName: ruleName, shapes: shapes, isWide: isWide)
        self.bucketWidths = shapes.map(\.bucketMilliseconds)
        self.counterCount = shapes.count * countersPerWindow
        self.stride = Self.headerWords + (isWide ? counterCount : (counterCount + 1) / 2)
        let longest = shapes.map(\.milliseconds).max() ?? 0
        self.drainMilliseconds = longest + longest / Int64(bucketsPerWindow)
    }

    static func identifier(ruleName: String, shapes: [WindowShape], isWide: Bool) -> String {
        let layout = shapes.map { "\($0.unit.rawValue)\($0.seconds)" }.joined(separator: ",")
        return ruleName + "|" + layout + (isWide ? "|w" : "")
    }

    /// Parses an identifier back into its parts; nil when it is malformed.
    static func parse(identifier: String) -> (ruleName: String, shapes: [WindowShape], isWide: Bool)? {
        var text = Substring(identifier)
        let isWide = text.hasSuffix("|w")
        if isWide {
            text = text.dropLast(2)
        }
        guard let bar = text.lastIndex(of: "|") else { return nil }
        var shapes: [WindowShape] = []
        for part in text[text.index(after: bar)...].split(separator: ",") {
            guard let unit = part.first.flatMap({ CountedUnit(rawValue: String($0)) }),
                  let seconds = Int(part.dropFirst()), seconds > 0, seconds <= RateWindow.maximumSeconds else {
                return nil
            }
            shapes.append(WindowShape(unit: unit, seconds: seconds))
        }
        return shapes.isEmpty ? nil : (String(text[..<bar]), shapes, isWide)
    }

    /// Returns true when a limit exceeds 65,535. Below that, 16-bit counters suffice, because
    /// no bucket of admitted messages can count more than the window's limit.
    static func needsWideCounters(_ limits: [Int]) -> Bool {
        limits.contains { $0 > Int(UInt16.max) }
    }

    // MARK: Keys

    func slot(for key: String) -> Int? {
        Self.withKeyBytes(key) { bytes in
            find(bytes, hash: Self.hash(bytes)).slot
        }
    }

    /// Returns the key's slot, creating an empty one aligned to `now`.
    mutating func slot(creating key: String, now: Int64) -> Int {
        Self.withKeyBytes(key) { bytes in
            let hash = Self.hash(bytes)
            let found = find(bytes, hash: hash)
            if let slot = found.slot {
                return slot
            }
            return insert(bytes, hash: hash, bucket: found.insertBucket, now: now)
        }
    }

    /// Calls `body` with the key's UTF-8 bytes, cut to `maximumKeyBytes`.
    private static func withKeyBytes<Result>(_ key: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        var key = key
        return key.withUTF8 { bytes in
            body(UnsafeBufferPointer(rebasing: bytes.prefix(maximumKeyBytes)))
        }
    }

    /// The key stored in a slot.
    func key(of slot: Int) -> String {
        let base = slot * stride
        let length = Int(records[base + Self.keyLengthWord] & Self.keyLengthMask)
        guard length > Self.inlineKeyBytes else {
            return String(decoding: (0..<length).map { inlineByte(base, $0) }, as: UTF8.self)
        }
        let offset = Int(records[base + Self.keyOffsetWord])
        return String(decoding: keyBytes[offset..<(offset + length)], as: UTF8.self)
    }

    @inline(__always)
    private func inlineByte(_ base: Int, _ index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: records[base + Self.inlineKeyWord + index / 4] >> (UInt32(index % 4) * 8))
    }

    /// SipHash with the process's random seed (Swift's `Hasher`), so senders who choose their
    /// own keys cannot aim them at one bucket chain.
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }

    /// Returns the key's slot, or where to insert it (the first deleted or empty bucket).
    private func find(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt32) -> (slot: Int?, insertBucket: Int) {
        let mask = buckets.count - 1
        var index = Int(hash) & mask
        var firstDeleted: Int?
        while true {
            let entry = buckets[index]
            if entry == Self.emptyBucket {
                return (nil, firstDeleted ?? index)
            }
            if entry == Self.deletedBucket {
                if firstDeleted == nil {
                    firstDeleted = index
                }
            } else if UInt32(truncatingIfNeeded: entry >> 32) == hash {
                let slot = Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) - 2
                if keyEquals(slot, bytes) {
                    return (slot, index)
                }
            }
            index = (index + 1) & mask
        }
    }

    private func keyEquals(_ slot: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let base = slot * stride
        let length = Int(records[base + Self.keyLengthWord] & Self.keyLengthMask)
        guard length == bytes.count else { return false }
        if length <= Self.inlineKeyBytes {
            for index in 0..<length where inlineByte(base, index) != bytes[index] {
                return false
            }
            return true
        }
        let offset = Int(records[base + Self.keyOffsetWord])
        for index in 0..<length where keyBytes[offset + index] != bytes[index] {
            return false
        }
        return true
    }

    private mutating func insert(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt32, bucket: Int, now: Int64) -> Int {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = Int(free)
        } else {
            slot = records.count / stride
            if records.count + stride > records.capacity {
                // Grow by a quarter instead of Swift's doubling, so a large table wastes at most
                // a fifth of its memory on spare capacity.
                records.reserveCapacity(records.count + records.count / 4 + 64 * stride)
            }
            records.append(contentsOf: repeatElement(0, count: stride))
        }

        if buckets[bucket] == Self.emptyBucket {
            usedBuckets += 1
        }
        buckets[bucket] = Self.bucketEntry(slot: slot, hash: hash)
        count += 1

        let base = slot * stride
        for index in base..<(base + stride) {
            records[index] = 0
        }
        setLatest(slot, now)
        records[base + Self.hashWord] = hash
        records[base + Self.keyLengthWord] = UInt32(bytes.count) | Self.liveFlag
        if bytes.count <= Self.inlineKeyBytes {
            for (index, byte) in bytes.enumerated() {
                records[base + Self.inlineKeyWord + index / 4] |= UInt32(byte) << (UInt32(index % 4) * 8)
            }
        } else {
            records[base + Self.keyOffsetWord] = UInt32(keyBytes.count)
            if keyBytes.count + bytes.count > keyBytes.capacity {
                keyBytes.reserveCapacity(keyBytes.count + keyBytes.count / 4 + 4096)
            }
            keyBytes.append(contentsOf: bytes)
        }

        if usedBuckets * 4 > buckets.count * 3 {
            rebuildIndex()
        }
        return slot
    }

    /// Rebuilds the index at a size where live keys fill at most half of it, dropping deleted
    /// entries.
    private mutating func rebuildIndex() {
        var capacity = 16
        while capacity < count * 2 {
            capacity *= 2
        }
        buckets = Array(repeating: Self.emptyBucket, count: capacity)
        let mask = capacity - 1
        for slot in 0..<(records.count / stride) where isLive(slot) {
            var index = Int(records[slot * stride + Self.hashWord]) & mask
            while buckets[index] != Self.emptyBucket {
                index = (index + 1) & mask
            }
            buckets[index] = Self.bucketEntry(slot: slot, hash: records[slot * stride + Self.hashWord])
        }
        usedBuckets = count
    }

    private static func bucketEntry(slot: Int, hash: UInt32) -> UInt64 {
        UInt64(hash) << 32 | UInt64(slot + 2)
    }

    private func isLive(_ slot: Int) -> Bool {
        records[slot * stride + Self.keyLengthWord] & Self.liveFlag != 0
    }

    mutating func remove(_ key: String) {
        let found = Self.withKeyBytes(key) { bytes in find(bytes, hash: Self.hash(bytes)) }
        guard let slot = found.slot else { return }
        let base = slot * stride
        let length = Int(records[base + Self.keyLengthWord] & Self.keyLengthMask)
        if length > Self.inlineKeyBytes {
            garbageBytes += length
        }
        records[base + Self.keyLengthWord] = 0
        buckets[found.insertBucket] = Self.deletedBucket
        freeSlots.append(Int32(slot))
        count -= 1
        removedKeys.append(key)
    }

    /// Copies the live keys into a fresh arena once removed keys take more than half of it.
    private mutating func compactKeysIfNeeded() {
        guard garbageBytes > 65_536, garbageBytes * 2 > keyBytes.count else { return }
        var compacted: [UInt8] = []
        compacted.reserveCapacity(keyBytes.count - garbageBytes)
        for slot in 0..<(records.count / stride) where isLive(slot) {
            let base = slot * stride
            let offset = Int(records[base + Self.keyOffsetWord])
            let length = Int(records[base + Self.keyLengthWord] & Self.keyLengthMask)
            guard length > Self.inlineKeyBytes else { continue }
            records[base + Self.keyOffsetWord] = UInt32(compacted.count)
            compacted.append(contentsOf: keyBytes[offset..<(offset + length)])
        }
        keyBytes = compacted
        garbageBytes = 0
    }

    // MARK: Counters

    private func latest(_ slot: Int) -> Int64 {
        let base = slot * stride
        let low = UInt64(records[base + Self.latestLowWord])
        let high = UInt64(records[base + Self.latestHighWord])
        return Int64(bitPattern: high << 32 | low)
    }

    private mutating func setLatest(_ slot: Int, _ time: Int64) {
        let base = slot * stride
        let bits = UInt64(bitPattern: time)
        records[base + Self.latestLowWord] = UInt32(truncatingIfNeeded: bits)
        records[base + Self.latestHighWord] = UInt32(truncatingIfNeeded: bits >> 32)
    }

    @inline(__always)
    private func counter(_ slot: Int, _ index: Int) -> UInt32 {
        let base = slot * stride + Self.headerWords
        if isWide {
            return records[base + index]
        }
        return (records[base + index / 2] >> (UInt32(index & 1) * 16)) & 0xFFFF
    }

    @inline(__always)
    private mutating func setCounter(_ slot: Int, _ index: Int, _ value: UInt32) {
        let base = slot * stride + Self.headerWords
        if isWide {
            records[base + index] = value
            return
        }
        let shift = UInt32(index & 1) * 16
        let word = base + index / 2
        records[word] = (records[word] & ~(0xFFFF << shift)) | (min(value, 0xFFFF) << shift)
    }

    private var counterMaximum: UInt32 { isWide ? .max : 0xFFFF }

    /// Moves the slot's buckets forward to `now` and returns the time they are aligned to,
    /// which is never earlier than before: a `now` older than the slot's latest time (two
    /// threads passing times out of order) counts as the latest time.
    mutating func advance(_ slot: Int, to now: Int64) -> Int64 {
        let previous = latest(slot)
        guard now > previous else { return previous }
        for window in 0..<shapes.count {
            let width = bucketWidths[window]
            let oldBucket = floorDivide(previous, width)
            let newBucket = floorDivide(now, width)
            guard newBucket > oldBucket else { continue }
            let first = window * countersPerWindow
            if newBucket - oldBucket >= Int64(countersPerWindow) {
                for index in first..<(first + countersPerWindow) {
                    setCounter(slot, index, 0)
                }
            } else {
                var bucket = oldBucket + 1
                while bucket <= newBucket {
                    setCounter(slot, first + ring(bucket), 0)
                    bucket += 1
                }
            }
        }
        setLatest(slot, now)
        return now
    }

    /// The window's count after `advance`: the sum of its B + 1 buckets.
    func sum(_ slot: Int, window: Int) -> UInt64 {
        let first = window * countersPerWindow
        var total: UInt64 = 0
        for index in first..<(first + countersPerWindow) {
            total &+= UInt64(counter(slot, index))
        }
        return total
    }

    /// Adds `amount` to the bucket containing `time`, which must be the slot's aligned time.
    /// The caller marks the slot dirty.
    mutating func add(_ amount: UInt32, to slot: Int, window: Int, at time: Int64) {
        let index = window * countersPerWindow + ring(floorDivide(time, bucketWidths[window]))
        let (sum, overflow) = counter(slot, index).addingReportingOverflow(amount)
        setCounter(slot, index, overflow ? counterMaximum : min(sum, counterMaximum))
    }

    /// Takes back `amount` added at `time`, unless that bucket has already left the window.
    /// NOTE: a bucket that saturated (more than 65,535 units, possible only for messages a
    /// tag or shadow rule let through over its limit) ends up lower than its true count.
    mutating func subtract(_ amount: UInt32, from slot: Int, window: Int, addedAt time: Int64) {
        let width = bucketWidths[window]
        let bucket = floorDivide(time, width)
        let head = floorDivide(latest(slot), width)
        guard bucket <= head, head - bucket < Int64(countersPerWindow) else { return }
        let index = window * countersPerWindow + ring(bucket)
        let value = counter(slot, index)
        setCounter(slot, index, value >= amount ? value - amount : 0)
    }

    /// Returns the key's count in each window at `now`, read without moving its buckets (for
    /// the admin's view), or nil when the key has no counters. A `now` before the key's latest time
    /// counts as that time, as in `advance`.
    func counts(of key: String, at now: Int64) -> [UInt64]? {
        guard let slot = slot(for: key) else { return nil }
        return (0..<shapes.count).map { sum(slot, window: $0, at: now) }
    }

    /// Returns every live key with its count in each window at `now`, without moving buckets.
    func allCounts(at now: Int64) -> [(key: String, counts: [UInt64])] {
        (0..<(records.count / stride)).filter(isLive).map { slot in
            (key(of: slot), (0..<shapes.count).map { sum(slot, window: $0, at: now) })
        }
    }

    /// Returns the window's count at `now` without `advance`: of the B + 1 buckets the slot holds
    /// (those up to its latest time), the ones that have not left the window by `now`.
    private func sum(_ slot: Int, window: Int, at now: Int64) -> UInt64 {
        let width = bucketWidths[window]
        let head = floorDivide(latest(slot), width)
        let current = max(head, floorDivide(now, width))
        let first = window * countersPerWindow
        var total: UInt64 = 0
        // The slot holds the buckets head - B ... head; `current` is never before `head`.
        var bucket = current - Int64(bucketsPerWindow)
        while bucket <= head {
            total &+= UInt64(counter(slot, first + ring(bucket)))
            bucket += 1
        }
        return total
    }

    /// True when every bucket of the slot has left its window at `now`, or holds nothing.
    func isIdle(_ slot: Int, at now: Int64) -> Bool {
        let previous = latest(slot)
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

    /// The bucket number modulo B + 1, made non-negative for times before the epoch.
    @inline(__always)
    private func ring(_ bucket: Int64) -> Int {
        let position = Int(bucket % Int64(countersPerWindow))
        return position < 0 ? position + countersPerWindow : position
    }

    /// Lists the slot for the next checkpoint.
    mutating func markDirty(_ slot: Int) {
        let word = slot * stride + Self.keyLengthWord
        if records[word] & Self.dirtyFlag == 0 {
            records[word] |= Self.dirtyFlag
            dirtySlots.append(Int32(slot))
        }
    }

    // MARK: Persistence

    /// The slot's aligned time and counters, for a checkpoint.
    func record(_ slot: Int) -> (latest: Int64, counters: [UInt32]) {
        (latest(slot), (0..<counterCount).map { counter(slot, $0) })
    }

    /// Loads a persisted record into a fresh slot; ignores records of another size.
    mutating func restore(key: String, latest time: Int64, counters values: [UInt32]) {
        guard values.count == counterCount else { return }
        let slot = slot(creating: key, now: time)
        setLatest(slot, time)
        for (index, value) in values.enumerated() {
            setCounter(slot, index, value)
        }
    }

    /// Takes up to `limit` changed keys with their records, and marks them clean.
    mutating func takeDirty(limit: Int) -> [StoredCounters] {
        var taken: [StoredCounters] = []
        while taken.count < limit, let slot = dirtySlots.popLast().map(Int.init) {
            let word = slot * stride + Self.keyLengthWord
            // A slot removed (or removed and reused) since it was listed is skipped here; its
            // new key, if any, listed itself again.
            guard records[word] & Self.dirtyFlag != 0 else { continue }
            records[word] &= ~Self.dirtyFlag
            let record = record(slot)
            taken.append(StoredCounters(table: identifier, key: key(of: slot), latest: record.latest, counters: record.counters))
        }
        return taken
    }

    /// Takes the keys removed since the last call.
    mutating func takeRemoved() -> [String] {
        defer { removedKeys = [] }
        return removedKeys
    }

    var hasChanges: Bool { !dirtySlots.isEmpty || !removedKeys.isEmpty }

    /// Lists keys again after a checkpoint failed to write them.
    mutating func restoreChanges(dirty: [String], removed: [String]) {
        for key in dirty {
            if let slot = slot(for: key) {
                markDirty(slot)
            }
        }
        for key in removed where slot(for: key) == nil {
            removedKeys.append(key)
        }
    }

    /// Removes every idle key and returns how many went.
    mutating func removeIdle(at now: Int64) -> Int {
        var idle: [String] = []
        for slot in 0..<(records.count / stride) where isLive(slot) && isIdle(slot, at: now) {
            idle.append(key(of: slot))
        }
        for key in idle {
            remove(key)
        }
        compactKeysIfNeeded()
        return idle.count
    }
}
