// A throwaway Postfix instance for one test: its own configuration directory, queue, data
// directory and log file inside the test's temporary directory, smtpd on a free loopback port,
// and every message relayed to a smtp-sink on another loopback port.
//
// It must never touch the host's own Postfix: every command gets `-c` (or `-C`) with this
// instance's configuration directory, and nothing listens beyond 127.0.0.1. It needs root,
// because `postfix start` does. /etc/postfix/main.cf need not exist.
import Foundation
import Glibc

/// One entry of `postqueue -j`. Postfix 3.1 and later print one JSON object per queued message.
struct QueueEntry: Decodable {
    struct Recipient: Decodable {
        var address: String
        var delayReason: String?

        enum CodingKeys: String, CodingKey {
            case address
            case delayReason = "delay_reason"
        }
    }

    var queueName: String
    var queueID: String
    var sender: String
    var recipients: [Recipient]

    enum CodingKeys: String, CodingKey {
        case queueName = "queue_name"
        case queueID = "queue_id"
        case sender
        case recipients
    }
}

/// Where the instance's processes find the milter, or nil to run without one.
struct MilterSetting {
    /// The socket path in main.cf syntax, e.g. "unix:/tmp/x/milter/milter.sock".
    var socket: String
    /// Value of `milter_default_action`: what Postfix does when the milter does not reply.
    var defaultAction = "tempfail"
}

/// The `{daemon_name}` that the cleanup service used by pickup sends to milters, so the milter
/// can tell locally submitted mail from mail received over SMTP.
let localDaemonName = "egress-local"

final class PostfixInstance {
    let root: String
    let smtpPort: UInt16
    let sink: MessageSink
    let milter: MilterSetting?
    /// Lines appended to main.cf, such as SASL settings; later lines override earlier ones.
    /// Set them before start().
    var additionalMainSettings: [String] = []

    var configDirectory: String { root + "/etc" }
    var queueDirectory: String { root + "/queue" }
    /// The instance's own command directory; see makeCommandDirectory().
    var commandDirectory: String { root + "/command" }
    var maillogPath: String { root + "/log/postfix.log" }

    private var started = false
    private let tools: PostfixTools

    init(root: String, tools: PostfixTools, milter: MilterSetting?) throws {
        self.root = root
        self.tools = tools
        self.milter = milter
        smtpPort = try freeLoopbackPort()
        sink = MessageSink(port: try freeLoopbackPort(), directory: root + "/sink")
    }

    /// Writes main.cf and master.cf, starts the sink, sets queue permissions, checks and starts
    /// Postfix, and waits until smtpd accepts connections.
    func start() throws {
        for directory in ["etc", "queue", "data", "log"] {
            try FileManager.default.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        try mainConfiguration().write(toFile: configDirectory + "/main.cf", atomically: true, encoding: .utf8)
        try masterConfiguration().write(toFile: configDirectory + "/master.cf", atomically: true, encoding: .utf8)

        try sink.start(executable: tools.smtpSink)
        try makeCommandDirectory()

        try CommandRunner.runChecked(tools.postfix, ["-c", configDirectory, "set-permissions"])
        try CommandRunner.runChecked(tools.postfix, ["-c", configDirectory, "check"])
        started = true
        try CommandRunner.runChecked(tools.postfix, ["-c", configDirectory, "start"])

        let listening = waitUntil(timeoutSeconds: 20) {
            (try? SMTPConnection(port: smtpPort)).map { $0.quit(); return true } ?? false
        }
        guard listening else {
            throw CommandError(description: "Postfix smtpd did not answer on 127.0.0.1:\(smtpPort); log:\n\(maillog())")
        }
    }

    /// Stops Postfix and the sink and waits for the master process to exit, so the directory
    /// can be removed. Safe to call after a failed or partial start.
    func stop() {
        if started {
            let masterPID = readMasterPID()
            _ = try? CommandRunner.run(tools.postfix, ["-c", configDirectory, "stop"], timeoutSeconds: 30)
            if let masterPID {
                let exited = waitUntil(timeoutSeconds: 15) { kill(masterPID, 0) != 0 }
                if !exited {
                    _ = try? CommandRunner.run(tools.postfix, ["-c", configDirectory, "abort"], timeoutSeconds: 30)
                    _ = waitUntil(timeoutSeconds: 5) { kill(masterPID, 0) != 0 }
                }
            }
            started = false
        }
        sink.stop()
    }

    private func readMasterPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: queueDirectory + "/pid/master.pid", encoding: .utf8) else { return nil }
        return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    // MARK: Configuration

