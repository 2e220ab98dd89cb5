// Tests for the counter table itself: its key index under many inserts and removals, the
// round trip of keys and identifiers, and saturation of both counter widths.

import XCTest
@testable import EgressCore

final class WindowCountersTests: XCTestCase {
    private let shapes = [WindowShape(unit: .messages, seconds: 60), WindowShape(unit: .recipients, seconds: 3600)]

    func testManyKeysInsertRemoveAndReinsert() {
        var table = CounterTable(ruleName: "t", shapes: shapes, isWide: false)
        let keys = (0..<50_000).map { "sender:user\($0)@example.\($0 % 7 == 0 ? "net" : "org")" }
        var slots: [Int] = []
        for (index, key) in keys.enumerated() {
            let slot = table.slot(creating: key, now: 0)
            table.add(UInt32(index % 100 + 1), to: slot, window: 1, at: 0)
            slots.append(slot)
        }
        XCTAssertEqual(table.count, keys.count)
        XCTAssertEqual(Set(slots).count, keys.count)

        for index in stride(from: 0, to: keys.count, by: 2) {
            table.remove(keys[index])
        }
        XCTAssertEqual(table.count, keys.count / 2)
        for (index, key) in keys.enumerated() {
            if index % 2 == 0 {
                XCTAssertNil(table.slot(for: key), key)
            } else {
                let slot = table.slot(for: key)
                XCTAssertEqual(slot, slots[index], key)
                XCTAssertEqual(slot.map { table.key(of: $0) }, key)
                XCTAssertEqual(slot.map { table.sum($0, window: 1) }, UInt64(index % 100 + 1), key)
            }
        }

        // Reinserted keys start empty, in reused slots, and find their old neighbours intact.
        for index in stride(from: 0, to: keys.count, by: 2) {
            let slot = table.slot(creating: keys[index], now: 0)
            XCTAssertEqual(table.sum(slot, window: 1), 0)
        }
        XCTAssertEqual(table.count, keys.count)
        XCTAssertEqual(table.slot(for: keys[49_999]).map { table.sum($0, window: 1) }, 100)
    }

    func testIdleRemovalCompactsKeysAndKeepsLiveOnes() {
        var table = CounterTable(ruleName: "t", shapes: shapes, isWide: false)
        for index in 0..<20_000 {
            let slot = table.slot(creating: "login:idle-\(index)-with-a-long-name", now: 0)
            table.add(1, to: slot, window: 0, at: 0)
        }
        let live = table.slot(creating: "login:live", now: 0)
        XCTAssertEqual(table.advance(live, to: 4_000_000), 4_000_000)
        table.add(3, to: live, window: 0, at: 4_000_000)

        XCTAssertEqual(table.removeIdle(at: 4_000_000), 20_000)
        XCTAssertEqual(table.count, 1)
        let found = table.slot(for: "login:live")
        XCTAssertEqual(found.map { table.key(of: $0) }, "login:live")
        XCTAssertEqual(found.map { table.sum($0, window: 0) }, 3)
        XCTAssertEqual(table.takeRemoved().count, 20_000)
    }

    func testKeysAroundTheInlineLengthStayDistinct() {
        // Keys of up to 24 bytes sit in the record, longer ones in the arena.
        var table = CounterTable(ruleName: "t", shapes: shapes, isWide: false)
        var keys: [String] = ["", "a", "é"]
        for length in [3, 4, 5, 23, 24, 25, 26] {
            let stem = String(repeating: "k", count: length - 1)
            keys += [stem + "x", stem + "y", "y" + stem]
        }
        for (index, key) in keys.enumerated() {
            let slot = table.slot(creating: key, now: 0)
            table.add(UInt32(index + 1), to: slot, window: 0, at: 0)
        }
        XCTAssertEqual(table.count, keys.count)
        for (index, key) in keys.enumerated() {
            let slot = table.slot(for: key)
            XCTAssertEqual(slot.map { table.key(of: $0) }, key, "key \(key.debugDescription)")
            XCTAssertEqual(slot.map { table.sum($0, window: 0) }, UInt64(index + 1), "key \(key.debugDescription)")
        }
        XCTAssertNil(table.slot(for: String(repeating: "k", count: 23)), "a prefix of a stored key is another key")
    }

    func testOverlongKeysAreCutNotRejected() {
        var table = CounterTable(ruleName: "t", shapes: shapes, isWide: false)
        let prefix = "script:alice:/" + String(repeating: "d/", count: CounterTable.maximumKeyBytes)
        let first = table.slot(creating: prefix + "a.php", now: 0)
        let second = table.slot(creating: prefix + "b.php", now: 0)
        XCTAssertEqual(first, second, "keys equal in their first 16 KiB share a slot")
        XCTAssertEqual(table.key(of: first).utf8.count, CounterTable.maximumKeyBytes)
        XCTAssertNotEqual(table.slot(creating: "script:alice:/short.php", now: 0), first)
    }

    func testIdentifierRoundTrip() {
        for isWide in [false, true] {
            let identifier = CounterTable.identifier(ruleName: "a|b", shapes: shapes, isWide: isWide)
            let parsed = CounterTable.parse(identifier: identifier)
            XCTAssertEqual(parsed?.ruleName, "a|b")
            XCTAssertEqual(parsed?.shapes, shapes)
            XCTAssertEqual(parsed?.isWide, isWide)
        }
        XCTAssertNil(CounterTable.parse(identifier: "rule|x60"))
        XCTAssertNil(CounterTable.parse(identifier: "no-bar"))
    }

    func testCountersSaturateInsteadOfOverflowing() {
        for (isWide, maximum) in [(true, UInt64(UInt32.max)), (false, UInt64(UInt16.max))] {
            var table = CounterTable(ruleName: "t", shapes: [WindowShape(unit: .recipients, seconds: 10)], isWide: isWide)
            let slot = table.slot(creating: "login:alice", now: 0)
            table.add(UInt32(maximum) - 1, to: slot, window: 0, at: 0)
            table.add(5, to: slot, window: 0, at: 0)
            XCTAssertEqual(table.sum(slot, window: 0), maximum, "wide: \(isWide)")
            XCTAssertEqual(table.advance(slot, to: 1000), 1000)
            table.add(7, to: slot, window: 0, at: 1000)
            XCTAssertEqual(table.sum(slot, window: 0), maximum + 7, "wide: \(isWide)")
        }
    }
}
