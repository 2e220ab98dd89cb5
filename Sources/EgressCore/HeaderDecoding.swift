// Decoding of header field values: unfolding, RFC 2047 encoded words, MIME parameters with
// RFC 2231 continuations and charsets, and address lists.
//
// Every function takes hostile bytes and must return something for any input: a malformed
// encoded word stays as literal text, a parameter without a value is skipped, an address
// without angle brackets is taken as written. Nothing here throws, and nothing here reads
// more than its input.

/// Unfolding and RFC 2047 decoding of unstructured header values.
enum HeaderText {
    /// Longest encoded word decoded, in bytes; RFC 2047 allows 75, and longer ones are kept
    /// as literal text so a single "word" cannot hold a whole message.
    static let maximumEncodedWordBytes = 4096

    /// Removes the line breaks of folding (CRLF, LF or CR followed by white space keeps the
    /// white space); a line break that is not followed by white space becomes a space.
    static func unfold(_ value: some Collection<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(value.count)
        var previousWasBreak = false
        for byte in value {
            if byte == 0x0D || byte == 0x0A {
                previousWasBreak = true
                continue
            }
            if previousWasBreak {
                if byte != 0x20 && byte != 0x09 {
                    output.append(0x20)
                }
                previousWasBreak = false
            }
            output.append(byte)
        }
        return output
    }

    /// Decodes the encoded words of an unfolded value and converts everything to UTF-8.
    /// White space between two encoded words is dropped, as RFC 2047 says; adjacent words
    /// in the same charset are joined before conversion, so a character split across two
    /// words survives.
    static func decode(_ value: [UInt8], converter: CharsetConverter, fallbackCharset: String? = nil) -> String {
        // Most fields are plain ASCII without encoded words or ISO-2022-JP escapes.
        if !value.contains(where: { $0 >= 0x80 || $0 == 0x3F || $0 == 0x1B }) {
            return String(decoding: value, as: UTF8.self)
        }
        var output = ""
        // Decoded bytes of consecutive encoded words in one charset, not yet converted.
        var encodedRun: [UInt8] = []
        var encodedCharset: String?
        // Literal bytes not yet converted.
        var literal: [UInt8] = []
        // White space seen after an encoded word: dropped if another encoded word follows.
        var pendingSpace: [UInt8] = []

        func flushEncoded() {
            if let charset = encodedCharset {
                output += converter.convert(encodedRun, charset: charset)
            }
            encodedRun.removeAll(keepingCapacity: true)
            encodedCharset = nil
        }
        func flushLiteral() {
            if !literal.isEmpty {
                output += convertLiteral(literal, converter: converter, fallbackCharset: fallbackCharset)
                literal.removeAll(keepingCapacity: true)
            }
        }

        var index = 0
        while index < value.count {
            let byte = value[index]
            if byte == 0x3D, index + 1 < value.count, value[index + 1] == 0x3F,
               let word = parseEncodedWord(value, at: index) {
                flushLiteral()
                if encodedCharset != nil && encodedCharset != word.charset {
                    flushEncoded()
                }
                encodedCharset = word.charset
                encodedRun.append(contentsOf: word.bytes)
                pendingSpace.removeAll(keepingCapacity: true)
                index = word.end
                continue
            }
            if (byte == 0x20 || byte == 0x09) && encodedCharset != nil {
                pendingSpace.append(byte)
                index += 1
                continue
            }
            flushEncoded()
            if !pendingSpace.isEmpty {
                literal.append(contentsOf: pendingSpace)
                pendingSpace.removeAll(keepingCapacity: true)
            }
            literal.append(byte)
            index += 1
        }
        flushEncoded()
        literal.append(contentsOf: pendingSpace)
        flushLiteral()
        return output
    }

