// Tests for header value decoding: unfolding, RFC 2047 encoded words, MIME parameters with
// RFC 2231 continuations, and address lists.

import XCTest
@testable import EgressCore

final class HeaderDecodingTests: XCTestCase {
    private func decode(_ text: String) -> String {
        HeaderText.decode(HeaderText.unfold(Array(text.utf8)), converter: CharsetConverter())
    }

    func testUnfoldingKeepsTheWhiteSpace() {
        let cases = [
            ("a\r\n b", "a b"), ("a\n\tb", "a\tb"), ("a\r b", "a b"), ("a\r\nb", "a b"), ("plain", "plain"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(String(decoding: HeaderText.unfold(Array(input.utf8)), as: UTF8.self), expected, input)
        }
    }

    func testEncodedWords() {
        let cases: [(String, String)] = [
            ("=?UTF-8?B?VHJhbnNmZXJlbmNpYSBMw61uZWE=?=", "Transferencia Línea"),
            ("=?iso-8859-1?q?caf=E9_cr=E8me?=", "café crème"),
            ("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
            ("=?windows-1251?B?z/Do4uXy?=", "Привет"),
            ("=?gb2312?B?1tDOxA==?=", "中文"),
            ("=?koi8-r?Q?=F0=D2=C9=D7=C5=D4?=", "Привет"),
            // White space between two encoded words disappears, but not around literal text.
            ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
            ("=?utf-8?q?a?=  \r\n =?utf-8?q?b?= c", "ab c"),
            ("x =?utf-8?q?a?= y", "x a y"),
            // A UTF-8 character split across two words survives.
            ("=?UTF-8?B?5Lit?= =?UTF-8?B?5paH?=", "中文"),
            ("=?UTF-8?Q?=E4=B8?= =?UTF-8?Q?=AD?=", "中"),
            // RFC 2231 language tag in an encoded word.
            ("=?utf-8*en?q?hello?=", "hello"),
            // Malformed words stay as written.
            ("=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
            ("=?utf-8?q?no end", "=?utf-8?q?no end"),
            ("=??q?abc?=", "=??q?abc?="),
            ("=?utf-8?q?has space?=", "=?utf-8?q?has space?="),
            // Raw 8-bit text outside encoded words.
            ("caf\u{E9}", "café"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(decode(input), expected, input)
        }
    }

    func testRawISO2022JPInHeaderIsDecoded() {
        let raw: [UInt8] = [0x1B, 0x24, 0x42, 0x46, 0x7C, 0x4B, 0x5C, 0x1B, 0x28, 0x42]
        XCTAssertEqual(HeaderText.decode(raw, converter: CharsetConverter()), "日本")
    }

    func testParameters() {
        struct Case {
            var value: String
            var type: String
            var parameters: [String: String]
        }
        let cases = [
            Case(value: "text/plain; charset=\"UTF-8\"; format=flowed", type: "text/plain",
                 parameters: ["charset": "UTF-8", "format": "flowed"]),
            Case(value: "MULTIPART/MIXED;boundary=owatagusiam", type: "multipart/mixed", parameters: ["boundary": "owatagusiam"]),
            Case(value: "multipart/mixed; boundary=\"a;b\\\"c\"", type: "multipart/mixed", parameters: ["boundary": "a;b\"c"]),
            Case(value: "attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf", type: "attachment",
                 parameters: ["filename": "€ rates.pdf"]),
            Case(value: "attachment; filename*0*=iso-8859-1'de'Gr%FC; filename*1=\"sse.txt\"", type: "attachment",
                 parameters: ["filename": "Grüsse.txt"]),
            Case(value: "attachment; filename=\"=?UTF-8?B?cmVjaG51bmcucGRmLmV4ZQ==?=\"", type: "attachment",
                 parameters: ["filename": "rechnung.pdf.exe"]),
            Case(value: "application/octet-stream; name=invoice.exe", type: "application/octet-stream",
                 parameters: ["name": "invoice.exe"]),
            Case(value: "text/plain (a comment); charset=us-ascii", type: "text/plain", parameters: ["charset": "us-ascii"]),
            Case(value: "text/plain; =novalue; charset", type: "text/plain", parameters: [:]),
        ]
        for item in cases {
            let parsed = HeaderParameters(Array(item.value.utf8), converter: CharsetConverter())
            XCTAssertEqual(parsed.value, item.type, item.value)
            XCTAssertEqual(parsed.parameters, item.parameters, item.value)
        }
    }

    func testAddressLists() {
        struct Case {
            var value: String
            var expected: [MailboxAddress]
        }
        let cases = [
            Case(value: "\"Doe, John\" <john@example.com>", expected: [MailboxAddress(displayName: "Doe, John", address: "john@example.com")]),
            Case(value: "a@example.com, B <b@example.org>", expected: [
                MailboxAddress(displayName: "", address: "a@example.com"), MailboxAddress(displayName: "B", address: "b@example.org"),
            ]),
            Case(value: "jdoe@example.com (John Doe)", expected: [MailboxAddress(displayName: "John Doe", address: "jdoe@example.com")]),
            Case(value: "undisclosed-recipients:;", expected: []),
            Case(value: "friends: a@example.com, b@example.com;", expected: [
                MailboxAddress(displayName: "", address: "a@example.com"), MailboxAddress(displayName: "", address: "b@example.com"),
            ]),
            Case(value: "=?utf-8?B?U8O4cmVu?= <soren@example.dk>", expected: [MailboxAddress(displayName: "Søren", address: "soren@example.dk")]),
            // The decoded display name may contain a comma; the list is split before decoding.
            Case(value: "=?utf-8?q?Doe=2C_John?= <john@example.com>", expected: [
                MailboxAddress(displayName: "Doe, John", address: "john@example.com"),
            ]),
            Case(value: "\"paypal@paypal.com\" <x@evil.example>", expected: [
                MailboxAddress(displayName: "paypal@paypal.com", address: "x@evil.example"),
            ]),
            Case(value: "<@relay.example:user@example.net>", expected: [MailboxAddress(displayName: "", address: "user@example.net")]),
            Case(value: "iplvwq@", expected: [MailboxAddress(displayName: "", address: "iplvwq@")]),
        ]
        for item in cases {
            XCTAssertEqual(AddressListParser.parse(Array(item.value.utf8)), item.expected, item.value)
        }
        XCTAssertNil(MailboxAddress(displayName: "", address: "iplvwq@").domain)
        XCTAssertEqual(MailboxAddress(displayName: "", address: "A@Example.COM.").domain, "example.com")
    }
}
