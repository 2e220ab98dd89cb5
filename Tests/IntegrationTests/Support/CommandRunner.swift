// Runs the Postfix command-line tools (postfix, postqueue, postsuper, sendmail, postkick) as
// child processes and collects their exit status and output.
//
// A command that hangs must not hang the test run: every run has a time limit, after which the
// child is killed with SIGKILL and the run throws. Output is read on two threads so a child
// that fills one pipe while the test reads the other cannot deadlock.
import Foundation
import Glibc
import Synchronization

struct CommandResult {
    var status: Int32
    var standardOutput: String
    var standardError: String

    var succeeded: Bool { status == 0 }
}

struct CommandError: Error, CustomStringConvertible {
    var description: String
}

enum CommandRunner {
    /// Time limit of a command when the caller gives none, in seconds.
    static let defaultTimeoutSeconds = 60.0

    /// Runs `executable` with `arguments`, feeds `input` to its standard input, waits for it to
    /// exit and returns its status and output. Throws when it cannot start or runs past the limit.
    @discardableResult
    static func run(
        _ executable: String,
        _ arguments: [String],
        input: [UInt8] = [],
        timeoutSeconds: Double = defaultTimeoutSeconds
    ) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let inputPipe = Pipe()
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        process.standardInput = inputPipe
        process.standardOutput = outputPipe
        process.standardError = errorPipe

        do {
            try process.run()
        } catch {
            throw CommandError(description: "cannot start \(executable): \(error)")
        }
        let pid = process.processIdentifier

        // The watchdog fires only when the command outlives its limit.
        let timedOut = Mutex(false)
        let finished = DispatchSemaphore(value: 0)
        let watchdog = Thread {
            if finished.wait(timeout: .now() + timeoutSeconds) == .timedOut {
                timedOut.withLock { $0 = true }
                kill(pid, SIGKILL)
            }
        }
        watchdog.start()

        let errorOutput = Mutex(Data())
        let errorReader = DispatchSemaphore(value: 0)
        let errorHandle = errorPipe.fileHandleForReading
        Thread {
            let data = errorHandle.readDataToEndOfFile()
            errorOutput.withLock { $0 = data }
            errorReader.signal()
        }.start()

        // A child that exits without reading its input closes the pipe, so the write fails with
        // EPIPE. That is harmless here, because the exit status shows what happened.
        writeIgnoringBrokenPipe(input, to: inputPipe.fileHandleForWriting.fileDescriptor)
        try? inputPipe.fileHandleForWriting.close()

        let output = outputPipe.fileHandleForReading.readDataToEndOfFile()
        errorReader.wait()
        process.waitUntilExit()
        finished.signal()

        let result = CommandResult(
            status: process.terminationStatus,
            standardOutput: String(decoding: output, as: UTF8.self),
            standardError: String(decoding: errorOutput.withLock { $0 }, as: UTF8.self))
        if timedOut.withLock({ $0 }) {
            throw CommandError(description: "\(executable) \(arguments.joined(separator: " ")) timed out after \(timeoutSeconds) s")
        }
        return result
    }

    /// Runs a command that must succeed, and throws with its error output when it does not.
    @discardableResult
    static func runChecked(
        _ executable: String,
        _ arguments: [String],
        input: [UInt8] = [],
        timeoutSeconds: Double = defaultTimeoutSeconds
    ) throws -> CommandResult {
        let result = try run(executable, arguments, input: input, timeoutSeconds: timeoutSeconds)
        guard result.succeeded else {
            throw CommandError(description: """
                \(executable) \(arguments.joined(separator: " ")) failed with exit status \(result.status): \
                \(result.standardError)\(result.standardOutput)
                """)
        }
        return result
    }

    private static func writeIgnoringBrokenPipe(_ bytes: [UInt8], to descriptor: Int32) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { buffer in
                Glibc.write(descriptor, buffer.baseAddress, buffer.count)
            }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// Finds an executable by name in the directories where Debian installs Postfix and its tools.
func findExecutable(_ name: String) -> String? {
    let directories = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
    for directory in directories {
        let path = directory + "/" + name
        if FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
    }
    return nil
}

/// Polls `condition` until it returns true or `timeoutSeconds` pass; returns its last value.
/// Waits are bounded so that a lost message fails the test instead of hanging it.
func waitUntil(timeoutSeconds: Double, pollSeconds: Double = 0.1, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while true {
        if try condition() {
            return true
        }
        if Date() >= deadline {
            return false
        }
        Thread.sleep(forTimeInterval: pollSeconds)
    }
}
