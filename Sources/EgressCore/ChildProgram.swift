// Runs a program to its end with bytes on its standard input: the notifier's sendmail and
// notification command, and egressctl's postqueue and postsuper. No shell is involved; the
// argv goes to the program as it is.
//
// It must not hang its caller, with the exception in the NOTE below. A program still running
// after the timeout is killed (SIGKILL) and the run reported as `ChildProgramError.timedOut`.
// A grandchild that keeps an output pipe open is waited for only `outputDeadlineSeconds`
// after the program exits. Standard output and standard error are kept apart, each up to
// the caller's limit. It ignores SIGPIPE for the whole process, so writing to a child that
// exited early fails with EPIPE instead of killing the caller.
//
// NOTE: Foundation's Process on Linux (swift-corelibs-foundation in Swift 6.3.1) passes the
// child a socket and takes the child for exited only when every holder has closed it. So a
// grandchild that keeps all inherited descriptors (`sleep 60 &` in a shell script) blocks
// `run` until that grandchild exits, even past the timeout. The output deadline helps only
// a grandchild that closes its descriptors above 2 and keeps its standard output.

import Foundation
import Glibc
import Synchronization

/// A run that did not produce an exit status. `description` is the notifier's error line,
/// and callers that need their own wording catch the cases and rephrase them.
public enum ChildProgramError: Error, CustomStringConvertible, Equatable {
    /// The program could not be started (not found, not executable).
    case launchFailed(program: String, reason: String)
    /// The program was still running after `timeoutSeconds` and was killed.
    case timedOut(program: String, timeoutSeconds: Double)

    public var description: String {
        switch self {
        case .launchFailed(let program, let reason):
            return "cannot run \(program): \(reason)"
        case .timedOut(let program, let timeoutSeconds):
            return "\(program) did not finish within \(Int(timeoutSeconds)) s and was killed"
        }
    }
}

public enum ChildProgram {
    /// An environment with only a fixed PATH, for a child that must get nothing of the
    /// caller's environment (the daemon's notification programs).
    public static let baseEnvironment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]

    /// Seconds the outputs are still read after the program exits. Past it, a grandchild
    /// that inherited a pipe no longer holds up the caller, and `outputIsComplete` is false.
    public static let outputDeadlineSeconds = 1.0

    /// The exit status and output of a finished program.
    public struct Result: Sendable {
        public var status: Int32
        /// Up to the caller's limit of bytes.
        public var standardOutput: [UInt8]
        public var standardError: [UInt8]
        /// True when both outputs were read to their end within the byte limit. False when
        /// the limit cut one, or a pipe was still open at the output deadline.
        public var outputIsComplete: Bool

        /// Standard error as text, invalid UTF-8 replaced.
        public var standardErrorText: String {
            String(decoding: standardError, as: UTF8.self)
        }

        /// Both outputs for the debug log, each trimmed; empty when the program wrote nothing.
        public var outputText: String {
            [standardOutput, standardError].map {
                String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }.filter { !$0.isEmpty }.joined(separator: " | ")
        }

        /// The start of standard error (or of standard output when standard error is empty)
        /// for an error line: at most `maximumDetailBytes`, control characters replaced, line
        /// breaks shown as " / ". Empty when the program wrote nothing.
        public var failureDetail: String {
            let source = standardError.contains { !Self.isSpace($0) } ? standardError : standardOutput
            return Self.detail(of: source)
        }

        /// Bytes of output that an error line quotes at most.
        public static let maximumDetailBytes = 200

        public static func detail(of bytes: [UInt8]) -> String {
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

    /// Runs `program` with `arguments`, writes `input` to its standard input, and waits for it
    /// at most `timeoutSeconds`. A nil `environment` passes on the caller's own. Each output
    /// keeps at most `maximumOutputBytes`; the rest is read and dropped. Throws
    /// `ChildProgramError`; a non-zero exit status is a result, not an error.
    public static func run(_ program: String, _ arguments: [String], environment: [String: String]?,
                           input: [UInt8], timeoutSeconds: Double, maximumOutputBytes: Int) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        if let environment {
            process.environment = environment
        }
        let inputPipe = Pipe()
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        process.standardInput = inputPipe
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        do {
            try process.run()
        } catch {
            throw ChildProgramError.launchFailed(program: program, reason: error.localizedDescription)
        }

        // Each output is read on its own thread, so a child that fills its output pipe while
        // this thread writes its input does not block both sides.
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
        // the write fails with EPIPE, and the exit status shows the outcome. The daemon
        // ignores SIGPIPE from the start; this call covers egressctl and the tests.
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
        let readDeadline = DispatchTime.now() + outputDeadlineSeconds
        let outputEnded = output.done.wait(timeout: readDeadline) == .success
        let errorOutputEnded = errorOutput.done.wait(timeout: readDeadline) == .success
        if timedOut.withLock({ $0 }) {
            throw ChildProgramError.timedOut(program: program, timeoutSeconds: timeoutSeconds)
        }
        let isComplete = outputEnded && errorOutputEnded && !output.wasCut && !errorOutput.wasCut
        return Result(status: process.terminationStatus, standardOutput: output.bytes,
                      standardError: errorOutput.bytes, outputIsComplete: isComplete)
    }
}

/// Reads a pipe to its end on its own thread, keeping at most `maximumBytes`.
private final class OutputCollector: Sendable {
    private let kept = Mutex([UInt8]())
    private let dropped = Mutex(false)
    let done = DispatchSemaphore(value: 0)

    init(_ reader: FileHandle, maximumBytes: Int) {
        Thread { [self] in
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                kept.withLock { kept in
                    let room = maximumBytes - kept.count
                    if room > 0 { kept.append(contentsOf: chunk.prefix(room)) }
                    if room < chunk.count { dropped.withLock { $0 = true } }
                }
            }
            done.signal()
        }.start()
    }

    var bytes: [UInt8] {
        kept.withLock { $0 }
    }

    /// True when output beyond `maximumBytes` was dropped.
    var wasCut: Bool {
        dropped.withLock { $0 }
    }
}
