// A compromised website on a hosting server, through the real Postfix: six local accounts
// submit mail with the setgid wrapper egress-sendmail as PHP's sendmail_path would. Five send
// password resets and order notices. The sixth account's uploaded script sends 2,000 spam
// messages as fast as it can. Most go through the wrapper; the rest go to the real sendmail
// directly, under a forged X-PHP-Originating-Script header that names another account.
//
// The daemon must let the spam account send its hourly allowance and hold the rest, suspend
// it, keep the other accounts' mail flowing without extra delay, charge the forged messages to
// local-unverified and not to the account they name, lose nothing, and never let the stamp
// header reach a recipient. An admin's postsuper -d and -H then delete or deliver the held
// messages, and every message is accounted for at each step.
//
// The test changes the host for its duration (accounts egt1 to egt6, the group egt-submit,
// /etc/postfix/main.cf and /etc/egress-milter/egress-milter.yaml) under `HostLock`, and undoes
// every change in teardown blocks, which run whether the test passed or not.
import Foundation
import Synchronization
import XCTest

final class ContainmentScenarioTests: IntegrationTestCase {
    static let goodAccountNames = ["egt1", "egt2", "egt3", "egt4", "egt5"]
    static let spamAccountName = "egt6"
    static let submitGroupName = "egt-submit"

    /// Messages an account may send per hour (rule `accounts`); its first excess suspends it.
    static let accountLimit = 50
    /// Messages that local mail without a valid stamp may send per hour (rule `unverified`).
    static let unverifiedLimit = 10

    static let spamMessageCount = 2000
    /// Every `forgedInterval`-th spam message bypasses the wrapper: 100 of the 2,000.
    static let forgedInterval = 20
    /// Threads that submit the spam in parallel, each one submission at a time.
    static let spamSenderCount = 3

    /// Messages each good account sends before the burst, to measure the normal latency.
    static let baselineMessagesPerAccount = 4
    /// Messages each good account sends while the spam runs; with the baseline they stay
    /// well under `accountLimit`.
    static let burstMessagesPerAccount = 26
    /// Pause between two messages of one good account, in seconds, so its mail is spread
    /// over the burst instead of arriving in one block.
    static let goodSendIntervalSeconds = 1.0

    private var accounts: [String: LocalAccount] = [:]
    private var wrapper: SubmissionWrapper?
    private var scriptPath = ""

    // MARK: Setup

    override func prepareEnvironment(_ environment: IntegrationEnvironment) throws {
        guard let wrapperExecutable = SubmissionWrapper.locateExecutable() else {
            throw CommandError(description: "egress-sendmail binary not found beside egress-milter; build it (swift build --product egress-sendmail) or set EGRESS_SENDMAIL_BIN")
        }
        let lock = try HostLock(timeoutSeconds: 900)
        addTeardownBlock { lock.release() }

        // Accounts and the wrapper's group. Each undo is registered only after its creation
        // succeeded, so a failed check never removes an account that was already there.
        let submitGroup = try LocalAccounts.createGroup(Self.submitGroupName)
        addTeardownBlock {
            if let problem = LocalAccounts.removeGroup(Self.submitGroupName) {
                XCTFail(problem)
            }
        }
        // Homes outside /tmp, as on a hosting server: a script path with a temp folder in it
        // scores SCRIPT_IN_UPLOAD_DIR, which would tag the good accounts' mail as well.
        let homes = "/home/egress-integration-" + uniqueToken("homes")
        try FileManager.default.createDirectory(atPath: homes, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: homes) }
        for name in Self.goodAccountNames + [Self.spamAccountName] {
            let account = try LocalAccounts.createUser(name, home: homes + "/" + name)
            addTeardownBlock {
                if let problem = LocalAccounts.removeUser(name) {
                    XCTFail(problem)
                }
            }
            accounts[name] = account
            try makeWebDirectory(account.home + "/public_html", owner: account)
        }
        let spamAccount = accounts[Self.spamAccountName]!
        let uploads = spamAccount.home + "/public_html/wp-content/uploads"
        try makeWebDirectory(uploads, owner: spamAccount)
        scriptPath = uploads + "/x.php"

