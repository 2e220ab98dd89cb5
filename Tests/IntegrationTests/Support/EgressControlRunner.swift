// Runs the egressctl binary against the daemon of an integration environment, as an admin
// would: as a child process, with the daemon's control socket, and with the throwaway
// Postfix instance's configuration directory for the commands that act on the hold queue.
//
// It never hides a failure: every run returns the exit status and both outputs, and a run
// that hangs is killed by CommandRunner's time limit.
import EgressCore
import Foundation

struct EgressControlRunner {
    let executable: String
    let socketPath: String
    let postfixConfigDirectory: String

    /// Finds egressctl beside the egress-milter binary, which SwiftPM builds into the same
    /// directory, or at $EGRESSCTL_BIN.
    static func locateExecutable() -> String? {
        if let path = ProcessInfo.processInfo.environment["EGRESSCTL_BIN"], !path.isEmpty {
            return path
        }
        guard let daemon = MilterDaemon.locateExecutable() else { return nil }
        let path = URL(fileURLWithPath: daemon).deletingLastPathComponent().appendingPathComponent("egressctl").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Runs `egressctl COMMAND ARGUMENTS --socket PATH`.
    @discardableResult
    func run(_ command: String, _ arguments: [String] = []) throws -> CommandResult {
        try CommandRunner.run(executable, [command] + arguments + ["--socket", socketPath], timeoutSeconds: 120)
    }

    /// Runs `egressctl COMMAND ARGUMENTS` with no socket option, so egressctl finds the socket itself.
    @discardableResult
    func runWithoutSocket(_ command: String, _ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(executable, [command] + arguments, timeoutSeconds: 120)
    }

    /// Runs a command with --json and decodes its standard output.
    func json<Value: Decodable>(_ type: Value.Type, _ command: String, _ arguments: [String] = []) throws -> (CommandResult, Value) {
        let result = try run(command, arguments + ["--json"])
        do {
            let value = try ControlProtocol.makeDecoder().decode(type, from: Data(result.standardOutput.utf8))
            return (result, value)
        } catch {
            throw CommandError(description: """
                egressctl \(command) --json printed no \(type): \(error)
                exit status \(result.status); output: \(result.standardOutput); errors: \(result.standardError)
                """)
        }
    }

    /// The options of release that let it act on the instance's hold queue.
    var postfixOptions: [String] { ["--postfix-config", postfixConfigDirectory] }
}

/// What `egressctl release --json` prints.
struct ReleaseCommandOutput: Decodable {
    var release: ReleaseReport
    var mode: String?
    var outcomes: [HeldMessageOutcome]
}
