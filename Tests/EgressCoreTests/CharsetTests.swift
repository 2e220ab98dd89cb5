// Tests for charset conversion: each charset family converts to the expected text, labels
// map to the supersets mail uses, and bytes that cannot be converted are replaced and
// counted, never dropped.

import XCTest
@testable import EgressCore

final class CharsetTests: XCTestCase {
    func testCharsetsConvertToUTF8() {
        struct Case {
            var charset: String
            var bytes: [UInt8]
            var expected: String
        }
        let cases = [
            Case(charset: "koi8-r", bytes: [0xF0, 0xD2, 0xC9, 0xD7, 0xC5, 0xD4, 0x20, 0xCD, 0xC9, 0xD2], expected: "Привет мир"),
            Case(charset: "windows-1251", bytes: [0xCF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2, 0x20, 0xEC, 0xE8, 0xF0], expected: "Привет мир"),
            Case(charset: "GB2312", bytes: [0xD6, 0xD0, 0xCE, 0xC4, 0xB2, 0xE2, 0xCA, 0xD4], expected: "中文测试"),
            Case(charset: "gbk", bytes: [0xD6, 0xD0, 0xCE, 0xC4], expected: "中文"),
            Case(charset: "Shift_JIS", bytes: [0x93, 0xFA, 0x96, 0x7B, 0x8C, 0xEA, 0x83, 0x65, 0x83, 0x58, 0x83, 0x67],
                 expected: "日本語テスト"),
            Case(charset: "ISO-2022-JP",
                 bytes: [0x1B, 0x24, 0x42, 0x46, 0x7C, 0x4B, 0x5C, 0x38, 0x6C, 0x25, 0x46, 0x25, 0x39, 0x25, 0x48, 0x1B, 0x28, 0x42],
                 expected: "日本語テスト"),
            // ISO-2022-JP is 7-bit, so 8-bit bytes under that label are read as Shift_JIS.
            Case(charset: "iso-2022-jp", bytes: [0x93, 0xFA, 0x96, 0x7B], expected: "日本"),
            Case(charset: "windows-1252", bytes: [0x47, 0x72, 0xFC, 0xDF, 0x65, 0x20, 0x80], expected: "Grüße €"),
            Case(charset: "ISO-8859-1", bytes: [0x47, 0x72, 0xFC, 0xDF, 0x65], expected: "Grüße"),
            Case(charset: "\"iso-8859-7\"", bytes: [0xC5, 0xEB, 0xEB, 0xE7, 0xED, 0xE9, 0xEA, 0xDC], expected: "Ελληνικά"),
            Case(charset: "ks_c_5601-1987", bytes: [0xC7, 0xD1, 0xB1, 0xB9, 0xBE, 0xEE], expected: "한국어"),
            Case(charset: "utf-8", bytes: Array("naïve ✓".utf8), expected: "naïve ✓"),
            Case(charset: "us-ascii", bytes: Array("plain".utf8), expected: "plain"),
            // Unlabelled 8-bit text: UTF-8 when it is valid, else windows-1252.
            Case(charset: "", bytes: Array("café".utf8), expected: "café"),
            Case(charset: "", bytes: [0x63, 0x61, 0x66, 0xE9], expected: "café"),
        ]
        for item in cases {
            let converter = CharsetConverter()
            let text = converter.convert(item.bytes, charset: item.charset)
            XCTAssertEqual(text, item.expected, item.charset)
            XCTAssertEqual(converter.replacements, 0, item.charset)
            XCTAssertEqual(converter.unknownCharsets, [], item.charset)
        }
    }

    func testInvalidBytesAreReplacedAndCounted() {
        struct Case {
            var charset: String
            var bytes: [UInt8]
            var expected: String
            var replacements: Int
        }
        let cases = [
            Case(charset: "utf-8", bytes: [0x61, 0xFF, 0x62, 0xC3], expected: "a\u{FFFD}b\u{FFFD}", replacements: 2),
            // A replacement character that was in the input is not counted.
            Case(charset: "utf-8", bytes: Array("x\u{FFFD}".utf8) + [0xFE], expected: "x\u{FFFD}\u{FFFD}", replacements: 1),
            // 0x80 0x20 is no Shift_JIS character; the lead byte is replaced, the space kept.
            Case(charset: "shift_jis", bytes: [0x41, 0x81, 0x20, 0x42], expected: "A\u{FFFD} B", replacements: 1),
            // A truncated double-byte character at the end.
            Case(charset: "gb2312", bytes: [0xD6, 0xD0, 0xCE], expected: "中\u{FFFD}", replacements: 1),
        ]
        for item in cases {
            let converter = CharsetConverter()
            let text = converter.convert(item.bytes, charset: item.charset)
            XCTAssertEqual(text, item.expected, item.charset)
            XCTAssertEqual(converter.replacements, item.replacements, item.charset)
        }
    }

    func testUnknownCharsetIsListedAndReadAsUTF8() {
        let converter = CharsetConverter()
        let text = converter.convert([0x68, 0x69, 0xFF], charset: "x-no-such-charset")
        XCTAssertEqual(text, "hi\u{FFFD}")
        XCTAssertEqual(converter.unknownCharsets, ["X-NO-SUCH-CHARSET"])
        XCTAssertEqual(converter.replacements, 1)
    }

    func testLabelWithSlashNeverReachesIconv() {
        // glibc reads "//" as conversion options; such a label is unknown, not an option.
        let converter = CharsetConverter()
        XCTAssertEqual(converter.convert(Array("abc".utf8), charset: "UTF-8//TRANSLIT"), "abc")
        XCTAssertEqual(converter.unknownCharsets, ["UTF-8//TRANSLIT"])
    }

    func testLabelsMapToSupersets() {
        let cases = [
            ("GB2312", "GB18030"), ("Shift_JIS", "CP932"), ("EUC-KR", "CP949"), ("iso-8859-1", "windows-1252"),
            ("UTF8", "utf-8"), ("ascii", "us-ascii"), ("koi8-r", "KOI8-R"), ("utf-8*en", "utf-8"),
        ]
        for (label, expected) in cases {
            XCTAssertEqual(CharsetConverter.canonicalName(label), expected, label)
        }
    }
}