        // The stamp key, readable by root and the wrapper's group only.
        let keyDirectory = environment.root + "/identity"
        try FileManager.default.createDirectory(atPath: keyDirectory, withIntermediateDirectories: true)
        let keyPath = keyDirectory + "/submit.key"
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        guard FileManager.default.createFile(atPath: keyPath, contents: Data(key)),
              chown(keyPath, 0, submitGroup) == 0, chmod(keyPath, 0o640) == 0 else {
            throw CommandError(description: "cannot write the stamp key \(keyPath): \(String(cString: strerror(errno)))")
        }

        wrapper = try SubmissionWrapper.install(
            from: wrapperExecutable, into: environment.root + "/bin", group: submitGroup,
            postfixConfigDirectory: environment.postfix.configDirectory,
            realSendmail: environment.postfix.localSubmitter.sendmail)
        addTeardownBlock(try HostFiles.authorizePostfixConfigurationDirectory(environment.postfix.configDirectory))
        addTeardownBlock(try HostFiles.installWrapperConfiguration("identity:\n  stamp_key_file: \(keyPath)\n"))

        environment.additionalDaemonConfiguration = """
            identity:
              stamp_key_file: \(keyPath)
            limits:
              - name: accounts
                level: account
                messages: [\(Self.accountLimit)/1h hard]
                local_action: hold
              - name: unverified
                level: local-unverified
                messages: [\(Self.unverifiedLimit)/1h]
                local_action: hold

            """
    }

    private func makeWebDirectory(_ path: String, owner: LocalAccount) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard chown(path, owner.uid, owner.gid) == 0 else {
            throw CommandError(description: "chown \(path): \(String(cString: strerror(errno)))")
        }
    }

    // MARK: The scenario

    func testCompromisedSiteIsContained() throws {
        let wrapper = try XCTUnwrap(wrapper)
        let log = SubmissionLog()
        let plan = MessagePlan(accounts: accounts, scriptPath: scriptPath)
        let scenarioStart = Date()

        // 1. Baseline: the good accounts alone.
        runGoodTraffic(plan: plan, wrapper: wrapper, log: log, phase: .baseline,
                       count: Self.baselineMessagesPerAccount, intervalSeconds: 0.3)
        let baselineTokens = Set(log.entries.map(\.token))
        let baselineArrived = waitUntil(timeoutSeconds: 60, pollSeconds: 0.2) {
            baselineTokens.isSubset(of: readSink().counts.keys)
        }
        XCTAssertTrue(baselineArrived, "baseline messages did not all arrive: \(summary(log))")

        // 2. The burst: spam and ordinary mail at the same time.
        let burstStart = Date()
        let finished = DispatchGroup()
        for thread in 0..<Self.spamSenderCount {
            let indices = Array(stride(from: thread, to: Self.spamMessageCount, by: Self.spamSenderCount))
            startThread(in: finished) {
                for index in indices {
                    let forged = index % Self.forgedInterval == Self.forgedInterval - 1
                    submit(forged ? plan.forgedMessage(index) : plan.spamMessage(index), through: wrapper, into: log)
                }
            }
        }
        startThread(in: finished) {
            runGoodTraffic(plan: plan, wrapper: wrapper, log: log, phase: .burst,
                           count: Self.burstMessagesPerAccount, intervalSeconds: Self.goodSendIntervalSeconds)
        }
        let sendersDone = finished.wait(timeout: .now() + 900) == .success
        let burstSubmitted = Date()
        XCTAssertTrue(sendersDone, "the senders did not finish within 900 s: \(summary(log))")

        // 3. Wait, bounded, until pickup and the queue manager are done: every message is then
        // delivered or held.
        let settled = environment.postfix.waitForOnlyHeldMessages(timeoutSeconds: 300)
        let burstSettled = Date()
        XCTAssertTrue(settled, "the queue did not settle: \(summary(log))\n\(environment.diagnostics())")

        let submissions = log.entries
        let failedSubmissions = submissions.filter { $0.exitStatus != 0 }
        XCTAssertEqual(failedSubmissions.count, 0, "failed submissions, first ones: \(failedSubmissions.prefix(3))")

        let sink = readSink()
        let delivered = sink.counts
        let held = try heldMessages()
        let report = ScenarioReport(submissions: submissions, delivered: delivered, held: held,
                                    decisions: environment.daemon.decisions(), arrivals: sink.arrivals)
        let diagnostics = { "\(report.counts)\n\(self.environment.diagnostics())" }

        assertNothingLost(report, diagnostics: diagnostics)
        assertSpamContained(report, diagnostics: diagnostics)
        assertGoodAccountsUnaffected(report, diagnostics: diagnostics)
        assertDecisionsNameTheirSenders(report, diagnostics: diagnostics)
        assertSuspensionLogged(diagnostics: diagnostics)
        assertNoStampReachedSink(diagnostics: diagnostics)

        // 4. The admin deletes part of the held mail and releases the rest.
        let toDelete = Array(report.heldTokens(of: .spam).sorted().prefix(200)) + report.heldTokens(of: .forged).sorted()
        let toRelease = report.heldTokens(of: .spam).sorted().dropFirst(200)
        try environment.postfix.delete(toDelete.compactMap { held[$0] })
        try environment.postfix.releaseFromHold(toRelease.compactMap { held[$0] })
        try environment.postfix.flush()
        let released = waitUntil(timeoutSeconds: 300, pollSeconds: 0.5) {
            environment.postfix.maildropCount() == 0 && ((try? environment.postfix.queueEntries().isEmpty) ?? false)
        }
        XCTAssertTrue(released, "the queue did not empty after postsuper: \(diagnostics())")

        let finalDelivered = readSink().counts
        let expectedDelivered = Set(delivered.keys).union(toRelease)
        XCTAssertEqual(Set(finalDelivered.keys), expectedDelivered,
                       "delivered after release: \(finalDelivered.count), expected \(expectedDelivered.count)\n\(diagnostics())")
        XCTAssertEqual(finalDelivered.values.filter { $0 > 1 }.count, 0, "messages delivered more than once: \(diagnostics())")
        XCTAssertEqual(finalDelivered.count + toDelete.count, submissions.count,
                       "delivered \(finalDelivered.count) + deleted \(toDelete.count) != submitted \(submissions.count)")
        XCTAssertTrue(Set(toDelete).isDisjoint(with: finalDelivered.keys), "a deleted message was delivered")
        // Released messages go straight to delivery: the milter decides each message once.
        XCTAssertEqual(environment.daemon.decisions().count, submissions.count, "decision lines after release: \(diagnostics())")
        assertNoStampReachedSink(diagnostics: diagnostics)

        let finishedAll = Date()
        print("""
            containment scenario: \(report.counts)
            latency baseline max \(format(report.baselineLatencies.max())) s, median \(format(median(report.baselineLatencies))) s; \
            burst max \(format(report.burstLatencies.max())) s, median \(format(median(report.burstLatencies))) s
            phases: baseline \(format(burstStart.timeIntervalSince(scenarioStart))) s, \
            submitting the burst \(format(burstSubmitted.timeIntervalSince(burstStart))) s, \
            settling \(format(burstSettled.timeIntervalSince(burstSubmitted))) s, \
            admin and release \(format(finishedAll.timeIntervalSince(burstSettled))) s
            """)
    }

    // MARK: Assertions

    /// Asserts that every submitted message was delivered once or held, never both, and that
    /// nothing else arrived.
    private func assertNothingLost(_ report: ScenarioReport, diagnostics: () -> String,
                                   file: StaticString = #filePath, line: UInt = #line) {
        let submitted = Set(report.submissions.map(\.token))
        XCTAssertEqual(submitted.count, report.submissions.count, "duplicate tokens in the plan", file: file, line: line)
        XCTAssertEqual(Set(report.delivered.keys).union(report.held.keys), submitted,
                       "delivered + held differ from submitted: \(diagnostics())", file: file, line: line)
        XCTAssertTrue(Set(report.delivered.keys).isDisjoint(with: report.held.keys),
                      "messages both delivered and held: \(diagnostics())", file: file, line: line)
        XCTAssertEqual(report.delivered.values.reduce(0, +) + report.held.count, submitted.count,
                       "delivered + held != submitted: \(diagnostics())", file: file, line: line)
    }

    /// Asserts that the spam account sent at most its allowance and the forged messages at
    /// most the unverified allowance, and that the rest waits in the hold queue.
    private func assertSpamContained(_ report: ScenarioReport, diagnostics: () -> String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertLessThanOrEqual(report.deliveredCount(of: .spam), Self.accountLimit,
                                 "spam through the wrapper delivered: \(diagnostics())", file: file, line: line)
        XCTAssertLessThanOrEqual(report.deliveredCount(of: .forged), Self.unverifiedLimit,
                                 "forged spam delivered: \(diagnostics())", file: file, line: line)
        XCTAssertEqual(report.heldTokens(of: .spam).count + report.deliveredCount(of: .spam), report.submittedCount(of: .spam),
                       file: file, line: line)
        XCTAssertGreaterThan(report.heldTokens(of: .spam).count, 0, "no spam held: \(diagnostics())", file: file, line: line)
    }

    /// Asserts that every good message arrived and none was held. Their delivery times are
    /// printed with the scenario's figures, not asserted, because they depend on the machine.
    private func assertGoodAccountsUnaffected(_ report: ScenarioReport, diagnostics: () -> String,
                                              file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(report.deliveredCount(of: .normal), report.submittedCount(of: .normal),
                       "good messages delivered: \(diagnostics())", file: file, line: line)
        XCTAssertEqual(report.heldTokens(of: .normal).count, 0, "good messages held: \(diagnostics())", file: file, line: line)
        XCTAssertEqual(report.goodLatencies.count, report.submittedCount(of: .normal),
                       "good messages without a measured latency", file: file, line: line)
    }

    /// Asserts that each message has one decision line and that it names the right sender.
    /// Good accounts are charged for their own mail only. The spam account's wrapper mail
    /// names it and its script, and the forged messages are local-unverified.
    private func assertDecisionsNameTheirSenders(_ report: ScenarioReport, diagnostics: () -> String,
                                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(report.decisionsByToken.count, report.submissions.count,
                       "messages with a decision line: \(diagnostics())", file: file, line: line)
        var wrongIdentities: [String] = []
        for submission in report.submissions {
            guard let decisions = report.decisionsByToken[submission.token], decisions.count == 1,
                  let identity = decisions[0].fields["identity"] else {
                wrongIdentities.append("\(submission.token): \(report.decisionsByToken[submission.token]?.count ?? 0) decision lines")
                continue
            }
            let keys = identity.split(separator: "<").map(String.init)
            let accountKeys = keys.filter { $0.hasPrefix("account:") }
            switch submission.kind {
            case .normal, .spam:
                if accountKeys != ["account:\(submission.account)"] || keys.contains("local-unverified") {
                    wrongIdentities.append("\(submission.token): \(identity)")
                }
                if submission.kind == .spam && !keys.contains("script:\(submission.account):\(scriptPath)") {
                    wrongIdentities.append("\(submission.token) has no script key: \(identity)")
                }
            case .forged:
                if !accountKeys.isEmpty || !keys.contains("local-unverified") {
                    wrongIdentities.append("\(submission.token): \(identity)")
                }
            }
            if submission.kind == .normal && decisions[0].action != "accept" {
                wrongIdentities.append("\(submission.token): action \(decisions[0].action ?? "none")")
            }
        }
        XCTAssertEqual(wrongIdentities, [], "first of \(wrongIdentities.count): \(diagnostics())", file: file, line: line)
    }

    /// Asserts that the spam account was suspended by a log line that names the account and
    /// the script, and that no good account was.
    private func assertSuspensionLogged(diagnostics: () -> String, file: StaticString = #filePath, line: UInt = #line) {
        let lines = environment.daemon.log().split(separator: "\n")
        let suspensionLines = lines.filter { $0.lowercased().contains("suspend") && $0.contains("account:\(Self.spamAccountName)") }
        XCTAssertFalse(suspensionLines.isEmpty, "no log line suspends account:\(Self.spamAccountName): \(diagnostics())", file: file, line: line)
        XCTAssertTrue(suspensionLines.contains { $0.contains(scriptPath) },
                      "no suspension line names the script \(scriptPath): \(suspensionLines.prefix(3))", file: file, line: line)
        let unrelated = lines.filter { line in
            line.lowercased().contains("suspend") && Self.goodAccountNames.contains { line.contains("account:\($0)") }
        }
        XCTAssertEqual(unrelated.count, 0, "good accounts suspended: \(unrelated.prefix(3))", file: file, line: line)
    }

    private func assertNoStampReachedSink(diagnostics: () -> String, file: StaticString = #filePath, line: UInt = #line) {
        let stamped = environment.postfix.sink.messages().filter { !$0.headerValues("X-Egress-Submitter").isEmpty }
        XCTAssertEqual(stamped.count, 0, "messages with the stamp header in the sink: \(stamped.prefix(3).map(\.fileName))",
                       file: file, line: line)
    }

    // MARK: Reading the results

    /// Reads the sink: how often each token arrived, by envelope sender, and when.
    private func readSink() -> (counts: [String: Int], arrivals: [String: Date]) {
        var counts: [String: Int] = [:]
        var arrivals: [String: Date] = [:]
        for message in environment.postfix.sink.messages() {
            guard let token = message.sender.flatMap(MessagePlan.token(fromSender:)) else { continue }
            counts[token, default: 0] += 1
            arrivals[token] = message.arrival
        }
        return (counts, arrivals)
    }

    /// Queue IDs of the held messages, by token.
    private func heldMessages() throws -> [String: String] {
        var held: [String: String] = [:]
        for entry in try environment.postfix.queueEntries() where entry.queueName == "hold" {
            guard let token = MessagePlan.token(fromSender: entry.sender) else { continue }
            held[token] = entry.queueID
        }
        return held
    }

    private func summary(_ log: SubmissionLog) -> String {
        let entries = log.entries
        let failed = entries.filter { $0.exitStatus != 0 }
        return "submitted \(entries.count), failed \(failed.count) \(failed.prefix(2)); sink \(environment.postfix.sink.fileCount()); maildrop \(environment.postfix.maildropCount())"
    }
}

