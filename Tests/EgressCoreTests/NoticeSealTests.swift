// Tests for the seal that lets the daemon recognize its own notices: valid once, and
// forged, replayed, moved or duplicated seals rejected.

import XCTest
@testable import EgressCore

final class NoticeSealTests: XCTestCase {
    private let now = 1_800_000_000.0

    private func headers(messageID: String, seal: String?) -> [Header] {
        var fields = [Header(name: "From", value: Array(" egress-milter".utf8)),
                      Header(name: "Message-ID", value: Array(" \(messageID)".utf8))]
        if let seal {
            fields.append(Header(name: NoticeSeal.headerName, value: Array(" \(seal)".utf8)))
        }
        return fields
    }

    func testIssuedSealIsValidOnce() {
        let seal = NoticeSeal()
        let issued = seal.issue(domain: "mx.example.org", now: now)
        XCTAssertTrue(issued.messageID.hasPrefix("<notice."))
        XCTAssertTrue(issued.messageID.hasSuffix("@mx.example.org>"))
        let fields = headers(messageID: issued.messageID, seal: issued.sealValue)
        XCTAssertEqual(seal.redeem(headers: fields, now: now + 1), .valid)
        guard case .invalid(let reason) = seal.redeem(headers: fields, now: now + 2) else {
            return XCTFail("a replayed seal was accepted")
        }
        XCTAssertTrue(reason.contains("used before"), reason)
        XCTAssertEqual(seal.outstandingCount, 0)
    }

    func testMessageWithoutSealIsAbsent() {
        XCTAssertEqual(NoticeSeal().redeem(headers: headers(messageID: "<a@b>", seal: nil), now: now), .absent)
    }

    func testForgedSealIsInvalid() {
        let seal = NoticeSeal()
        let issued = seal.issue(domain: "mx.example.org", now: now)
        let forged = String(repeating: "0", count: issued.sealValue.count)
        XCTAssertNotEqual(seal.redeem(headers: headers(messageID: issued.messageID, seal: forged), now: now), .valid)
        // The genuine notice still passes afterwards.
        XCTAssertEqual(seal.redeem(headers: headers(messageID: issued.messageID, seal: issued.sealValue), now: now), .valid)
    }

    func testSealOfAnotherDaemonIsInvalid() {
        let other = NoticeSeal(secret: Array(repeating: 7, count: 32))
        let issued = other.issue(domain: "mx.example.org", now: now)
        let seal = NoticeSeal(secret: Array(repeating: 8, count: 32))
        XCTAssertNotEqual(seal.redeem(headers: headers(messageID: issued.messageID, seal: issued.sealValue), now: now), .valid)
    }

    func testSealMovedToOtherMessageIDIsInvalid() {
        let seal = NoticeSeal()
        let issued = seal.issue(domain: "mx.example.org", now: now)
        let moved = headers(messageID: "<spam.1@mx.example.org>", seal: issued.sealValue)
        XCTAssertNotEqual(seal.redeem(headers: moved, now: now), .valid)
    }

    func testTwoSealFieldsAreInvalid() {
        let seal = NoticeSeal()
        let issued = seal.issue(domain: "mx.example.org", now: now)
        var fields = headers(messageID: issued.messageID, seal: issued.sealValue)
        fields.append(Header(name: NoticeSeal.headerName, value: Array(issued.sealValue.utf8)))
        XCTAssertNotEqual(seal.redeem(headers: fields, now: now), .valid)
    }

    func testExpiredSealIsInvalid() {
        let seal = NoticeSeal()
        let issued = seal.issue(domain: "mx.example.org", now: now)
        let late = now + NoticeSeal.lifetimeSeconds + 1
        XCTAssertNotEqual(seal.redeem(headers: headers(messageID: issued.messageID, seal: issued.sealValue), now: late), .valid)
    }
}
