// Tests for the submission stamp: its header format and MAC, what the wrapper's stamping step
// does to a message, and reading the key file.

import Foundation
import XCTest
@testable import EgressCore

final class SubmissionStampTests: XCTestCase {
    static let key = try! StampKey(bytes: Array("0123456789abcdef0123456789abcdef".utf8))
    static let otherKey = try! StampKey(bytes: Array("fedcba9876543210fedcba9876543210".utf8))
    static let nonce: [UInt8] = Array(0..<16)

    static func sampleStamp() -> SubmissionStamp {
        var stamp = SubmissionStamp(
            uid: 1001, account: "alice", workingDirectory: "/home/alice/public_html/wp-content/uploads",
            script: "/home/alice/public_html/wp-content/uploads/x.php", scriptSource: .phpHeader,
            timestamp: 1_700_000_000, nonce: nonce, messageID: "<abc.123@shop.example>",
            envelopeSender: "alice@shop.example")
        stamp.sign(with: key)
        return stamp
    }

    private func parse(_ text: String) throws -> SubmissionStamp {
        try SubmissionStamp(parsing: Array(text.utf8))
    }

    // MARK: Format and MAC

    func testStampRoundTrip() throws {
        let stamp = Self.sampleStamp()
        let parsed = try parse(stamp.headerValue(nameLength: 18))
        XCTAssertEqual(parsed, stamp)
        XCTAssertTrue(parsed.hasValidMAC(for: Self.key))
        XCTAssertEqual(parsed.mac.count, 32)
    }

    func testAwkwardValuesRoundTrip() throws {
        let cases = [
            "",
            "/home/a b/semi;colon=equals%percent",
            "/srv/ünïcode/✓/x.php",
            "tab\there\nnewline\r",
            String(repeating: "/very-long-directory-name", count: 160),
        ]
        for value in cases {
            var stamp = Self.sampleStamp()
            stamp.workingDirectory = value
            stamp.script = value
            stamp.account = value
            stamp.sign(with: Self.key)
            for lineEnding in ["\n", "\r\n"] {
                let header = stamp.headerValue(nameLength: 18, lineEnding: lineEnding)
                let parsed = try parse(header)
                XCTAssertEqual(parsed, stamp, value)
                XCTAssertTrue(parsed.hasValidMAC(for: Self.key), value)
                let lines = header.components(separatedBy: lineEnding)
                XCTAssertTrue(lines.allSatisfy { $0.utf8.count <= 998 }, "a folded line is longer than 998 bytes")
                XCTAssertFalse(header.contains(" \(lineEnding)"), "no trailing space before a fold")
            }
        }
    }

    func testFoldingKeepsShortStampOnFewLines() {
        let header = Self.sampleStamp().headerValue(nameLength: 18)
        XCTAssertTrue(header.hasPrefix("v=1; uid=1001; account=alice;"), header)
        for line in header.split(separator: "\n") {
            XCTAssertLessThanOrEqual(line.utf8.count, 78 + 64, String(line))
        }
    }

    func testTamperedFieldFailsMAC() {
        let stamp = Self.sampleStamp()
        let tamperings: [(field: String, change: (inout SubmissionStamp) -> Void)] = [
            ("uid", { $0.uid = 1002 }),
            ("account", { $0.account = "bob" }),
            ("cwd", { $0.workingDirectory = "/home/bob" }),
            ("script", { $0.script = "/home/alice/public_html/index.php" }),
            ("source", { $0.scriptSource = .environment }),
            ("time", { $0.timestamp += 3600 }),
            ("nonce", { $0.nonce[0] ^= 1 }),
            ("msgid", { $0.messageID = "<other@shop.example>" }),
            ("from", { $0.envelopeSender = "bob@shop.example" }),
            ("mac", { $0.mac[5] ^= 0x80 }),
        ]
        for (field, change) in tamperings {
            var tampered = stamp
            change(&tampered)
            XCTAssertFalse(tampered.hasValidMAC(for: Self.key), "changed \(field)")
            // Through the header text too, as the daemon sees it.
            let reparsed = try? parse(tampered.headerValue(nameLength: 18))
            XCTAssertEqual(reparsed, tampered, field)
            XCTAssertEqual(reparsed?.hasValidMAC(for: Self.key), false, field)
        }
    }

    func testWrongKeyFailsMAC() {
        XCTAssertFalse(Self.sampleStamp().hasValidMAC(for: Self.otherKey))
    }

    func testHeaderTextEditFailsMAC() throws {
        let header = Self.sampleStamp().headerValue(nameLength: 18)
        let edited = header.replacingOccurrences(of: "uid=1001", with: "uid=1000")
        XCTAssertNotEqual(edited, header)
        XCTAssertFalse(try parse(edited).hasValidMAC(for: Self.key))
    }