// MARK: - Sending

enum MessageKind: String, Sendable {
    /// Password resets and order notices of a good account.
    case normal
    /// Spam of the compromised script, through the wrapper.
    case spam
    /// Spam of the compromised script with the real sendmail and a forged PHP header.
    case forged
}

enum ScenarioPhase: Sendable {
    case baseline, burst
}

/// One message to submit and how.
struct PlannedMessage: Sendable {
    var token: String
    var kind: MessageKind
    var phase: ScenarioPhase
    var account: LocalAccount
    var envelopeSender: String
    var content: [UInt8]
    var scriptFilename: String?
    var workingDirectory: String
    var bypassesWrapper: Bool
}

/// Builds the messages of the scenario. The token of each message is in its envelope sender
/// ("mailer+TOKEN@domain", as VERP return paths look), its Message-ID and its Subject, so the
/// sink copy, the hold queue entry and the daemon's decision line can be matched to it.
struct MessagePlan: Sendable {
    let accounts: [String: LocalAccount]
    let scriptPath: String

    func goodMessage(account name: String, index: Int, phase: ScenarioPhase) -> PlannedMessage {
        let account = accounts[name]!
        let token = "normal-\(name)-\(phase == .baseline ? "b" : "r")\(index)"
        let domain = "\(name).shop.example"
        let isReset = index % 2 == 0
        let subject = isReset ? "Reset your password" : "Your order has shipped"
        let body = isReset
            ? "Someone asked to reset the password of your account. Follow the link to choose a new one.\n"
            : "Your order is on its way. Track it in your account.\n"
        let script = account.home + "/public_html/" + (isReset ? "wp-login.php" : "checkout.php")
        return PlannedMessage(
            token: token, kind: .normal, phase: phase, account: account,
            envelopeSender: "mailer+\(token)@\(domain)",
            content: Self.content(token: token, from: "shop@\(domain)", to: "customer\(index)@remote.example",
                                  subject: subject, body: body,
                                  phpScript: "\(account.uid):\((script as NSString).lastPathComponent)"),
            scriptFilename: script, workingDirectory: account.home + "/public_html", bypassesWrapper: false)
    }

