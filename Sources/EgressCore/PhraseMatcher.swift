// Finds the built-in phrases of every category in a text in one pass. The phrase lists
// (PhrasePatterns.swift) are expanded into plain lowercase strings and put in two tries: one
// walked from each word start, for words between word boundaries, and one walked from each
// character of the scripts written without spaces.
//
// A general regular expression engine was far too slow for hundreds of phrases: PCRE2's JIT
// tries every alternative at every position and read mail text at about 12 MB/s here; the
// tries read it at several times that. Case folding covers ASCII, Latin-1 and Cyrillic
// capitals, which keep their UTF-8 length when lowered, so offsets stay the same.
//
// Building the matcher checks the phrase syntax with `precondition`: the lists are built in,
// so a bad phrase is a programmer error that every test run catches.

/// The phrase matcher for the built-in categories. Immutable and thread-safe.
final class PhraseMatcher: Sendable {
    /// A phrase end in a trie: its category, and whether any word ending may follow it.
    struct Terminal: Sendable {
        var category: Int
        var isPrefix: Bool
    }

    private let wordTrie: FrozenTrie
    private let unspacedTrie: FrozenTrie
    let categoryCount: Int

    /// The matcher of the built-in categories, built once per process: the phrase lists do
    /// not depend on the configuration.
    static let builtIn = PhraseMatcher(categories: PhrasePatterns.Category.allCases.map(PhrasePatterns.phrases(of:)))

    /// Most strings one phrase may expand to; more means a phrase that should be split.
    static let maximumExpansions = 4096

    init(categories: [PhrasePatterns.PhraseList]) {
        var words = TrieBuilder()
        var unspaced = TrieBuilder()
        for (category, list) in categories.enumerated() {
            for phrase in list.words {
                for expansion in PhraseExpander.expand(phrase) {
                    words.insert(expansion.bytes, Terminal(category: category, isPrefix: expansion.isPrefix))
                }
            }
            for phrase in list.unspaced {
                for expansion in PhraseExpander.expand(phrase) {
                    // Scripts without spaces have no word ends to check, nor words to extend to.
                    unspaced.insert(expansion.bytes, Terminal(category: category, isPrefix: false))
                }
            }
        }
        wordTrie = words.frozen()
        unspacedTrie = unspaced.frozen()
        categoryCount = categories.count
    }

    /// Returns, per category, the distinct phrases found (as written in the text), at most
    /// `maximumPerCategory` each, looking at no more than `maximumMatches` matches. Where
    /// phrases of one category overlap, the longest one from the leftmost start counts.
    func matches(in text: String, maximumMatches: Int, maximumPerCategory: Int) -> [[String]] {
        var found = [[String]](repeating: [], count: categoryCount)
        var seen = [Set<[UInt8]>](repeating: [], count: categoryCount)
        var copy = text
        copy.withUTF8 { original in
            let lowered = TextFolding.lowercased(original)
            var matchCount = 0
            lowered.withUnsafeBufferPointer { bytes in
                func record(_ terminal: Terminal, _ range: Range<Int>) {
                    matchCount += 1
                    guard found[terminal.category].count < maximumPerCategory else { return }
                    var end = range.upperBound
                    if terminal.isPrefix {
                        // Show the whole word, not just the prefix that matched.
                        while end < bytes.count, let next = TextFolding.character(bytes, at: end), next.isWord {
                            end += next.length
                        }
                    }
                    if seen[terminal.category].insert(Array(bytes[range.lowerBound..<end])).inserted {
                        found[terminal.category].append(String(decoding: UnsafeBufferPointer(rebasing: original[range.lowerBound..<end]),
                                                               as: UTF8.self))
                    }
                }

                // One phrase per place and category: of "limited time" and "limited time
                // only" at one start only the longer counts, and no match of a category
                // starts inside the previous match of that category.
                var longest = [(terminal: Terminal, end: Int)?](repeating: nil, count: categoryCount)
                var coveredUntil = [Int](repeating: 0, count: categoryCount)
                func keepLongest(_ terminal: Terminal, _ end: Int) {
                    if let kept = longest[terminal.category], kept.end >= end { return }
                    longest[terminal.category] = (terminal, end)
                }
                func recordLongest(from start: Int) {
                    for category in 0..<categoryCount {
                        guard let kept = longest[category] else { continue }
                        longest[category] = nil
                        if start >= coveredUntil[category] {
                            coveredUntil[category] = kept.end
                            record(kept.terminal, start..<kept.end)
                        }
                    }
                }

                var index = 0
                var previousIsWord = false
                while index < bytes.count && matchCount < maximumMatches {
                    guard let character = TextFolding.character(bytes, at: index) else {
                        index += 1
                        previousIsWord = false
                        continue
                    }
                    if character.isWord && !previousIsWord {
                        wordTrie.walk(bytes, from: index) { terminal, end in
                            if terminal.isPrefix || TextFolding.isBoundary(bytes, at: end) {
                                keepLongest(terminal, end)
                            }
                        }
                        recordLongest(from: index)
                    }
                    if bytes[index] >= 0xE0 {
                        unspacedTrie.walk(bytes, from: index) { terminal, end in
                            keepLongest(terminal, end)
                        }
                        recordLongest(from: index)
                    }
                    previousIsWord = character.isWord
                    index += character.length
                }
            }
        }
        return found
    }
}

