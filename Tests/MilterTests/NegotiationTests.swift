// Tests of option negotiation: stages the session does not want are skipped, actions are
// limited to what the MTA offers, libmilter's own "skip" bits are kept, and macro lists are
// requested per stage.
import CMilter
@testable import Milter
import XCTest

final class NegotiationTests: ListenerTestCase {
    func testUnrequestedStagesAreSkipped() throws {
        let listener = try startListener(["--stages", "connect,envelopeFrom,endOfMessage"])
        let client = try listener.makeClient()

        let reply = try client.negotiate()

        let skipped: [(String, UInt32)] = [
            ("helo", MilterProtocol.noHelo), ("envelopeRecipient", MilterProtocol.noRecipient),
            ("data", MilterProtocol.noData), ("header", MilterProtocol.noHeaders),
            ("endOfHeaders", MilterProtocol.noEndOfHeaders), ("body", MilterProtocol.noBody),
            ("unknown", MilterProtocol.noUnknown),
        ]
        for (stage, bit) in skipped {
            XCTAssertNotEqual(reply.steps & bit, 0, "\(stage) should be skipped; steps 0x\(String(reply.steps, radix: 16))")
        }
        XCTAssertEqual(reply.steps & MilterProtocol.noConnect, 0, "connect is requested")
        XCTAssertEqual(reply.steps & MilterProtocol.noMail, 0, "envelopeFrom is requested")
    }

    func testAllStagesRequestedSkipsNothing() throws {
        let listener = try startListener()
        let client = try listener.makeClient()

        let reply = try client.negotiate()

        let everySkipBit = MilterProtocol.noConnect | MilterProtocol.noHelo | MilterProtocol.noMail
            | MilterProtocol.noRecipient | MilterProtocol.noBody | MilterProtocol.noHeaders
            | MilterProtocol.noEndOfHeaders | MilterProtocol.noUnknown | MilterProtocol.noData
        XCTAssertEqual(reply.steps & everySkipBit, 0)
        XCTAssertNotEqual(reply.steps & MilterProtocol.skip, 0, "SMFIP_SKIP is requested when body is handled")
    }

    func testSkippedStageStillServesRequestedOnes() throws {
        let listener = try startListener(["--stages", "envelopeFrom"])
        let client = try listener.makeClient()
        let reply = try client.negotiate()
        XCTAssertNotEqual(reply.steps & MilterProtocol.noConnect, 0)

        // Without connect the session is created at the first stage it handles.
        let mail = try client.mail(["<alice@shop.example>"])

        XCTAssertEqual(mail.commandCharacter, "c")
        XCTAssertEqual(try client.recipient(["<bob@example.org>"]).commandCharacter, "c",
                       "libmilter replies itself to a stage without callback")
        let event = try listener.waitForEvent("envelopeFrom") { $0.event == "envelopeFrom" }
        XCTAssertEqual(event.session, 1)
        XCTAssertFalse(try listener.sessionEvents().contains { $0.event == "connect" })
    }

    func testActionsAreLimitedToOffer() throws {
        let listener = try startListener(["--actions", "addHeaders,quarantine"])

        let full = try listener.makeClient().negotiate()
        XCTAssertEqual(full.actions, MilterProtocol.addHeaders | MilterProtocol.quarantine)

        let limited = try listener.makeClient().negotiate(actions: MilterProtocol.addHeaders | MilterProtocol.changeBody)
        XCTAssertEqual(limited.actions, MilterProtocol.addHeaders)
    }

    func testMacroListsAreRequestedPerStage() throws {
        let listener = try startListener(["--macros", "connect={daemon_name},{client_addr}",
                                          "--macros", "envelopeFrom=i,{auth_authen}"])
        let client = try listener.makeClient()

        let reply = try client.negotiate()

        XCTAssertNotEqual(reply.actions & MilterProtocol.setMacroList, 0)
        XCTAssertEqual(reply.macroLists[UInt32(SMFIM_CONNECT)], "{daemon_name} {client_addr}")
        XCTAssertEqual(reply.macroLists[UInt32(SMFIM_ENVFROM)], "i {auth_authen}")
        XCTAssertEqual(reply.macroLists.count, 2)
    }

    func testMacroListsNeedTheMTAOffer() throws {
        let listener = try startListener(["--macros", "envelopeFrom=i"])
        let client = try listener.makeClient()

        let reply = try client.negotiate(actions: MilterProtocol.addHeaders)

        XCTAssertEqual(reply.actions & MilterProtocol.setMacroList, 0)
        XCTAssertTrue(reply.macroLists.isEmpty)
        XCTAssertEqual(try client.connect(hostname: "client.example", address: .ipv4("192.0.2.7", port: 2525)).commandCharacter, "c")
    }

    // MARK: - Computation without libmilter

    func testNegotiationKeepsProposedSteps() {
        let proposed = UInt(SMFIP_NOHELO | SMFIP_NR_HDR)
        let request = Negotiation(wantedActions: [.addHeaders], stages: Set(ProtocolStage.allCases),
                                  offeredActions: UInt(SMFI_CURR_ACTS), offeredSteps: UInt(SMFI_CURR_PROT),
                                  proposedSteps: proposed)

        XCTAssertEqual(request.steps & proposed, proposed)
        XCTAssertEqual(request.actions, UInt(SMFIF_ADDHDRS))
        XCTAssertTrue(request.missingActions.isEmpty)
    }

    func testNegotiationNeverExceedsOffer() {
        // An old MTA offering only the version 2 steps, while libmilter proposes more.
        let offered = UInt(SMFI_V2_PROT)
        let request = Negotiation(wantedActions: [.addHeaders, .quarantine, .setMacroList],
                                  stages: [.connect],
                                  offeredActions: UInt(SMFI_V2_ACTS), offeredSteps: offered,
                                  proposedSteps: UInt(SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_SKIP))

        XCTAssertEqual(request.steps & ~offered, 0)
        XCTAssertEqual(request.steps & UInt(SMFIP_NOHELO), UInt(SMFIP_NOHELO))
        XCTAssertEqual(request.missingActions, [.setMacroList])
        XCTAssertFalse(request.canSetMacroLists)
    }

    func testStagesExceptEndOfMessageAreSkippable() {
        for stage in ProtocolStage.allCases {
            let request = Negotiation(wantedActions: [], stages: Set(ProtocolStage.allCases).subtracting([stage]),
                                      offeredActions: 0, offeredSteps: UInt(SMFI_CURR_PROT), proposedSteps: 0)
            if stage == .endOfMessage {
                XCTAssertNil(stage.skipProtocolBit)
            } else {
                let bit = try? XCTUnwrap(stage.skipProtocolBit)
                XCTAssertEqual(request.steps & (bit ?? 0), bit, "\(stage)")
            }
        }
    }
}
