// Accepted mail on both paths through a real Sendmail with egress-milter. A message received
// over SMTP and one submitted with Sendmail's own `sendmail` command (the MSP, which relays it
// over SMTP to the MTA's listener named `localDaemonName`) must reach the sink with the status
// header, and the daemon must log one decision for each, naming the path.
import XCTest

final class SendmailDeliveryTests: SendmailTestCase {
    func testSMTPMessageGetsStatusHeader() throws {
        let token = uniqueToken("sendmail-smtp")
        let sender = "\(token)@shop.example"
        let recipient = "friend@remote.example"

        let result = SMTPConnection.sendOne(
            port: environment.sendmail.smtpPort, from: sender, to: [recipient],
            content: testMessage(from: sender, to: recipient, token: token))

        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        let queueID = try XCTUnwrap(sendmailQueueID(result), "no queue ID in \(String(describing: result.reply))")
        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())

        let received = environment.sendmail.sink.messages().filter { $0.sender == sender }
        XCTAssertEqual(received.count, 1, environment.diagnostics())
        let message = try XCTUnwrap(received.first)
        XCTAssertEqual(message.recipients, [recipient])
        XCTAssertEqual(message.headerValues(statusHeaderName).count, 1, "headers: \(message.headers)")
        XCTAssertEqual(message.headerValues("Message-ID"), ["<\(token)@client.egress.test>"])

        // Sendmail sends the queue ID macro `i`, so the decision line starts with the same ID.
        let decisions = environment.daemon.decisions().filter { $0.queueID == queueID }
        XCTAssertEqual(decisions.count, 1, environment.daemon.log())
        XCTAssertEqual(decisions.first?.action, "accept")
        XCTAssertEqual(decisions.first?.path, "smtp")
        XCTAssertEqual(decisions.first?.sender, sender)
    }

    func testLocalSubmissionGetsStatusHeader() throws {
        let token = uniqueToken("sendmail-local")
        let sender = "\(token)@shop.example"
        let recipient = "friend@remote.example"

        try environment.sendmail.submitLocally(
            from: sender, to: [recipient],
            content: testMessage(from: sender, to: recipient, token: token))

        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())
        let received = environment.sendmail.sink.messages().filter { $0.sender == sender }
        XCTAssertEqual(received.count, 1, environment.diagnostics())
        let message = try XCTUnwrap(received.first)
        XCTAssertEqual(message.recipients, [recipient])
        XCTAssertEqual(message.headerValues(statusHeaderName).count, 1, "headers: \(message.headers)")

        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.count, 1, environment.daemon.log())
        XCTAssertEqual(decisions.first?.action, "accept")
        XCTAssertEqual(decisions.first?.path, "local")
        XCTAssertNotEqual(decisions.first?.queueID, "NOQUEUE")
    }

    func testSMTPListenerIsNotTheLocalPath() throws {
        // The same message over the MSP's listener counts as local, over the SMTP port as
        // smtp: only the listener's Name= distinguishes the two.
        let token = uniqueToken("sendmail-port")
        let sender = "\(token)@shop.example"
        let recipient = "friend@remote.example"

        for port in [environment.sendmail.smtpPort, environment.sendmail.localPort] {
            let result = SMTPConnection.sendOne(
                port: port, from: sender, to: [recipient],
                content: testMessage(from: sender, to: recipient, token: token + "-\(port)"))
            XCTAssertEqual(result.outcome, .accepted, "port \(port): \(String(describing: result.reply))")
        }

        XCTAssertTrue(environment.waitForSink(count: 2, timeoutSeconds: 30), environment.diagnostics())
        let paths = environment.daemon.decisions().filter { $0.sender == sender }.compactMap(\.path)
        XCTAssertEqual(paths.sorted(), ["local", "smtp"], environment.daemon.log())
    }
}