    func testRefoldedHeaderStillVerifies() throws {
        let header = Self.sampleStamp().headerValue(nameLength: 18)
        let refolded = header.replacingOccurrences(of: "\n\t", with: " ").replacingOccurrences(of: "; ", with: ";\r\n    ")
        XCTAssertTrue(try parse(refolded).hasValidMAC(for: Self.key))
    }

    func testMalformedStampsAreRejected() {
        let valid = Self.sampleStamp().headerValue(nameLength: 18).replacingOccurrences(of: "\n\t", with: " ")
        let mac = "mac=" + StampEncoding.hex(Self.sampleStamp().mac)
        let cases: [(name: String, text: String, message: String)] = [
            ("empty", "", "stamp field 'v' is missing"),
            ("no mac", valid.replacingOccurrences(of: "; " + mac, with: ""), "stamp field 'mac' is missing"),
            ("unknown field", valid + "; extra=1", "unknown stamp field 'extra'"),
            ("repeated field", valid + "; uid=5", "stamp field 'uid' appears twice"),
            ("field without value sign", valid + "; junk", "field without '=' in the stamp"),
            ("other version", valid.replacingOccurrences(of: "v=1;", with: "v=2;"), "unsupported stamp version '2'"),
            ("negative uid", valid.replacingOccurrences(of: "uid=1001", with: "uid=-1"), "stamp field 'uid' is not a uid"),
            ("huge uid", valid.replacingOccurrences(of: "uid=1001", with: "uid=4294967296"), "stamp field 'uid' is not a uid"),
            ("bad time", valid.replacingOccurrences(of: "time=1700000000", with: "time=soon"), "stamp field 'time' is not a time in seconds"),
            ("bad source", valid.replacingOccurrences(of: "source=php-header", with: "source=guess"), "stamp field 'source' has an unknown value"),
            ("short nonce", valid.replacingOccurrences(of: "nonce=000102", with: "nonce=0102"), "stamp field 'nonce' is not 16 bytes of hex"),
            ("short mac", valid.replacingOccurrences(of: mac, with: "mac=abcd"), "stamp field 'mac' is not 32 bytes of hex"),
            ("bad escape", valid.replacingOccurrences(of: "account=alice", with: "account=al%2"), "stamp field 'account' has a bad percent escape"),
            ("not UTF-8", valid.replacingOccurrences(of: "account=alice", with: "account=%FF%FE"), "stamp field 'account' is not UTF-8"),
            ("raw separator byte", valid.replacingOccurrences(of: "account=alice", with: "account=a\"b"), "stamp field 'account' contains a byte that must be percent-encoded"),
        ]
        for item in cases {
            XCTAssertThrowsError(try parse(item.text), item.name) { error in
                XCTAssertEqual((error as? SubmissionStampError)?.message, item.message, item.name)
            }
        }
    }

    func testOversizedStampIsRejected() {
        let text = "v=1; account=" + String(repeating: "a", count: SubmissionStamp.maximumHeaderValueBytes)
        XCTAssertThrowsError(try parse(text)) { error in
            XCTAssertTrue("\(error)".contains("the maximum is \(SubmissionStamp.maximumHeaderValueBytes)"), "\(error)")
        }
    }

    // MARK: Stamping a message

    private let submitter = Submitter(uid: 1001, account: "alice", workingDirectory: "/home/alice/public_html",
                                      scriptFilename: nil, envelopeSender: "", hostname: "web1.example")

    private func stamp(_ message: String, key: StampKey? = SubmissionStampTests.key,
                       submitter: Submitter? = nil) -> StampingResult {
        SubmissionStamper.stamp(Array(message.utf8), headerName: "X-Egress-Submitter", key: key,
                                submitter: submitter ?? self.submitter, timestamp: 1_700_000_000, nonce: Self.nonce)
    }

    private func text(_ result: StampingResult) -> String {
        String(decoding: result.message, as: UTF8.self)
    }

    /// Returns the stamp header values of a stamped message.
    private func stampValues(_ result: StampingResult) -> [[UInt8]] {
        RawMessage(result.message).values(named: "X-Egress-Submitter")
    }

