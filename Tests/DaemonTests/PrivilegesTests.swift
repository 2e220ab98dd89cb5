// Tests for the start-up steps that look up the daemon's account and the sockets' groups.

import Glibc
import XCTest
@testable import egress_milter

final class PrivilegesTests: XCTestCase {
    private let account = Account(name: "someone", uid: 4321, gid: 8765)

    func testEmptyGroupIsTheAccountsGroup() throws {
        XCTAssertEqual(try groupID(named: "", emptyMeans: account, key: "socket.group"), 8765)
    }

    func testNamedGroupIsLookedUp() throws {
        let root = try XCTUnwrap(getgrgid(0)).pointee.gr_name.map { String(cString: $0) }
        XCTAssertEqual(try groupID(named: try XCTUnwrap(root), emptyMeans: account, key: "socket.group"), 0)
    }

    func testMissingGroupErrorNamesTheSetting() {
        XCTAssertThrowsError(try groupID(named: "no-such-group-egress", emptyMeans: account, key: "control.group")) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("group 'no-such-group-egress' does not exist"), text)
            XCTAssertTrue(text.contains("'control.group'"), text)
        }
    }
}