    private func mainConfiguration() -> String {
        var lines = [
            "# Throwaway instance written by the integration tests.",
            "compatibility_level = 3.6",
            "queue_directory = \(queueDirectory)",
            "data_directory = \(root)/data",
            "command_directory = \(commandDirectory)",
            "mail_owner = postfix",
            // `postfix set-permissions` checks every file that /etc/postfix/postfix-files.d lists
            // under these directories. Debian's postfix-doc lists READMEs there that it installs
            // gzipped, so the check fails; "no" makes post-install skip them.
            "readme_directory = no",
            "html_directory = no",
            "sample_directory = no",
            "setgid_group = postdrop",
            "myhostname = mta.egress.test",
            "mydomain = egress.test",
            "myorigin = $myhostname",
            // Nothing is delivered locally: every recipient goes to the relay host, the sink.
            "mydestination =",
            "local_recipient_maps =",
            "alias_maps =",
            "alias_database =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "relayhost = [127.0.0.1]:\(sink.port)",
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            "maillog_file = \(maillogPath)",
            "maillog_file_prefixes = \(root)",
            // Deferred mail is retried within seconds, not after the queue manager's default backoff.
            "minimal_backoff_time = 1s",
            "maximal_backoff_time = 2s",
            "queue_run_delay = 1s",
        ]
        if let milter {
            lines += [
                "smtpd_milters = \(milter.socket)",
                "non_smtpd_milters = \(milter.socket)",
                "milter_default_action = \(milter.defaultAction)",
            ]
        }
        lines += additionalMainSettings
        return lines.joined(separator: "\n") + "\n"
    }

    /// Returns master.cf. Every service runs without chroot, so the milter socket and the log are plain paths in
    /// the temporary directory. pickup hands local submissions to its own cleanup service,
    /// which names itself `localDaemonName` to milters; smtpd keeps the default name.
    /// pickup scans the maildrop directory every second, so a submission that the milter
    /// deferred is retried soon.
    private func masterConfiguration() -> String {
        """
        # service type  private unpriv  chroot  wakeup  maxproc command + args
        127.0.0.1:\(smtpPort) inet n - n - - smtpd
        pickup    unix  n       -       n       1       1       pickup
          -o cleanup_service_name=local-cleanup
        cleanup   unix  n       -       n       -       0       cleanup
        local-cleanup unix n    -       n       -       0       cleanup
          -o milter_macro_daemon_name=\(localDaemonName)
        qmgr      unix  n       -       n       300     1       qmgr
        rewrite   unix  -       -       n       -       -       trivial-rewrite
        bounce    unix  -       -       n       -       0       bounce
        defer     unix  -       -       n       -       0       bounce
        trace     unix  -       -       n       -       0       bounce
        verify    unix  -       -       n       -       1       verify
        flush     unix  n       -       n       1000?   0       flush
        proxymap  unix  -       -       n       -       -       proxymap
        smtp      unix  -       -       n       -       -       smtp
        relay     unix  -       -       n       -       -       smtp
        showq     unix  n       -       n       -       -       showq
        error     unix  -       -       n       -       -       error
        retry     unix  -       -       n       -       -       error
        discard   unix  -       -       n       -       -       discard
        anvil     unix  -       -       n       -       1       anvil
        scache    unix  -       -       n       -       1       scache
        postlog   unix-dgram n  -       n       -       1       postlogd

        """
    }

    /// Setgid commands that `postfix set-permissions` resets: it runs chown, which clears the
    /// setgid bit, then chgrp and chmod. Run on /usr/sbin, that leaves a moment in which
    /// another test's postdrop runs without its group, cannot write the maildrop directory
    /// and retries every 10 s forever. So each instance gets copies of its own.
    private static let setgidCommands = ["postdrop", "postqueue", "postlog"]

    /// Commands of postfix-files that keep no special mode: links to the installed ones.
    private static let plainCommands = [
        "postalias", "postcat", "postconf", "postfix", "postkick", "postlock", "postmap", "postmulti", "postsuper",
    ]

    /// Fills the instance's command_directory. Postfix's sendmail runs postdrop from there and
    /// postfix-script its other commands, so no command of this instance touches /usr/sbin.
    private func makeCommandDirectory() throws {
        try FileManager.default.createDirectory(atPath: commandDirectory, withIntermediateDirectories: true)
        chmod(commandDirectory, 0o755)
        let installed = (tools.postfix as NSString).deletingLastPathComponent
        for name in Self.plainCommands {
            try FileManager.default.createSymbolicLink(atPath: commandDirectory + "/" + name, withDestinationPath: installed + "/" + name)
        }
        guard let group = getgrnam("postdrop") else {
            throw CommandError(description: "group postdrop not found; Postfix's setgid commands need it")
        }
        let gid = group.pointee.gr_gid
        for name in Self.setgidCommands {
            let path = commandDirectory + "/" + name
            try FileManager.default.copyItem(atPath: installed + "/" + name, toPath: path)
            // chown clears the setgid bit, so the mode comes after it.
            guard chown(path, 0, gid) == 0, chmod(path, 0o2755) == 0 else {
                throw CommandError(description: "cannot make \(path) setgid postdrop: \(String(cString: strerror(errno)))")
            }
        }
    }

    // MARK: Queue and submission

    /// Submits a message with this instance's own sendmail command, as a local program would.
    /// Postfix's sendmail exits 0 once the message is in the maildrop directory, whatever the
    /// milter later decides.
    func submitLocally(from sender: String, to recipients: [String], content: [UInt8]) throws {
        try localSubmitter.submit(from: sender, to: recipients, content: content)
    }

