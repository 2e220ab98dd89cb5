// Shared pieces of the control tests: a daemon's control objects around a real state
// directory, a logger whose lines the test reads, and decided messages to record.
import EgressCore
import Foundation
import Milter
import Synchronization
import XCTest

@testable import egress_milter

/// The log lines a test's logger wrote, with their levels.
final class CapturedLog: Sendable {
    private let lines = Mutex<[(level: LogLevel, text: String)]>([])

    var logger: Logger {
        Logger(destination: .lines { [self] level, text in lines.withLock { $0.append((level, text)) } }, level: .info)
    }

    func texts(at level: LogLevel) -> [String] {
        lines.withLock { $0.filter { $0.level == level }.map(\.text) }
    }
}

/// The objects the control handler works on, as the daemon builds them.
struct ControlFixture {
    let directory: String
    let policySource: PolicySource
    let recorder: DecisionRecorder
    let runtime: DaemonRuntime
    let heldStore: HeldMessageStore
    let log: CapturedLog
    let handler: ControlHandler

    /// Opens the limiter and the held-message store in a fresh directory. `reload` answers
    /// the reload command.
    static func make(_ test: XCTestCase, configuration: Configuration = Configuration.defaults,
                     reload: @escaping @Sendable () -> ReloadReport = { ReloadReport(succeeded: true, configuration: "test") }) throws -> ControlFixture {
        let directory = NSTemporaryDirectory() + "egress-control-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        return try make(directory: directory, configuration: configuration, reload: reload)
    }

    /// Opens the stores in `directory` as the daemon does at start, for a restart.
    static func make(directory: String, configuration: Configuration = Configuration.defaults,
                     reload: @escaping @Sendable () -> ReloadReport = { ReloadReport(succeeded: true, configuration: "test") }) throws -> ControlFixture {
        let log = CapturedLog()
        let logger = log.logger
        let limiter = try RateLimiter(stateDirectory: directory, clock: ClockReading(wall: Date(), bootID: nil, sinceBoot: nil))
        let policySource = PolicySource(
            ActivePolicy(configuration: configuration, overrides: .empty, limiter: limiter), clock: DaemonClock())
        let heldStore = try HeldMessageStore(directory: directory)
        let runtime = DaemonRuntime(
            startedAt: Date(), listen: configuration.listen, controlSocket: directory + "/control.sock",
            configurationSource: "/etc/egress-milter/test.yaml", limitStorePath: limiter.storePath, heldStorePath: heldStore.path)
        let recorder = DecisionRecorder(logger: logger)
        recorder.attach(heldStore: heldStore, runtime: runtime)
        let handler = ControlHandler(policySource: policySource, recorder: recorder, runtime: runtime, logger: logger, reload: reload)
        return ControlFixture(directory: directory, policySource: policySource, recorder: recorder, runtime: runtime,
                              heldStore: heldStore, log: log, handler: handler)
    }

    /// Decides a message from `sender` with the active policy, commits it when it is
    /// delivered, and records it as the session does. Returns the verdict.
    @discardableResult
    func decide(from sender: String, login: String? = nil, queueID: String, recipients: Int = 1) throws -> Verdict {
        let facts = MessageFacts(
            queueID: queueID, path: .smtp, clientAddress: "192.0.2.7", saslLogin: login, envelopeSender: sender,
            recipients: (0..<recipients).map { "r\($0)@example.net" })
        let active = policySource.current
        let verdict = try active.policy.evaluate(facts, now: policySource.clock.now())
        if verdict.action == .accept || verdict.action == .tag {
            active.policy.commit(verdict)
        } else {
            active.policy.release(verdict)
        }
        recorder.record(facts: facts, verdict: verdict, time: Date())
        return verdict
    }

    /// Sends a request through the handler as a line and decodes the reply.
    func request<Result: Codable & Sendable>(_ request: ControlRequest, _ type: Result.Type,
                                             peer: ControlPeer? = ControlPeer(pid: 1, uid: 0, gid: 0)) throws -> ControlReply<Result> {
        let line = handler.reply(to: try ControlProtocol.encodeLine(request), from: peer)
        return try ControlProtocol.decodeLine(ControlReply<Result>.self, from: line)
    }
}
