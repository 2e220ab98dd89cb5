// Tests that modifications made through EndOfMessage reach the MTA as h, i, m, q and p
// packets in the order the session made them, and that a refused modification becomes an
// error and the failure reply.
import XCTest

final class EndOfMessageTests: ListenerTestCase {
    private func sendMessage(to listener: ListenerProcess, actions: UInt32 = MilterProtocol.allActions) throws -> [MilterPacket] {
        let client = try listener.makeClient()
        _ = try client.negotiate(actions: actions)
        _ = try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525))
        _ = try client.mail(["<alice@shop.example>"])
        _ = try client.recipient(["<bob@example.org>"])
        _ = try client.data()
        _ = try client.header(name: "Subject", value: Array("original".utf8))
        _ = try client.header(name: "X-Remove", value: Array("gone".utf8))
        _ = try client.endOfHeaders()
        _ = try client.body(Array("body\r\n".utf8))
        return try client.endOfMessage()
    }

    func testModificationsArriveInOrder() throws {
        let listener = try startListener(["--modify"])

        let packets = try sendMessage(to: listener)

        let expected = [
            MilterPacket(command: UInt8(ascii: "h"), data: nulTerminated("X-Added") + nulTerminated("added value")),
            MilterPacket(command: UInt8(ascii: "i"), data: bigEndianBytes(UInt32(0)) + nulTerminated("X-Inserted") + nulTerminated("inserted value")),
            MilterPacket(command: UInt8(ascii: "m"), data: bigEndianBytes(UInt32(1)) + nulTerminated("Subject") + nulTerminated("changed subject")),
            MilterPacket(command: UInt8(ascii: "m"), data: bigEndianBytes(UInt32(1)) + nulTerminated("X-Remove") + [0]),
            MilterPacket(command: UInt8(ascii: "q"), data: nulTerminated("held by test")),
            MilterPacket(command: UInt8(ascii: "p"), data: []),
            MilterPacket(command: UInt8(ascii: "c"), data: []),
        ]
        XCTAssertEqual(packets.map(\.commandCharacter), expected.map(\.commandCharacter))
        XCTAssertEqual(packets, expected)
    }

    func testModificationNotOfferedGetsFailureReply() throws {
        let listener = try startListener(["--modify"])

        // The MTA offers adding headers but not changing them or quarantine.
        let packets = try sendMessage(to: listener, actions: MilterProtocol.addHeaders)

        XCTAssertEqual(packets.map(\.commandCharacter), ["h", "i", "t"])
        let log = try listener.waitForEvent("error log") { $0.event == "log" && $0.level == "error" }
        XCTAssertTrue(log.text?.contains("smfi_chgheader") == true, log.text ?? "")
        XCTAssertTrue(log.text?.contains("endOfMessage") == true, log.text ?? "")
        let warning = try listener.waitForEvent("warning log") { $0.event == "log" && $0.level == "warning" }
        XCTAssertTrue(warning.text?.contains("does not offer actions") == true, warning.text ?? "")
    }
}
