// Captures what a command prints, by pointing file descriptor 1 or 2 at a temporary file
// while it runs. Tests in one process run one at a time, so no other output is mixed in.
import Foundation
import Glibc
import XCTest

/// A command's exit status and what it printed on the captured stream.
struct CapturedOutput {
    var status: Int32
    var text: String
}

func captureStandardOutput(_ body: () -> Int32) throws -> CapturedOutput {
    try capture(descriptor: STDOUT_FILENO, body)
}

func captureStandardError(_ body: () -> Int32) throws -> CapturedOutput {
    try capture(descriptor: STDERR_FILENO, body)
}

private func capture(descriptor: Int32, _ body: () -> Int32) throws -> CapturedOutput {
    let path = NSTemporaryDirectory() + "egressctl-output-\(UUID().uuidString.prefix(8))"
    let file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard file >= 0 else {
        throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
    }
    defer { try? FileManager.default.removeItem(atPath: path) }

    fflush(nil)
    let saved = dup(descriptor)
    dup2(file, descriptor)
    close(file)
    let status = body()
    fflush(nil)
    dup2(saved, descriptor)
    close(saved)

    return CapturedOutput(status: status, text: try String(contentsOfFile: path, encoding: .utf8))
}
