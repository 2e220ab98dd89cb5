// Conversion of text in a declared charset to UTF-8, with the system's iconv (glibc) for
// every charset beyond UTF-8, US-ASCII and the Latin-1 family, which are converted here
// because they make up most mail and iconv_open costs more than the conversion itself.
//
// It must never crash on any input and never drop a byte silently: a byte sequence that is
// invalid in its charset becomes U+FFFD and is counted in `replacements`, and a charset that
// iconv does not know is read as UTF-8 (with the same counting) and listed in
// `unknownCharsets`. Labels are mapped to the superset that mail clients really use (GB2312
// to GB18030, Shift_JIS to CP932, EUC-KR to CP949, ISO-8859-1 to windows-1252), because
// senders often declare the smaller set and write characters of the larger one.
//
// `CharsetConverter` is not thread-safe: use one per message. It keeps the iconv descriptors
// it opened until it is released.

#if canImport(Glibc)
import Glibc
#endif

/// Converts text in named charsets to UTF-8 for one message, counting what it cannot convert.
final class CharsetConverter {
    /// Bytes that could not be converted and became U+FFFD, summed over every conversion.
    private(set) var replacements = 0
    /// Canonical names that iconv did not accept, in the order first met.
    private(set) var unknownCharsets: [String] = []
    /// Open descriptors by canonical name; nil records a name iconv rejected.
    private var descriptors: [String: iconv_t?] = [:]

    /// Longest charset label passed to iconv; real names are under 30 bytes.
    static let maximumLabelBytes = 40

    /// Most distinct charsets opened per message; a message naming more is hostile, and the
    /// rest are read as UTF-8 with replacements.
    static let maximumOpenCharsets = 16

    deinit {
        for case let descriptor? in descriptors.values {
            iconv_close(descriptor)
        }
    }

    /// Converts `bytes` from the charset `label` (nil or empty means US-ASCII) to UTF-8.
    func convert(_ bytes: UnsafeBufferPointer<UInt8>, charset label: String?) -> String {
        var name = Self.canonicalName(label ?? "")
        if name == "ISO-2022-JP-3", bytes.contains(where: { $0 >= 0x80 }) {
            // ISO-2022-JP is 7-bit; 8-bit bytes under that label are Shift_JIS in practice.
            name = "CP932"
        }
        switch name {
        case "us-ascii":
            if bytes.allSatisfy({ $0 < 0x80 }) {
                return String(decoding: bytes, as: UTF8.self)
            }
            // 8-bit text labelled ASCII (or unlabelled) is usually UTF-8 today, and
            // Japanese or windows-1252 in older mail; none of these readings loses a byte.
            if let text = String(validating: bytes, as: UTF8.self) {
                return text
            }
            return sniffedJapanese(bytes) ?? Self.windows1252(bytes)
        case "utf-8":
            return repairingUTF8(bytes)
        default:
            // Text in UTF-8 under a legacy label is common, and valid UTF-8 with 8-bit bytes
            // almost never happens by chance in a legacy charset.
            if !Self.sevenBitOrWide.contains(name), bytes.contains(where: { $0 >= 0x80 }),
               let text = String(validating: bytes, as: UTF8.self) {
                return text
            }
            return name == "windows-1252" ? Self.windows1252(bytes) : convertWithIconv(bytes, name: name)
        }
    }

    /// Charsets whose bytes are not a superset of ASCII text, where the UTF-8 check means
    /// nothing.
    private static let sevenBitOrWide: Set<String> = ["ISO-2022-JP-3", "UTF-7", "UTF-16", "UTF-16LE", "UTF-16BE", "UTF-32",
                                                      "UCS-4", "ISO-2022-KR", "ISO-2022-CN", "HZ-GB-2312"]

    /// Reads unlabelled 8-bit text as Shift_JIS or EUC-JP when it converts without error and
    /// has kana (Japanese syllables) in it; nil otherwise. Japanese mail of the 2000s often
    /// came without a charset.
    private func sniffedJapanese(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        for candidate in ["CP932", "EUC-JP-MS"] {
            let before = replacements
            let text = convertWithIconv(bytes, name: candidate)
            let failed = replacements != before
            replacements = before
            guard !failed else { continue }
            let kana = text.unicodeScalars.count { (0x3041...0x30FF).contains($0.value) || (0xFF66...0xFF9D).contains($0.value) }
            let nonASCII = text.unicodeScalars.count { $0.value >= 0x80 }
            if kana >= 3 && kana * 10 >= nonASCII {
                return text
            }
        }
        return nil
    }

    /// Takes back replacements counted by a trial conversion whose result was not used.
    func forgetReplacements(_ count: Int) {
        replacements = max(0, replacements - count)
    }

    func convert(_ bytes: [UInt8], charset label: String?) -> String {
        bytes.withUnsafeBufferPointer { convert($0, charset: label) }
    }

