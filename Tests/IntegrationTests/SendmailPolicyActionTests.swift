// The actions of sender rules as Sendmail carries them out: reject gives the SMTP client a 5xx
// reply, tempfail a 4xx reply, and hold puts the message into Sendmail's quarantine (its
// queue file becomes an hf file), listed by `sendmail -bp -qQ`, until an admin releases it
// with `sendmail -qQ -Q -qI<ID>`. A reject on the local path becomes a hold there too.
//
// The rules are in the test configuration (SendmailEnvironment): one sender domain per action.
import XCTest

final class SendmailPolicyActionTests: SendmailTestCase {
    func testRejectRuleGivesPermanentFailure() throws {
        let sender = RuleSender.reject
        let token = uniqueToken("sendmail-reject")

        let result = SMTPConnection.sendOne(
            port: environment.sendmail.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))

        XCTAssertEqual(result.outcome, .rejected, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        XCTAssertEqual(result.reply?.code, 550, "reply: \(String(describing: result.reply))")
        try assertDeliveryStillWorks()
        XCTAssertTrue(environment.sendmail.sink.messages().filter { $0.sender == sender }.isEmpty)
        XCTAssertTrue(try environment.sendmail.queueEntries().isEmpty)
        XCTAssertTrue(try environment.sendmail.quarantinedEntries().isEmpty)

        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["reject"], environment.daemon.log())
        XCTAssertEqual(decisions.first?.path, "smtp")
    }

    func testTempfailRuleGivesTransientFailure() throws {
        let sender = RuleSender.tempfail
        let token = uniqueToken("sendmail-tempfail")

        let result = SMTPConnection.sendOne(
            port: environment.sendmail.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))

        XCTAssertEqual(result.outcome, .deferred, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        XCTAssertEqual(result.reply?.code, 451, "reply: \(String(describing: result.reply))")
        try assertDeliveryStillWorks()
        XCTAssertTrue(environment.sendmail.sink.messages().filter { $0.sender == sender }.isEmpty)
        XCTAssertTrue(try environment.sendmail.queueEntries().isEmpty)

        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["tempfail"], environment.daemon.log())
    }

    func testHoldRuleQuarantinesUntilReleased() throws {
        let sender = RuleSender.hold
        let token = uniqueToken("sendmail-hold")

        let result = SMTPConnection.sendOne(
            port: environment.sendmail.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))

        // The client sees an ordinary acceptance: the message waits in the quarantine.
        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        let queueID = try XCTUnwrap(sendmailQueueID(result), "no queue ID in \(String(describing: result.reply))")
        try assertDeliveryStillWorks()

        let quarantine = try environment.sendmail.quarantinedEntries()
        XCTAssertEqual(quarantine.map(\.queueID), [queueID], environment.diagnostics())
        XCTAssertEqual(quarantine.first?.sender, sender)
        XCTAssertEqual(quarantine.first?.recipients, ["friend@remote.example"])
        let reason = try XCTUnwrap(quarantine.first?.quarantineReason)
        XCTAssertTrue(reason.contains("test rule for hold"), "quarantine reason: \(reason)")
        XCTAssertTrue(try environment.sendmail.queueEntries().isEmpty, environment.diagnostics())
        XCTAssertEqual(environment.sendmail.queueFiles(prefix: "hf", in: environment.sendmail.queueDirectory), ["hf" + queueID])
        XCTAssertTrue(environment.sendmail.sink.messages().filter { $0.sender == sender }.isEmpty)

        let decisions = environment.daemon.decisions().filter { $0.queueID == queueID }
        XCTAssertEqual(decisions.map(\.action), ["hold"], environment.daemon.log())

        // Released, it is an ordinary queued message again; the queue run delivers it.
        try environment.sendmail.releaseFromQuarantine(queueID)
        XCTAssertTrue(try environment.sendmail.quarantinedEntries().isEmpty, environment.diagnostics())
        try environment.sendmail.deliverQueued(queueID)
        let delivered = waitUntil(timeoutSeconds: 30) {
            !environment.sendmail.sink.messages().filter { $0.sender == sender }.isEmpty
        }
        XCTAssertTrue(delivered, environment.diagnostics())
        XCTAssertTrue(environment.sendmail.waitForEmptyQueue(timeoutSeconds: 30), environment.diagnostics())
        // Queue runs every second: give a second delivery the time to show up before counting.
        Thread.sleep(forTimeInterval: 3)
        let released = environment.sendmail.sink.messages().filter { $0.sender == sender }
        XCTAssertEqual(released.count, 1)
        XCTAssertEqual(released.first?.headerValues("Message-ID"), ["<\(token)@client.egress.test>"])
        // The released copy was not filtered again: one decision, the hold.
        XCTAssertEqual(environment.daemon.decisions().filter { $0.sender == sender }.count, 1)
    }

    func testLocalRejectIsQuarantinedNotBounced() throws {
        let sender = RuleSender.reject
        let token = uniqueToken("sendmail-local-reject")

        try environment.sendmail.submitLocally(
            from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))

        let isQuarantined = waitUntil(timeoutSeconds: 30) {
            ((try? environment.sendmail.quarantinedEntries()) ?? []).contains { $0.sender == sender }
        }
        XCTAssertTrue(isQuarantined, environment.diagnostics())
        try assertDeliveryStillWorks()

        // Neither the message nor a bounce to its sender left the instance.
        let sink = environment.sendmail.sink.messages()
        XCTAssertTrue(sink.filter { $0.sender == sender }.isEmpty)
        XCTAssertTrue(sink.filter { $0.recipients.contains(sender) }.isEmpty)
        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["hold"], environment.daemon.log())
        XCTAssertEqual(decisions.first?.path, "local")
    }

    /// Sends an ordinary message and waits until it reached the sink and nothing is queued,
    /// so any delivery of an earlier message would have happened by then.
    private func assertDeliveryStillWorks(file: StaticString = #filePath, line: UInt = #line) throws {
        let token = uniqueToken("control")
        let sender = "\(token)@shop.example"
        let result = SMTPConnection.sendOne(
            port: environment.sendmail.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))
        XCTAssertEqual(result.outcome, .accepted, "control message: \(String(describing: result.reply))", file: file, line: line)

        let arrived = waitUntil(timeoutSeconds: 30) {
            !environment.sendmail.sink.messages().filter { $0.sender == sender }.isEmpty
                && environment.sendmail.waitForEmptyQueue(timeoutSeconds: 0)
        }
        XCTAssertTrue(arrived, "control message not delivered: \(environment.diagnostics())", file: file, line: line)
    }
}
