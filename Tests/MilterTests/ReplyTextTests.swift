// Tests of reply text cleaning and validation, and of macro lookup, without libmilter.
@testable import Milter
import XCTest

final class ReplyTextTests: XCTestCase {
    func testTextSplitsIntoLines() {
        let reply = SMTPReply(code: 550, enhancedStatus: "5.7.1", text: "first\r\nsecond\nthird")

        XCTAssertEqual(reply.lines, ["first", "second", "third"])
    }

    func testSafeLinesCleanText() {
        let cases: [(line: String, safe: String)] = [
            ("plain text", "plain text"),
            ("100% sure", "100%% sure"),
            ("%%", "%%%%"),
            ("carriage\rreturn", "carriagereturn"),
            ("line\nfeed", "linefeed"),
            ("nul\0byte", "nulbyte"),
            ("", ""),
        ]
        for (line, safe) in cases {
            let reply = SMTPReply(code: 550, enhancedStatus: nil, lines: [line])
            XCTAssertEqual(reply.safeLines, [safe], line.debugDescription)
        }
    }

    func testSafeLinesCapLineLength() {
        let long = String(repeating: "a", count: 2000)
        let reply = SMTPReply(code: 550, enhancedStatus: nil, lines: [long])

        XCTAssertEqual(reply.safeLines[0].utf8.count, SMTPReply.maximumLineBytes)
    }

    func testSafeLinesNeverSplitEscapeOrCharacter() {
        // 979 bytes of "a" leave one byte: neither "%%" nor the two bytes of "é" fit.
        let prefix = String(repeating: "a", count: SMTPReply.maximumLineBytes - 1)
        for tail in ["%", "é"] {
            let reply = SMTPReply(code: 550, enhancedStatus: nil, lines: [prefix + tail + "b"])
            XCTAssertEqual(reply.safeLines, [prefix], tail)
        }
    }

    func testSafeLinesKeepAtMost32Lines() {
        let reply = SMTPReply(code: 451, enhancedStatus: nil, lines: (1...40).map { "line \($0)" })

        XCTAssertEqual(reply.safeLines.count, SMTPReply.maximumLineCount)
        XCTAssertEqual(reply.safeLines.last, "line 32")
    }

    func testEmptyLinesBecomeOneEmptyLine() {
        XCTAssertEqual(SMTPReply(code: 451, enhancedStatus: nil, lines: []).safeLines, [""])
    }

    func testValidationAcceptsMatchingCodes() {
        let valid = [(451, "4.7.1"), (550, "5.7.1"), (421, nil), (554, "5.123.456")]
        for (code, status) in valid {
            XCTAssertNil(SMTPReply(code: code, enhancedStatus: status, text: "x").validationError, "\(code) \(status ?? "-")")
        }
    }

    func testValidationRejectsInvalidCodes() {
        let invalid: [(Int, String?)] = [
            (250, nil), (399, nil), (600, nil),
            (550, "4.7.1"), (451, "5.7.1"),
            (550, "5.7"), (550, "5.7.1.2"), (550, "5.x.1"), (550, "55.7.1"), (550, "5.1234.1"), (550, ""),
        ]
        for (code, status) in invalid {
            XCTAssertNotNil(SMTPReply(code: code, enhancedStatus: status, text: "x").validationError, "\(code) \(status ?? "-")")
        }
    }

    func testMacroLookupAcceptsNamesWithoutBraces() {
        let macros = Macros(["{auth_authen}": "alice", "i": "4ABC", "j": "mx.example"])

        XCTAssertEqual(macros["{auth_authen}"], "alice")
        XCTAssertEqual(macros["auth_authen"], "alice")
        XCTAssertEqual(macros["i"], "4ABC")
        XCTAssertEqual(macros["{i}"], "4ABC")
        XCTAssertNil(macros["daemon_name"])
    }
}
