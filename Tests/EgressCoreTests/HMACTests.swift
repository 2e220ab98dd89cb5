// Tests for SHA-256 against the FIPS 180-4 example messages and for HMAC-SHA256 against the
// RFC 4231 test cases, plus the constant-time comparison.

import Foundation
import XCTest
@testable import EgressCore

final class HMACTests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    private func bytes(_ text: String) -> [UInt8] {
        Array(text.utf8)
    }

    // MARK: SHA-256

    func testSHA256ExampleMessages() {
        let cases: [(message: [UInt8], digest: String)] = [
            (bytes("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            (bytes("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
             "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        ]
        for (message, digest) in cases {
            XCTAssertEqual(hex(SHA256.hash(message)), digest, "message of \(message.count) bytes")
        }
    }

    func testSHA256OfOneMillionLetters() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(hex(SHA256.hash(message)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256IncrementalEqualsOneShot() {
        // Lengths around the 56- and 64-byte padding boundaries, split at every position.
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128] {
            let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let expected = SHA256.hash(message)
            for split in 0...length {
                var hasher = SHA256()
                hasher.update(message[..<split])
                hasher.update(message[split...])
                XCTAssertEqual(hasher.finalize(), expected, "length \(length), split at \(split)")
            }
        }
    }

    // MARK: HMAC-SHA256

    func testHMACRFC4231Vectors() {
        let longKey = [UInt8](repeating: 0xaa, count: 131)
        let cases: [(name: String, key: [UInt8], data: [UInt8], code: String)] = [
            ("case 1", [UInt8](repeating: 0x0b, count: 20), bytes("Hi There"),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            ("case 2", bytes("Jefe"), bytes("what do ya want for nothing?"),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ("case 3", [UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
             "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            ("case 4", Array(1...25), [UInt8](repeating: 0xcd, count: 50),
             "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ("case 6", longKey, bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ("case 7", longKey,
             bytes("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for item in cases {
            let code = HMACSHA256.authenticationCode(for: item.data, key: item.key)
            XCTAssertEqual(hex(code), item.code, item.name)
            XCTAssertTrue(HMACSHA256.isValid(code, for: item.data, key: item.key), item.name)
        }
    }

    func testHMACTruncatedVectorOfCase5() {
        // RFC 4231 gives only the first 128 bits for this case.
        let code = HMACSHA256.authenticationCode(for: bytes("Test With Truncation"), key: [UInt8](repeating: 0x0c, count: 20))
        XCTAssertEqual(hex(Array(code.prefix(16))), "a3b6167473100ee06e0c796c2955552b")
    }

    func testHMACRejectsChangedCodeDataOrKey() {
        let key = bytes("a key of at least sixteen bytes")
        let data = bytes("message")
        let code = HMACSHA256.authenticationCode(for: data, key: key)

        var flipped = code
        flipped[31] ^= 0x01
        XCTAssertFalse(HMACSHA256.isValid(flipped, for: data, key: key))
        XCTAssertFalse(HMACSHA256.isValid(Array(code.prefix(31)), for: data, key: key))
        XCTAssertFalse(HMACSHA256.isValid(code, for: bytes("messagE"), key: key))
        XCTAssertFalse(HMACSHA256.isValid(code, for: data, key: key + [1]))
        // RFC 2104 pads short keys with zeros, so a trailing zero byte makes no other key.
        XCTAssertTrue(HMACSHA256.isValid(code, for: data, key: key + [0]))
    }

    func testConstantTimeEqual() {
        let cases: [(first: [UInt8], second: [UInt8], equal: Bool)] = [
            ([], [], true),
            ([1, 2, 3], [1, 2, 3], true),
            ([1, 2, 3], [1, 2, 4], false),
            ([0, 2, 3], [1, 2, 3], false),
            ([1, 2, 3], [1, 2], false),
            ([1, 2], [1, 2, 3], false),
        ]
        for (first, second, equal) in cases {
            XCTAssertEqual(constantTimeEqual(first, second), equal, "\(first) vs \(second)")
        }
    }
}
