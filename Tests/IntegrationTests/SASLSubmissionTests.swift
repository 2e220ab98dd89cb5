// Authenticated SMTP submission: Postfix's smtpd checks logins against a private Dovecot
// (SASL over loopback TCP), passes the login to the milter in `{auth_authen}`, and the
// daemon counts each login under its own `login` rate limit. A login over its limit gets
// 451 4.7.1 for every further message, while another login on the same client address
// keeps sending.
import Foundation
import XCTest

final class SASLSubmissionTests: IntegrationTestCase {
    /// Messages one login may send per hour under the test configuration.
    static let loginLimit = 20
    /// The busy login sends this many, so the last ones go over its limit.
    static let busyLoginMessageCount = 30
    static let quietLoginMessageCount = 12

    static let busy = (login: "newsletter@shop1.example", password: "letters-1")
    static let quiet = (login: "orders@shop2.example", password: "orders-2")

    private var dovecot: DovecotAuthService?

    override func prepareEnvironment(_ environment: IntegrationEnvironment) throws {
        guard let executable = DovecotAuthService.locateExecutable() else {
            throw XCTSkip("Dovecot is not installed; the SASL tests need it for Postfix's authentication (apt-get install dovecot-core)")
        }
        let dovecot = try DovecotAuthService(
            executable: executable, directory: environment.root + "/dovecot",
            logins: [Self.busy, Self.quiet])
        self.dovecot = dovecot
        addTeardownBlock { dovecot.stop() }
        try dovecot.start()

        // Plaintext AUTH without TLS is acceptable only because client and server share loopback.
        environment.postfix.additionalMainSettings = [
            "smtpd_sasl_auth_enable = yes",
            "smtpd_sasl_type = dovecot",
            "smtpd_sasl_path = \(dovecot.saslPath)",
            "smtpd_tls_security_level = none",
            "smtpd_sasl_security_options = noanonymous",
        ]
        environment.additionalDaemonConfiguration = """
            limits:
              - name: logins
                level: login
                messages: [\(Self.loginLimit)/1h]
                action: tempfail

            """
    }

    func testLoginOverItsLimitIsTempfailed() throws {
        let busy = try sendAuthenticated(Self.busy, count: Self.busyLoginMessageCount, tokenPrefix: "busy")
        let quiet = try sendAuthenticated(Self.quiet, count: Self.quietLoginMessageCount, tokenPrefix: "quiet")

        let busyAccepted = busy.filter { $0.result.outcome == .accepted }
        let busyDeferred = busy.filter { $0.result.outcome == .deferred }
        XCTAssertEqual(busyAccepted.count, Self.loginLimit, "busy login outcomes: \(outcomeSummary(busy))\n\(diagnostics())")
        XCTAssertEqual(busyDeferred.count, Self.busyLoginMessageCount - Self.loginLimit, "busy login outcomes: \(outcomeSummary(busy))")
        // The first `loginLimit` messages pass and every later one is refused, none in between.
        XCTAssertEqual(busy.prefix(Self.loginLimit).map(\.result.outcome), Array(repeating: .accepted, count: Self.loginLimit))
        for message in busyDeferred {
            XCTAssertEqual(message.result.stage, .endOfData, "\(message.token): \(String(describing: message.result.reply))")
            XCTAssertEqual(message.result.reply?.code, 451, "\(message.token): \(String(describing: message.result.reply))")
            XCTAssertTrue(message.result.reply?.lines.first?.hasPrefix("4.7.1") ?? false, "\(message.token): \(String(describing: message.result.reply))")
        }
        XCTAssertEqual(quiet.filter { $0.result.outcome == .accepted }.count, Self.quietLoginMessageCount,
                       "quiet login outcomes: \(outcomeSummary(quiet))\n\(diagnostics())")

        // Exactly the accepted messages arrive; the tempfailed ones were never queued.
        let expectedCount = busyAccepted.count + quiet.count
        XCTAssertTrue(environment.waitForSink(count: expectedCount, timeoutSeconds: 60), diagnostics())
        let arrivedTokens = Set(environment.postfix.sink.messages().flatMap { $0.headerValues("Message-ID") })
        let acceptedTokens = Set((busyAccepted + quiet).map { "<\($0.token)@client.egress.test>" })
        XCTAssertEqual(arrivedTokens, acceptedTokens, diagnostics())

        // The daemon names the login in every decision and tempfails only the busy one.
        let decisions = environment.daemon.decisions().filter { $0.path == "smtp" }
        let busyDecisions = decisions.filter { $0.fields["identity"]?.hasPrefix("login:\(Self.busy.login)<") ?? false }
        let quietDecisions = decisions.filter { $0.fields["identity"]?.hasPrefix("login:\(Self.quiet.login)<") ?? false }
        XCTAssertEqual(busyDecisions.count, Self.busyLoginMessageCount, diagnostics())
        XCTAssertEqual(busyDecisions.filter { $0.action == "accept" }.count, Self.loginLimit, diagnostics())
        XCTAssertEqual(busyDecisions.filter { $0.action == "tempfail" }.count, Self.busyLoginMessageCount - Self.loginLimit, diagnostics())
        XCTAssertEqual(quietDecisions.count, Self.quietLoginMessageCount, diagnostics())
        XCTAssertEqual(quietDecisions.filter { $0.action == "accept" }.count, Self.quietLoginMessageCount, diagnostics())
        XCTAssertEqual(decisions.count, busyDecisions.count + quietDecisions.count, "decisions without a login: \(diagnostics())")
    }