    /// A value that submits local mail from any thread.
    var localSubmitter: LocalSubmitter {
        LocalSubmitter(sendmail: tools.sendmail, configDirectory: configDirectory)
    }

    /// Lists the queue with `postqueue -j`.
    func queueEntries() throws -> [QueueEntry] {
        let result = try CommandRunner.runChecked(tools.postqueue, ["-c", configDirectory, "-j"])
        let decoder = JSONDecoder()
        return try result.standardOutput.split(separator: "\n").map { line in
            try decoder.decode(QueueEntry.self, from: Data(line.utf8))
        }
    }

    /// Number of message files in the maildrop directory, which postqueue does not list:
    /// submissions that pickup has not yet handed to cleanup, or that a milter deferred.
    func maildropCount() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: queueDirectory + "/maildrop")) ?? []).count
    }

    /// Releases a held message to the deferred queue (`postsuper -H`).
    func releaseFromHold(_ queueID: String) throws {
        try CommandRunner.runChecked(tools.postsuper, ["-c", configDirectory, "-H", queueID])
    }

    /// Deletes a queued message (`postsuper -d`).
    func delete(_ queueID: String) throws {
        try CommandRunner.runChecked(tools.postsuper, ["-c", configDirectory, "-d", queueID])
    }

    /// Releases held messages to the deferred queue with one `postsuper -H -` run, which
    /// reads the queue IDs from its standard input.
    func releaseFromHold(_ queueIDs: [String]) throws {
        try runPostsuper(option: "-H", queueIDs: queueIDs)
    }

    /// Deletes queued messages with one `postsuper -d -` run.
    func delete(_ queueIDs: [String]) throws {
        try runPostsuper(option: "-d", queueIDs: queueIDs)
    }

    private func runPostsuper(option: String, queueIDs: [String]) throws {
        guard !queueIDs.isEmpty else { return }
        let input = Array(queueIDs.map { $0 + "\n" }.joined().utf8)
        try CommandRunner.runChecked(tools.postsuper, ["-c", configDirectory, option, "-"], input: input)
    }

    /// Asks the queue manager to deliver deferred mail now (`postqueue -f`).
    ///
    /// postqueue also wakes pickup through its FIFO. While pickup is busy that FIFO can be full,
    /// and postqueue then exits with "mail system is down" although Postfix runs, so a failure
    /// is retried a few times before it is thrown.
    func flush() throws {
        var lastError: Error?
        for _ in 0..<Self.flushAttempts {
            do {
                try CommandRunner.runChecked(tools.postqueue, ["-c", configDirectory, "-f"])
                return
            } catch {
                lastError = error
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
        throw lastError!
    }

    private static let flushAttempts = 10

    /// Wakes pickup so it scans the maildrop directory now instead of at its next wakeup.
    func wakePickup() {
        _ = try? CommandRunner.run(tools.postkick, ["-c", configDirectory, "public", "pickup", "W"])
    }

    /// Waits until the queue and the maildrop directory are empty. Returns false on timeout.
    func waitForEmptyQueue(timeoutSeconds: Double) -> Bool {
        waitUntil(timeoutSeconds: timeoutSeconds, pollSeconds: 0.25) {
            maildropCount() == 0 && ((try? queueEntries().isEmpty) ?? false)
        }
    }

    /// Waits until nothing is in flight: the maildrop directory is empty and every queued
    /// message is in the hold queue, where it stays until an admin acts. Returns false on
    /// timeout.
    func waitForOnlyHeldMessages(timeoutSeconds: Double) -> Bool {
        waitUntil(timeoutSeconds: timeoutSeconds, pollSeconds: 0.5) {
            maildropCount() == 0 && ((try? queueEntries().allSatisfy { $0.queueName == "hold" }) ?? false)
        }
    }

    /// Returns the instance's log so far.
    func maillog() -> String {
        (try? String(contentsOfFile: maillogPath, encoding: .utf8)) ?? ""
    }
}

/// Submits messages with an instance's own sendmail command (`sendmail -C DIR`).
struct LocalSubmitter: Sendable {
    var sendmail: String
    var configDirectory: String

    func submit(from sender: String, to recipients: [String], content: [UInt8]) throws {
        try CommandRunner.runChecked(
            sendmail,
            ["-C", configDirectory, "-f", sender, "--"] + recipients,
            input: content)
    }
}

/// Paths of the Postfix programs the harness runs. `locate()` returns nil when Postfix or its
/// test tools are not installed.
struct PostfixTools {
    var postfix: String
    var postqueue: String
    var postsuper: String
    var postkick: String
    var sendmail: String
    var smtpSink: String

    static func locate() -> PostfixTools? {
        guard let postfix = findExecutable("postfix"),
              let postqueue = findExecutable("postqueue"),
              let postsuper = findExecutable("postsuper"),
              let postkick = findExecutable("postkick"),
              let sendmail = findExecutable("sendmail"),
              let smtpSink = findExecutable("smtp-sink")
        else { return nil }
        return PostfixTools(
            postfix: postfix, postqueue: postqueue, postsuper: postsuper, postkick: postkick,
            sendmail: sendmail, smtpSink: smtpSink)
    }
}
