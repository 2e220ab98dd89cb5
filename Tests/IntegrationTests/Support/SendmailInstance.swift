// A throwaway Sendmail 8.17 for one test, run from the private root that
// Packaging/install-sendmail-root unpacks from Debian's sendmail-bin (that package conflicts
// with postfix, so it is never installed). Two configurations are built with m4 from the root's
// own cf macros: sendmail.cf for the MTA daemon and submit.cf for the mail submission program
// (MSP) that the `sendmail` command runs for local mail.
//
// The MTA listens on two loopback ports: the SMTP port that tests talk to, and a second one
// named `localDaemonName` that only the MSP uses, so the milter gets local mail with that
// `{daemon_name}`. Everything is relayed to a smtp-sink on a third loopback port.
//
// It must never touch the host's mail setup: every command gets `-C` with a generated file,
// every queue, pid, status and alias file lies in the test's directory, and nothing listens
// beyond 127.0.0.1. Every sendmail run needs root, because it gets a UTS namespace with a
// qualified host name (see SendmailTools.invocation). Sendmail logs only to syslog, which a
// test machine may not run, so failures are explained by the queue listings and the milter's log.
import Foundation
import Glibc

/// Paths in the private Sendmail root, and the other programs the instance needs.
struct SendmailTools: Sendable {
    /// Where Packaging/install-sendmail-root unpacks Sendmail when given no other root.
    static let defaultRoot = "/opt/egress-sendmail"

    var root: String
    /// The real binary; Debian's /usr/sbin/sendmail in the package is a shell script around it.
    var sendmail: String
    /// The m4 macros of sendmail-cf (cf.m4, feature/, ostype/, mailer/).
    var configurationMacros: String
    var m4: String
    var smtpSink: String
    var unshare: String

    /// The root in use: $EGRESS_SENDMAIL_ROOT, else `defaultRoot`.
    static var rootPath: String {
        let value = ProcessInfo.processInfo.environment["EGRESS_SENDMAIL_ROOT"] ?? ""
        return value.isEmpty ? defaultRoot : value
    }

    /// Returns the tools, or an error naming what is missing.
    static func locate() -> Result<SendmailTools, CommandError> {
        let root = rootPath
        let sendmail = root + "/usr/libexec/sendmail/sendmail"
        let macros = root + "/usr/share/sendmail/cf"
        guard FileManager.default.isExecutableFile(atPath: sendmail),
              FileManager.default.fileExists(atPath: macros + "/m4/cf.m4") else {
            return .failure(CommandError(description: "no Sendmail in \(root) (\(sendmail) and \(macros)/m4/cf.m4 are needed); run Packaging/install-sendmail-root as root"))
        }
        guard let m4 = findExecutable("m4") else {
            return .failure(CommandError(description: "m4 not found; apt-get install m4 (Packaging/install-sendmail-root does)"))
        }
        guard let smtpSink = findExecutable("smtp-sink") else {
            return .failure(CommandError(description: "smtp-sink not found; it ships in Debian's postfix package"))
        }
        guard let unshare = findExecutable("unshare") else {
            return .failure(CommandError(description: "unshare not found; it ships in Debian's util-linux package"))
        }
        return .success(SendmailTools(
            root: root, sendmail: sendmail, configurationMacros: macros, m4: m4, smtpSink: smtpSink, unshare: unshare))
    }

    /// The fully qualified host name of every private sendmail run, set in a UTS namespace.
    static let hostName = "mta.egress.test"

    /// Returns the program and arguments that run the private sendmail with `arguments`.
    ///
    /// Every sendmail run, not only the daemon, first qualifies the machine's host name. When
    /// that name has no dot and neither /etc/hosts nor DNS qualifies it, Sendmail logs "My
    /// unqualified host name unknown" and sleeps 60 s (seen with strace on 8.17.1.9) before it
    /// reads any configuration. So each run gets a UTS namespace of its own (unshare needs
    /// root) whose host name is `hostName`. The host's own name does not change.
    func invocation(_ arguments: [String]) -> (executable: String, arguments: [String]) {
        let script = "hostname \(Self.hostName) && exec \"$0\" \"$@\""
        return (unshare, ["--uts", "--", "/bin/sh", "-c", script, sendmail] + arguments)
    }

    /// Runs the private sendmail with `arguments` and throws when it exits with a failure.
    @discardableResult
    func run(_ arguments: [String], input: [UInt8] = [], timeoutSeconds: Double = CommandRunner.defaultTimeoutSeconds) throws -> CommandResult {
        let (executable, fullArguments) = invocation(arguments)
        return try CommandRunner.runChecked(executable, fullArguments, input: input, timeoutSeconds: timeoutSeconds)
    }
}