/// Expansion of the phrase syntax into plain lowercase strings.
enum PhraseExpander {
    struct Expansion: Equatable {
        var bytes: [UInt8]
        /// The phrase ended in \w*: any word ending may follow.
        var isPrefix: Bool
    }

    private indirect enum Atom {
        case text(String)
        case choice([[Atom]])
        case optional(Atom)
        case anyWordEnding
    }

    static func expand(_ phrase: String) -> [Expansion] {
        var characters = Array(phrase)[...]
        let alternatives = parseAlternatives(&characters, phrase: phrase)
        precondition(characters.isEmpty, "unbalanced ')' in phrase \(phrase)")
        var result: [Expansion] = []
        for text in expand(alternatives, phrase: phrase) {
            let isPrefix = text.hasSuffix("\u{1}")
            let body = isPrefix ? String(text.dropLast()) : text
            precondition(!body.contains("\u{1}"), "\\w* must end the phrase \(phrase)")
            precondition(!body.isEmpty, "phrase \(phrase) can match the empty string")
            var bytes = Array(body.utf8)
            bytes = bytes.withUnsafeBufferPointer { TextFolding.lowercased($0) }
            result.append(Expansion(bytes: bytes, isPrefix: isPrefix))
        }
        return result
    }

    private static func parseAlternatives(_ characters: inout ArraySlice<Character>, phrase: String) -> [[Atom]] {
        var alternatives: [[Atom]] = [parseSequence(&characters, phrase: phrase)]
        while characters.first == "|" {
            characters.removeFirst()
            alternatives.append(parseSequence(&characters, phrase: phrase))
        }
        return alternatives
    }

    private static func parseSequence(_ characters: inout ArraySlice<Character>, phrase: String) -> [Atom] {
        var atoms: [Atom] = []
        while let character = characters.first, character != "|", character != ")" {
            characters.removeFirst()
            var atom: Atom
            switch character {
            case "(":
                precondition(characters.prefix(2).elementsEqual("?:"), "only (?: groups are allowed in phrase \(phrase)")
                characters.removeFirst(2)
                atom = .choice(parseAlternatives(&characters, phrase: phrase))
                precondition(characters.first == ")", "missing ')' in phrase \(phrase)")
                characters.removeFirst()
            case "[":
                var options: [[Atom]] = []
                while let member = characters.first, member != "]" {
                    characters.removeFirst()
                    var literal = member
                    if member == "\\", let escaped = characters.first {
                        characters.removeFirst()
                        literal = escaped
                    }
                    options.append([.text(String(literal))])
                }
                precondition(characters.first == "]", "missing ']' in phrase \(phrase)")
                characters.removeFirst()
                atom = .choice(options)
            case "\\":
                guard let escaped = characters.popFirst() else {
                    preconditionFailure("phrase \(phrase) ends with a backslash")
                }
                if escaped == "w" {
                    precondition(characters.first == "*", "only \\w* is allowed in phrase \(phrase)")
                    characters.removeFirst()
                    atom = .anyWordEnding
                } else {
                    atom = .text(String(escaped))
                }
            case "?", "*", "+", "{", "^", "$", ".":
                preconditionFailure("unsupported '\(character)' in phrase \(phrase)")
            default:
                atom = .text(String(character))
            }
            if characters.first == "?" {
                characters.removeFirst()
                atom = .optional(atom)
            }
            atoms.append(atom)
        }
        return atoms
    }

