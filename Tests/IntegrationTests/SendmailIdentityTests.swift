// Who submitted local mail, on Sendmail. The egress-sendmail wrapper stamps a message and
// passes it to Sendmail's own `sendmail` command, whose MSP relays it to the MTA's listener
// named `localDaemonName`. The daemon must trust the stamp there, and must ignore the very
// same stamped message when it arrives on the SMTP port, where anyone could have written it.
//
// The wrapper runs as root here, without its setgid bit, so it reads the configuration that
// EGRESS_MILTER_CONFIG names and nothing on the host changes. Sendmail's MSP needs the same
// UTS namespace as every other private sendmail run (SendmailTools.invocation), so the
// wrapper's real sendmail is a small script that adds it and keeps a copy of the stamped message.
import Foundation
import Glibc
import XCTest

final class SendmailIdentityTests: SendmailTestCase {
    private var keyPath = ""

    override func prepareEnvironment(_ environment: SendmailEnvironment) throws {
        let keyDirectory = environment.root + "/identity"
        try FileManager.default.createDirectory(atPath: keyDirectory, withIntermediateDirectories: true)
        keyPath = keyDirectory + "/submit.key"
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        guard FileManager.default.createFile(atPath: keyPath, contents: Data(key)), chmod(keyPath, 0o600) == 0 else {
            throw CommandError(description: "cannot write the stamp key \(keyPath): \(String(cString: strerror(errno)))")
        }
        environment.additionalDaemonConfiguration = "identity:\n  stamp_key_file: \(keyPath)\n"
    }

    func testWrapperStampIsTrustedOnLocalPathOnly() throws {
        let wrapper = try XCTUnwrap(SubmissionWrapper.locateExecutable(), "egress-sendmail not found beside egress-milter; build it or set EGRESS_SENDMAIL_BIN")
        let root = environment.root
        let sendmail = environment.sendmail

        // The wrapper's configuration: the same key as the daemon's.
        let wrapperConfiguration = root + "/wrapper.yaml"
        try "identity:\n  stamp_key_file: \(keyPath)\n".write(toFile: wrapperConfiguration, atomically: true, encoding: .utf8)

        // The program the wrapper runs as the real sendmail: it keeps a copy of the message,
        // then runs the private sendmail.
        let copyPath = root + "/stamped.eml"
        let (unshare, prefix) = sendmail.tools.invocation([])
        let quotedPrefix = ([unshare] + prefix).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let realSendmail = root + "/real-sendmail"
        try """
            #!/bin/sh
            tee '\(copyPath)' | \(quotedPrefix) "$@"

            """.write(toFile: realSendmail, atomically: true, encoding: .utf8)
        chmod(realSendmail, 0o755)

        let token = uniqueToken("sendmail-stamp")
        let sender = "\(token)@shop.example"
        let content = testMessage(from: sender, to: "friend@remote.example", token: token)
        let result = try CommandRunner.run("/usr/bin/env", [
            "EGRESS_MILTER_CONFIG=\(wrapperConfiguration)", "EGRESS_REAL_SENDMAIL=\(realSendmail)",
            "SCRIPT_FILENAME=/srv/site/contact.php",
            wrapper, "-C", sendmail.submitConfigurationPath, "-f", sender, "-t", "-i",
        ], input: content)
        XCTAssertEqual(result.status, 0, "wrapper: \(result.standardError)")
        XCTAssertTrue(environment.waitForSink(count: 1, timeoutSeconds: 30), environment.diagnostics())

        let local = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(local.count, 1, environment.daemon.log())
        XCTAssertEqual(local.first?.path, "local")
        let localIdentity = try XCTUnwrap(local.first?.fields["identity"])
        XCTAssertTrue(localIdentity.contains("account:root"), "identity: \(localIdentity)")
        XCTAssertFalse(localIdentity.contains("local-unverified"), "identity: \(localIdentity)")
        let delivered = try XCTUnwrap(sendmail.sink.messages().first { $0.sender == sender })
        XCTAssertEqual(delivered.headerValues("X-Egress-Submitter"), [], "the stamp must not leave the server")

        // The same stamped bytes over the SMTP port: the stamp is ignored for identity.
        let stamped = try XCTUnwrap(FileManager.default.contents(atPath: copyPath))
        XCTAssertTrue(String(decoding: stamped, as: UTF8.self).contains("X-Egress-Submitter:"), "the wrapper wrote no stamp")
        let smtpSender = "smtp-" + sender
        let smtp = SMTPConnection.sendOne(
            port: sendmail.smtpPort, from: smtpSender, to: ["friend@remote.example"], content: [UInt8](stamped))
        XCTAssertEqual(smtp.outcome, .accepted, "reply: \(String(describing: smtp.reply))")
        XCTAssertTrue(environment.waitForSink(count: 2, timeoutSeconds: 30), environment.diagnostics())
        let remote = environment.daemon.decisions().filter { $0.sender == smtpSender }
        XCTAssertEqual(remote.count, 1, environment.daemon.log())
        XCTAssertEqual(remote.first?.path, "smtp")
        let remoteIdentity = try XCTUnwrap(remote.first?.fields["identity"])
        XCTAssertFalse(remoteIdentity.contains("account:"), "identity: \(remoteIdentity)")
    }
}
