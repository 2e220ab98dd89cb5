// The complete setting of one integration test: a temporary directory holding a throwaway
// Postfix instance, the smtp-sink it relays to, and the egress-milter daemon with its own
// configuration and socket.
//
// Each environment has its own directory, ports and socket, so two of them never share state.
// stop() ends every process the environment started, in the reverse order. It must be called
// even when the test failed, so the base class below calls it in tearDown.
import Foundation
import Glibc
import XCTest

/// Name of the header the daemon adds to every message it lets through.
let statusHeaderName = "X-Egress-Milter"

/// Sender addresses whose domain a rule in the test configuration maps to one action each.
enum RuleSender {
    static let reject = "blocked@reject.test"
    static let tempfail = "slow@tempfail.test"
    static let hold = "suspect@hold.test"
}

final class IntegrationEnvironment {
    let root: String
    let postfix: PostfixInstance
    let daemon: MilterDaemon
    /// False when Postfix runs without a milter, to check the harness itself.
    let usesMilter: Bool
    /// YAML appended to the daemon's configuration, for top-level sections that the base
    /// configuration leaves out (`identity:`, `limits:`). Set it before start().
    var additionalDaemonConfiguration = ""

    /// Checks that the tests can run here and prepares (but does not start) an environment.
    /// Throws XCTSkip when not root or when Postfix is not installed. Throws an error when the
    /// daemon binary is not found, because a build that ran the tests must have produced it.
    /// With `withMilter` false, Postfix runs without any milter and the daemon is not needed.
    static func make(withMilter: Bool = true) throws -> IntegrationEnvironment {
        guard geteuid() == 0 else {
            throw XCTSkip("integration tests start a private Postfix instance and need root; run swift test as root")
        }
        guard let tools = PostfixTools.locate() else {
            throw XCTSkip("Postfix is not installed (postfix, postqueue, postsuper, postkick, sendmail and smtp-sink are needed); apt-get install postfix")
        }
        let executable = MilterDaemon.locateExecutable()
        if withMilter && executable == nil {
            throw CommandError(description: """
                egress-milter binary not found next to the test bundle or in .build/debug; \
                build it (swift build --product egress-milter) or set EGRESS_MILTER_BIN to its path
                """)
        }

        // A test process killed by SIGPIPE (a write to a closed pipe) never runs tearDown, so
        // the Postfix instance would keep running. With SIGPIPE ignored the write returns EPIPE.
        signal(SIGPIPE, SIG_IGN)

        var template = Array("/tmp/egress-integration.XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw CommandError(description: "mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        let root = String(cString: created)
        // Postfix's processes run as the postfix user and must reach the milter socket below.
        chmod(root, 0o755)

        return try IntegrationEnvironment(
            root: root, tools: tools, executable: withMilter ? executable : nil)
    }

    private init(root: String, tools: PostfixTools, executable: String?) throws {
        self.root = root
        // The daemon owns the socket's directory and gives it to the postfix group.
        daemon = MilterDaemon(
            executable: executable ?? "/nonexistent/egress-milter",
            configurationPath: root + "/egress-milter.yaml",
            socketPath: root + "/milter/milter.sock",
            logPath: root + "/egress-milter.log")
        usesMilter = executable != nil
        postfix = try PostfixInstance(
            root: root, tools: tools, milter: usesMilter ? MilterSetting(socket: daemon.listenSpec) : nil)
    }

    /// Writes the daemon's configuration and starts the daemon, then the sink and Postfix.
    func start() throws {
        if usesMilter {
            try daemonConfiguration().write(toFile: daemon.configurationPath, atomically: true, encoding: .utf8)
            try daemon.start()
        }
        try postfix.start()
    }

    /// Stops everything that was started. Keeps the directory when the test failed (or when
    /// EGRESS_KEEP_TEST_FILES=1), so its logs can be read; removes it otherwise.
    func stop(keepingFiles: Bool) {
        // The daemon takes seconds to exit after SIGTERM, so it stops while Postfix does.
        daemon.requestStop()
        postfix.stop()
        daemon.stop()
        if !keepingFiles {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// The daemon's control socket, inside the temporary directory.
    var controlSocketPath: String {
        root + "/control/control.sock"
    }

    /// Returns the daemon's configuration: socket and state inside the temporary directory, the local
    /// daemon name that master.cf gives pickup's cleanup service, and one rule per action.
    private func daemonConfiguration() -> String {
        // The package's install script creates the egress-milter user. Without it the daemon
        // switches to the nobody account, which can write the state directory the daemon creates.
        let user = getpwnam("egress-milter") != nil ? "egress-milter" : "nobody"
        return """
            # Written by the integration tests.
            listen: \(daemon.listenSpec)
            user: \(user)
            state_directory: \(root)/state
            log_level: notice
            # Each test's daemon has its own control socket, so daemons of tests that run at
            # the same time, or a daemon on the host, never meet at the default path.
            control:
              socket: \(controlSocketPath)
            socket:
              group: postfix
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

            """ + additionalDaemonConfiguration
    }

    // MARK: Waiting for mail

    /// Waits until the sink contains at least `count` messages, then until the Postfix queue is
    /// empty, so every file the sink writes is complete. Returns false on timeout.
    func waitForSink(count: Int, timeoutSeconds: Double) -> Bool {
        let arrived = waitUntil(timeoutSeconds: timeoutSeconds, pollSeconds: 0.2) {
            postfix.sink.fileCount() >= count
        }
        return arrived && postfix.waitForEmptyQueue(timeoutSeconds: timeoutSeconds)
    }

    /// Describes the queue, the sink and the last log lines, for failure messages.
    func diagnostics() -> String {
        let queue = (try? postfix.queueEntries().map { "\($0.queueID) \($0.queueName) \($0.sender)" }) ?? []
        return """
            files kept in \(root)
            queue: \(queue)
            maildrop files: \(postfix.maildropCount())
            sink messages: \(postfix.sink.fileCount())
            last lines of the Postfix log:
            \(postfix.maillog().split(separator: "\n").suffix(15).joined(separator: "\n"))
            last lines of the daemon log:
            \(daemon.log().split(separator: "\n").suffix(15).joined(separator: "\n"))
            """
    }
}

/// Base class of the integration tests: a fresh environment for every test, stopped in
/// tearDown whether the test passed or not.
class IntegrationTestCase: XCTestCase {
    private var runningEnvironment: IntegrationEnvironment?

    /// Whether Postfix is connected to the daemon; a subclass that checks the harness alone
    /// overrides it with false.
    class var usesMilter: Bool { true }

    /// Called after the environment is made and before it starts: a subclass adds daemon or
    /// Postfix settings and starts what they depend on. Resources it creates outside the
    /// environment's directory must be undone in a teardown block, which runs even when
    /// this method throws.
    func prepareEnvironment(_ environment: IntegrationEnvironment) throws {}

    var environment: IntegrationEnvironment {
        guard let runningEnvironment else {
            preconditionFailure("environment used outside a test")
        }
        return runningEnvironment
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        let environment = try IntegrationEnvironment.make(withMilter: Self.usesMilter)
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

/// A plain test message whose Message-ID and Subject carry `token`, so the sink copy can be
/// matched to what was sent.
func testMessage(from sender: String, to recipient: String, token: String, body: String = "Hello from the integration tests.\n") -> [UInt8] {
    let text = """
        From: <\(sender)>
        To: <\(recipient)>
        Subject: integration \(token)
        Date: \(rfc5322Date())
        Message-ID: <\(token)@client.egress.test>

        \(body)
        """
    return Array(text.utf8)
}

private func rfc5322Date() -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
    return formatter.string(from: Date())
}

/// Returns a token unique to this run, for Message-IDs and addresses.
func uniqueToken(_ prefix: String) -> String {
    prefix + "-" + UUID().uuidString.lowercased().prefix(8)
}
