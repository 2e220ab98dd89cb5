// Tests of stages negotiated without reply (SMFIP_NR_*): the bits follow the MTA's offer,
// no response packet is sent at those stages, a failure there gets the failure reply at the
// next stage that replies without harming the next message, and the stage's macros still arrive.
// They drive milter-test-listener over a unix socket.
import CMilter
@testable import Milter
import XCTest

final class NoReplyTests: ListenerTestCase {
    /// The stages of egress-milter's session: no data, no end of headers, no unknown.
    private let daemonStages = "connect,helo,envelopeFrom,envelopeRecipient,header,body,endOfMessage"
    private let daemonNoReplyStages = "connect,helo,envelopeFrom,envelopeRecipient,header,body"

    private let noReplyBits: [(stage: String, bit: UInt32)] = [
        ("connect", MilterProtocol.noReplyConnect), ("helo", MilterProtocol.noReplyHelo),
        ("envelopeFrom", MilterProtocol.noReplyMail), ("envelopeRecipient", MilterProtocol.noReplyRecipient),
        ("data", MilterProtocol.noReplyData), ("header", MilterProtocol.noReplyHeader),
        ("endOfHeaders", MilterProtocol.noReplyEndOfHeaders), ("body", MilterProtocol.noReplyBody),
        ("unknown", MilterProtocol.noReplyUnknown),
    ]

    /// Sends one message of the daemon's stages without reading any response before end of
    /// message, and returns the packets of end of message.
    private func sendMessageWithoutReplies(_ client: MilterProtocolClient, recipient: String = "<bob@example.org>") throws -> [MilterPacket] {
        try client.sendMail(["<alice@shop.example>"])
        try client.sendRecipient([recipient])
        try client.sendHeader(name: "From", value: Array("alice@shop.example".utf8))
        try client.sendHeader(name: "Subject", value: Array("hello".utf8))
        try client.sendHeader(name: "Message-ID", value: Array("<1@shop.example>".utf8))
        try client.sendBody(Array("body\r\n".utf8))
        return try client.endOfMessage()
    }

    private func errorLines(_ listener: ListenerProcess) throws -> [String] {
        try listener.events().filter { $0.event == "log" && $0.level == "error" }.map { $0.text ?? "" }
    }

    // MARK: - Negotiation

    func testNoReplyBitsFollowOffer() throws {
        let listener = try startListener(["--no-reply", daemonNoReplyStages])
        let requested: Set<String> = ["connect", "helo", "envelopeFrom", "envelopeRecipient", "header", "body"]
        let cases: [(name: String, offered: UInt32)] = [
            ("every bit offered", MilterProtocol.allSteps),
            ("no header or body bit", MilterProtocol.allSteps & ~(MilterProtocol.noReplyHeader | MilterProtocol.noReplyBody)),
            ("no bit at all", MilterProtocol.allSteps & ~MilterProtocol.everyNoReplyBit),
        ]

        for (name, offered) in cases {
            let reply = try listener.makeClient().negotiate(steps: offered)
            for (stage, bit) in noReplyBits {
                let expected = requested.contains(stage) && offered & bit != 0
                XCTAssertEqual(reply.steps & bit != 0, expected,
                               "\(name): no-reply bit of \(stage); steps 0x\(String(reply.steps, radix: 16))")
            }
            XCTAssertEqual(reply.steps & MilterProtocol.headerLeadingSpace, 0, "\(name): header values keep their form")
        }
    }

    func testNegotiationRequestsNoReplyOnlyForHandledStages() {
        let request = Negotiation(wantedActions: [], stages: [.connect, .header, .endOfMessage],
                                  noReplyStages: [.connect, .header, .body],
                                  offeredActions: 0, offeredSteps: UInt(SMFI_CURR_PROT), proposedSteps: 0)
        let options = NegotiatedOptions(actions: [], steps: request.steps)

        XCTAssertEqual(options.noReplyStages, [.connect, .header])
        XCTAssertEqual(request.steps & UInt(SMFIP_NR_BODY), 0, "body is skipped, so it needs no no-reply bit")
    }

    func testNegotiationDropsNoReplyBitsNotOffered() {
        let offered = UInt(SMFI_CURR_PROT) & ~UInt(SMFIP_NR_HDR)
        let request = Negotiation(wantedActions: [], stages: Set(ProtocolStage.allCases),
                                  noReplyStages: [.helo, .header],
                                  offeredActions: 0, offeredSteps: offered, proposedSteps: 0)

        XCTAssertEqual(request.steps & UInt(SMFIP_NR_HELO), UInt(SMFIP_NR_HELO))
        XCTAssertEqual(request.steps & UInt(SMFIP_NR_HDR), 0)
        XCTAssertEqual(request.steps & UInt(SMFIP_HDR_LEADSPC), 0)
    }