/// One entry of `sendmail -bp` (the mail queue) or `sendmail -bp -qQ` (the quarantine).
struct SendmailQueueEntry {
    var queueID: String
    var sender: String
    /// The reason the milter gave, from the "QUARANTINE:" line; nil outside the quarantine.
    var quarantineReason: String?
    var recipients: [String]
}

final class SendmailInstance {
    let root: String
    let smtpPort: UInt16
    /// The port of the `localDaemonName` listener that only the MSP uses.
    let localPort: UInt16
    let sink: MessageSink
    /// Path of the milter's unix socket; nil runs the MTA without a milter.
    let milterSocket: String?
    let tools: SendmailTools
    /// m4 lines added to the MTA's sendmail.mc before its MAILER line, such as the AUTH
    /// settings of the SMTP AUTH tests. Set it before start().
    var additionalMTAMacros = ""

    var configurationPath: String { root + "/sendmail.cf" }
    var submitConfigurationPath: String { root + "/submit.cf" }
    var queueDirectory: String { root + "/mqueue" }
    var clientQueueDirectory: String { root + "/clientmqueue" }
    var pidPath: String { root + "/sendmail.pid" }

    private var daemonPID: pid_t?

    init(root: String, tools: SendmailTools, milterSocket: String?) throws {
        self.root = root
        self.tools = tools
        self.milterSocket = milterSocket
        smtpPort = try freeLoopbackPort()
        localPort = try freeLoopbackPort()
        sink = MessageSink(port: try freeLoopbackPort(), directory: root + "/sink")
    }

