// Campaign detection: a fingerprint of a message's normalized content, and counters of how
// often each fingerprint (and each sender's subject) was seen within a window.
//
// The fingerprint ignores what changes from copy to copy of one campaign: names (words
// written with a capital, such as "Dear John"), numbers, tokens with digits (tracking ids in
// links), case and white space. Short texts get no fingerprint, because "Thanks!" from many
// people is no campaign.
//
// `CampaignTracker` is shared by every connection and thread-safe. It keeps at most
// `maximumEntries` fingerprints and drops the expired ones when full. It holds its lock for
// one dictionary update, or for one sweep of the table when the table is full. The rate
// limiter's checkpoint writes the entries changed since the last one to its store, and
// restores them at start, so a restart within a window keeps the campaign's counts.

import Foundation
import Synchronization

enum ContentFingerprint {
    /// Fewest normalized words a text needs for a fingerprint.
    static let minimumWords = 12
    /// Most words of a text that go into the fingerprint.
    static let maximumWords = 400
    /// Longer words are dropped as tokens (hashes, ids), not words; counted in UTF-8 bytes.
    static let maximumWordCharacters = 24

    /// Most bytes of text read for the fingerprint.
    static let maximumTextBytes = 32 * 1024

    /// Returns a 64-bit fingerprint of the subject and text, or nil when the text is too short.
    static func compute(subject: String, text: String) -> UInt64? {
        var hasher = WordHasher()
        for source in [subject, text] {
            var copy = source
            copy.withUTF8 { bytes in
                hasher.add(UnsafeBufferPointer(rebasing: bytes.prefix(maximumTextBytes)))
            }
            hasher.endWord()
        }
        return hasher.words >= minimumWords ? hasher.hash : nil
    }

    /// FNV-1a over the words that stay after normalization, read from UTF-8 bytes. Words are
    /// runs of letters and digits (every byte of a multibyte character counts as a letter);
    /// a word with a digit, one that starts with an ASCII capital, one of a single byte or
    /// one longer than `maximumWordCharacters` bytes is skipped.
    private struct WordHasher {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var words = 0
        private var word: [UInt8] = []
        private var skipWord = false

        mutating func add(_ bytes: UnsafeBufferPointer<UInt8>) {
            for byte in bytes {
                let isUpper = byte >= 0x41 && byte <= 0x5A
                let isLetter = isUpper || (byte >= 0x61 && byte <= 0x7A) || byte >= 0x80
                let isDigit = byte >= 0x30 && byte <= 0x39
                if isLetter || isDigit {
                    if word.isEmpty && isUpper {
                        skipWord = true
                    }
                    if isDigit {
                        skipWord = true
                    }
                    if word.count <= ContentFingerprint.maximumWordCharacters {
                        word.append(isUpper ? byte | 0x20 : byte)
                    }
                } else if !word.isEmpty {
                    endWord()
                }
            }
        }

        mutating func endWord() {
            defer {
                word.removeAll(keepingCapacity: true)
                skipWord = false
            }
            guard !skipWord, words < ContentFingerprint.maximumWords, word.count >= 2,
                  word.count <= ContentFingerprint.maximumWordCharacters else { return }
            for byte in word {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
            hash = (hash ^ 0x20) &* 0x0000_0100_0000_01B3
            words += 1
        }
    }

    /// Returns a 64-bit hash of a subject with case, white space, digits and reply
    /// prefixes removed, or nil for an empty subject.
    static func subjectKey(_ subject: String) -> UInt64? {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var count = 0
        for character in subject.prefix(256).lowercased() where character.isLetter {
            for byte in String(character).utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
            count += 1
        }
        return count >= 3 ? hash : nil
    }
}

/// The counts of a message's campaign, the message itself included.
struct CampaignCounts: Equatable {
    /// Recipients of the content within the window; 0 when the content has no fingerprint.
    var recipients = 0
    /// Distinct senders of the content within the window.
    var senders = 0
    /// Messages with the same subject from the same sender within the subject window.
    var subjectMessages = 0
}

/// Counts content fingerprints and subjects per window. Thread-safe.
public final class CampaignTracker: Sendable {
    /// Most fingerprints and subject keys kept together.
    public static let maximumEntries = 200_000
    /// Most distinct senders remembered per fingerprint; more than any threshold needs.
    static let maximumSendersPerEntry = 16

    struct Entry {
        var windowStart: Date
        var recipients: Int
        var senders: [String]
    }

    struct State {
        var contents: [UInt64: Entry] = [:]
        var subjects: [UInt64: (windowStart: Date, count: Int)] = [:]
        /// Entries changed since the last `takeChanges`.
        var changedContents: Set<UInt64> = []
        var changedSubjects: Set<UInt64> = []
        /// The windows of the latest `record`, from which a checkpoint computes which stored entries expired.
        var window: TimeInterval = 3600
        var subjectWindow: TimeInterval = 600
    }

    private let state = Mutex(State())

    public init() {}

