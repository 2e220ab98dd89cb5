// SMTP AUTH on Sendmail: a login that Sendmail's Cyrus SASL accepts reaches the milter in
// `{auth_authen}` and becomes the `login:NAME` identity key, which sender rules and login
// limits act on. A wrong password gets 535 and leaves no login behind.
//
// Sendmail clears its environment and gives Cyrus SASL no configuration path, so Debian's
// libsasl2 (2.1.28) reads the settings for the application "Sendmail" only from fixed
// directories, /etc/sasl2 first (seen with strace). The test therefore writes
// /etc/sasl2/Sendmail.conf while it runs, under `HostLock`, pointing Cyrus at a sasldb file in
// the test's directory, and removes it afterwards. It never overwrites a Sendmail.conf that the
// tests did not write: it skips instead.
import Foundation
import Glibc
import XCTest

final class SendmailSASLTests: SendmailTestCase {
    /// Logs in, but no rule or limit acts on it.
    static let shop = (login: "webshop", password: "shop-secret-1")
    /// Logs in with AUTH LOGIN. A sender rule with the action hold quarantines its mail.
    static let newsletter = (login: "newsletter", password: "letters-2")
    /// Sends more than the login limit allows.
    static let bulk = (login: "bulk", password: "bulk-secret-3")

    /// Messages one login may send per hour under the test configuration.
    static let loginLimit = 3

    override func prepareEnvironment(_ environment: SendmailEnvironment) throws {
        guard let saslpasswd = findExecutable("saslpasswd2") else {
            let problem = "saslpasswd2 not found; it ships in Debian's sasl2-bin, which Packaging/install-sendmail-root installs"
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw CommandError(description: problem)
            }
            throw XCTSkip(problem)
        }
        let lock = try HostLock(timeoutSeconds: 900)
        addTeardownBlock { lock.release() }

        let saslDirectory = environment.root + "/sasl"
        try FileManager.default.createDirectory(atPath: saslDirectory, withIntermediateDirectories: true)
        chmod(saslDirectory, 0o700)
        let sasldbPath = saslDirectory + "/sasldb2"
        addTeardownBlock(try SendmailSASLConfiguration.install(sasldbPath: sasldbPath))

        // The users, in the realm that Sendmail passes to Cyrus: its own host name ($j).
        for user in [Self.shop, Self.newsletter, Self.bulk] {
            // -p reads the password from standard input, without a prompt.
            try CommandRunner.runChecked(
                saslpasswd, ["-p", "-c", "-f", sasldbPath, "-u", SendmailTools.hostName, user.login],
                input: Array((user.password + "\n").utf8))
        }

