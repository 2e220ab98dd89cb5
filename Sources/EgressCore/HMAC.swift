// HMAC-SHA256 (RFC 2104 with SHA-256, test vectors in RFC 4231) and a constant-time byte
// comparison, for the keyed MAC of submission stamps.
//
// A MAC check must never use `==` on the bytes: an early exit at the first differing byte
// tells an attacker how much of a guessed MAC is right.

/// HMAC with SHA-256 as its hash.
public enum HMACSHA256 {
    /// Length of an authentication code in bytes.
    public static let codeByteCount = SHA256.digestByteCount

    /// Returns the 32-byte authentication code of `message` under `key`. A key longer than the
    /// hash's 64-byte block is hashed first, as RFC 2104 requires.
    public static func authenticationCode(for message: [UInt8], key: [UInt8]) -> [UInt8] {
        var block = key.count > SHA256.blockByteCount ? SHA256.hash(key) : key
        block.append(contentsOf: repeatElement(0, count: SHA256.blockByteCount - block.count))

        var inner = SHA256()
        inner.update(block.map { $0 ^ 0x36 })
        inner.update(message)
        let innerDigest = inner.finalize()

        var outer = SHA256()
        outer.update(block.map { $0 ^ 0x5c })
        outer.update(innerDigest)
        return outer.finalize()
    }

    /// Returns whether `code` is the authentication code of `message` under `key`, comparing
    /// in constant time.
    public static func isValid(_ code: [UInt8], for message: [UInt8], key: [UInt8]) -> Bool {
        constantTimeEqual(code, authenticationCode(for: message, key: key))
    }
}

/// Returns whether two byte arrays are equal, taking the same time for every pair of the same
/// lengths. Only the lengths may leak, and a MAC's length is public.
public func constantTimeEqual(_ first: [UInt8], _ second: [UInt8]) -> Bool {
    guard first.count == second.count else { return false }
    var difference: UInt8 = 0
    for index in first.indices {
        difference |= first[index] ^ second[index]
    }
    return difference == 0
}