    func spamMessage(_ index: Int) -> PlannedMessage {
        let account = accounts[ContainmentScenarioTests.spamAccountName]!
        let token = "spam-\(account.name)-\(index)"
        return PlannedMessage(
            token: token, kind: .spam, phase: .burst, account: account,
            envelopeSender: "mailer+\(token)@\(account.name).shop.example",
            content: Self.content(token: token, from: "winner@\(account.name).shop.example", to: "victim\(index)@remote.example",
                                  subject: "You have won", body: "Claim your prize today.\n",
                                  phpScript: "\(account.uid):x.php"),
            scriptFilename: scriptPath, workingDirectory: (scriptPath as NSString).deletingLastPathComponent,
            bypassesWrapper: false)
    }

    /// A spam message sent around the wrapper, whose PHP header names a good account's uid.
    func forgedMessage(_ index: Int) -> PlannedMessage {
        let account = accounts[ContainmentScenarioTests.spamAccountName]!
        let names = ContainmentScenarioTests.goodAccountNames
        let victim = accounts[names[index % names.count]]!
        let token = "forged-\(account.name)-\(index)"
        return PlannedMessage(
            token: token, kind: .forged, phase: .burst, account: account,
            envelopeSender: "mailer+\(token)@\(victim.name).shop.example",
            content: Self.content(token: token, from: "shop@\(victim.name).shop.example", to: "victim\(index)@remote.example",
                                  subject: "Your account is locked", body: "Confirm your card details.\n",
                                  phpScript: "\(victim.uid):wp-login.php"),
            scriptFilename: nil, workingDirectory: (scriptPath as NSString).deletingLastPathComponent,
            bypassesWrapper: true)
    }

