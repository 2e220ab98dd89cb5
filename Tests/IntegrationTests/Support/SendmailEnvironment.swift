// The setting of one Sendmail integration test: a temporary directory holding a throwaway
// Sendmail (SendmailInstance), the smtp-sink it relays to, and the egress-milter daemon with
// the same kind of configuration the Postfix tests give it (IntegrationEnvironment).
//
// Tests skip when not run as root. When the private Sendmail root is missing they skip too,
// except under CI=true, where they fail: CI runs Packaging/install-dependencies, which unpacks
// it, so a missing root there is a broken install step and must not pass silently.
import Foundation
import Glibc
import XCTest

final class SendmailEnvironment {
    let root: String
    let sendmail: SendmailInstance
    let daemon: MilterDaemon
    /// YAML appended to the daemon's configuration (`identity:`, `limits:`). Set it before start().
    var additionalDaemonConfiguration = ""
    /// YAML items appended to the configuration's `senders:` list, after the rules for the
    /// reject.test, tempfail.test and hold.test sender domains. Set it before start().
    var additionalSenderRules = ""

    /// Checks that the tests can run here and prepares (but does not start) an environment.
    static func make() throws -> SendmailEnvironment {
        guard geteuid() == 0 else {
            throw XCTSkip("Sendmail integration tests start a private Sendmail daemon and need root; run swift test as root")
        }
        let tools: SendmailTools
        switch SendmailTools.locate() {
        case .success(let found):
            tools = found
        case .failure(let problem):
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw problem
            }
            throw XCTSkip(problem.description)
        }
        guard let executable = MilterDaemon.locateExecutable() else {
            throw CommandError(description: """
                egress-milter binary not found next to the test bundle or in .build/debug; \
                build it (swift build --product egress-milter) or set EGRESS_MILTER_BIN to its path
                """)
        }
        signal(SIGPIPE, SIG_IGN)

        var template = Array("/tmp/egress-sendmail.XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw CommandError(description: "mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        let root = String(cString: created)
        chmod(root, 0o755)
        return try SendmailEnvironment(root: root, tools: tools, executable: executable)
    }

    private init(root: String, tools: SendmailTools, executable: String) throws {
        self.root = root
        daemon = MilterDaemon(
            executable: executable,
            configurationPath: root + "/egress-milter.yaml",
            socketPath: root + "/milter/milter.sock",
            logPath: root + "/egress-milter.log")
        sendmail = try SendmailInstance(root: root + "/sendmail", tools: tools, milterSocket: daemon.socketPath)
    }

    /// Writes the daemon's configuration and starts the daemon, then the sink and Sendmail.
    func start() throws {
        try daemonConfiguration().write(toFile: daemon.configurationPath, atomically: true, encoding: .utf8)
        try daemon.start()
        try sendmail.start()
    }

    /// Stops everything that was started; keeps the directory when `keepingFiles` is true.
    func stop(keepingFiles: Bool) {
        daemon.requestStop()
        sendmail.stop()
        daemon.stop()
        if !keepingFiles {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// Returns the daemon's configuration: the rules of IntegrationEnvironment, and
    /// `localDaemonName` as the local daemon name, which the MTA gives its MSP-only listener.
    private func daemonConfiguration() -> String {
        let user = getpwnam("egress-milter") != nil ? "egress-milter" : "nobody"
        return """
            # Written by the Sendmail integration tests.
            listen: \(daemon.listenSpec)
            user: \(user)
            state_directory: \(root)/state
            log_level: notice
            control:
              socket: \(root)/control/control.sock
            socket:
              # Sendmail's daemon runs as root here and reaches the socket in any group.
              group: mail
            headers:
              status: \(statusHeaderName)
            paths:
              local_daemon_names: [\(localDaemonName)]
            senders:
              - match: "sender:*@reject.test"
                action: reject
                reason: test rule for reject
              - match: "sender:*@tempfail.test"
                action: tempfail
                reason: test rule for tempfail
              - match: "sender:*@hold.test"
                action: hold
                reason: test rule for hold

            """ + additionalSenderRules + additionalDaemonConfiguration
    }

    /// Waits until the sink contains at least `count` messages and no message is queued.
    func waitForSink(count: Int, timeoutSeconds: Double) -> Bool {
        let arrived = waitUntil(timeoutSeconds: timeoutSeconds, pollSeconds: 0.2) {
            sendmail.sink.fileCount() >= count
        }
        return arrived && sendmail.waitForEmptyQueue(timeoutSeconds: timeoutSeconds)
    }

    /// Describes both queues, the sink and the daemon's last log lines, for failure messages.
    func diagnostics() -> String {
        let queue = (try? sendmail.queueEntries().map { "\($0.queueID) \($0.sender)" }) ?? []
        let quarantine = (try? sendmail.quarantinedEntries().map { "\($0.queueID) \($0.sender) \($0.quarantineReason ?? "")" }) ?? []
        return """
            files kept in \(root)
            queue: \(queue)
            quarantine: \(quarantine)
            client queue files: \(sendmail.queueFiles(prefix: "qf", in: sendmail.clientQueueDirectory).count)
            sink messages: \(sendmail.sink.fileCount())
            last lines of the daemon log:
            \(daemon.log().split(separator: "\n").suffix(15).joined(separator: "\n"))
            """
    }
}

/// Base class of the Sendmail integration tests: a fresh environment for every test, stopped
/// in tearDown whether the test passed or not.
class SendmailTestCase: XCTestCase {
    private var runningEnvironment: SendmailEnvironment?

    /// Called after the environment is made and before it starts.
    func prepareEnvironment(_ environment: SendmailEnvironment) throws {}

    var environment: SendmailEnvironment {
        guard let runningEnvironment else {
            preconditionFailure("environment used outside a test")
        }
        return runningEnvironment
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        let environment = try SendmailEnvironment.make()
        runningEnvironment = environment
        do {
            try prepareEnvironment(environment)
            try environment.start()
        } catch {
            environment.stop(keepingFiles: true)
            runningEnvironment = nil
            throw error
        }
    }

    override func tearDown() {
        let failed = (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0
        let keepRequested = ProcessInfo.processInfo.environment["EGRESS_KEEP_TEST_FILES"] == "1"
        runningEnvironment?.stop(keepingFiles: failed || keepRequested)
        runningEnvironment = nil
        super.tearDown()
    }
}