    /// Converts header bytes outside encoded words: raw ISO-2022-JP (recognised by its
    /// escape sequences), else UTF-8, else the fallback charset (the body's) when the bytes
    /// are valid in it, else windows-1252.
    private static func convertLiteral(_ bytes: [UInt8], converter: CharsetConverter, fallbackCharset: String?) -> String {
        if bytes.contains(0x1B) {
            return converter.convert(bytes, charset: "iso-2022-jp")
        }
        if let fallbackCharset, bytes.contains(where: { $0 >= 0x80 }), String(validating: bytes, as: UTF8.self) == nil {
            let before = converter.replacements
            let text = converter.convert(bytes, charset: fallbackCharset)
            if converter.replacements == before {
                return text
            }
            converter.forgetReplacements(converter.replacements - before)
        }
        return converter.convert(bytes, charset: nil)
    }

    /// An encoded word: its charset, its decoded bytes and the index just past it.
    struct EncodedWord {
        var charset: String
        var bytes: [UInt8]
        var end: Int
    }

    /// Parses "=?charset?B|Q?text?=" at `start`; nil when the bytes there are not one.
    static func parseEncodedWord(_ value: [UInt8], at start: Int) -> EncodedWord? {
        var index = start + 2
        let charsetStart = index
        while index < value.count, value[index] != 0x3F {
            let byte = value[index]
            if byte <= 0x20 || byte >= 0x7F || index - charsetStart > CharsetConverter.maximumLabelBytes {
                return nil
            }
            index += 1
        }
        guard index > charsetStart, index + 2 < value.count, value[index + 2] == 0x3F else { return nil }
        let charset = String(decoding: value[charsetStart..<index], as: UTF8.self)
        let encoding = asciiLowercase(value[index + 1])
        guard encoding == 0x62 || encoding == 0x71 else { return nil }

        let textStart = index + 3
        var textEnd = textStart
        while true {
            guard textEnd + 1 < value.count, textEnd - start <= maximumEncodedWordBytes else { return nil }
            let byte = value[textEnd]
            if byte == 0x3F && value[textEnd + 1] == 0x3D {
                break
            }
            if byte == 0x20 || byte == 0x09 {
                return nil
            }
            textEnd += 1
        }
        let text = value[textStart..<textEnd]
        let bytes = encoding == 0x62 ? Base64.decode(text) : decodeQ(text)
        return EncodedWord(charset: charset, bytes: bytes, end: textEnd + 2)
    }

    /// Decodes the Q encoding: "_" is a space and "=XX" a byte; a broken escape stays literal.
    static func decodeQ(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            if byte == 0x5F {
                output.append(0x20)
            } else if byte == 0x3D, index + 2 < text.endIndex,
                      let high = hexValue(text[index + 1]), let low = hexValue(text[index + 2]) {
                output.append(high << 4 | low)
                index += 3
                continue
            } else {
                output.append(byte)
            }
            index += 1
        }
        return output
    }
}

@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 0x30...0x39: return byte - 0x30
    case 0x41...0x46: return byte - 0x41 + 10
    case 0x61...0x66: return byte - 0x61 + 10
    default: return nil
    }
}

/// Base64 decoding of a complete value (encoded words, RFC 2231 has none): characters
/// outside the alphabet are skipped, and missing padding is tolerated.
enum Base64 {
    /// The value of each byte in the base64 alphabet; 0xFF for bytes outside it.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        for (value, byte) in alphabet.enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        return table
    }()

    static func decode(_ text: some Collection<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in text {
            if byte == 0x3D { break }
            let value = values[Int(byte)]
            if value == 0xFF { continue }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return output
    }
}

/// A structured header value with parameters: Content-Type, Content-Disposition.
struct HeaderParameters {
    /// The value before the first ";", lowercased and trimmed ("text/plain", "attachment").
    var value: String
    /// Parameters by lowercased name, values decoded (RFC 2231 and, as many mailers write
    /// it, RFC 2047 inside quotes).
    var parameters: [String: String]

    /// Most parameters read from one field; the rest are ignored.
    static let maximumParameters = 64
    /// Most RFC 2231 continuation segments joined for one parameter.
    static let maximumSegments = 64