    private static func expand(_ alternatives: [[Atom]], phrase: String) -> [String] {
        var result: [String] = []
        for sequence in alternatives {
            var partial = [""]
            for atom in sequence {
                let options = expand(atom, phrase: phrase)
                partial = partial.flatMap { prefix in options.map { prefix + $0 } }
                precondition(partial.count <= maximumExpansions, "phrase \(phrase) expands to too many strings")
            }
            result.append(contentsOf: partial)
        }
        return result
    }

    private static var maximumExpansions: Int { PhraseMatcher.maximumExpansions }

    private static func expand(_ atom: Atom, phrase: String) -> [String] {
        switch atom {
        case .text(let text): return [text]
        case .choice(let alternatives): return expand(alternatives, phrase: phrase)
        case .optional(let inner): return [""] + expand(inner, phrase: phrase)
        case .anyWordEnding: return ["\u{1}"]
        }
    }
}

/// A trie under construction: nodes with child maps and terminals.
private struct TrieBuilder {
    var children: [[UInt8: Int32]] = [[:]]
    var terminals: [[PhraseMatcher.Terminal]] = [[]]

    mutating func insert(_ bytes: [UInt8], _ terminal: PhraseMatcher.Terminal) {
        var node = 0
        for byte in bytes {
            if let next = children[node][byte] {
                node = Int(next)
            } else {
                children.append([:])
                terminals.append([])
                let next = Int32(children.count - 1)
                children[node][byte] = next
                node = Int(next)
            }
        }
        if !terminals[node].contains(where: { $0.category == terminal.category && $0.isPrefix == terminal.isPrefix }) {
            terminals[node].append(terminal)
        }
    }

    func frozen() -> FrozenTrie {
        var edgeStart = [Int32](repeating: 0, count: children.count + 1)
        var edgeBytes: [UInt8] = []
        var edgeTargets: [Int32] = []
        for (node, map) in children.enumerated() {
            edgeStart[node] = Int32(edgeBytes.count)
            for (byte, target) in map.sorted(by: { $0.key < $1.key }) {
                edgeBytes.append(byte)
                edgeTargets.append(target)
            }
        }
        edgeStart[children.count] = Int32(edgeBytes.count)
        return FrozenTrie(edgeStart: edgeStart, edgeBytes: edgeBytes, edgeTargets: edgeTargets, terminals: terminals)
    }
}

/// A trie in flat arrays: node N's edges are `edgeStart[N] ..< edgeStart[N + 1]`, sorted by byte.
private struct FrozenTrie: Sendable {
    let edgeStart: [Int32]
    let edgeBytes: [UInt8]
    let edgeTargets: [Int32]
    let terminals: [[PhraseMatcher.Terminal]]

    /// Follows `bytes` from `start` as far as the trie goes, calling `found` at every node
    /// that ends a phrase, with the index after the phrase.
    func walk(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, _ found: (PhraseMatcher.Terminal, Int) -> Void) {
        var node = 0
        var index = start
        while index < bytes.count {
            guard let next = child(of: node, bytes[index]) else { return }
            node = next
            index += 1
            for terminal in terminals[node] {
                found(terminal, index)
            }
        }
    }

