// Runs a program for the notifier: sendmail with a message on its standard input, or the
// admin's notification command with EGRESS_* variables. No shell is involved; the argv
// goes to the program as it is.
//
// It must never hang the notifier: a program still running after the timeout is killed
// (SIGKILL) and the run reported as failed. Standard output and standard error are kept
// apart, each up to a size limit: both go to the debug log, and the first line of standard
// error goes into the error line of a failed run (`failureDetail`).

import Foundation
import Glibc
import Synchronization

struct ChildProgramError: Error, CustomStringConvertible {
    var description: String
}

enum ChildProgram {
    /// The environment a child gets besides its own variables: a fixed PATH, nothing of the
    /// daemon's environment.
    static let baseEnvironment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]

    struct Result {
        var status: Int32
        /// Up to the caller's limit of bytes.
        var standardOutput: [UInt8]
        var standardError: [UInt8]

        /// Both outputs for the debug log, each trimmed; empty when the program wrote nothing.
        var outputText: String {
            [standardOutput, standardError].map {
                String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }.filter { !$0.isEmpty }.joined(separator: " | ")
        }

        /// The start of standard error (or of standard output when standard error is empty)
        /// for an error line: at most `maximumDetailBytes`, control characters replaced, line
        /// breaks shown as " / ". Empty when the program wrote nothing.
        var failureDetail: String {
            let source = standardError.contains { !Self.isSpace($0) } ? standardError : standardOutput
            return Self.detail(of: source)
        }

        /// Bytes of output that an error line quotes at most.
        static let maximumDetailBytes = 200

        static func detail(of bytes: [UInt8]) -> String {
            let text = String(decoding: bytes.prefix(maximumDetailBytes * 4), as: UTF8.self)
            let lines = text.split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            var detail = ""
            for character in lines.joined(separator: " / ") {
                let clean: Character = character.unicodeScalars.contains { $0.properties.generalCategory == .control } ? "?" : character
                if detail.utf8.count + clean.utf8.count > maximumDetailBytes {
                    return detail + "..."
                }
                detail.append(clean)
            }
            return detail
        }

        private static func isSpace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
        }
    }

    /// Runs `program` with `arguments` and `environment`, writes `input` to its standard
    /// input, and waits for it at most `timeoutSeconds`.
    static func run(_ program: String, _ arguments: [String], environment: [String: String], input: [UInt8],
                    timeoutSeconds: Double, maximumOutputBytes: Int) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.environment = environment
        let inputPipe = Pipe()
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        process.standardInput = inputPipe
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        do {
            try process.run()
        } catch {
            throw ChildProgramError(description: "cannot run \(program): \(error.localizedDescription)")
        }

        // Each output is read on its own thread, so a child that fills a pipe while we
        // write its input cannot deadlock.
        let output = OutputCollector(outputPipe.fileHandleForReading, maximumBytes: maximumOutputBytes)
        let errorOutput = OutputCollector(errorPipe.fileHandleForReading, maximumBytes: maximumOutputBytes)

        let pid = process.processIdentifier
        let finished = DispatchSemaphore(value: 0)
        let timedOut = Mutex(false)
        Thread {
            if finished.wait(timeout: .now() + timeoutSeconds) == .timedOut {
                timedOut.withLock { $0 = true }
                kill(pid, SIGKILL)
            }
        }.start()

        // A child that exits without reading its input closes the pipe. With SIGPIPE ignored
        // (the daemon ignores it from the start; this call covers tests that run this code
        // in their own process) the write fails with EPIPE and the exit status shows the outcome.
        signal(SIGPIPE, SIG_IGN)
        let descriptor = inputPipe.fileHandleForWriting.fileDescriptor
        var offset = 0
        while offset < input.count {
            let written = input[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { break }
            offset += written
        }
        try? inputPipe.fileHandleForWriting.close()

        process.waitUntilExit()
        finished.signal()
        // A grandchild that keeps a pipe open must not hold the notifier forever.
        let readDeadline = DispatchTime.now() + 1
        _ = output.done.wait(timeout: readDeadline)
        _ = errorOutput.done.wait(timeout: readDeadline)
        if timedOut.withLock({ $0 }) {
            throw ChildProgramError(description: "\(program) did not finish within \(Int(timeoutSeconds)) s and was killed")
        }
        return Result(status: process.terminationStatus, standardOutput: output.bytes, standardError: errorOutput.bytes)
    }

}

/// Reads a pipe to its end on its own thread, keeping at most `maximumBytes`.
private final class OutputCollector: Sendable {
    private let kept = Mutex([UInt8]())
    let done = DispatchSemaphore(value: 0)

    init(_ reader: FileHandle, maximumBytes: Int) {
        Thread { [self] in
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                kept.withLock { kept in
                    let room = maximumBytes - kept.count
                    if room > 0 { kept.append(contentsOf: chunk.prefix(room)) }
                }
            }
            done.signal()
        }.start()
    }

    var bytes: [UInt8] {
        kept.withLock { $0 }
    }
}
