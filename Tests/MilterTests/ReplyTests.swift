// Tests that every Reply reaches the MTA as the right response packet, that custom reply
// text arrives cleaned, and that a failing session gets the failure reply without taking
// the listener down.
import XCTest

final class ReplyTests: ListenerTestCase {
    /// Starts a session up to the point where `stage` is the next command, sends it and
    /// returns the milter's response.
    private func response(at stage: String, from listener: ListenerProcess) throws -> MilterPacket {
        let client = try listener.negotiatedClient()
        let connect = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        if stage == "connect" {
            return connect
        }
        let helo = try client.helo("client.example")
        if stage == "helo" {
            return helo
        }
        _ = try client.mail(["<alice@shop.example>"])
        let recipient = try client.recipient(["<bob@example.org>"])
        if stage == "envelopeRecipient" {
            return recipient
        }
        _ = try client.data()
        _ = try client.header(name: "Subject", value: Array("test".utf8))
        _ = try client.endOfHeaders()
        let body = try client.body(Array("body\r\n".utf8))
        if stage == "body" {
            return body
        }
        return try XCTUnwrap(client.endOfMessage().last)
    }

    func testReplyKindsMapToResponsePackets() throws {
        let cases: [(stage: String, kind: String, command: Character)] = [
            ("helo", "continue", "c"),
            ("helo", "accept", "a"),
            ("helo", "reject", "r"),
            ("helo", "tempfail", "t"),
            ("envelopeRecipient", "discard", "d"),
            ("body", "skip", "s"),
            ("helo", "skip", "c"),
            ("endOfMessage", "accept", "a"),
            ("helo", "custom-reject", "y"),
            ("envelopeRecipient", "custom-tempfail", "y"),
        ]
        for (stage, kind, command) in cases {
            let listener = try startListener(["--reply", "\(stage)=\(kind)"])
            let packet = try response(at: stage, from: listener)
            XCTAssertEqual(packet.commandCharacter, command, "\(kind) at \(stage): got \(packet)")
        }
    }

    func testSkipWithoutMTAOfferAnswersContinue() throws {
        let listener = try startListener(["--reply", "body=skip"])
        let client = try listener.makeClient()
        _ = try client.negotiate(steps: MilterProtocol.allSteps & ~MilterProtocol.skip)
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        _ = try client.mail(["<alice@shop.example>"])
        _ = try client.recipient(["<bob@example.org>"])
        _ = try client.data()
        _ = try client.endOfHeaders()

        let reply = try client.body(Array("body\r\n".utf8))

        XCTAssertEqual(reply.commandCharacter, "c")
    }

    func testCustomMultilineReplyArrivesEscaped() throws {
        let listener = try startListener(["--reply", "envelopeRecipient=custom-reject"])

        let packet = try response(at: "envelopeRecipient", from: listener)

        XCTAssertEqual(packet.commandCharacter, "y")
        // The session's lines are "Rejected: 100% spam", "second\r\nline" and "third line".
        let expected = "550-5.7.1 Rejected: 100%% spam\r\n550-5.7.1 secondline\r\n550 5.7.1 third line\0"
        XCTAssertEqual(packet.text, expected)
    }

    func testCustomTempfailReplyHasCodeAndStatus() throws {
        let listener = try startListener(["--reply", "helo=custom-tempfail"])

        let packet = try response(at: "helo", from: listener)

        XCTAssertEqual(packet.commandCharacter, "y")
        XCTAssertEqual(packet.text, "451 4.7.1 Try again later\0")
    }

    func testInvalidCustomReplyGetsFailureReply() throws {
        let listener = try startListener(["--reply", "helo=custom-invalid"])

        let packet = try response(at: "helo", from: listener)

        XCTAssertEqual(packet.commandCharacter, "t")
        let log = try listener.waitForEvent("error log") { $0.event == "log" && $0.level == "error" }
        XCTAssertTrue(log.text?.contains("250") == true, log.text ?? "")
        XCTAssertTrue(log.text?.contains("helo") == true, log.text ?? "")
    }

    func testThrowingSessionGetsTempfailAndListenerLives() throws {
        let listener = try startListener(["--throw", "body"])

        let packet = try response(at: "body", from: listener)

        XCTAssertEqual(packet.commandCharacter, "t")
        let log = try listener.waitForEvent("error log") { $0.event == "log" && $0.level == "error" }
        XCTAssertTrue(log.text?.contains("body") == true, log.text ?? "")
        XCTAssertTrue(log.text?.contains("injected failure") == true, log.text ?? "")

        XCTAssertTrue(listener.isRunning)
        let next = try listener.negotiatedClient()
        let connect = try next.connect(hostname: "client.example", address: .ipv4("192.0.2.8", port: 2526))
        XCTAssertEqual(connect.commandCharacter, "c")
    }

    func testCustomFailureReplyIsSent() throws {
        let listener = try startListener(["--throw", "envelopeRecipient", "--failure-reply", "custom-tempfail"])

        let packet = try response(at: "envelopeRecipient", from: listener)

        XCTAssertEqual(packet.commandCharacter, "y")
        XCTAssertEqual(packet.text, "451 4.7.1 Try again later\0")
    }

    func testSigtermStopsListener() throws {
        let listener = try startListener()

        XCTAssertTrue(listener.terminate())

        XCTAssertEqual(listener.terminationStatus, 0)
    }
}