    private func child(of node: Int, _ byte: UInt8) -> Int? {
        var low = Int(edgeStart[node])
        var high = Int(edgeStart[node + 1])
        while low < high {
            let middle = (low + high) / 2
            let value = edgeBytes[middle]
            if value == byte {
                return Int(edgeTargets[middle])
            }
            if value < byte {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return nil
    }
}

/// Case folding and character classes on UTF-8 bytes.
enum TextFolding {
    /// A character at a position: its length in bytes and whether it is a letter or digit.
    struct Character {
        var length: Int
        var isWord: Bool
    }

    /// Returns the text with ASCII, Latin-1 and Cyrillic capitals lowered; every other byte
    /// stays, so offsets are the same in both.
    static func lowercased(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var output = Array(text)
        var index = 0
        let count = output.count
        while index < count {
            let byte = output[index]
            if byte < 0x80 {
                if byte >= 0x41 && byte <= 0x5A {
                    output[index] = byte | 0x20
                }
                index += 1
                continue
            }
            if index + 1 < count {
                let next = output[index + 1]
                switch byte {
                case 0xC3 where next >= 0x80 && next <= 0x9E && next != 0x97:
                    // À-Þ (without ×) to à-þ.
                    output[index + 1] = next + 0x20
                case 0xD0 where next >= 0x90 && next <= 0x9F:
                    // А-П to а-п.
                    output[index + 1] = next + 0x20
                case 0xD0 where next >= 0xA0 && next <= 0xAF:
                    // Р-Я to р-я.
                    output[index] = 0xD1
                    output[index + 1] = next - 0x20
                case 0xD0 where next >= 0x80 && next <= 0x8F:
                    // Ѐ-Џ (Ё among them) to ѐ-џ.
                    output[index] = 0xD1
                    output[index + 1] = next + 0x10
                default:
                    break
                }
            }
            index += 1
        }
        return output
    }

    /// Returns the character starting at `index`, or nil for a byte that starts none.
    @inline(__always)
    static func character(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Character? {
        let byte = bytes[index]
        if byte < 0x80 {
            let isWord = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
            return Character(length: 1, isWord: isWord)
        }
        let length: Int
        var value: UInt32
        switch byte {
        case 0xC2...0xDF: length = 2; value = UInt32(byte & 0x1F)
        case 0xE0...0xEF: length = 3; value = UInt32(byte & 0x0F)
        case 0xF0...0xF4: length = 4; value = UInt32(byte & 0x07)
        default: return nil
        }
        guard index + length <= bytes.count else { return nil }
        for offset in 1..<length {
            let continuation = bytes[index + offset]
            guard continuation & 0xC0 == 0x80 else { return nil }
            value = value << 6 | UInt32(continuation & 0x3F)
        }
        return Character(length: length, isWord: isWordScalar(value))
    }

    /// Whether a non-ASCII scalar is a letter or digit; the scripts of mail text are
    /// decided by range, the rest by Unicode properties, which cost a table lookup.
    @inline(__always)
    private static func isWordScalar(_ value: UInt32) -> Bool {
        switch value {
        case 0x80...0xBF: return value == 0xAA || value == 0xB5 || value == 0xBA
        case 0xC0...0x24F: return value != 0xD7 && value != 0xF7
        case 0x370...0x3FF, 0x400...0x52F: return value != 0x37E && value != 0x387
        case 0x2000...0x206F, 0x3000...0x303F, 0xFF00...0xFF0F, 0xFF1A...0xFF20: return false
        case 0x3040...0x30FF, 0x4E00...0x9FFF, 0xAC00...0xD7AF, 0xFF21...0xFF3A, 0xFF41...0xFF5A, 0xFF66...0xFF9F: return true
        default:
            guard let scalar = Unicode.Scalar(value) else { return false }
            let properties = scalar.properties
            return properties.isAlphabetic || properties.numericType != nil
        }
    }

    /// Whether a word ends before `index`: the end of the text, or no letter or digit there.
    @inline(__always)
    static func isBoundary(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        guard index < bytes.count, let next = character(bytes, at: index) else { return true }
        return !next.isWord
    }
}
