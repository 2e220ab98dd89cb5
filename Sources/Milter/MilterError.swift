// The error that every failed libmilter or operating-system call in this module becomes.
// It names the operation, so a log line alone shows what failed. It never carries message
// content beyond the header name, quarantine reason or path that the operation was given.
import CMilter
import Glibc

/// A failed libmilter call, socket setup step or invalid configuration.
public struct MilterError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The C function or step that failed, for example "smfi_addheader" or "chmod".
    public var operation: String
    /// The operation's target, for example "header X-Spam-Flag" or a socket path.
    public var detail: String
    /// The errno value for operating-system calls; nil for libmilter calls, which do not set it.
    public var errorNumber: Int32?

    public init(operation: String, detail: String, errorNumber: Int32? = nil) {
        self.operation = operation
        self.detail = detail
        self.errorNumber = errorNumber
    }

    public var description: String {
        var text = "\(operation) failed"
        if !detail.isEmpty {
            text += " (\(detail))"
        }
        if let errorNumber {
            text += ": \(String(cString: strerror(errorNumber)))"
        }
        return text
    }

    /// Makes an error for an operating-system call that just failed, with the current errno.
    static func system(_ operation: String, _ detail: String) -> MilterError {
        MilterError(operation: operation, detail: detail, errorNumber: errno)
    }
}

/// Throws a MilterError when a libmilter call returns MI_FAILURE.
func checkMilterCall(_ result: Int32, _ operation: String, _ detail: String) throws {
    if result != MI_SUCCESS {
        throw MilterError(operation: operation, detail: detail)
    }
}