    func testWrongPasswordIsRefused() throws {
        let connection = try SMTPConnection(port: environment.postfix.smtpPort)
        defer { connection.quit() }
        let ehlo = try connection.command("EHLO client.egress.test")
        let authLine = ehlo.lines.first { $0.hasPrefix("AUTH") }
        XCTAssertNotNil(authLine, "EHLO reply without AUTH: \(ehlo)\n\(diagnostics())")
        XCTAssertTrue(authLine?.contains("PLAIN") ?? false, "EHLO reply: \(ehlo)")

        let reply = try connection.authenticatePlain(login: Self.busy.login, password: "not-the-password")
        XCTAssertEqual(reply.code, 535, "AUTH reply: \(reply)\n\(diagnostics())")
    }

    /// One message sent over SMTP and what the server replied.
    private struct SentMessage {
        var token: String
        var result: SMTPDeliveryResult
    }

    /// Logs in once and sends `count` messages over the one connection, in order.
    private func sendAuthenticated(_ credentials: (login: String, password: String), count: Int,
                                   tokenPrefix: String) throws -> [SentMessage] {
        let connection = try SMTPConnection(port: environment.postfix.smtpPort)
        defer { connection.quit() }
        let ehlo = try connection.command("EHLO client.egress.test")
        XCTAssertTrue(ehlo.isPositive, "EHLO reply: \(ehlo)")
        let authentication = try connection.authenticatePlain(login: credentials.login, password: credentials.password)
        guard authentication.code == 235 else {
            throw CommandError(description: "AUTH PLAIN as \(credentials.login) got \(authentication)\n\(diagnostics())")
        }

        let recipient = "customer@remote.example"
        return (0..<count).map { index in
            let token = "\(tokenPrefix)-\(index)-" + uniqueToken("sasl")
            let result = connection.send(
                from: credentials.login, to: [recipient],
                content: testMessage(from: credentials.login, to: recipient, token: token))
            return SentMessage(token: token, result: result)
        }
    }

    private func outcomeSummary(_ messages: [SentMessage]) -> String {
        messages.map { "\($0.token)=\($0.result.outcome) \($0.result.reply.map(String.init(describing:)) ?? "")" }
            .joined(separator: "\n")
    }

    private func diagnostics() -> String {
        environment.diagnostics() + "\nlast lines of the Dovecot log:\n"
            + (dovecot?.log().split(separator: "\n").suffix(10).joined(separator: "\n") ?? "")
    }
}
