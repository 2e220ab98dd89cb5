// Rate windows in human units ("30/1m", "200/1h", "1000/1d hard") and the suspension
// threshold ("3 trips within 1h"): their parsing, their text form and their limits.
//
// Parsing must never accept a window the limiter cannot count exactly: a zero count, a zero or
// fractional length, or a length whose sub-buckets would not be whole milliseconds.

/// One window of a rate limit: at most `limit` units (messages or recipients) within any
/// `seconds`-long interval. A hard window suspends the key on its first trip.
public struct RateWindow: Sendable, Hashable, CustomStringConvertible {
    /// Largest count a window may allow. The counters are 32-bit and saturate, so every limit
    /// stays far below their maximum.
    public static let maximumLimit = 1_000_000_000

    /// Longest window: 31 days. A key stays tracked (and in memory) until its longest window
    /// has drained, so longer windows would keep idle senders in memory for a long time.
    public static let maximumSeconds = 31 * 86_400

    public var limit: Int
    public var seconds: Int
    public var isHard: Bool

    public init(limit: Int, seconds: Int, isHard: Bool = false) {
        self.limit = limit
        self.seconds = seconds
        self.isHard = isHard
    }

    /// "30/1m", or "1000/1d hard" for a hard window.
    public var description: String {
        let text = "\(limit)/\(ConfigurationValues.formatDuration(seconds))"
        return isHard ? text + " hard" : text
    }

    /// Parses "COUNT/DURATION", optionally followed by the word "hard". The duration is a
    /// whole number with the unit s, m, h or d; a bare unit means one of it ("30/h").
    /// Throws `ValueError`.
    static func parse(_ text: String) throws -> RateWindow {
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var isHard = false
        if words.count == 2, words[1] == "hard" {
            isHard = true
            words.removeLast()
        }
        let example = "expected COUNT/DURATION such as 30/1m, 200/1h or 1000/1d, optionally followed by 'hard'"
        guard words.count == 1 else {
            throw ValueError(message: "invalid window '\(text)'; \(example)")
        }
        let parts = words[0].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw ValueError(message: "invalid window '\(text)'; \(example)")
        }

        let countText = parts[0]
        guard !countText.isEmpty, countText.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw ValueError(message: "invalid count '\(countText)' in window '\(text)'; \(example)")
        }
        guard let limit = Int(countText), limit <= maximumLimit else {
            throw ValueError(message: "count \(countText) in window '\(text)' is too large; the maximum is \(maximumLimit)")
        }
        guard limit > 0 else {
            throw ValueError(message: "count 0 in window '\(text)' allows nothing; to block a sender use a senders rule with action reject or hold")
        }

        let seconds = try parseLength(parts[1], in: text)
        return RateWindow(limit: limit, seconds: seconds, isHard: isHard)
    }
}

/// Parses a window length: a whole number with the unit s, m, h or d, or a bare unit for one
/// of it ("h" is "1h").
private func parseLength(_ text: Substring, in window: String) throws -> Int {
    let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
    let unit = text.dropFirst(digits.count)
    let multipliers: [Substring: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
    guard let multiplier = multipliers[unit] else {
        throw ValueError(message: "invalid duration '\(text)' in window '\(window)'; expected a number with the unit s, m, h or d, such as 30s, 1m, 1h or 1d")
    }
    let count = digits.isEmpty ? 1 : Int(digits) ?? Int.max
    guard count > 0 else {
        throw ValueError(message: "window '\(window)' has length 0; a window must be at least 1s")
    }
    guard count <= RateWindow.maximumSeconds / multiplier else {
        throw ValueError(message: "window '\(window)' is longer than the maximum of 31d")
    }
    return count * multiplier
}

/// When repeated trips suspend a key: `trips` refused (or tagged) messages within `seconds`.
public struct SuspensionThreshold: Sendable, Hashable, CustomStringConvertible {
    /// Most trips a threshold may name; the limiter keeps this many trip times per key.
    public static let maximumTrips = 1000

    public var trips: Int
    public var seconds: Int

    public init(trips: Int, seconds: Int) {
        self.trips = trips
        self.seconds = seconds
    }

    /// "3 trips within 1h".
    public var description: String {
        "\(trips) \(trips == 1 ? "trip" : "trips") within \(ConfigurationValues.formatDuration(seconds))"
    }

    /// Parses "N trips within DURATION" ("trip" also accepted). Throws `ValueError`.
    static func parse(_ text: String) throws -> SuspensionThreshold {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        let example = "expected 'N trips within DURATION' such as '3 trips within 1h'"
        guard words.count == 4, words[1] == "trips" || words[1] == "trip", words[2] == "within" else {
            throw ValueError(message: "invalid threshold '\(text)'; \(example)")
        }
        guard words[0].allSatisfy({ $0.isASCII && $0.isNumber }), let trips = Int(words[0]),
              (1...maximumTrips).contains(trips) else {
            throw ValueError(message: "invalid trip count '\(words[0])'; expected a whole number from 1 to \(maximumTrips)")
        }
        let seconds: Int
        do {
            seconds = try ConfigurationValues.parseDuration(String(words[3]))
        } catch let problem as ValueError {
            throw ValueError(message: "invalid period '\(words[3])': \(problem.message)")
        }
        guard seconds <= RateWindow.maximumSeconds else {
            throw ValueError(message: "period '\(words[3])' is longer than the maximum of 31d")
        }
        return SuspensionThreshold(trips: trips, seconds: seconds)
    }
}
