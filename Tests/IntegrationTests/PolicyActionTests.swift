// The actions of sender rules as Postfix carries them out: reject gives the SMTP client a 5xx
// reply, tempfail a 4xx reply, hold puts the message in Postfix's hold queue until an admin
// releases it with postsuper. A reject on the local path becomes a hold, because a bounce would
// go to a sender address that a local script may have forged.
//
// The rules are in the test configuration (IntegrationEnvironment): one sender domain per action.
import XCTest

final class PolicyActionTests: IntegrationTestCase {
    func testRejectRuleGivesPermanentFailure() throws {
        let sender = RuleSender.reject
        let token = uniqueToken("reject")

        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))

        XCTAssertEqual(result.outcome, .rejected, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        XCTAssertEqual(result.reply?.code, 550, "reply: \(String(describing: result.reply))")
        try assertDeliveryStillWorks()
        XCTAssertTrue(environment.postfix.sink.messages().filter { $0.sender == sender }.isEmpty)
        XCTAssertTrue(try environment.postfix.queueEntries().isEmpty)

        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["reject"], environment.daemon.log())
        XCTAssertEqual(decisions.first?.path, "smtp")
    }

    func testTempfailRuleGivesTransientFailure() throws {
        let sender = RuleSender.tempfail
        let token = uniqueToken("tempfail")

        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))

        XCTAssertEqual(result.outcome, .deferred, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        XCTAssertEqual(result.reply?.code, 451, "reply: \(String(describing: result.reply))")
        try assertDeliveryStillWorks()
        XCTAssertTrue(environment.postfix.sink.messages().filter { $0.sender == sender }.isEmpty)
        XCTAssertTrue(try environment.postfix.queueEntries().isEmpty)

        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["tempfail"], environment.daemon.log())
    }

    func testHoldRuleKeepsMessageUntilReleased() throws {
        let sender = RuleSender.hold
        let token = uniqueToken("hold")

        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))

        // The client sees an ordinary acceptance: the message waits in the hold queue.
        XCTAssertEqual(result.outcome, .accepted, "reply: \(String(describing: result.reply)) error: \(String(describing: result.error))")
        let queueID = try XCTUnwrap(result.queueID)
        try assertDeliveryStillWorks()
        let queue = try environment.postfix.queueEntries()
        XCTAssertEqual(queue.map(\.queueID), [queueID], environment.diagnostics())
        XCTAssertEqual(queue.first?.queueName, "hold")
        XCTAssertEqual(queue.first?.sender, sender)
        XCTAssertTrue(environment.postfix.sink.messages().filter { $0.sender == sender }.isEmpty)

        let decisions = environment.daemon.decisions().filter { $0.queueID == queueID }
        XCTAssertEqual(decisions.map(\.action), ["hold"], environment.daemon.log())

        // Released, it goes to the deferred queue; the flush delivers it now.
        try environment.postfix.releaseFromHold(queueID)
        try environment.postfix.flush()
        let delivered = waitUntil(timeoutSeconds: 30) {
            !environment.postfix.sink.messages().filter { $0.sender == sender }.isEmpty
        }
        XCTAssertTrue(delivered, environment.diagnostics())
        XCTAssertTrue(environment.postfix.waitForEmptyQueue(timeoutSeconds: 30), environment.diagnostics())
        let released = environment.postfix.sink.messages().filter { $0.sender == sender }
        XCTAssertEqual(released.count, 1)
        XCTAssertEqual(released.first?.headerValues("Message-ID"), ["<\(token)@client.egress.test>"])
    }

    func testLocalRejectIsHeldNotBounced() throws {
        let sender = RuleSender.reject
        let token = uniqueToken("local-reject")

        try environment.postfix.submitLocally(
            from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))

        let isHeld = waitUntil(timeoutSeconds: 30) {
            ((try? environment.postfix.queueEntries()) ?? []).contains { $0.queueName == "hold" && $0.sender == sender }
        }
        XCTAssertTrue(isHeld, environment.diagnostics())
        try assertDeliveryStillWorks()

        // Neither the message nor a bounce to its sender left the instance.
        let sink = environment.postfix.sink.messages()
        XCTAssertTrue(sink.filter { $0.sender == sender }.isEmpty)
        XCTAssertTrue(sink.filter { $0.recipients.contains(sender) }.isEmpty)
        let decisions = environment.daemon.decisions().filter { $0.sender == sender }
        XCTAssertEqual(decisions.map(\.action), ["hold"], environment.daemon.log())
        XCTAssertEqual(decisions.first?.path, "local")

        // An admin deletes it from the hold queue.
        let queueID = try XCTUnwrap(try environment.postfix.queueEntries().first { $0.sender == sender }?.queueID)
        try environment.postfix.delete(queueID)
        XCTAssertTrue(try environment.postfix.queueEntries().isEmpty)
    }

    /// Sends an ordinary message and waits until it reached the sink and the active queue is
    /// empty. Any delivery of an earlier message would have happened by then, so its absence
    /// from the sink afterwards means it was not delivered.
    private func assertDeliveryStillWorks(file: StaticString = #filePath, line: UInt = #line) throws {
        let token = uniqueToken("control")
        let sender = "\(token)@shop.example"
        let result = SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token))
        XCTAssertEqual(result.outcome, .accepted, "control message: \(String(describing: result.reply))", file: file, line: line)

        let arrived = waitUntil(timeoutSeconds: 30) {
            !environment.postfix.sink.messages().filter { $0.sender == sender }.isEmpty
                && ((try? environment.postfix.queueEntries()) ?? []).allSatisfy { $0.queueName == "hold" }
        }
        XCTAssertTrue(arrived, "control message not delivered: \(environment.diagnostics())", file: file, line: line)
    }
}