    /// Counts a message and returns the totals within the windows, this message included.
    func record(content fingerprint: UInt64?, subject subjectKey: UInt64?, sender: String, recipients: Int,
                settings: CampaignSettings, now: Date) -> CampaignCounts {
        let window = TimeInterval(settings.windowSeconds)
        let subjectWindow = TimeInterval(settings.subjectWindowSeconds)
        let senderSubject = subjectKey.map { key -> UInt64 in
            var hash = key
            for byte in sender.utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
            return hash
        }

        return state.withLock { state in
            state.window = window
            state.subjectWindow = subjectWindow
            var counts = CampaignCounts()
            if state.contents.count + state.subjects.count >= Self.maximumEntries {
                Self.dropExpired(&state, now: now, window: window, subjectWindow: subjectWindow)
            }
            let hasRoom = state.contents.count + state.subjects.count < Self.maximumEntries

            if let fingerprint, hasRoom || state.contents[fingerprint] != nil {
                var entry = state.contents[fingerprint] ?? Entry(windowStart: now, recipients: 0, senders: [])
                if now.timeIntervalSince(entry.windowStart) >= window || now < entry.windowStart {
                    entry = Entry(windowStart: now, recipients: 0, senders: [])
                }
                // Saturates instead of overflowing.
                entry.recipients = entry.recipients > Int.max / 2 ? entry.recipients : entry.recipients + max(1, recipients)
                if !entry.senders.contains(sender) && entry.senders.count < Self.maximumSendersPerEntry {
                    entry.senders.append(sender)
                }
                state.contents[fingerprint] = entry
                state.changedContents.insert(fingerprint)
                counts.recipients = entry.recipients
                counts.senders = entry.senders.count
            }
            if let key = senderSubject, hasRoom || state.subjects[key] != nil {
                var entry = state.subjects[key] ?? (windowStart: now, count: 0)
                if now.timeIntervalSince(entry.windowStart) >= subjectWindow || now < entry.windowStart {
                    entry = (windowStart: now, count: 0)
                }
                entry.count += 1
                state.subjects[key] = entry
                state.changedSubjects.insert(key)
                counts.subjectMessages = entry.count
            }
            return counts
        }
    }

    /// Fingerprints and subject keys currently kept.
    public var entryCount: Int {
        state.withLock { $0.contents.count + $0.subjects.count }
    }

    private static func dropExpired(_ state: inout State, now: Date, window: TimeInterval, subjectWindow: TimeInterval) {
        state.contents = state.contents.filter { now.timeIntervalSince($0.value.windowStart) < window }
        state.subjects = state.subjects.filter { now.timeIntervalSince($0.value.windowStart) < subjectWindow }
        state.changedContents = state.changedContents.filter { state.contents[$0] != nil }
        state.changedSubjects = state.changedSubjects.filter { state.subjects[$0] != nil }
    }

    // MARK: Persistence

    /// Returns the entries changed since the last call and the times before which stored
    /// entries have expired, then clears the set of changed entries.
    func takeChanges(now: Date) -> CampaignChanges {
        state.withLock { state in
            var changes = CampaignChanges(contentsExpireBefore: now.addingTimeInterval(-state.window),
                                          subjectsExpireBefore: now.addingTimeInterval(-state.subjectWindow))
            for fingerprint in state.changedContents {
                if let entry = state.contents[fingerprint] {
                    changes.contents.append(StoredCampaign(fingerprint: fingerprint, windowStart: entry.windowStart,
                                                           recipients: entry.recipients, senders: entry.senders))
                }
            }
            for key in state.changedSubjects {
                if let entry = state.subjects[key] {
                    changes.subjects.append(StoredSubjectCount(key: key, windowStart: entry.windowStart, count: entry.count))
                }
            }
            state.changedContents.removeAll(keepingCapacity: true)
            state.changedSubjects.removeAll(keepingCapacity: true)
            return changes
        }
    }

    /// Marks the entries of a checkpoint that could not be written as changed again.
    func keepChanges(_ changes: CampaignChanges) {
        state.withLock { state in
            state.changedContents.formUnion(changes.contents.map(\.fingerprint))
            state.changedSubjects.formUnion(changes.subjects.map(\.key))
        }
    }

    /// Puts back entries read from the store at start; expired ones are dropped by the next
    /// `record` that finds them, as any other.
    func restore(contents: [StoredCampaign], subjects: [StoredSubjectCount]) {
        state.withLock { state in
            for stored in contents.prefix(Self.maximumEntries) {
                state.contents[stored.fingerprint] = Entry(windowStart: stored.windowStart, recipients: stored.recipients,
                                                           senders: Array(stored.senders.prefix(Self.maximumSendersPerEntry)))
            }
            for stored in subjects.prefix(max(0, Self.maximumEntries - state.contents.count)) {
                state.subjects[stored.key] = (windowStart: stored.windowStart, count: stored.count)
            }
        }
    }
}

/// One content fingerprint's counts, as stored.
struct StoredCampaign: Sendable, Equatable {
    var fingerprint: UInt64
    var windowStart: Date
    var recipients: Int
    var senders: [String]
}

/// One sender's subject count, as stored.
struct StoredSubjectCount: Sendable, Equatable {
    var key: UInt64
    var windowStart: Date
    var count: Int
}

/// The campaign counts a checkpoint writes: changed entries, and the times before which
/// stored entries are deleted.
struct CampaignChanges: Sendable {
    var contents: [StoredCampaign] = []
    var subjects: [StoredSubjectCount] = []
    var contentsExpireBefore: Date
    var subjectsExpireBefore: Date
}