    func testStampingAddsOneVerifiableStampAtTop() throws {
        let message = "To: bob@example.net\nSubject: hi\nMessage-ID: <m1@shop.example>\n\nBody line\n"
        let result = stamp(message)
        let output = text(result)

        XCTAssertTrue(output.hasPrefix("X-Egress-Submitter: v=1; uid=1001;"), output)
        XCTAssertTrue(output.hasSuffix("To: bob@example.net\nSubject: hi\nMessage-ID: <m1@shop.example>\n\nBody line\n"), output)
        XCTAssertFalse(result.addedMessageID)
        XCTAssertEqual(result.removedStampCount, 0)

        let values = stampValues(result)
        XCTAssertEqual(values.count, 1)
        let parsed = try SubmissionStamp(parsing: values[0])
        XCTAssertEqual(parsed, result.stamp)
        XCTAssertTrue(parsed.hasValidMAC(for: Self.key))
        XCTAssertEqual(parsed.messageID, "<m1@shop.example>")
        XCTAssertEqual(parsed.uid, 1001)
        XCTAssertEqual(parsed.account, "alice")
        XCTAssertEqual(parsed.workingDirectory, "/home/alice/public_html")
        XCTAssertEqual(parsed.script, "")
        XCTAssertEqual(parsed.scriptSource, .none)
    }

    func testStampingRemovesSmuggledStamps() throws {
        let forged = "X-Egress-Submitter: v=1; uid=0; account=root\n"
        let message = forged + "To: bob@example.net\nx-egress-submitter: v=1;\n\tuid=1002\nSubject: hi\n\nX-Egress-Submitter: in the body stays\n"
        let result = stamp(message)
        XCTAssertEqual(result.removedStampCount, 2)
        XCTAssertEqual(stampValues(result).count, 1)
        XCTAssertTrue(text(result).hasSuffix("\nSubject: hi\n\nX-Egress-Submitter: in the body stays\n"), text(result))
        XCTAssertFalse(text(result).contains("uid=0"))
        XCTAssertFalse(text(result).contains("uid=1002"))
    }

    func testStampingWithoutKeyOnlyRemovesStamps() {
        let message = "X-Egress-Submitter: forged\r\nTo: bob@example.net\r\n\r\nBody\r\n"
        let result = stamp(message, key: nil)
        XCTAssertNil(result.stamp)
        XCTAssertEqual(result.removedStampCount, 1)
        XCTAssertEqual(text(result), "To: bob@example.net\r\n\r\nBody\r\n")
    }

    func testStampingKeepsCRLFLineEndings() throws {
        let result = stamp("To: bob@example.net\r\nSubject: hi\r\n\r\nBody\r\n")
        let output = text(result)
        XCTAssertFalse(output.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "a bare LF in CRLF output")
        XCTAssertTrue(output.hasSuffix("To: bob@example.net\r\nSubject: hi\r\n\r\nBody\r\n"))
        XCTAssertTrue(try SubmissionStamp(parsing: stampValues(result)[0]).hasValidMAC(for: Self.key))
    }

    func testStampingAddsMissingMessageID() throws {
        let result = stamp("To: bob@example.net\n\nBody\n")
        XCTAssertTrue(result.addedMessageID)
        let ids = RawMessage(result.message).values(named: "message-id")
        XCTAssertEqual(ids.count, 1)
        let id = String(decoding: ids[0], as: UTF8.self)
        XCTAssertEqual(id, "<1700000000.000102030405060708090a0b0c0d0e0f.egress@web1.example>")
        XCTAssertEqual(result.stamp?.messageID, id)
    }

    func testStampingMessageWithoutHeaders() throws {
        let cases: [(input: String, expectedEnd: String)] = [
            ("", "\n"),
            ("\nBody only\n", "\n\nBody only\n"),
            ("Just a line of text\n", "\n\nJust a line of text\n"),
        ]
        for (input, expectedEnd) in cases {
            let result = stamp(input)
            let output = text(result)
            XCTAssertTrue(output.hasPrefix("X-Egress-Submitter: "), input.debugDescription)
            XCTAssertTrue(output.hasSuffix(">" + expectedEnd), "\(input.debugDescription) gave \(output.debugDescription)")
            XCTAssertEqual(stampValues(result).count, 1, input.debugDescription)
        }
    }

    func testStampingKeepsMboxFromLineFirst() {
        let result = stamp("From alice Mon Jan  1 00:00:00 2024\nTo: bob@example.net\n\nBody\n")
        XCTAssertTrue(text(result).hasPrefix("From alice Mon Jan  1 00:00:00 2024\nX-Egress-Submitter: "), text(result))
    }

