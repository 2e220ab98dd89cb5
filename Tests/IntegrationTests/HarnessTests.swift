// Checks the test harness itself with Postfix alone, no milter: the throwaway instance relays
// SMTP and locally submitted mail to the sink, and the SMTP client's line-ending normalisation
// and dot-stuffing survive the trip. When these fail, the other integration tests cannot be
// trusted, whatever the daemon does.
import XCTest

final class HarnessTests: IntegrationTestCase {
    override class var usesMilter: Bool { false }

    func testSMTPMessageReachesSinkWithoutMilter() throws {
        let token = uniqueToken("harness-smtp")
        let recipient = "\(token)@remote.example"

        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: "sender@shop.example", to: [recipient],
            content: testMessage(from: "sender@shop.example", to: recipient, token: token))

        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        XCTAssertNotNil(result.queueID)
        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())
        let received = environment.postfix.sink.messages(to: recipient)
        XCTAssertEqual(received.count, 1)
        XCTAssertEqual(received.first?.sender, "sender@shop.example")
        XCTAssertEqual(received.first?.headerValues("Message-ID"), ["<\(token)@client.egress.test>"])
    }

    func testLocalSubmissionReachesSinkWithoutMilter() throws {
        let token = uniqueToken("harness-local")
        let recipient = "\(token)@remote.example"

        try environment.postfix.submitLocally(
            from: "script@shop.example", to: [recipient],
            content: testMessage(from: "script@shop.example", to: recipient, token: token))

        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())
        let received = environment.postfix.sink.messages(to: recipient)
        XCTAssertEqual(received.count, 1)
        XCTAssertEqual(received.first?.sender, "script@shop.example")
        XCTAssertTrue(environment.postfix.maillog().contains("from=<script@shop.example>"))
    }

    func testClientNormalisesLineEndingsAndDots() throws {
        let token = uniqueToken("harness-dots")
        let recipient = "\(token)@remote.example"
        // Bare LF, bare CR, CRLF, a line that is a single dot and one that starts with a dot.
        let content = Array("Subject: dots \(token)\nX-Mixed: yes\r\n\r\nfirst\rsecond\n.\n..two dots\n.leading\nlast".utf8)

        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: "sender@shop.example", to: [recipient], content: content)

        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply))")
        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())
        let stored = try XCTUnwrap(environment.postfix.sink.messages(to: recipient).first)
        // smtp-sink undoes the dot-stuffing and stores lines with LF endings.
        let text = String(decoding: stored.bytes, as: UTF8.self)
        XCTAssertTrue(text.contains("\n\nfirst\nsecond\n.\n..two dots\n.leading\nlast\n"), text)
        XCTAssertEqual(stored.headerValues("X-Mixed"), ["yes"])
    }
}