    init(_ unfolded: [UInt8], converter: CharsetConverter) {
        let text = converter.convert(unfolded, charset: nil)
        let pieces = Self.split(text)
        value = Self.stripComments(pieces.first ?? "").trimmingWhitespace().lowercased()

        var simple: [String: String] = [:]
        // name -> (index -> (value, isExtended))
        var segmented: [String: [Int: (String, Bool)]] = [:]
        for piece in pieces.dropFirst().prefix(Self.maximumParameters) {
            guard let equals = piece.firstIndex(of: "=") else { continue }
            var name = piece[..<equals].trimmingWhitespace().lowercased()
            let rawValue = Self.unquote(piece[piece.index(after: equals)...].trimmingWhitespace())
            guard !name.isEmpty else { continue }

            var isExtended = false
            if name.hasSuffix("*") {
                isExtended = true
                name.removeLast()
            }
            if let star = name.firstIndex(of: "*"), let number = Int(name[name.index(after: star)...]),
               number >= 0, number < Self.maximumSegments {
                let base = String(name[..<star])
                segmented[base, default: [:]][number] = (rawValue, isExtended)
            } else if isExtended {
                segmented[name, default: [:]][0] = (rawValue, true)
            } else if simple[name] == nil {
                simple[name] = rawValue
            }
        }

        var result = simple
        for (name, segments) in segmented {
            // RFC 2231 wins over a plain parameter of the same name, because mailers write
            // the plain one as an ASCII fallback.
            result[name] = Self.joinSegments(segments, converter: converter)
        }
        for (name, text) in result where text.contains("=?") {
            result[name] = HeaderText.decode(Array(text.utf8), converter: converter)
        }
        parameters = result
    }

    /// Joins "name*0*=charset'lang'%XX", "name*1=..." segments in order; percent-escapes
    /// are decoded in extended segments, in the charset named by the first.
    private static func joinSegments(_ segments: [Int: (String, Bool)], converter: CharsetConverter) -> String {
        var bytes: [UInt8] = []
        var charset: String?
        for index in segments.keys.sorted() {
            guard let (text, isExtended) = segments[index] else { continue }
            var part = Substring(text)
            if index == segments.keys.min(), isExtended {
                let fields = text.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                if fields.count == 3 {
                    charset = fields[0].isEmpty ? nil : String(fields[0])
                    part = fields[2]
                }
            }
            if isExtended {
                bytes.append(contentsOf: percentDecode(Array(part.utf8)))
            } else {
                bytes.append(contentsOf: Array(part.utf8))
            }
        }
        return converter.convert(bytes, charset: charset ?? "utf-8")
    }

    private static func percentDecode(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0x25, index + 2 < bytes.count,
               let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return output
    }

