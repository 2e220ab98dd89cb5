// Tests that each protocol event reaches the session with its data intact: addresses,
// macros, ESMTP arguments, header bytes, body chunks, unknown commands, and the session's
// lifetime across abort and close. They drive milter-test-listener over a unix socket.
import XCTest

final class SessionEventTests: ListenerTestCase {
    func testConnectPassesIPv4Address() throws {
        let listener = try startListener()
        let client = try listener.negotiatedClient()

        let reply = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))

        XCTAssertEqual(reply.commandCharacter, "c")
        let event = try listener.waitForEvent("connect") { $0.event == "connect" }
        XCTAssertEqual(event.hostname, "client.example")
        XCTAssertEqual(event.addressKind, "ipv4")
        XCTAssertEqual(event.host, "192.0.2.7")
        XCTAssertEqual(event.port, 2525)
    }

    func testConnectPassesIPv6Address() throws {
        let listener = try startListener()
        let client = try listener.negotiatedClient()

        let reply = try client.connect(hostname: "[2001:db8::25]", address: .ipv6("2001:db8::25", port: 40000))

        XCTAssertEqual(reply.commandCharacter, "c")
        let event = try listener.waitForEvent("connect") { $0.event == "connect" }
        XCTAssertEqual(event.hostname, "[2001:db8::25]")
        XCTAssertEqual(event.addressKind, "ipv6")
        XCTAssertEqual(event.host, "2001:db8::25")
        XCTAssertEqual(event.port, 40000)
    }

    func testConnectPassesUnixAndUnknownAddresses() throws {
        let listener = try startListener()

        let unixClient = try listener.negotiatedClient()
        XCTAssertEqual(try unixClient.connect(hostname: "localhost", address: .unix("/run/client.sock")).commandCharacter, "c")
        let unixEvent = try listener.waitForEvent("unix connect") { $0.event == "connect" && $0.session == 1 }
        XCTAssertEqual(unixEvent.addressKind, "unix")
        XCTAssertEqual(unixEvent.path, "/run/client.sock")

        let unknownClient = try listener.negotiatedClient()
        XCTAssertEqual(try unknownClient.connect(hostname: "localhost", address: .unknown).commandCharacter, "c")
        let unknownEvent = try listener.waitForEvent("unknown connect") { $0.event == "connect" && $0.session == 2 }
        XCTAssertEqual(unknownEvent.addressKind, "unknown")
        XCTAssertNil(unknownEvent.host)
    }

    func testMacrosAreVisibleAtTheirStage() throws {
        let listener = try startListener(["--macros", "envelopeFrom={x_custom},{auth_authen}"])
        let client = try listener.negotiatedClient()

        try client.defineMacros(for: "C", ["j": "mx.example", "{daemon_name}": "smtpd"])
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        try client.defineMacros(for: "M", ["{auth_authen}": "alice", "{x_custom}": "custom value",
                                           "{x_not_requested}": "ignored"])
        _ = try client.mail(["<alice@shop.example>"])

        let connect = try listener.waitForEvent("connect") { $0.event == "connect" }
        XCTAssertEqual(connect.macros?["j"], "mx.example")
        XCTAssertEqual(connect.macros?["{daemon_name}"], "smtpd")
        XCTAssertNil(connect.macros?["{auth_authen}"], "MAIL macros must not be visible before MAIL")

        let mail = try listener.waitForEvent("envelopeFrom") { $0.event == "envelopeFrom" }
        XCTAssertEqual(mail.macros?["{auth_authen}"], "alice")
        XCTAssertEqual(mail.macros?["{x_custom}"], "custom value")
        XCTAssertEqual(mail.macros?["j"], "mx.example", "connect macros stay for the whole connection")
        XCTAssertNil(mail.macros?["{x_not_requested}"], "only requested and standard macros are read")
    }

    func testEnvelopeFromSeparatesESMTPArguments() throws {
        let listener = try startListener()
        let client = try listener.negotiatedClient()
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))

        let reply = try client.mail(["<alice@shop.example>", "SIZE=12345", "BODY=8BITMIME"])
        _ = try client.recipient(["<bob@example.org>", "NOTIFY=NEVER"])

        XCTAssertEqual(reply.commandCharacter, "c")
        let mail = try listener.waitForEvent("envelopeFrom") { $0.event == "envelopeFrom" }
        XCTAssertEqual(mail.address, "<alice@shop.example>")
        XCTAssertEqual(mail.arguments, ["SIZE=12345", "BODY=8BITMIME"])
        let recipient = try listener.waitForEvent("envelopeRecipient") { $0.event == "envelopeRecipient" }
        XCTAssertEqual(recipient.address, "<bob@example.org>")
        XCTAssertEqual(recipient.arguments, ["NOTIFY=NEVER"])
    }

    func testHeaderValueBytesArePreserved() throws {
        let listener = try startListener()
        let client = try listener.negotiatedClient()
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        _ = try client.mail(["<alice@shop.example>"])
        _ = try client.recipient(["<bob@example.org>"])
        _ = try client.data()

        // Latin-1 "é", an invalid UTF-8 byte, a folded line and a leading space.
        let value: [UInt8] = [0x20, 0x43, 0x61, 0x66, 0xE9, 0x20, 0xFF, 0xFE, 0x0A, 0x09, 0x6E, 0x65, 0x78, 0x74]
        let reply = try client.header(name: "Subject", value: value)

        XCTAssertEqual(reply.commandCharacter, "c")
        let header = try listener.waitForEvent("header") { $0.event == "header" }
        XCTAssertEqual(header.name, "Subject")
        XCTAssertEqual(header.bytes, value)
    }

    func testBodyChunksConcatenateToSentBytes() throws {
        let listener = try startListener()
        let client = try listener.negotiatedClient()
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        _ = try client.mail(["<alice@shop.example>"])
        _ = try client.recipient(["<bob@example.org>"])
        _ = try client.data()
        _ = try client.endOfHeaders()

        let chunks: [[UInt8]] = [
            Array("First line\r\nSecond ".utf8),
            [0x00, 0xFF, 0x80, 0x0D, 0x0A],
            [UInt8](repeating: UInt8(ascii: "x"), count: 60_000),
        ]
        for chunk in chunks {
            XCTAssertEqual(try client.body(chunk).commandCharacter, "c")
        }
        XCTAssertEqual(try client.endOfMessage().last?.commandCharacter, "c")

        let received = try listener.sessionEvents().filter { $0.event == "body" }.flatMap { $0.bytes ?? [] }
        XCTAssertEqual(received.count, chunks.joined().count)
        XCTAssertEqual(received, Array(chunks.joined()))
    }

    func testUnknownCommandReachesSession() throws {
        let listener = try startListener()
        let client = try listener.negotiatedClient()
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))

        let reply = try client.unknown("XFOO bar")

        XCTAssertEqual(reply.commandCharacter, "c")
        let event = try listener.waitForEvent("unknown") { $0.event == "unknown" }
        XCTAssertEqual(event.bytes, Array("XFOO bar".utf8))
    }

    func testAbortKeepsSessionAndResetsMessage() throws {
        let listener = try startListener()
        let client = try listener.negotiatedClient()
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        _ = try client.mail(["<alice@shop.example>"])
        _ = try client.recipient(["<bob@example.org>"])
        _ = try client.recipient(["<carol@example.org>"])

        try client.abort()
        _ = try client.mail(["<alice@shop.example>"])
        _ = try client.recipient(["<dave@example.org>"])

        let events = try listener.sessionEvents()
        let abort = try XCTUnwrap(events.first { $0.event == "abort" })
        XCTAssertEqual(abort.session, 1)
        XCTAssertEqual(abort.recipientsInMessage, 2)

        let recipients = events.filter { $0.event == "envelopeRecipient" }
        XCTAssertEqual(recipients.map(\.session), [1, 1, 1], "one session object for the whole connection")
        XCTAssertEqual(recipients.map(\.message), [1, 1, 2])
        XCTAssertEqual(recipients.map(\.recipientsInMessage), [1, 2, 1], "recipient count restarts after abort")
    }

    func testCloseAfterQuitEndsSession() throws {
        let listener = try startListener()
        let client = try listener.negotiatedClient()
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))

        try client.quit()

        XCTAssertTrue(try client.waitForClose())
        let close = try listener.waitForEvent("close") { $0.event == "close" }
        XCTAssertEqual(close.session, 1)
    }

    func testCloseWithoutConnectCreatesNoSession() throws {
        let listener = try startListener()
        let idle = try listener.negotiatedClient()

        try idle.quit()
        XCTAssertTrue(try idle.waitForClose())

        // The listener still serves, and the first session it creates is number 1: the
        // connection that closed before connect created none.
        let client = try listener.negotiatedClient()
        XCTAssertEqual(try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525)).commandCharacter, "c")
        let connect = try listener.waitForEvent("connect") { $0.event == "connect" }
        XCTAssertEqual(connect.session, 1)
        XCTAssertFalse(try listener.sessionEvents().contains { $0.event == "close" })
        XCTAssertTrue(listener.isRunning)
    }
}
