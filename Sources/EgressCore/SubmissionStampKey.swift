// The secret key of submission stamps, and reading it from its file.
//
// Two programs read the key file, both at start-up and never per message: the daemon (as
// root, before it drops privileges) and the setgid wrapper `egress-sendmail` (before it
// drops its group). Reading rejects a file that every user may read or write, because
// anyone who can read the key can forge a stamp for any account. The key must never appear in
// a log, a summary or an error message; `description` shows only its length.

#if canImport(Glibc)
import Glibc
#endif

/// A problem reading or accepting the stamp key.
public struct StampKeyError: Error, Equatable, CustomStringConvertible {
    /// The key file, or empty when the bytes did not come from a file.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? message : "\(path): \(message)"
    }
}

/// The bytes of the key that authenticates submission stamps: the whole key file, taken as is
/// (a trailing newline is part of the key, which both readers see alike).
public struct StampKey: Sendable, Equatable, CustomStringConvertible, CustomReflectable {
    /// Minimum key length in bytes; `head -c 32 /dev/urandom` gives a good key.
    public static let minimumByteCount = 16

    /// Maximum key file length in bytes; a longer file is not a key.
    public static let maximumByteCount = 4096

    public let bytes: [UInt8]

    /// Accepts `bytes` as a key; throws when there are fewer than `minimumByteCount`.
    public init(bytes: [UInt8]) throws(StampKeyError) {
        guard bytes.count >= Self.minimumByteCount else {
            throw StampKeyError(path: "", message: "the stamp key has \(bytes.count) bytes; it needs at least \(Self.minimumByteCount), for example from 'head -c 32 /dev/urandom'")
        }
        guard bytes.count <= Self.maximumByteCount else {
            throw StampKeyError(path: "", message: "the stamp key has \(bytes.count) bytes; the maximum is \(Self.maximumByteCount)")
        }
        self.bytes = bytes
    }

    /// Never the key itself, so that logging a configuration cannot leak it.
    public var description: String {
        "stamp key (\(bytes.count) bytes)"
    }

    /// No children, so that `dump` and debug printing cannot show the bytes either.
    public var customMirror: Mirror {
        Mirror(self, children: [])
    }

    /// Reads the key file at `path`. Throws `StampKeyError` when the file cannot be read, is
    /// not a regular file, may be read or written by every user, or contains no usable key.
    public static func load(contentsOf path: String) throws(StampKeyError) -> StampKey {
        func failure(_ message: String) -> StampKeyError {
            StampKeyError(path: path, message: message)
        }
        func errnoText() -> String {
            String(cString: strerror(errno))
        }

        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else {
            throw failure("cannot open the stamp key file: \(errnoText())")
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw failure("cannot read the stamp key file: \(errnoText())")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw failure("the stamp key file is not a regular file")
        }
        guard status.st_mode & (S_IROTH | S_IWOTH) == 0 else {
            throw failure("every user may read or write the stamp key file; run chmod 0640 on it and give it the wrapper's group")
        }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: maximumByteCount + 1)
        while bytes.count <= maximumByteCount {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read the stamp key file: \(errnoText())")
            }
            if count == 0 {
                break
            }
            bytes.append(contentsOf: chunk[..<count])
        }
        do {
            return try StampKey(bytes: bytes)
        } catch {
            throw failure(error.message)
        }
    }
}