    /// Decodes UTF-8, replacing each invalid sequence with U+FFFD and counting it.
    func repairingUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) {
            return text
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let produced = Self.countReplacementCharacters(in: Array(text.utf8))
        let present = Self.countReplacementCharacters(in: Array(bytes))
        replacements += max(1, produced - present)
        return text
    }

    private static func countReplacementCharacters(in bytes: [UInt8]) -> Int {
        guard bytes.count >= 3 else { return 0 }
        var count = 0
        var index = 0
        while index + 2 < bytes.count {
            if bytes[index] == 0xEF && bytes[index + 1] == 0xBF && bytes[index + 2] == 0xBD {
                count += 1
                index += 3
            } else {
                index += 1
            }
        }
        return count
    }

    // MARK: iconv

    private func convertWithIconv(_ bytes: UnsafeBufferPointer<UInt8>, name: String) -> String {
        guard let descriptor = descriptor(for: name) else {
            return repairingUTF8(bytes)
        }
        // Start from the initial shift state: ISO-2022-JP and UTF-7 are stateful.
        iconv(descriptor, nil, nil, nil, nil)

        var output = [UInt8](repeating: 0, count: bytes.count * 4 + 16)
        var written = 0
        var inputOffset = 0
        while inputOffset < bytes.count {
            let step = iconvStep(descriptor, bytes, from: inputOffset, into: &output, at: written)
            inputOffset = step.inputOffset
            written = step.written
            switch step.stop {
            case .done:
                break
            case .outputFull:
                output.append(contentsOf: repeatElement(0, count: max(64, output.count)))
            case .invalidSequence, .incompleteSequence:
                // Skip one byte and mark the spot; for an incomplete sequence at the end of
                // the input this also ends the loop.
                ensureCapacity(&output, written + 3)
                output[written] = 0xEF
                output[written + 1] = 0xBF
                output[written + 2] = 0xBD
                written += 3
                inputOffset += 1
                replacements += 1
            }
        }
        // Flush the shift state back to the initial one.
        ensureCapacity(&output, written + 16)
        output.withUnsafeMutableBufferPointer { buffer in
            var outPointer: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(buffer.baseAddress! + written)
                .assumingMemoryBound(to: CChar.self)
            var outLeft = buffer.count - written
            iconv(descriptor, nil, nil, &outPointer, &outLeft)
            written = buffer.count - outLeft
        }
        return String(decoding: output[..<written], as: UTF8.self)
    }

    private enum IconvStop {
        case done, outputFull, invalidSequence, incompleteSequence
    }

    /// Runs one iconv call from `inputOffset`; returns how far input and output got and why it stopped.
    private func iconvStep(_ descriptor: iconv_t, _ bytes: UnsafeBufferPointer<UInt8>, from inputOffset: Int,
                           into output: inout [UInt8], at written: Int)
        -> (inputOffset: Int, written: Int, stop: IconvStop) {
        guard let base = bytes.baseAddress else { return (inputOffset, written, .done) }
        return output.withUnsafeMutableBufferPointer { buffer in
            var inPointer: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(mutating: base + inputOffset)
                .assumingMemoryBound(to: CChar.self)
            var inLeft = bytes.count - inputOffset
            var outPointer: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(buffer.baseAddress! + written)
                .assumingMemoryBound(to: CChar.self)
            var outLeft = buffer.count - written
            let result = iconv(descriptor, &inPointer, &inLeft, &outPointer, &outLeft)
            let error = errno
            let consumed = bytes.count - inLeft
            let produced = buffer.count - outLeft
            if result != -1 {
                return (consumed, produced, .done)
            }
            switch error {
            case E2BIG: return (consumed, produced, .outputFull)
            case EINVAL: return (consumed, produced, .incompleteSequence)
            default: return (consumed, produced, .invalidSequence)
            }
        }
    }

    private func ensureCapacity(_ output: inout [UInt8], _ needed: Int) {
        if output.count < needed {
            output.append(contentsOf: repeatElement(0, count: needed - output.count + 64))
        }
    }

    /// Returns the descriptor for a canonical name, opening it on first use; nil (and the
    /// name listed as unknown) when iconv rejects it or too many are open.
    private func descriptor(for name: String) -> iconv_t? {
        if let known = descriptors[name] {
            return known
        }
        var opened: iconv_t?
        if descriptors.count < Self.maximumOpenCharsets, Self.isPlausibleLabel(name) {
            let descriptor = iconv_open("UTF-8", name)
            if descriptor != UnsafeMutableRawPointer(bitPattern: -1) {
                opened = descriptor
            }
        }
        if opened == nil, !unknownCharsets.contains(name), unknownCharsets.count < Self.maximumOpenCharsets {
            unknownCharsets.append(name)
        }
        if descriptors.count < Self.maximumOpenCharsets * 2 {
            descriptors[name] = .some(opened)
        }
        return opened
    }

    /// Only letters, digits and "-_.:" reach iconv_open: glibc reads "/" in a name as the
    /// start of conversion options such as //TRANSLIT.
    private static func isPlausibleLabel(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maximumLabelBytes && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x3A
        }
    }

    // MARK: Names

    /// Returns the name a label is converted under: "us-ascii", "utf-8" and "windows-1252"
    /// for the charsets converted here, else the iconv name of the charset or its superset.
    static func canonicalName(_ label: String) -> String {
        var name = label.trimmingWhitespace().lowercased()
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
            name = String(name.dropFirst().dropLast())
        }
        // RFC 2231 and RFC 2184 allow "charset*language"; only the charset matters here.
        if let star = name.firstIndex(of: "*") {
            name = String(name[..<star])
        }
        if let alias = aliases[name] {
            return alias
        }
        return name.uppercased()
    }

    private static let aliases: [String: String] = {
        var table: [String: String] = [:]
        let groups: [(String, [String])] = [
            ("us-ascii", ["", "us-ascii", "ascii", "us", "ansi_x3.4-1968", "iso646-us", "default", "x-unknown", "unknown"]),
            ("utf-8", ["utf-8", "utf8", "x-utf-8", "unicode-1-1-utf-8", "unicode-2-0-utf-8"]),
            ("windows-1252", ["iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "cp819", "ibm819",
                              "windows-1252", "cp1252", "x-cp1252", "ansi"]),
            ("GB18030", ["gb2312", "gb_2312-80", "csgb2312", "euc-cn", "x-euc-cn", "gbk", "x-gbk", "cp936", "ms936",
                         "windows-936", "chinese", "gb18030"]),
            ("CP932", ["shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis", "windows-31j", "cp932",
                       "x-ms-cp932", "ms932"]),
            ("ISO-2022-JP-3", ["iso-2022-jp", "csiso2022jp", "iso-2022-jp-1", "iso-2022-jp-3"]),
            ("EUC-JP-MS", ["euc-jp", "x-euc-jp", "eucjp", "cseucpkdfmtjapanese"]),
            ("CP949", ["euc-kr", "ks_c_5601-1987", "ks_c_5601", "ksc5601", "ksc_5601", "cp949", "uhc", "windows-949",
                       "x-windows-949", "cseuckr"]),
            ("BIG5-HKSCS", ["big5", "big-5", "cn-big5", "x-x-big5", "csbig5", "big5-hkscs"]),
            ("ISO-8859-8", ["iso-8859-8-i", "iso-8859-8-e", "iso-8859-8", "visual", "logical"]),
            ("ISO-8859-6", ["iso-8859-6-i", "iso-8859-6-e", "iso-8859-6"]),
            ("UTF-7", ["utf-7", "unicode-1-1-utf-7", "x-unicode-2-0-utf-7"]),
            ("UTF-16", ["utf-16", "unicode", "ucs-2"]),
            ("MACINTOSH", ["macintosh", "x-mac-roman", "mac", "csmacintosh"]),
            ("TIS-620", ["tis-620", "windows-874", "cp874", "iso-8859-11"]),
        ]
        for (name, labels) in groups {
            for label in labels {
                table[label] = name
            }
        }
        return table
    }()

    // MARK: windows-1252

    /// Characters of windows-1252 bytes 0x80-0x9F; the five undefined bytes map to the C1
    /// control of the same value, as browsers decode them, so no byte is lost.
    private static let windows1252High: [UInt32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
        0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ]

    /// The UTF-8 encoding of each byte 0x80-0xFF under windows-1252: two or three bytes,
    /// with a zero third byte for the two-byte ones.
    private static let windows1252UTF8: [(UInt8, UInt8, UInt8)] = (0x80...0xFF).map { byte in
        let scalar = byte < 0xA0 ? windows1252High[byte - 0x80] : UInt32(byte)
        var encoded: [UInt8] = []
        appendUTF8(scalar, to: &encoded)
        return (encoded[0], encoded[1], encoded.count > 2 ? encoded[2] : 0)
    }

    static func windows1252(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        // Each byte becomes at most three.
        String(unsafeUninitializedCapacity: bytes.count * 3) { output in
            var written = 0
            windows1252UTF8.withUnsafeBufferPointer { table in
                for byte in bytes {
                    if byte < 0x80 {
                        output[written] = byte
                        written += 1
                        continue
                    }
                    let encoded = table[Int(byte) - 0x80]
                    output[written] = encoded.0
                    output[written + 1] = encoded.1
                    written += 2
                    if encoded.2 != 0 {
                        output[written] = encoded.2
                        written += 1
                    }
                }
            }
            return written
        }
    }
}

/// Appends the UTF-8 encoding of a scalar value below U+10000 or up to U+10FFFF.
func appendUTF8(_ scalar: UInt32, to output: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        output.append(UInt8(scalar))
    case 0x80..<0x800:
        output.append(UInt8(0xC0 | (scalar >> 6)))
        output.append(UInt8(0x80 | (scalar & 0x3F)))
    case 0x800..<0x10000:
        output.append(UInt8(0xE0 | (scalar >> 12)))
        output.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        output.append(UInt8(0x80 | (scalar & 0x3F)))
    default:
        output.append(UInt8(0xF0 | ((scalar >> 18) & 0x07)))
        output.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
        output.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        output.append(UInt8(0x80 | (scalar & 0x3F)))
    }
}

extension StringProtocol {
    /// Returns the text without leading and trailing spaces, tabs, CR and LF; written here
    /// because the decoder does not import Foundation.
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