        // PLAIN and LOGIN send the password in the clear. Without `p` in AuthOptions Sendmail
        // offers them without TLS, which is acceptable only because the client is on loopback.
        environment.sendmail.additionalMTAMacros = """
            define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
            TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
            define(`confAUTH_OPTIONS', `A')dnl

            """
        environment.additionalSenderRules = """
              - match: "login:\(Self.newsletter.login)"
                action: hold
                reason: test rule for the newsletter login

            """
        environment.additionalDaemonConfiguration = """
            limits:
              - name: logins
                level: login
                messages: [\(Self.loginLimit)/1h]
                action: tempfail

            """
    }

    func testLoginBecomesIdentityKey() throws {
        let connection = try authenticatedConnection(Self.shop, mechanism: .plain)
        defer { connection.quit() }
        let sender = uniqueToken("sasl-shop") + "@shop1.example"
        let token = uniqueToken("sendmail-sasl")
        let result = connection.send(
            from: sender, to: ["customer@remote.example"],
            content: testMessage(from: sender, to: "customer@remote.example", token: token))
        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())

        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["accept"], environment.daemon.log())
        XCTAssertEqual(decisions.first?.path, "smtp")
        let identity = try XCTUnwrap(decisions.first?.fields["identity"])
        XCTAssertTrue(identity.hasPrefix("login:\(Self.shop.login)<sender:\(sender)<"), "identity: \(identity)")
        let delivered = environment.sendmail.sink.messages().filter { $0.sender == sender }
        XCTAssertEqual(delivered.first?.headerValues("Message-ID"), ["<\(token)@client.egress.test>"])
    }

    func testWrongPasswordIsRefused() throws {
        let connection = try SMTPConnection(port: environment.sendmail.smtpPort)
        defer { connection.quit() }
        let ehlo = try connection.command("EHLO client.egress.test")
        let authLine = ehlo.lines.first { $0.hasPrefix("AUTH") }
        XCTAssertTrue(authLine?.contains("PLAIN") ?? false, "EHLO reply: \(ehlo)")

        let reply = try connection.authenticatePlain(login: Self.shop.login, password: "not-the-password")
        XCTAssertEqual(reply.code, 535, "AUTH reply: \(reply)")

        // Loopback clients may relay without AUTH, so the next message on the connection is
        // accepted, but as unauthenticated mail: no login key, and no login rule or limit applies.
        let sender = uniqueToken("sasl-wrong") + "@shop1.example"
        let result = connection.send(
            from: sender, to: ["customer@remote.example"],
            content: testMessage(from: sender, to: "customer@remote.example", token: uniqueToken("sendmail-sasl-wrong")))
        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply))")
        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())
        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.count, 1, environment.daemon.log())
        let identity = try XCTUnwrap(decisions.first?.fields["identity"])
        XCTAssertFalse(identity.contains("login:"), "identity: \(identity)")
    }

    func testSenderRuleOnLoginHoldsMail() throws {
        let sender = uniqueToken("sasl-news") + "@shop2.example"
        let connection = try authenticatedConnection(Self.newsletter, mechanism: .login)
        let result = connection.send(
            from: sender, to: ["customer@remote.example"],
            content: testMessage(from: sender, to: "customer@remote.example", token: uniqueToken("sendmail-sasl-hold")))
        connection.quit()
        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply))")
        let queueID = try XCTUnwrap(sendmailQueueID(result), "no queue ID in \(String(describing: result.reply))")

        // The same sender address without AUTH matches no rule and is delivered.
        let unauthenticated = SMTPConnection.sendOne(
            port: environment.sendmail.smtpPort, from: sender, to: ["customer@remote.example"],
            content: testMessage(from: sender, to: "customer@remote.example", token: uniqueToken("sendmail-sasl-plain")))
        XCTAssertEqual(unauthenticated.outcome, .accepted, "reply: \(String(describing: unauthenticated.reply))")
        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())

        let quarantine = try environment.sendmail.quarantinedEntries()
        XCTAssertEqual(quarantine.map(\.queueID), [queueID], environment.diagnostics())
        let reason = try XCTUnwrap(quarantine.first?.quarantineReason)
        XCTAssertTrue(reason.contains("test rule for the newsletter login"), "quarantine reason: \(reason)")
        XCTAssertEqual(environment.sendmail.sink.messages().filter { $0.sender == sender }.count, 1)

        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["hold", "accept"], environment.daemon.log())
        XCTAssertEqual(decisions.first?.queueID, queueID)
        XCTAssertTrue(decisions.first?.fields["identity"]?.hasPrefix("login:\(Self.newsletter.login)<") ?? false,
                      "identity: \(String(describing: decisions.first?.fields["identity"]))")
    }

    func testLoginOverItsLimitIsTempfailed() throws {
        let connection = try authenticatedConnection(Self.bulk, mechanism: .plain)
        defer { connection.quit() }
        let sender = uniqueToken("sasl-bulk") + "@shop3.example"
        let results = (0...Self.loginLimit).map { index in
            connection.send(
                from: sender, to: ["customer@remote.example"],
                content: testMessage(from: sender, to: "customer@remote.example", token: uniqueToken("sendmail-sasl-bulk-\(index)")))
        }

        XCTAssertEqual(results.map(\.outcome), Array(repeating: .accepted, count: Self.loginLimit) + [.deferred],
                       results.map { String(describing: $0.reply) }.joined(separator: "\n"))
        let last = try XCTUnwrap(results.last)
        XCTAssertEqual(last.stage, .endOfData, "reply: \(String(describing: last.reply))")
        XCTAssertEqual(last.reply?.code, 451, "reply: \(String(describing: last.reply))")
        XCTAssertTrue(environment.waitForSink(count: Self.loginLimit, timeoutSeconds: 30), environment.diagnostics())
        XCTAssertEqual(environment.sendmail.sink.messages().filter { $0.sender == sender }.count, Self.loginLimit)

        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), Array(repeating: "accept", count: Self.loginLimit) + ["tempfail"],
                       environment.daemon.log())
        for decision in decisions {
            XCTAssertTrue(decision.fields["identity"]?.hasPrefix("login:\(Self.bulk.login)<") ?? false,
                          "identity: \(String(describing: decision.fields["identity"]))")
        }
    }

    private enum Mechanism {
        case plain
        case login
    }

    /// Opens a connection, checks that EHLO offers AUTH with PLAIN and LOGIN, and logs in.
    private func authenticatedConnection(_ credentials: (login: String, password: String),
                                         mechanism: Mechanism) throws -> SMTPConnection {
        let connection = try SMTPConnection(port: environment.sendmail.smtpPort)
        let ehlo = try connection.command("EHLO client.egress.test")
        let authLine = try XCTUnwrap(ehlo.lines.first { $0.hasPrefix("AUTH") }, "EHLO reply without AUTH: \(ehlo)")
        XCTAssertEqual(Set(authLine.split(separator: " ").dropFirst()), ["PLAIN", "LOGIN"], "EHLO reply: \(ehlo)")

        let reply: SMTPReply
        switch mechanism {
        case .plain:
            reply = try connection.authenticatePlain(login: credentials.login, password: credentials.password)
        case .login:
            // AUTH LOGIN: the server prompts with 334 for the user name, then for the password,
            // and the client sends each base64-encoded.
            let start = try connection.command("AUTH LOGIN")
            guard start.code == 334 else {
                throw CommandError(description: "AUTH LOGIN failed: expected 334, got \(start)")
            }
            let name = try connection.command(Data(credentials.login.utf8).base64EncodedString())
            guard name.code == 334 else {
                throw CommandError(description: "AUTH LOGIN failed after the user name: expected 334, got \(name)")
            }
            reply = try connection.command(Data(credentials.password.utf8).base64EncodedString())
        }
        guard reply.code == 235 else {
            connection.quit()
            throw CommandError(description: "AUTH as \(credentials.login) failed: expected 235, got \(reply)\n\(environment.diagnostics())")
        }
        return connection
    }
}

