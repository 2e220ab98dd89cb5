// The per-key limits table (`limits_overrides:` in the config): one identity key and its
// settings per line, for the customers whose limits differ from their rule's.
//
//     # key                 settings
//     account:shop1         messages=500/1h,5000/1d recipients=2000/1h
//     login:crm             max_recipients=200
//     account:newsletter    exempt
//
// Settings: `messages=W,...` and `recipients=W,...` replace that kind of window of every rule
// at the key's level (the other kind keeps the rule's windows), `max_recipients=N` replaces the
// cap, and `exempt` takes the key out of those rules. `#` starts a comment where a word could
// start. Keys are exact, not patterns.
//
// Parsing must never accept a line it does not fully understand: every error names the file,
// line and column. It works on bytes and caches parsed windows, because the table may have
// tens of thousands of lines and is read again on every reload.

/// One key's settings from the overrides table.
public struct LimitOverride: Sendable, Equatable {
    public var exempt: Bool
    /// Replaces the rule's message windows when set.
    public var messages: [RateWindow]?
    /// Replaces the rule's recipient windows when set.
    public var recipients: [RateWindow]?
    /// Replaces the rule's `max_recipients` when set.
    public var maximumRecipients: Int?

    public init(exempt: Bool = false, messages: [RateWindow]? = nil, recipients: [RateWindow]? = nil,
                maximumRecipients: Int? = nil) {
        self.exempt = exempt
        self.messages = messages
        self.recipients = recipients
        self.maximumRecipients = maximumRecipients
    }
}

/// The parsed overrides table.
public struct LimitOverrides: Sendable, Equatable {
    /// Largest table read, in bytes.
    public static let maximumFileBytes = 64 * 1024 * 1024

    /// The file it was read from; empty when there is none.
    public var file: String
    /// Settings by identity key ("account:shop1").
    public var entries: [String: LimitOverride]

    public init(file: String = "", entries: [String: LimitOverride] = [:]) {
        self.file = file
        self.entries = entries
    }

    public static let empty = LimitOverrides()

    /// Reads the table at `path`; an empty path gives no overrides. Throws `ConfigurationError`
    /// naming the file, line and column.
    public static func load(contentsOf path: String) throws -> LimitOverrides {
        guard !path.isEmpty else { return .empty }
        let bytes = try Configuration.readFile(path, kind: "limits overrides file", maximumBytes: maximumFileBytes)
        return try parse(bytes: bytes, file: path)
    }

    /// Parses the text of a table; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws -> LimitOverrides {
        try parse(bytes: Array(text.utf8), file: file)
    }

    static func parse(bytes: [UInt8], file: String) throws -> LimitOverrides {
        var parser = OverridesParser(file: file)
        var lineNumber = 0
        var start = 0
        while start <= bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") {
                end += 1
            }
            if start == end, end == bytes.count {
                break
            }
            try parser.parseLine(bytes[start..<end], number: lineNumber)
            start = end + 1
        }
        return LimitOverrides(file: file, entries: parser.entries)
    }
}

/// Parses the table line by line.
private struct OverridesParser {
    let file: String
    var entries: [String: LimitOverride] = [:]
    private var lineOfKey: [String: Int] = [:]
    /// Windows already parsed, by their text: most tables repeat a few windows many times.
    private var windowCache: [String: [RateWindow]] = [:]

    init(file: String) {
        self.file = file
    }

    private struct Word {
        var text: String
        var column: Int
    }

