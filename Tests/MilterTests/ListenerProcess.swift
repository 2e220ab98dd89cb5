// Starts milter-test-listener in a child process for one test, waits until its socket accepts
// connections, reads the events it records, and stops it. A listener must never outlive its
// test, so ListenerTestCase kills every listener it started in tearDown.
import Foundation
import Glibc
import XCTest

/// One event the listener recorded (see ListenerEvent in the listener's source).
struct RecordedEvent: Decodable {
    var event: String
    var session: Int?
    var message: Int?
    var recipientsInMessage: Int?
    var hostname: String?
    var addressKind: String?
    var host: String?
    var port: Int?
    var path: String?
    var name: String?
    var address: String?
    var arguments: [String]?
    var bytes: [UInt8]?
    var macros: [String: String]?
    var level: String?
    var text: String?
}

struct ListenerError: Error, CustomStringConvertible {
    var description: String
}

final class ListenerProcess {
    /// How long to wait for the socket to accept connections or for an expected event.
    static let waitSeconds: TimeInterval = 15

    let directory: URL
    let socketPath: String
    let eventsPath: String
    let stderrPath: String
    let listenSpec: String
    private let process = Process()

    /// Finds milter-test-listener in the products directory, where SwiftPM puts it next to
    /// the test bundle. MILTER_TEST_LISTENER overrides the executable's path.
    static func executableURL() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["MILTER_TEST_LISTENER"] {
            return URL(fileURLWithPath: path)
        }
        var candidates: [URL] = []
        if let url = Bundle.main.executableURL {
            candidates.append(url.deletingLastPathComponent())
        }
        candidates.append(Bundle(for: ListenerProcess.self).bundleURL.deletingLastPathComponent())
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())

        for directory in candidates {
            let url = directory.appendingPathComponent("milter-test-listener")
            if FileManager.default.isExecutableFile(atPath: url.path) {
                return url
            }
        }
        let searched = candidates.map(\.path).joined(separator: ", ")
        throw ListenerError(description: "milter-test-listener not found in \(searched); build it with `swift build --product milter-test-listener` or set MILTER_TEST_LISTENER")
    }

    /// Creates a temporary directory and the paths inside it, without starting anything.
    init(listen: String? = nil) throws {
        let base = URL(fileURLWithPath: "/tmp", isDirectory: true)
        directory = base.appendingPathComponent("milter-test-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        socketPath = directory.appendingPathComponent("milter.sock").path
        eventsPath = directory.appendingPathComponent("events.jsonl").path
        stderrPath = directory.appendingPathComponent("stderr.txt").path
        listenSpec = listen ?? "unix:\(socketPath)"
    }

    /// Starts the listener with `arguments` added to --listen and --events, and waits until a
    /// client can connect over the unix socket or TCP port of the listen spec.
    func start(_ arguments: [String]) throws {
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = try Self.executableURL()
        process.arguments = ["--listen", listenSpec, "--events", eventsPath] + arguments
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardOutput = FileHandle.nullDevice
        try process.run()

        let deadline = Date().addingTimeInterval(Self.waitSeconds)
        while Date() < deadline {
            guard process.isRunning else {
                throw ListenerError(description: "listener exited with status \(process.terminationStatus): \(standardError)")
            }
            if (try? probe()) != nil {
                return
            }
            usleep(20_000)
        }
        throw ListenerError(description: "listener socket \(listenSpec) did not accept connections within \(Self.waitSeconds) s")
    }

    private func probe() throws {
        _ = try makeClient()
    }

    /// Opens a new MTA connection to the listener.
    func makeClient() throws -> MilterProtocolClient {
        if listenSpec.hasPrefix("unix:") {
            return try MilterProtocolClient(unixSocketPath: String(listenSpec.dropFirst("unix:".count)))
        }
        // inet:PORT@HOST or inet6:PORT@HOST
        let rest = listenSpec.split(separator: ":", maxSplits: 1)[1]
        let parts = rest.split(separator: "@", maxSplits: 1)
        guard parts.count == 2, let port = UInt16(parts[0]) else {
            throw ListenerError(description: "cannot connect to listen spec \(listenSpec)")
        }
        return try MilterProtocolClient(tcpHost: String(parts[1]), port: port)
    }

    /// Opens a connection, negotiates with every action and step offered, and returns it.
    func negotiatedClient() throws -> MilterProtocolClient {
        let client = try makeClient()
        _ = try client.negotiate()
        return client
    }

    var isRunning: Bool {
        process.isRunning
    }

    var terminationStatus: Int32 {
        process.terminationStatus
    }

    var standardError: String {
        (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    }

    /// Waits for the process to exit on its own, up to `waitSeconds`.
    func waitForExit() -> Bool {
        let deadline = Date().addingTimeInterval(Self.waitSeconds)
        while process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        return !process.isRunning
    }

    /// Reads every event recorded so far, in order. A line that does not decode throws.
    func events() throws -> [RecordedEvent] {
        guard let data = FileManager.default.contents(atPath: eventsPath) else {
            return []
        }
        let decoder = JSONDecoder()
        return try data.split(separator: UInt8(ascii: "\n")).map { line in
            try decoder.decode(RecordedEvent.self, from: Data(line))
        }
    }

    /// Session events only, without the log lines.
    func sessionEvents() throws -> [RecordedEvent] {
        try events().filter { $0.event != "log" }
    }

    /// Waits until an event matches `predicate` and returns it.
    @discardableResult
    func waitForEvent(_ description: String, _ predicate: (RecordedEvent) -> Bool) throws -> RecordedEvent {
        let deadline = Date().addingTimeInterval(Self.waitSeconds)
        repeat {
            if let event = try events().first(where: predicate) {
                return event
            }
            usleep(20_000)
        } while Date() < deadline
        throw ListenerError(description: "no \(description) event within \(Self.waitSeconds) s")
    }

    /// Sends SIGTERM, which makes libmilter's main loop return, and waits for the exit.
    /// libmilter notices the stop request only between its accept timeouts, a few seconds.
    func terminate() -> Bool {
        guard process.isRunning else {
            return true
        }
        kill(process.processIdentifier, SIGTERM)
        return waitForExit()
    }

    /// Kills the listener (SIGKILL, because a graceful stop takes libmilter seconds) and
    /// removes its directory.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A test case that stops every listener it started, whatever the outcome.
class ListenerTestCase: XCTestCase {
    private var listeners: [ListenerProcess] = []

    /// Starts a listener on a unix socket in a fresh temporary directory.
    func startListener(_ arguments: [String] = [], listen: String? = nil) throws -> ListenerProcess {
        let listener = try ListenerProcess(listen: listen)
        listeners.append(listener)
        try listener.start(arguments)
        return listener
    }

    /// Creates the paths of a listener without starting it, for tests that prepare files first.
    func prepareListener(listen: String? = nil) throws -> ListenerProcess {
        let listener = try ListenerProcess(listen: listen)
        listeners.append(listener)
        return listener
    }

    override func tearDown() {
        for listener in listeners {
            listener.stop()
        }
        listeners.removeAll()
        super.tearDown()
    }
}
