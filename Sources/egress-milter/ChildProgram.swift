// Runs a program for the notifier: sendmail with a message on its standard input, or the
// admin's notification command with EGRESS_* variables. No shell is involved; the argv
// goes to the program as it is.
//
// It must never hang the notifier: a program still running after the timeout is killed
// (SIGKILL) and the run reported as failed. Output (standard output and error together) is
// kept up to a size limit, for the debug log.

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
        var output: [UInt8]

        var outputText: String {
            String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
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
        process.standardInput = inputPipe
        process.standardOutput = outputPipe
        process.standardError = outputPipe
        do {
            try process.run()
        } catch {
            throw ChildProgramError(description: "cannot run \(program): \(error.localizedDescription)")
        }

        // The output is read on its own thread, so a child that fills the pipe while we
        // write its input cannot deadlock.
        let output = Mutex([UInt8]())
        let outputDone = DispatchSemaphore(value: 0)
        let reader = outputPipe.fileHandleForReading
        Thread {
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                output.withLock { kept in
                    let room = maximumOutputBytes - kept.count
                    if room > 0 { kept.append(contentsOf: chunk.prefix(room)) }
                }
            }
            outputDone.signal()
        }.start()

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
        // A grandchild that keeps the pipe open must not hold the notifier forever.
        _ = outputDone.wait(timeout: .now() + 1)
        if timedOut.withLock({ $0 }) {
            throw ChildProgramError(description: "\(program) did not finish within \(Int(timeoutSeconds)) s and was killed")
        }
        return Result(status: process.terminationStatus, output: output.withLock { $0 })
    }
}