    // MARK: - No response packets

    func testNoReplyStagesSendNoResponse() throws {
        let listener = try startListener(["--stages", daemonStages, "--no-reply", daemonNoReplyStages,
                                          "--reply", "endOfMessage=accept"])
        let client = try listener.negotiatedClient()

        try client.sendConnect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        try client.sendHelo("client.example")
        let packets = try sendMessageWithoutReplies(client)

        XCTAssertEqual(packets.map(\.commandCharacter), ["a"], "the first response belongs to end of message")
        let stages = try listener.sessionEvents().map(\.event)
        XCTAssertEqual(stages, ["connect", "helo", "envelopeFrom", "envelopeRecipient",
                                "header", "header", "header", "body", "endOfMessage"])
        try client.quit()
        XCTAssertTrue(try client.waitForClose(), "no response is left to read after quit")
    }

    func testHeaderWithoutReplyThenNextCommandResponds() throws {
        let listener = try startListener(["--no-reply", "header", "--reply", "endOfHeaders=accept"])
        let client = try listener.negotiatedClient()
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        _ = try client.mail(["<alice@shop.example>"])
        _ = try client.recipient(["<bob@example.org>"])
        _ = try client.data()

        let value: [UInt8] = [0x20, 0x43, 0x61, 0x66, 0xE9, 0x0A, 0x09, 0x6E, 0x65, 0x78, 0x74]
        try client.sendHeader(name: "Subject", value: value)
        try client.sendHeader(name: "X-Second", value: Array("two".utf8))
        let response = try client.endOfHeaders()

        XCTAssertEqual(response.commandCharacter, "a", "the response after the headers belongs to end of headers: \(response)")
        let headers = try listener.sessionEvents().filter { $0.event == "header" }
        XCTAssertEqual(headers.map(\.name), ["Subject", "X-Second"])
        XCTAssertEqual(headers.first?.bytes, value, "header bytes arrive as sent")
    }

    func testMTAWithoutNoReplyGetsContinue() throws {
        let listener = try startListener(["--no-reply", "header"])
        let client = try listener.makeClient()
        let reply = try client.negotiate(steps: MilterProtocol.allSteps & ~MilterProtocol.everyNoReplyBit)
        XCTAssertEqual(reply.steps & MilterProtocol.everyNoReplyBit, 0)
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        _ = try client.mail(["<alice@shop.example>"])
        _ = try client.recipient(["<bob@example.org>"])
        _ = try client.data()

        let header = try client.header(name: "Subject", value: Array("hello".utf8))

        XCTAssertEqual(header.commandCharacter, "c", "libmilter sends continue for the session")
        XCTAssertEqual(try client.endOfHeaders().commandCharacter, "c")
        XCTAssertEqual(try client.endOfMessage().last?.commandCharacter, "c")
    }

    // MARK: - Failures

    func testNextMessageAfterFailurePasses() throws {
        let listener = try startListener(["--stages", daemonStages, "--no-reply", daemonNoReplyStages,
                                          "--throw-in-first-message", "header"])
        let client = try listener.negotiatedClient()
        try client.sendConnect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        try client.sendHelo("client.example")

        let first = try sendMessageWithoutReplies(client)
        let second = try sendMessageWithoutReplies(client, recipient: "<carol@example.org>")

        XCTAssertEqual(first.map(\.commandCharacter), ["t"], "the failed message gets the failure reply")
        XCTAssertEqual(second.map(\.commandCharacter), ["c"], "the next message on the connection passes")

        let events = try listener.sessionEvents()
        XCTAssertEqual(events.filter { $0.event == "header" && $0.message == 1 }.count, 3,
                       "the session still receives the no-reply stages after the failure")
        XCTAssertTrue(events.contains { $0.event == "abort" && $0.message == 1 },
                      "the failed message ends with abort")
        XCTAssertFalse(events.contains { $0.event == "endOfMessage" && $0.message == 1 },
                       "the session does not decide a failed message")
        XCTAssertTrue(events.contains { $0.event == "endOfMessage" && $0.message == 2 })

        let errors = try errorLines(listener)
        XCTAssertEqual(errors.count, 1, "one error line for three failed headers: \(errors)")
        XCTAssertTrue(errors.first?.contains("header") == true, errors.first ?? "")
        XCTAssertTrue(errors.first?.contains("injected failure") == true, errors.first ?? "")
    }

