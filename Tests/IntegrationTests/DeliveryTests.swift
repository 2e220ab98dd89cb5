// Accepted mail on both paths through a real Postfix with egress-milter. A message received
// over SMTP (smtpd_milters) and one submitted with the local sendmail command (pickup, then
// cleanup with non_smtpd_milters) must reach the sink with the status header. The daemon must
// log one decision for each, naming the path. The running daemon's working directory is /.
import XCTest

final class DeliveryTests: IntegrationTestCase {
    func testSMTPMessageGetsStatusHeader() throws {
        let token = uniqueToken("smtp")
        let sender = "\(token)@shop.example"
        let recipient = "friend@remote.example"

        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: [recipient],
            content: testMessage(from: sender, to: recipient, token: token))

        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        let queueID = try XCTUnwrap(result.queueID, "no queue ID in \(String(describing: result.reply))")
        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())

        let received = environment.postfix.sink.messages().filter { $0.sender == sender }
        XCTAssertEqual(received.count, 1, environment.diagnostics())
        let message = try XCTUnwrap(received.first)
        XCTAssertEqual(message.recipients, [recipient])
        XCTAssertEqual(message.headerValues(statusHeaderName).count, 1, "headers: \(message.headers)")
        XCTAssertEqual(message.headerValues("Message-ID"), ["<\(token)@client.egress.test>"])

        let decisions = environment.daemon.decisions().filter { $0.queueID == queueID }
        XCTAssertEqual(decisions.count, 1, environment.daemon.log())
        XCTAssertEqual(decisions.first?.action, "accept")
        XCTAssertEqual(decisions.first?.path, "smtp")
        XCTAssertEqual(decisions.first?.sender, sender)
    }

    func testLocalSubmissionGetsStatusHeader() throws {
        let token = uniqueToken("local")
        let sender = "\(token)@shop.example"
        let recipient = "friend@remote.example"

        try environment.postfix.submitLocally(
            from: sender, to: [recipient],
            content: testMessage(from: sender, to: recipient, token: token))

        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())
        let received = environment.postfix.sink.messages().filter { $0.sender == sender }
        XCTAssertEqual(received.count, 1, environment.diagnostics())
        let message = try XCTUnwrap(received.first)
        XCTAssertEqual(message.recipients, [recipient])
        XCTAssertEqual(message.headerValues(statusHeaderName).count, 1, "headers: \(message.headers)")

        // pickup logs "QUEUEID: uid=0 from=<sender>"; the daemon's line starts with the same ID.
        let queueID = try XCTUnwrap(pickupQueueIDs(in: environment.postfix.maillog(), sender: sender).last)
        let decisions = environment.daemon.decisions().filter { $0.queueID == queueID }
        XCTAssertEqual(decisions.count, 1, environment.daemon.log())
        XCTAssertEqual(decisions.first?.action, "accept")
        XCTAssertEqual(decisions.first?.path, "local")
        XCTAssertEqual(decisions.first?.sender, sender)
    }

    func testDaemonWorksFromTheRootDirectory() throws {
        // The programs it runs (sendmail for notices) refuse a working directory their user
        // cannot read, such as root's home, so the daemon must not keep the one it started in.
        let pid = try XCTUnwrap(environment.daemon.processIdentifier)
        let directory = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")
        XCTAssertEqual(directory, "/")
    }
}

/// Queue IDs that Postfix's pickup logged for messages from `sender`, oldest first. A message
/// that a milter deferred is picked up again under a new queue ID.
func pickupQueueIDs(in maillog: String, sender: String) -> [String] {
    maillog.split(separator: "\n").compactMap { line in
        guard line.contains("/pickup["), line.contains(" from=<\(sender)>"),
              let marker = line.range(of: "]: ") else { return nil }
        let rest = line[marker.upperBound...]
        guard let colon = rest.firstIndex(of: ":") else { return nil }
        return String(rest[..<colon])
    }
}
