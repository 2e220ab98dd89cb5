// Content scoring as Postfix carries it out. A phishing message is delivered with
// SpamAssassin's headers, and GTUBE over SMTP gets a 5xx reply. GTUBE submitted locally is
// held instead, because the bounce of a local reject would go to a sender a script can forge.
// The thresholds are the built-in defaults (tag 5, hold 12, reject 20).
import XCTest

final class ScoringDeliveryTests: IntegrationTestCase {
    /// Scores 7.5 on the built-in rules: PHISH_PASSWORD_EXPIRY (3.0), PHISH_ACCOUNT_VERIFY
    /// (3.0) and URL_SHORTENER (1.5).
    static let phishingBody = """
        Your password will expire today. Please verify your account here:
        https://bit.ly/3keep

        """
    static let gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n"

    func testPhishingIsDeliveredWithSpamHeaders() throws {
        let token = uniqueToken("phish")
        let sender = "\(token)@shop.example"
        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token, body: Self.phishingBody))
        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply))")

        let message = try XCTUnwrap(waitForDelivery(from: sender), environment.diagnostics())
        XCTAssertEqual(message.headerValues("X-Spam-Flag"), ["YES"])
        let score = try XCTUnwrap(message.headerValues("X-Spam-Score").first.flatMap(Double.init))
        XCTAssertGreaterThanOrEqual(score, 7.5)
        let status = try XCTUnwrap(message.headerValues("X-Spam-Status").first)
        XCTAssertTrue(status.hasPrefix("Yes, score=\(message.headerValues("X-Spam-Score")[0]) required=5.0 tests="), status)
        for symbol in ["PHISH_ACCOUNT_VERIFY", "PHISH_PASSWORD_EXPIRY", "URL_SHORTENER"] {
            XCTAssertTrue(status.contains(symbol), "\(symbol) missing in \(status)")
        }

        let decision = try XCTUnwrap(environment.daemon.decisions().first { $0.sender == sender }, environment.daemon.log())
        XCTAssertEqual(decision.action, "tag")
        XCTAssertEqual(decision.fields["score"].flatMap(Double.init), score)
        let symbols = decision.fields["symbols"] ?? ""
        XCTAssertTrue(symbols.contains("PHISH_ACCOUNT_VERIFY(3.0)"), symbols)
        XCTAssertTrue(symbols.contains("URL_SHORTENER(1.5)"), symbols)

        // An ordinary message from the same instance carries no spam headers.
        let cleanToken = uniqueToken("clean")
        let cleanSender = "\(cleanToken)@shop.example"
        _ = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: cleanSender, to: ["friend@remote.example"],
            content: testMessage(from: cleanSender, to: "friend@remote.example", token: cleanToken))
        let clean = try XCTUnwrap(waitForDelivery(from: cleanSender), environment.diagnostics())
        XCTAssertEqual(clean.headerValues("X-Spam-Flag"), [])
        XCTAssertEqual(clean.headerValues("X-Egress-Milter"), ["accept"])
    }

    func testGTUBEOverSMTPIsRejected() throws {
        let token = uniqueToken("gtube-smtp")
        let sender = "\(token)@shop.example"
        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token, body: Self.gtube))

        XCTAssertEqual(result.outcome, .rejected, "reply: \(String(describing: result.reply))")
        XCTAssertEqual(result.reply?.code, 550)
        XCTAssertTrue(result.reply.map { $0.description.contains("5.7.1") } ?? false, "reply: \(String(describing: result.reply))")
        XCTAssertTrue(try environment.postfix.queueEntries().isEmpty)
        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["reject"], environment.daemon.log())
        XCTAssertTrue((decisions.first?.fields["symbols"] ?? "").contains("GTUBE(1000.0)"), environment.daemon.log())
    }

    func testGTUBESubmittedLocallyIsHeld() throws {
        let token = uniqueToken("gtube-local")
        let sender = "\(token)@shop.example"
        try environment.postfix.submitLocally(
            from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token, body: Self.gtube))

        let isHeld = waitUntil(timeoutSeconds: 30) {
            ((try? environment.postfix.queueEntries()) ?? []).contains { $0.queueName == "hold" && $0.sender == sender }
        }
        XCTAssertTrue(isHeld, environment.diagnostics())
        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["hold"], environment.daemon.log())
        XCTAssertEqual(decisions.first?.path, "local")
        XCTAssertTrue(environment.postfix.sink.messages().filter { $0.recipients.contains(sender) }.isEmpty, "no bounce")

        let queueID = try XCTUnwrap(try environment.postfix.queueEntries().first { $0.sender == sender }?.queueID)
        try environment.postfix.delete(queueID)
    }

    private func waitForDelivery(from sender: String) -> SinkMessage? {
        var found: SinkMessage?
        _ = waitUntil(timeoutSeconds: 30) {
            found = environment.postfix.sink.messages().first { $0.sender == sender }
            return found != nil
        }
        return found
    }
}