    func testFailureReplyAtEndOfMessage() throws {
        let cases: [(name: String, arguments: [String], command: Character, text: String?)] = [
            ("throw with custom failure reply",
             ["--throw", "envelopeRecipient", "--failure-reply", "custom-tempfail"], "y", "451 4.7.1 Try again later\0"),
            ("reject at a no-reply stage", ["--reply", "header=reject"], "t", nil),
            ("custom reply at a no-reply stage", ["--reply", "envelopeFrom=custom-reject"], "t", nil),
            ("skip from body", ["--reply", "body=skip"], "c", nil),
        ]
        for (name, arguments, command, text) in cases {
            let listener = try startListener(["--stages", daemonStages, "--no-reply", daemonNoReplyStages] + arguments)
            let client = try listener.negotiatedClient()
            try client.sendConnect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))

            let packets = try sendMessageWithoutReplies(client)

            XCTAssertEqual(packets.map(\.commandCharacter), [command], name)
            if let text {
                XCTAssertEqual(packets.last?.text, text, name)
            }
            XCTAssertEqual(try errorLines(listener).count, command == "c" ? 0 : 1, name)
        }
    }

    func testFailureStopsRepliesUntilEndOfMessage() throws {
        let listener = try startListener(["--no-reply", "envelopeFrom", "--throw-in-first-message", "envelopeFrom"])
        let client = try listener.negotiatedClient()
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        try client.sendMail(["<alice@shop.example>"])

        XCTAssertEqual(try client.recipient(["<bob@example.org>"]).commandCharacter, "t")
        XCTAssertEqual(try client.recipient(["<carol@example.org>"]).commandCharacter, "t",
                       "every recipient of the failed message gets the failure reply")
        let recipients = try listener.sessionEvents().filter { $0.event == "envelopeRecipient" }
        XCTAssertTrue(recipients.isEmpty, "the session is not asked about a failed message's recipients")
    }

    func testAbortClearsFailureOfMessage() throws {
        let listener = try startListener(["--stages", daemonStages, "--no-reply", daemonNoReplyStages,
                                          "--throw-in-first-message", "header"])
        let client = try listener.negotiatedClient()
        try client.sendConnect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        try client.sendMail(["<alice@shop.example>"])
        try client.sendRecipient(["<bob@example.org>"])
        try client.sendHeader(name: "Subject", value: Array("first".utf8))

        try client.abort()
        let packets = try sendMessageWithoutReplies(client)

        XCTAssertEqual(packets.map(\.commandCharacter), ["c"])
        XCTAssertEqual(try errorLines(listener).count, 1)
    }

    func testConnectFailureOutlivesAbort() throws {
        let listener = try startListener(["--stages", daemonStages, "--no-reply", daemonNoReplyStages,
                                          "--throw-in-first-message", "connect"])
        let client = try listener.negotiatedClient()
        try client.sendConnect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        try client.sendMail(["<alice@shop.example>"])
        try client.sendRecipient(["<bob@example.org>"])

        try client.abort()
        let afterAbort = try sendMessageWithoutReplies(client)
        let next = try sendMessageWithoutReplies(client)

        XCTAssertEqual(afterAbort.map(\.commandCharacter), ["t"], "an abort does not undo a failure at connect")
        XCTAssertEqual(next.map(\.commandCharacter), ["c"], "end of message settled the failure")
    }

    // MARK: - Macros

    func testMacrosReachNoReplyStages() throws {
        let listener = try startListener(["--no-reply", "connect,envelopeFrom",
                                          "--macros", "envelopeFrom={x_custom},{auth_authen}",
                                          "--reply", "envelopeRecipient=accept"])
        let client = try listener.negotiatedClient()

        try client.defineMacros(for: "C", ["j": "mx.example", "{daemon_name}": "smtpd"])
        try client.sendConnect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        try client.defineMacros(for: "M", ["{auth_authen}": "alice", "{x_custom}": "custom value"])
        try client.sendMail(["<alice@shop.example>"])
        try client.defineMacros(for: "R", ["{rcpt_addr}": "bob@example.org"])
        let response = try client.recipient(["<bob@example.org>"])

        XCTAssertEqual(response.commandCharacter, "a", "the first response belongs to RCPT: \(response)")
        let events = try listener.sessionEvents()
        let connect = try XCTUnwrap(events.first { $0.event == "connect" })
        XCTAssertEqual(connect.macros?["j"], "mx.example")
        XCTAssertEqual(connect.macros?["{daemon_name}"], "smtpd")
        let mail = try XCTUnwrap(events.first { $0.event == "envelopeFrom" })
        XCTAssertEqual(mail.macros?["{auth_authen}"], "alice")
        XCTAssertEqual(mail.macros?["{x_custom}"], "custom value")
        XCTAssertNil(mail.macros?["{rcpt_addr}"], "RCPT macros must not be visible at MAIL")
        let recipient = try XCTUnwrap(events.first { $0.event == "envelopeRecipient" })
        XCTAssertEqual(recipient.macros?["{rcpt_addr}"], "bob@example.org")
    }
}