/// Cyrus SASL's settings for Sendmail, at the first path where Sendmail's libsasl2 looks for them.
private enum SendmailSASLConfiguration {
    static let path = "/etc/sasl2/Sendmail.conf"

    /// Writes `path` so that Cyrus checks passwords against `sasldbPath` and offers PLAIN and
    /// LOGIN, creating /etc/sasl2 when missing. A file without `testFileMarker` belongs to the
    /// host, so the test skips rather than overwrite it. Returns the undo.
    static func install(sasldbPath: String) throws -> () -> Void {
        let directory = (path as NSString).deletingLastPathComponent
        if FileManager.default.fileExists(atPath: path) {
            let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            guard existing.hasPrefix(testFileMarker) else {
                throw XCTSkip("\(path) exists and was not written by the tests; Cyrus SASL reads Sendmail's settings from that fixed path, so this test would have to overwrite it")
            }
        }
        let createdDirectory = !FileManager.default.fileExists(atPath: directory)
        if createdDirectory {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o755)
        }
        let text = """
            \(testFileMarker)
            pwcheck_method: auxprop
            auxprop_plugin: sasldb
            sasldb_path: \(sasldbPath)
            mech_list: PLAIN LOGIN

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        // Sendmail 8.17.1.9 ignores a SASL configuration file that others may write, and every
        // login then fails, so the mode must not depend on the umask.
        chmod(path, 0o644)
        return {
            if let written = try? String(contentsOfFile: path, encoding: .utf8), written.hasPrefix(testFileMarker) {
                unlink(path)
            }
            if createdDirectory {
                rmdir(directory)
            }
        }
    }
}
