// What the submission wrapper does to a message before passing it to the real sendmail:
// remove every stamp header already in it, add a Message-ID when there is none (so the stamp
// can name it), and add one fresh stamp header at the top.
//
// Editing works on raw bytes and must never change anything but those header fields. Other
// header fields, their folding, the line endings (LF or CRLF, as the message uses) and the
// body pass through byte for byte. The one addition: a message with no header fields at all
// gets an empty line after the added ones, so its first line stays in the body.
//
// The header section ends at the first empty line, at the first line that is neither a
// header field nor a continuation, or at the end of the input.

/// The header section of a raw message, split into fields, with the rest kept as bytes.
public struct RawMessage: Sendable, Equatable {
    /// A leading mbox "From " line, which sendmail accepts before the header fields.
    private var envelopeLine: [UInt8]
    /// Each header field with its continuation lines and line endings, as in the input.
    private var fields: [[UInt8]]
    /// The empty line after the header section and the body, or the body alone when no
    /// empty line separated it.
    private var remainder: [UInt8]
    private var hasSeparatorLine: Bool
    /// Number of header fields in the input, before any edit.
    private let originalFieldCount: Int

    /// Line ending of the message's first line: CRLF or LF (LF when there is no line).
    public let lineEnding: String

    public init(_ bytes: [UInt8]) {
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        let firstLineEnd = bytes.firstIndex(of: lf)
        lineEnding = firstLineEnd.map { $0 > 0 && bytes[$0 - 1] == cr } == true ? "\r\n" : "\n"

        envelopeLine = []
        fields = []
        remainder = []
        hasSeparatorLine = false

        var position = 0
        if bytes.starts(with: Array("From ".utf8)) {
            let end = firstLineEnd.map { $0 + 1 } ?? bytes.count
            envelopeLine = Array(bytes[..<end])
            position = end
        }

        while position < bytes.count {
            let end = bytes[position...].firstIndex(of: lf).map { $0 + 1 } ?? bytes.count
            let line = bytes[position..<end]
            var content = line
            while let last = content.last, last == lf || last == cr {
                content = content.dropLast()
            }

            if content.isEmpty {
                hasSeparatorLine = true
                break
            }
            if let first = content.first, first == 0x20 || first == 0x09, !fields.isEmpty {
                fields[fields.count - 1].append(contentsOf: line)
            } else if Self.fieldName(ofLine: content) != nil {
                fields.append(Array(line))
            } else {
                break
            }
            position = end
        }
        remainder = Array(bytes[position...])
        originalFieldCount = fields.count
    }

    /// The message as bytes, with any edits.
    public var bytes: [UInt8] {
        var result = envelopeLine
        for field in fields {
            result.append(contentsOf: field)
        }
        // A message that had no header section at all gets an empty line after the added
        // fields, so its first line stays in the body instead of ending the header section.
        if originalFieldCount == 0 && !fields.isEmpty && !hasSeparatorLine && !remainder.isEmpty {
            result.append(contentsOf: Array(lineEnding.utf8))
        }
        result.append(contentsOf: remainder)
        return result
    }

    /// Returns the unfolded values of every field named `name` (case-insensitive), in order,
    /// without the leading and trailing whitespace.
    public func values(named name: String) -> [[UInt8]] {
        fields.compactMap { field in
            guard let fieldName = Self.fieldName(ofLine: field[...]), fieldName.lowercased() == name.lowercased(),
                  let colon = field.firstIndex(of: UInt8(ascii: ":")) else {
                return nil
            }
            let unfolded = field[(colon + 1)...].filter { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
            return Array(Self.trimmingWhitespace(unfolded[...]))
        }
    }

    /// Removes every field named `name` (case-insensitive) and returns how many there were.
    @discardableResult
    public mutating func removeFields(named name: String) -> Int {
        let before = fields.count
        fields.removeAll { field in
            Self.fieldName(ofLine: field[...])?.lowercased() == name.lowercased()
        }
        return before - fields.count
    }

    /// Adds a field before all others. `value` must already be folded with `lineEnding`.
    public mutating func insertFieldAtTop(name: String, value: String) {
        fields.insert(Array("\(name): \(value)\(lineEnding)".utf8), at: 0)
    }

    /// Returns the field name of a line that starts a header field: printable ASCII up to a
    /// colon, optionally followed by spaces or tabs before it (obsolete but still seen).
    static func fieldName(ofLine line: ArraySlice<UInt8>) -> String? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let name = trimmingWhitespace(line[..<colon], leading: false)
        guard !name.isEmpty, name.allSatisfy({ (33...126).contains($0) }) else { return nil }
        return String(decoding: name, as: UTF8.self)
    }

    private static func trimmingWhitespace(_ bytes: ArraySlice<UInt8>, leading: Bool = true) -> ArraySlice<UInt8> {
        var result = bytes
        while leading, let first = result.first, first == 0x20 || first == 0x09 {
            result = result.dropFirst()
        }
        while let last = result.last, last == 0x20 || last == 0x09 {
            result = result.dropLast()
        }
        return result
    }
}