    static func token(fromSender sender: String) -> String? {
        guard let plus = sender.firstIndex(of: "+"), let at = sender.lastIndex(of: "@"), plus < at else { return nil }
        return String(sender[sender.index(after: plus)..<at])
    }

    private static func content(token: String, from: String, to: String, subject: String, body: String,
                                phpScript: String) -> [UInt8] {
        let text = """
            From: <\(from)>
            To: <\(to)>
            Subject: \(subject) [\(token)]
            Message-ID: <\(token)@shop.example>
            X-PHP-Originating-Script: \(phpScript)
            Content-Type: text/plain; charset=UTF-8

            \(body)
            """
        return Array(text.utf8)
    }
}

/// One finished submission.
struct Submission: Sendable, CustomStringConvertible {
    var token: String
    var kind: MessageKind
    var phase: ScenarioPhase
    var account: String
    /// When the test started the wrapper (or sendmail), as PHP's mail() would be called.
    /// The latency counts from here, because the test learns of the exit only after the
    /// message may already have been delivered.
    var started: Date
    /// When the test saw the submission exit.
    var finished: Date
    var exitStatus: Int32
    var errorOutput: String

    var description: String { "\(token) exit \(exitStatus): \(errorOutput)" }
}

/// Submissions of all sending threads.
final class SubmissionLog: Sendable {
    private let storage = Mutex<[Submission]>([])