    /// Writes and compiles both configurations, starts the sink and the MTA daemon, and waits
    /// until the daemon accepts connections on its SMTP port.
    func start() throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o755)
        try FileManager.default.createDirectory(atPath: queueDirectory, withIntermediateDirectories: true)
        chmod(queueDirectory, 0o700)
        // The MSP runs as RunAsUser (mail) when root calls it, and as the caller's own uid when
        // anyone else does, because Sendmail drops its setgid group for a -C file. So every
        // user must be able to write here: the sticky bit keeps them apart, and the
        // configuration's TrustStickyBit lets Sendmail accept such a directory.
        try FileManager.default.createDirectory(atPath: clientQueueDirectory, withIntermediateDirectories: true)
        chmod(clientQueueDirectory, 0o1777)
        _ = FileManager.default.createFile(atPath: root + "/aliases", contents: Data())

        try compile(mtaMacroConfiguration(), into: configurationPath)
        try compile(submitMacroConfiguration(), into: submitConfigurationPath)

        try sink.start(executable: tools.smtpSink)

        try startDaemon()
        let listening = waitUntil(timeoutSeconds: 20) {
            (try? SMTPConnection(port: smtpPort)).map { $0.quit(); return true } ?? false
        }
        daemonPID = readDaemonPID()
        guard listening, daemonPID != nil else {
            throw CommandError(description: "Sendmail did not answer on 127.0.0.1:\(smtpPort) (pid file: \(readDaemonPID().map(String.init) ?? "none"))")
        }
    }

    /// Runs `sendmail -bd`, which forks the daemon and exits. The daemon inherits the output
    /// descriptors, so they go to a file: a pipe would stay open, and a reader would wait for
    /// the daemon's end. The daemon runs its queue every second, so deferred mail retries soon.
    private func startDaemon() throws {
        let logPath = root + "/sendmail-start.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            throw CommandError(description: "cannot open \(logPath) for Sendmail's output")
        }
        let (executable, arguments) = tools.invocation(["-C", configurationPath, "-bd", "-q1s"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw CommandError(description: "sendmail -bd exited with status \(process.terminationStatus): \(output)")
        }
    }

    /// Stops the daemon and every child it forked (they share its process group, because
    /// the daemon calls setsid), then the sink. Safe to call after a failed or partial start.
    func stop() {
        if let pid = daemonPID ?? readDaemonPID() {
            kill(-pid, SIGTERM)
            if !waitUntil(timeoutSeconds: 10, { kill(pid, 0) != 0 }) {
                kill(-pid, SIGKILL)
                _ = waitUntil(timeoutSeconds: 5) { kill(pid, 0) != 0 }
            }
            daemonPID = nil
        }
        sink.stop()
    }

    /// Reads the daemon's pid from the first line of its pid file (the second is its command line).
    private func readDaemonPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: pidPath, encoding: .utf8),
              let first = text.split(separator: "\n").first else { return nil }
        return pid_t(first.trimmingCharacters(in: .whitespaces))
    }

    // MARK: Configuration

    /// Runs m4 over `macroText` and writes the result. The cf.m4 included by absolute path
    /// finds the rest of the macros beside itself.
    private func compile(_ macroText: String, into path: String) throws {
        let macroPath = (path as NSString).deletingPathExtension + ".mc"
        try macroText.write(toFile: macroPath, atomically: true, encoding: .utf8)
        let result = try CommandRunner.runChecked(tools.m4, [macroPath])
        guard !result.standardError.contains("ERROR") else {
            throw CommandError(description: "m4 \(macroPath) reported: \(result.standardError)")
        }
        try result.standardOutput.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Settings both configurations share: the root's macros, a fixed host name (so neither
    /// the machine's name nor DNS matters), and trust in sticky /tmp for the file checks.
    private var commonMacros: String {
        """
        divert(-1)
        # Throwaway configuration written by the integration tests.
        divert(0)dnl
        include(`\(tools.configurationMacros)/m4/cf.m4')dnl
        VERSIONID(`egress-milter integration test')dnl
        OSTYPE(`linux')dnl
        define(`confDOMAIN_NAME', `\(SendmailTools.hostName)')dnl
        define(`confDONT_PROBE_INTERFACES', `True')dnl
        dnl The test directory lies in /tmp, which is world writable but sticky. Without this
        dnl Sendmail calls every path below it unsafe, the milter socket included.
        define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl

        """
    }

    /// Returns the MTA's macro configuration: two listeners, the milter, and every recipient
    /// relayed to the sink.
    private func mtaMacroConfiguration() -> String {
        var text = commonMacros + """
            define(`QUEUE_DIR', `\(queueDirectory)')dnl
            define(`STATUS_FILE', `\(root)/sendmail.st')dnl
            define(`confPID_FILE', `\(pidPath)')dnl
            define(`ALIAS_FILE', `\(root)/aliases')dnl
            define(`confHELP_FILE', `')dnl
            define(`confHOST_STATUS_DIRECTORY', `')dnl
            define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl
            define(`ESMTP_MAILER_ARGS', `TCP $h \(sink.port)')dnl
            dnl Test senders use domains that do not resolve.
            FEATURE(`accept_unresolvable_domains')dnl
            FEATURE(`no_default_msa')dnl
            DAEMON_OPTIONS(`Port=\(smtpPort), Addr=127.0.0.1, Name=MTA')dnl
            DAEMON_OPTIONS(`Port=\(localPort), Addr=127.0.0.1, Name=\(localDaemonName), M=E')dnl

            """
        if let milterSocket {
            text += Self.milterMacros(socket: milterSocket)
        }
        text += additionalMTAMacros
        text += "MAILER(`smtp')dnl\n"
        return text
    }

    /// Returns the lines that connect the MTA to egress-milter, as Packaging/sendmail/egress-milter.mc
    /// shows them to admins. F=T tempfails mail while the milter is unreachable. The macro lists
    /// are the ones the daemon requests, and it also sets them itself at negotiation.
    static func milterMacros(socket: String) -> String {
        """
        INPUT_MAIL_FILTER(`egress', `S=local:\(socket), F=T, T=C:10s;S:30s;R:30s;E:5m')dnl
        define(`confMILTER_MACROS_CONNECT', `j, _, {daemon_name}, {daemon_addr}, {client_addr}, {client_name}')dnl
        define(`confMILTER_MACROS_ENVFROM', `i, {auth_type}, {auth_authen}, {auth_author}, {mail_addr}')dnl
        define(`confMILTER_MACROS_ENVRCPT', `i, {rcpt_addr}')dnl
        define(`confMILTER_MACROS_EOM', `i, {daemon_name}')dnl

        """
    }

    /// Returns the MSP's macro configuration, which relays every message over SMTP to the
    /// MTA's `localDaemonName` port.
    private func submitMacroConfiguration() -> String {
        commonMacros + """
            dnl The MSP refuses to run as root; Debian's smmsp account exists only where
            dnl sendmail-base was installed, so the tests use mail, which every Debian has.
            define(`confRUN_AS_USER', `mail')dnl
            define(`MSP_QUEUE_DIR', `\(clientQueueDirectory)')dnl
            define(`STATUS_FILE', `\(root)/submit.st')dnl
            define(`confPID_FILE', `\(root)/submit.pid')dnl
            define(`RELAY_MAILER_ARGS', `TCP $h \(localPort)')dnl
            FEATURE(`msp', `[127.0.0.1]')dnl

            """
    }

    // MARK: Submission and queues

    /// Submits a message with the private `sendmail` command and submit.cf, as a local program
    /// would. The MSP exits 0 also when the MTA deferred the message: it then keeps it in
    /// the client queue until `runClientQueue()`.
    func submitLocally(from sender: String, to recipients: [String], content: [UInt8]) throws {
        try localSubmitter.submit(from: sender, to: recipients, content: content)
    }

    var localSubmitter: SendmailLocalSubmitter {
        SendmailLocalSubmitter(tools: tools, configurationPath: submitConfigurationPath)
    }

    /// Lists the MTA's queue (`sendmail -bp`).
    func queueEntries() throws -> [SendmailQueueEntry] {
        try listQueue(["-bp"])
    }

    /// Lists the MTA's quarantine (`sendmail -bp -qQ`, which `mailq -qQ` runs).
    func quarantinedEntries() throws -> [SendmailQueueEntry] {
        try listQueue(["-bp", "-qQ"])
    }

    /// Releases a quarantined message: `-qQ` selects the quarantine, `-Q` with no reason
    /// removes the quarantine, and `-qI` names the queue ID. The message is then an ordinary
    /// queued message, which `deliverQueued(_:)` or the next queue run delivers.
    func releaseFromQuarantine(_ queueID: String) throws {
        try tools.run(["-C", configurationPath, "-qQ", "-Q", "-qI" + queueID])
    }

    /// Runs the MTA's queue for one queue ID in the foreground.
    func deliverQueued(_ queueID: String) throws {
        try tools.run(["-C", configurationPath, "-qI" + queueID])
    }

    /// Runs the MSP's client queue in the foreground: messages the MTA deferred are offered again.
    func runClientQueue() throws {
        try tools.run(["-C", submitConfigurationPath, "-q"], timeoutSeconds: 300)
    }

    /// Names of the queue control files in `directory` with `prefix`: "qf" queued, "hf"
    /// quarantined. A qf file can exist briefly while a message is still being received.
    func queueFiles(prefix: String, in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix(prefix) }
    }

    /// Waits until neither the MTA's queue nor the client queue contains a queued (qf) message.
    /// Quarantined (hf) messages stay. Returns false on timeout.
    func waitForEmptyQueue(timeoutSeconds: Double) -> Bool {
        waitUntil(timeoutSeconds: timeoutSeconds, pollSeconds: 0.25) {
            queueFiles(prefix: "qf", in: queueDirectory).isEmpty
                && queueFiles(prefix: "qf", in: clientQueueDirectory).isEmpty
        }
    }

    private func listQueue(_ options: [String]) throws -> [SendmailQueueEntry] {
        let result = try tools.run(["-C", configurationPath] + options)
        return Self.parseQueueListing(result.standardOutput)
    }

    /// Parses the listing of `sendmail -bp`. An entry starts at column 0 with the queue ID
    /// (followed by `*` while it is being delivered, or `X` when it is too big), then the
    /// size, the date and the sender. Indented lines carry the quarantine reason and the
    /// recipients. Header lines start with a tab, dashes or the queue path.
    static func parseQueueListing(_ text: String) -> [SendmailQueueEntry] {
        var entries: [SendmailQueueEntry] = []
        for rawLine in text.split(separator: "\n") {
            let line = String(rawLine)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let first = line.first, first.isLetter || first.isNumber {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 2, Int(fields[1]) != nil else { continue }
                let queueID = String(fields[0].prefix { $0.isLetter || $0.isNumber })
                let sender = fields.last.map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "<>")) } ?? ""
                entries.append(SendmailQueueEntry(queueID: queueID, sender: sender, quarantineReason: nil, recipients: []))
            } else if !entries.isEmpty, trimmed.hasPrefix("QUARANTINE:") {
                entries[entries.count - 1].quarantineReason = trimmed.dropFirst("QUARANTINE:".count).trimmingCharacters(in: .whitespaces)
            } else if !entries.isEmpty, trimmed.hasPrefix("<"), !trimmed.hasPrefix("<<") {
                entries[entries.count - 1].recipients.append(trimmed.trimmingCharacters(in: CharacterSet(charactersIn: "<>")))
            }
        }
        return entries
    }
}

/// Submits messages with the private `sendmail` and submit.cf (`sendmail -C submit.cf`).
struct SendmailLocalSubmitter: Sendable {
    var tools: SendmailTools
    var configurationPath: String

    func submit(from sender: String, to recipients: [String], content: [UInt8]) throws {
        try tools.run(["-C", configurationPath, "-f", sender, "-i", "--"] + recipients, input: content)
    }
}

/// Returns the queue ID in Sendmail's reply to the final dot, "250 2.0.0 ID Message accepted for
/// delivery": the first word after the enhanced status code.
func sendmailQueueID(_ result: SMTPDeliveryResult) -> String? {
    guard result.outcome == .accepted, let text = result.reply?.lines.last else { return nil }
    let words = text.split(separator: " ")
    guard words.count >= 2, words[0].contains(".") else { return nil }
    return words[1].allSatisfy({ $0.isLetter || $0.isNumber }) ? String(words[1]) : nil
}