    func testScriptSources() {
        let cases: [(name: String, scriptFilename: String?, headers: String, script: String, source: ScriptSource)] = [
            ("nothing known", nil, "", "", .none),
            ("PHP header with the caller's uid", nil, "X-PHP-Originating-Script: 1001:x.php\n",
             "/home/alice/public_html/x.php", .phpHeader),
            ("PHP header with another uid", nil, "X-PHP-Originating-Script: 33:x.php\n", "", .none),
            ("second PHP header matches", nil, "X-PHP-Originating-Script: 0:fake.php\nX-PHP-Originating-Script: 1001:real.php\n",
             "/home/alice/public_html/real.php", .phpHeader),
            ("malformed PHP header", nil, "X-PHP-Originating-Script: x.php\n", "", .none),
            ("environment wins", "/home/alice/public_html/index.php", "X-PHP-Originating-Script: 1001:mailer.php\n",
             "/home/alice/public_html/index.php", .environment),
            ("relative environment path", "cgi/send.php", "", "/home/alice/public_html/cgi/send.php", .environment),
        ]
        for item in cases {
            var submitter = self.submitter
            submitter.scriptFilename = item.scriptFilename
            let result = stamp(item.headers + "To: bob@example.net\n\nBody\n", submitter: submitter)
            XCTAssertEqual(result.stamp?.script, item.script, item.name)
            XCTAssertEqual(result.stamp?.scriptSource, item.source, item.name)
        }
    }

    func testEnvelopeSenderIsSigned() throws {
        var submitter = self.submitter
        submitter.envelopeSender = "alice@shop.example"
        let result = stamp("To: bob@example.net\n\nBody\n", submitter: submitter)
        let parsed = try SubmissionStamp(parsing: stampValues(result)[0])
        XCTAssertEqual(parsed.envelopeSender, "alice@shop.example")
        XCTAssertTrue(parsed.hasValidMAC(for: Self.key))
    }

    func testLongFieldsAreTruncated() {
        var submitter = self.submitter
        submitter.workingDirectory = "/" + String(repeating: "é", count: 3000)
        let result = stamp("To: bob@example.net\n\nBody\n", submitter: submitter)
        XCTAssertEqual(result.stamp?.workingDirectory.utf8.count, SubmissionStamp.maximumFieldBytes - 1)
        XCTAssertNotNil(try? SubmissionStamp(parsing: stampValues(result)[0]))
    }

    // MARK: Raw messages

    func testRawMessageFieldValues() {
        let message = RawMessage(Array("Subject:  folded\r\n\tsecond part \r\nTO : bob@example.net\r\n\r\nSubject: body\r\n".utf8))
        XCTAssertEqual(message.lineEnding, "\r\n")
        XCTAssertEqual(message.values(named: "subject").map { String(decoding: $0, as: UTF8.self) }, ["folded\tsecond part"])
        XCTAssertEqual(message.values(named: "To").map { String(decoding: $0, as: UTF8.self) }, ["bob@example.net"])
    }

    func testRawMessageWithoutEditsIsUnchanged() {
        let inputs = ["", "To: a\n", "To: a", "To: a\n\nBody", "Body only\n", "From x\nTo: a\n\nB\n", "To: a\r\n\r\n",
                      " leading continuation\nTo: a\n\n"]
        for input in inputs {
            XCTAssertEqual(RawMessage(Array(input.utf8)).bytes, Array(input.utf8), input.debugDescription)
        }
    }

    // MARK: Key file

    private func writeKeyFile(_ bytes: [UInt8], mode: Int) throws -> String {
        let path = NSTemporaryDirectory() + "egress-stamp-key-\(UUID().uuidString)"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testKeyFileIsRead() throws {
        let bytes = Array("0123456789abcdef0123456789abcdef\n".utf8)
        let path = try writeKeyFile(bytes, mode: 0o640)
        XCTAssertEqual(try StampKey.load(contentsOf: path).bytes, bytes)
    }

    func testKeyFileProblems() throws {
        let good = Array("0123456789abcdef0123456789abcdef".utf8)
        let readable = try writeKeyFile(good, mode: 0o644)
        let short = try writeKeyFile(Array("short".utf8), mode: 0o600)
        let long = try writeKeyFile([UInt8](repeating: 7, count: StampKey.maximumByteCount + 1), mode: 0o600)
        let missing = NSTemporaryDirectory() + "egress-stamp-key-missing-\(UUID().uuidString)"
        let cases: [(path: String, message: String)] = [
            (readable, "every user may read or write the stamp key file; run chmod 0640 on it and give it the wrapper's group"),
            (short, "the stamp key has 5 bytes; it needs at least 16, for example from 'head -c 32 /dev/urandom'"),
            (long, "the stamp key has 4097 bytes; the maximum is 4096"),
            (missing, "cannot open the stamp key file: No such file or directory"),
            (NSTemporaryDirectory(), "the stamp key file is not a regular file"),
        ]
        for (path, message) in cases {
            XCTAssertThrowsError(try StampKey.load(contentsOf: path), path) { error in
                XCTAssertEqual(error as? StampKeyError, StampKeyError(path: path, message: message))
            }
        }
    }

    func testKeyDescriptionHidesBytes() {
        XCTAssertEqual("\(Self.key)", "stamp key (32 bytes)")
        var settings = IdentitySettings()
        settings.stampKey = Self.key
        XCTAssertFalse("\(settings)".contains("0123456789abcdef"))
    }
}