    /// Splits at ";" outside quoted strings.
    private static func split(_ text: String) -> [Substring] {
        var pieces: [Substring] = []
        var start = text.startIndex
        var inQuotes = false
        var escaped = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if escaped {
                escaped = false
            } else if character == "\\" && inQuotes {
                escaped = true
            } else if character == "\"" {
                inQuotes.toggle()
            } else if character == ";" && !inQuotes {
                pieces.append(text[start..<index])
                start = text.index(after: index)
            }
            index = text.index(after: index)
        }
        pieces.append(text[start...])
        return pieces
    }

    /// Removes a surrounding pair of quotes and the backslash escapes inside them.
    static func unquote(_ text: String) -> String {
        guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") else {
            // An opening quote that never closes: keep the rest.
            return text.hasPrefix("\"") ? String(text.dropFirst()) : text
        }
        var result = ""
        var escaped = false
        for character in text.dropFirst().dropLast() {
            if escaped {
                result.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// Removes "(comments)" outside quotes; nesting is counted.
    static func stripComments(_ text: Substring) -> String {
        guard text.utf8.contains(0x28) else { return String(text) }
        var result = ""
        var depth = 0
        var inQuotes = false
        for character in text {
            if character == "\"" && depth == 0 {
                inQuotes.toggle()
            }
            if !inQuotes {
                if character == "(" {
                    depth += 1
                    continue
                }
                if character == ")" && depth > 0 {
                    depth -= 1
                    continue
                }
            }
            if depth == 0 {
                result.append(character)
            }
        }
        return result
    }
}

/// Splits address header values (From, To, Reply-To) into mailboxes, leniently: broken
/// mail is common, and a spammer's From must still be read.
enum AddressListParser {
    /// Most mailboxes read from one field.
    static let maximumMailboxes = 1000

    static func parse(_ unfolded: [UInt8]) -> [MailboxAddress] {
        let converter = CharsetConverter()
        let text = converter.convert(unfolded, charset: nil)
        var result: [MailboxAddress] = []
        for piece in split(text) where result.count < maximumMailboxes {
            if let mailbox = mailbox(from: Substring(piece), converter: converter) {
                result.append(mailbox)
            }
        }
        return result
    }

    /// Splits at commas outside quotes, angle brackets and comments, and removes group
    /// labels ("undisclosed-recipients:;"). Works on the UTF-8 bytes, because every
    /// delimiter is ASCII.
    private static func split(_ text: String) -> [String] {
        var pieces: [String] = []
        let bytes = Array(text.utf8)
        var start = 0
        var inQuotes = false
        var escaped = false
        var angleDepth = 0
        var commentDepth = 0
        var sawAt = false
        for (index, byte) in bytes.enumerated() {
            if escaped {
                escaped = false
                continue
            }
            if byte == 0x5C && (inQuotes || commentDepth > 0) {
                escaped = true
                continue
            }
            if inQuotes {
                if byte == 0x22 { inQuotes = false }
                continue
            }
            switch byte {
            case 0x22 where commentDepth == 0: inQuotes = true
            case 0x28: commentDepth += 1
            case 0x29: commentDepth = max(0, commentDepth - 1)
            case 0x3C where commentDepth == 0: angleDepth += 1
            case 0x3E where commentDepth == 0: angleDepth = max(0, angleDepth - 1)
            case 0x40: sawAt = true
            case 0x2C, 0x3B:
                if angleDepth == 0 && commentDepth == 0 {
                    pieces.append(String(decoding: bytes[start..<index], as: UTF8.self))
                    start = index + 1
                    sawAt = false
                }
            case 0x3A:
                // A group label ends here when no address has started in this piece.
                if angleDepth == 0 && commentDepth == 0 && !sawAt {
                    start = index + 1
                }
            default:
                break
            }
        }
        pieces.append(String(decoding: bytes[start...], as: UTF8.self))
        return pieces
    }

    private static func mailbox(from piece: Substring, converter: CharsetConverter) -> MailboxAddress? {
        let trimmed = piece.trimmingWhitespace()
        guard !trimmed.isEmpty else { return nil }

        if let open = lastAngleOutsideQuotes(trimmed) {
            let afterOpen = trimmed[trimmed.index(after: open)...]
            let close = afterOpen.firstIndex(of: ">") ?? afterOpen.endIndex
            var address = afterOpen[..<close].trimmingWhitespace()
            // An obsolete source route ("@relay:user@host") names the mailbox after the colon.
            if address.hasPrefix("@"), let colon = address.firstIndex(of: ":") {
                address = String(address[address.index(after: colon)...])
            }
            let name = HeaderParameters.stripComments(trimmed[..<open]).trimmingWhitespace()
            return MailboxAddress(displayName: decodeDisplayName(name, converter: converter), address: address)
        }

        // "user@host (Display Name)" or a bare address.
        var displayName = ""
        if let open = trimmed.firstIndex(of: "("), let close = trimmed.lastIndex(of: ")"), open < close {
            displayName = String(trimmed[trimmed.index(after: open)..<close])
        }
        let address = HeaderParameters.stripComments(Substring(trimmed)).trimmingWhitespace()
        guard !address.isEmpty else { return nil }
        return MailboxAddress(displayName: decodeDisplayName(displayName, converter: converter),
                              address: HeaderParameters.unquote(address))
    }

    private static func lastAngleOutsideQuotes(_ text: String) -> String.Index? {
        var inQuotes = false
        var found: String.Index?
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "\"" {
                inQuotes.toggle()
            } else if character == "<" && !inQuotes {
                found = index
            }
            index = text.index(after: index)
        }
        return found
    }

    private static func decodeDisplayName(_ name: String, converter: CharsetConverter) -> String {
        let unquoted = HeaderParameters.unquote(name)
        guard unquoted.contains("=?") else { return unquoted }
        return HeaderText.decode(Array(unquoted.utf8), converter: converter).trimmingWhitespace()
    }
}