    func record(_ submission: Submission) {
        storage.withLock { $0.append(submission) }
    }

    var entries: [Submission] {
        storage.withLock { $0 }
    }
}

/// Submits one message as its account and records the outcome.
func submit(_ message: PlannedMessage, through wrapper: SubmissionWrapper, into log: SubmissionLog) {
    let started = Date()
    var status: Int32 = -1
    var errorOutput = ""
    do {
        let result = message.bypassesWrapper
            ? try wrapper.submitBypassingWrapper(as: message.account, envelopeSender: message.envelopeSender,
                                                 content: message.content, workingDirectory: message.workingDirectory)
            : try wrapper.submit(as: message.account, envelopeSender: message.envelopeSender, content: message.content,
                                 scriptFilename: message.scriptFilename, workingDirectory: message.workingDirectory)
        status = result.status
        errorOutput = result.standardError
    } catch {
        errorOutput = "\(error)"
    }
    log.record(Submission(token: message.token, kind: message.kind, phase: message.phase, account: message.account.name,
                          started: started, finished: Date(), exitStatus: status, errorOutput: errorOutput))
}

/// Sends `count` messages from each good account, one every `intervalSeconds`, all accounts
/// in parallel.
func runGoodTraffic(plan: MessagePlan, wrapper: SubmissionWrapper, log: SubmissionLog, phase: ScenarioPhase,
                    count: Int, intervalSeconds: Double) {
    let finished = DispatchGroup()
    for name in ContainmentScenarioTests.goodAccountNames {
        startThread(in: finished) {
            for index in 0..<count {
                let started = Date()
                submit(plan.goodMessage(account: name, index: index, phase: phase), through: wrapper, into: log)
                let rest = intervalSeconds - Date().timeIntervalSince(started)
                if rest > 0 {
                    Thread.sleep(forTimeInterval: rest)
                }
            }
        }
    }
    // Every submission has its own time limit, so this wait ends.
    finished.wait()
}

