// The egress-milter daemon under test, run as a child process in the foreground with its own
// configuration file and unix socket in the test's temporary directory. Its standard error (the
// log in foreground mode) goes to a file that survives restarts, so a test can read every
// decision the daemon logged, including those of a process it killed.
//
// It must never leave the daemon running after the test: stop() sends SIGTERM, then SIGKILL.
import Foundation
import Glibc

/// One notice line the daemon writes per decided message, split into its fields:
/// `QUEUEID: identity=... from=<...> nrcpt=N ... action=ACTION reason=... path=smtp|local`.
struct DecisionLogLine {
    var queueID: String
    var fields: [String: String]

    var action: String? { fields["action"] }
    var path: String? { fields["path"] }
    var sender: String? { fields["from"].map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "<>")) } }

    /// Parses the text after the log prefix. Returns nil for lines that are not decisions.
    init?(_ message: Substring) {
        guard let colon = message.firstIndex(of: ":") else { return nil }
        queueID = String(message[..<colon])
        fields = Self.parseFields(message[message.index(after: colon)...])
        guard fields["action"] != nil else { return nil }
    }

    /// Splits `key=value key="quoted value"` into a dictionary; a quoted value may contain
    /// spaces and backslash escapes.
    private static func parseFields(_ text: Substring) -> [String: String] {
        var fields: [String: String] = [:]
        var index = text.startIndex
        while index < text.endIndex {
            while index < text.endIndex && text[index] == " " { index = text.index(after: index) }
            guard let equals = text[index...].firstIndex(of: "=") else { break }
            let key = String(text[index..<equals])
            index = text.index(after: equals)

            var value = ""
            if index < text.endIndex && text[index] == "\"" {
                index = text.index(after: index)
                while index < text.endIndex && text[index] != "\"" {
                    if text[index] == "\\", text.index(after: index) < text.endIndex {
                        index = text.index(after: index)
                    }
                    value.append(text[index])
                    index = text.index(after: index)
                }
                if index < text.endIndex { index = text.index(after: index) }
            } else {
                let end = text[index...].firstIndex(of: " ") ?? text.endIndex
                value = String(text[index..<end])
                index = end
            }
            fields[key] = value
        }
        return fields
    }
}

final class MilterDaemon {
    let executable: String
    let configurationPath: String
    let socketPath: String
    let logPath: String
    private var process: Process?

    /// The listen spec in libmilter syntax, also the value for Postfix's `smtpd_milters`.
    var listenSpec: String { "unix:" + socketPath }

    init(executable: String, configurationPath: String, socketPath: String, logPath: String) {
        self.executable = executable
        self.configurationPath = configurationPath
        self.socketPath = socketPath
        self.logPath = logPath
    }

    var isRunning: Bool { process?.isRunning ?? false }
    var processIdentifier: pid_t? { process?.processIdentifier }

    /// Starts the daemon and waits until its socket accepts connections. Throws with the log
    /// when the daemon exits or does not listen within the time limit.
    func start() throws {
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            throw CommandError(description: "cannot open \(logPath) for the daemon's log")
        }
        log.seekToEndOfFile()

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--config", configurationPath, "--listen", listenSpec, "--foreground"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()
        self.process = process

        let listening = waitUntil(timeoutSeconds: 20) {
            !process.isRunning || canConnect(toUnixSocket: socketPath)
        }
        guard listening, process.isRunning else {
            let state = process.isRunning ? "did not listen on \(socketPath) within 20 s" : "exited with status \(process.terminationStatus)"
            throw CommandError(description: "egress-milter \(state); its log:\n\(self.log())")
        }
    }

    /// Sends `signal` to the daemon and, for SIGKILL or SIGTERM, waits until it has exited.
    func send(signal: Int32) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
        if signal == SIGKILL || signal == SIGTERM {
            _ = waitUntil(timeoutSeconds: 15) { !process.isRunning }
        }
    }

    /// Sends SIGTERM and returns at once; stop() then waits for the exit.
    func requestStop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
    }

    /// Stops the daemon: SIGTERM, then SIGKILL when it is still running after the grace period.
    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if !waitUntil(timeoutSeconds: 10, { !process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Everything the daemon wrote to standard error since the first start.
    func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Parses the decision lines of the log, one per decided message.
    func decisions() -> [DecisionLogLine] {
        log().split(separator: "\n").compactMap { line in
            guard let range = line.range(of: ": notice: ") else { return nil }
            return DecisionLogLine(line[range.upperBound...])
        }
    }

    /// Locates the daemon binary: $EGRESS_MILTER_BIN, else the build products directory that
    /// contains the test bundle (SwiftPM puts executables and the test bundle side by side), else
    /// the default debug build directory of the checkout.
    static func locateExecutable() -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["EGRESS_MILTER_BIN"], !path.isEmpty {
            return path
        }

        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent())
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL)
        candidates.append(repositoryRoot.appendingPathComponent(".build/debug"))

        for directory in candidates {
            let path = directory.appendingPathComponent("egress-milter").path
            if FileManager.default.isExecutableFile(atPath: path) {
                return path
            }
        }
        return nil
    }
}

/// The checkout's root directory, found from this source file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // Support
    .deletingLastPathComponent()  // IntegrationTests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()

/// True when a connect() to the unix socket at `path` succeeds.
func canConnect(toUnixSocket path: String) -> Bool {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }

    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let pathBytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard pathBytes.count < capacity else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        buffer.copyBytes(from: pathBytes)
    }
    let result = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    return result == 0
}