    mutating func parseLine(_ line: ArraySlice<UInt8>, number: Int) throws {
        let words = try split(line, number: number)
        guard let keyWord = words.first else { return }
        let key = try checkKey(keyWord, line: number)
        guard words.count > 1 else {
            throw error(line: number, column: keyWord.column, key: key,
                        "no settings; write messages=..., recipients=..., max_recipients=N or exempt after the key")
        }
        if let first = lineOfKey[key] {
            throw error(line: number, column: keyWord.column, key: key, "duplicate key; line \(first) sets it already")
        }

        var override = LimitOverride()
        var seen: Set<String> = []
        for word in words.dropFirst() {
            let parts = word.text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard !seen.contains(name) else {
                throw error(line: number, column: word.column, key: key, "'\(name)' appears twice on this line")
            }
            seen.insert(name)
            let value = parts.count == 2 ? String(parts[1]) : nil
            switch (name, value) {
            case ("exempt", nil):
                override.exempt = true
            case ("messages", let value?):
                override.messages = try windows(value, word: word, line: number, key: key)
            case ("recipients", let value?):
                override.recipients = try windows(value, word: word, line: number, key: key)
            case ("max_recipients", let value?):
                guard let cap = Int(value), value.allSatisfy({ $0.isASCII && $0.isNumber }),
                      (1...LimitConfigurationValues.maximumRecipientsCap).contains(cap) else {
                    throw error(line: number, column: word.column, key: key,
                                "invalid max_recipients '\(value)'; expected a whole number from 1 to \(LimitConfigurationValues.maximumRecipientsCap)")
                }
                override.maximumRecipients = cap
            default:
                var message = "unknown setting '\(word.text)'; expected messages=W,..., recipients=W,..., max_recipients=N or exempt"
                if let near = Suggestion.nearest(to: name, among: ["messages", "recipients", "max_recipients", "exempt"]) {
                    message = "unknown setting '\(word.text)'; did you mean '\(near)'?"
                }
                throw error(line: number, column: word.column, key: key, message)
            }
        }
        if override.exempt, seen.count > 1 {
            throw error(line: number, column: keyWord.column, key: key, "exempt cannot be combined with other settings")
        }
        entries[key] = override
        lineOfKey[key] = number
    }

    /// Splits a line into words at spaces and tabs, dropping a comment.
    private func split(_ line: ArraySlice<UInt8>, number: Int) throws -> [Word] {
        var words: [Word] = []
        var index = line.startIndex
        var column = 1
        while index < line.endIndex {
            let byte = line[index]
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") {
                index += 1
                column += 1
                continue
            }
            if byte == UInt8(ascii: "#") {
                break
            }
            let start = index
            let startColumn = column
            while index < line.endIndex, line[index] != UInt8(ascii: " "), line[index] != UInt8(ascii: "\t"), line[index] != UInt8(ascii: "\r") {
                if line[index] < 0x20 || line[index] == 0x7F {
                    throw error(line: number, column: column, key: "", "contains a control character")
                }
                index += 1
                column += 1
            }
            guard let text = String(validating: line[start..<index], as: UTF8.self) else {
                throw error(line: number, column: startColumn, key: "", "invalid UTF-8")
            }
            words.append(Word(text: text, column: startColumn))
        }
        return words
    }

    private func checkKey(_ word: Word, line: Int) throws -> String {
        let text = word.text
        let colon = text.firstIndex(of: ":")
        let levelText = colon.map { String(text[..<$0]) } ?? text
        guard let level = LimitLevel(rawValue: levelText) else {
            var message = "unknown identity level '\(levelText)'"
            let levels = LimitLevel.allCases.map(\.rawValue)
            if let near = Suggestion.nearest(to: levelText, among: levels) {
                message += "; did you mean '\(near)'?"
            }
            message += " (levels: \(levels.joined(separator: ", ")))"
            throw error(line: line, column: word.column, key: text, message)
        }
        let hasValue = colon.map { text.index(after: $0) < text.endIndex } ?? false
        switch level {
        case .server, .localUnverified:
            guard colon == nil else {
                throw error(line: line, column: word.column, key: text, "the \(level.rawValue) key has no value; write just '\(level.rawValue)'")
            }
        default:
            guard hasValue else {
                throw error(line: line, column: word.column, key: text, "missing value; write \(level.rawValue):VALUE")
            }
            if text.contains("*") || text.contains("?") {
                throw error(line: line, column: word.column, key: text,
                            "keys here are exact, not patterns; use a rule's exempt list for patterns")
            }
        }
        return text
    }

    private mutating func windows(_ text: String, word: Word, line: Int, key: String) throws -> [RateWindow] {
        if let cached = windowCache[text] {
            return cached
        }
        var windows: [RateWindow] = []
        var column = word.column + word.text.count - text.count
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let window: RateWindow
            do {
                window = try RateWindow.parse(String(part))
            } catch let problem as ValueError {
                throw error(line: line, column: column, key: key, problem.message)
            }
            if let same = windows.first(where: { $0.seconds == window.seconds }) {
                throw error(line: line, column: column, key: key, "window \(window) has the same length as \(same)")
            }
            windows.append(window)
            column += part.count + 1
        }
        guard windows.count <= LimitRule.maximumWindowsPerKind else {
            throw error(line: line, column: word.column, key: key,
                        "has \(windows.count) windows; the maximum is \(LimitRule.maximumWindowsPerKind)")
        }
        windowCache[text] = windows
        return windows
    }

    private func error(line: Int, column: Int, key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(file: file, line: line, column: column, key: key, message: message)
    }
}