/// Starts a thread that runs `body` inside `group`, so the caller can wait for it.
func startThread(in group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
    group.enter()
    Thread {
        body()
        group.leave()
    }.start()
}

// MARK: - Results

/// The outcome of the scenario, indexed by token.
struct ScenarioReport {
    struct Latency: CustomStringConvertible {
        var token: String
        var phase: ScenarioPhase
        var seconds: Double
        /// How long the submission itself ran, from start to the exit the test saw.
        var submissionSeconds: Double

        var description: String {
            "\(token) \(format(seconds)) s (submission \(format(submissionSeconds)) s)"
        }
    }

    let submissions: [Submission]
    /// How often each token arrived at the sink.
    let delivered: [String: Int]
    /// Queue ID of each held token.
    let held: [String: String]
    let decisionsByToken: [String: [DecisionLogLine]]
    /// Delivery latency of each good message: sink arrival minus the start of its submission.
    let goodLatencies: [Latency]

    init(submissions: [Submission], delivered: [String: Int], held: [String: String], decisions: [DecisionLogLine],
         arrivals: [String: Date] = [:]) {
        self.submissions = submissions
        self.delivered = delivered
        self.held = held
        var byToken: [String: [DecisionLogLine]] = [:]
        for decision in decisions {
            guard let token = decision.sender.flatMap(MessagePlan.token(fromSender:)) else { continue }
            byToken[token, default: []].append(decision)
        }
        decisionsByToken = byToken
        goodLatencies = submissions.filter { $0.kind == .normal }.compactMap { submission in
            guard let arrival = arrivals[submission.token] else { return nil }
            return Latency(token: submission.token, phase: submission.phase,
                           seconds: arrival.timeIntervalSince(submission.started),
                           submissionSeconds: submission.finished.timeIntervalSince(submission.started))
        }
    }

    var baselineLatencies: [Double] { goodLatencies.filter { $0.phase == .baseline }.map(\.seconds) }
    var burstLatencies: [Double] { goodLatencies.filter { $0.phase == .burst }.map(\.seconds) }

    func submittedCount(of kind: MessageKind) -> Int {
        submissions.filter { $0.kind == kind }.count
    }

    func deliveredCount(of kind: MessageKind) -> Int {
        submissions.filter { $0.kind == kind && delivered[$0.token] != nil }.count
    }

    func heldTokens(of kind: MessageKind) -> [String] {
        submissions.filter { $0.kind == kind && held[$0.token] != nil }.map(\.token)
    }

    var counts: String {
        [MessageKind.normal, .spam, .forged].map { kind in
            "\(kind.rawValue): submitted \(submittedCount(of: kind)), delivered \(deliveredCount(of: kind)), held \(heldTokens(of: kind).count)"
        }.joined(separator: "; ")
    }
}

func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    return values.sorted()[values.count / 2]
}

func format(_ seconds: Double?) -> String {
    seconds.map { String(format: "%.2f", $0) } ?? "-"
}
