// The daemon's start-up sequence, reload and shutdown:
//   block signals → parse options → load configuration → open socket and directories as root →
//   drop privileges → serve until SIGTERM/SIGHUP, reloading on SIGUSR1.
// It must refuse to start with an invalid configuration and must keep the running one when a
// reload finds the new file invalid. Exit status: 0 after a clean stop, 1 on a configuration or
// start-up error, 2 on a usage error.
import EgressCore
import EgressMetrics
import Foundation
import Glibc
import Milter
import Synchronization

enum Daemon {
    static func main(arguments: [String]) -> Int32 {
        // Before any thread exists, so every thread libmilter starts inherits the mask: libmilter
        // waits for SIGHUP, SIGTERM and SIGINT in its own thread, and SIGUSR1 is ours.
        blockHandledSignals()
        signal(SIGPIPE, SIG_IGN)

        var options: CommandLineOptions
        do {
            options = try parseCommandLine(arguments)
        } catch {
            printError("egress-milter: \(error)")
            return 2
        }
        // The daemon leaves its working directory once it runs (see serve), so a relative
        // --config must still name the same file at a reload.
        if !options.configurationPath.hasPrefix("/") {
            options.configurationPath = FileManager.default.currentDirectoryPath + "/" + options.configurationPath
        }
        if options.showHelp {
            print(usageText)
            return 0
        }
        if options.showVersion {
            print("egress-milter \(egressMilterVersion)")
            return 0
        }

        let configuration: Configuration
        let configurationSource: String
        do {
            (configuration, configurationSource) = try loadConfiguration(options)
        } catch {
            printError("egress-milter: \(error)")
            return 1
        }

        if options.checkConfiguration {
            do {
                let overrides = try loadOverrides(configuration)
                print("# configuration OK: \(configurationSource)")
                if !configuration.limitsOverrides.isEmpty {
                    print("# limits overrides OK: \(configuration.limitsOverrides), \(overrides.entries.count) keys")
                }
            } catch {
                printError("egress-milter: \(error)")
                return 1
            }
            print(configuration.summary(), terminator: "")
            return 0
        }

        let logger = Logger(
            destination: options.foreground ? .standardError : .syslog,
            level: LogLevel(configuration.logLevel))
        do {
            try serve(configuration: configuration, source: configurationSource, options: options, logger: logger)
            logger.notice("stopped")
            return 0
        } catch {
            logger.error("cannot start: \(error)")
            if !options.foreground {
                printError("egress-milter: cannot start: \(error)")
            }
            return 1
        }
    }

    /// Loads the configuration file, or the built-in defaults when the default path does not
    /// exist. A path given with --config must exist.
    static func loadConfiguration(_ options: CommandLineOptions) throws -> (Configuration, String) {
        var configuration: Configuration
        var source = options.configurationPath
        if FileManager.default.fileExists(atPath: options.configurationPath) {
            configuration = try Configuration.load(contentsOf: options.configurationPath)
        } else if options.configurationPathGiven {
            throw StartupError(description: "configuration file \(options.configurationPath) not found")
        } else {
            configuration = Configuration.defaults
            source = "built-in defaults (\(options.configurationPath) does not exist)"
        }
        if let listen = options.listen {
            try validateListenSpec(listen)
            configuration.listen = listen
        }
        return (configuration, source)
    }

    /// Loads the per-key limits table the configuration names; none when it names no file.
    static func loadOverrides(_ configuration: Configuration) throws -> LimitOverrides {
        guard !configuration.limitsOverrides.isEmpty else { return .empty }
        return try LimitOverrides.load(contentsOf: configuration.limitsOverrides)
    }

    static func validateListenSpec(_ spec: String) throws {
        if let problem = Configuration.listenSpecError(spec) {
            throw UsageError(description: "invalid listen spec '\(spec)': \(problem)")
        }
    }

    static func serve(configuration: Configuration, source: String, options: CommandLineOptions, logger: Logger) throws {
        var configuration = configuration
        let overrides = try loadOverrides(configuration)
        var milterConfiguration = MilterConfiguration(name: "egress-milter", listen: configuration.listen)
        milterConfiguration.actions = [.addHeaders, .changeHeaders, .quarantine, .setMacroList]
        milterConfiguration.stages = [.connect, .helo, .envelopeFrom, .envelopeRecipient, .header, .body, .endOfMessage]
        // EgressSession decides only at end of message and returns continue everywhere else,
        // so the MTA need not wait for those replies.
        milterConfiguration.noReplyStages = [.connect, .helo, .envelopeFrom, .envelopeRecipient, .header, .body]
        milterConfiguration.macros = requestedMacros
        milterConfiguration.timeoutSeconds = configuration.timeoutSeconds
        milterConfiguration.failureReply = Reply(failAction: configuration.failAction)
        milterConfiguration.socketMode = configuration.socketMode

        // Everything that needs root happens here, before the privileges go.
        let runningAsRoot = geteuid() == 0
        var account: Account?
        if runningAsRoot {
            let user = try Account.named(configuration.user)
            account = user
            if try prepareDirectory(configuration.stateDirectory, owner: user.uid, group: user.gid, mode: 0o750) {
                logger.info("created state directory \(configuration.stateDirectory)")
            }
            if let socketPath = unixSocketPath(configuration.listen) {
                let group = try groupID(named: configuration.socketGroup, emptyMeans: user, key: "socket.group")
                milterConfiguration.socketGroup = group
                // Only the MTA's group may enter the directory and use the socket.
                let directory = (socketPath as NSString).deletingLastPathComponent
                if try prepareDirectory(directory, owner: user.uid, group: group, mode: 0o750) {
                    logger.info("created socket directory \(directory)")
                }
            }
        }
        configuration.identity.stampKey = loadStampKey(configuration.identity.stampKeyFile, logger: logger, atStart: true)

        // Before the milter socket, so a second daemon stops here, at the live control
        // socket, before libmilter replaces the first daemon's milter socket.
        let controlListener = try openControlSocket(configuration.control, account: account, logger: logger)
        // Bound as root, so any port works; served once the limiter it reads is open.
        let metricsListener = try openMetricsListener(configuration.metrics, logger: logger)
        let metrics = DaemonMetrics(startTime: Date(), version: egressMilterVersion)

        // The policy needs the state store, which is opened only after the privileges are
        // gone; sessions start after that, in server.run().
        let policySlot = PolicySourceSlot()
        let notifierSlot = NotifierSlot()
        let recorder = DecisionRecorder(logger: logger, metrics: metrics)
        let server = MilterServer(
            configuration: milterConfiguration,
            log: { level, message in logger.log(level, message) },
            makeSession: {
                EgressSession(policySource: policySlot.source, recorder: recorder, notifier: notifierSlot.notifier, logger: logger)
            })
        try server.open()
        if runningAsRoot, let account, let socketPath = unixSocketPath(configuration.listen) {
            // libmilter creates the socket as root; the daemon must be able to remove it at exit.
            _ = chown(socketPath, account.uid, milterConfiguration.socketGroup ?? account.gid)
        }
        if let account {
            try dropPrivileges(to: account)
        }
        // The daemon runs from the root directory, because the one it was started from may be
        // unreadable to its user (root's home is 0700), and the programs it runs, such as
        // sendmail, fail to start in such a directory. Every path in the configuration is absolute.
        guard chdir("/") == 0 else {
            throw StartupError(description: "cannot change to the root directory: \(String(cString: strerror(errno)))")
        }
        // An existing state directory keeps its owner, so say plainly when the daemon's user
        // cannot write it, rather than let SQLite fail with "unable to open database file".
        guard access(configuration.stateDirectory, W_OK | X_OK) == 0 else {
            let problem = String(cString: strerror(errno))
            throw StartupError(description: """
                state directory \(configuration.stateDirectory) is not writable by user \(currentUserName()): \
                \(problem); run 'chown \(currentUserName()) \(configuration.stateDirectory)' \
                or set 'state_directory'
                """)
        }

        // The state store is opened as the daemon's user, so its files belong to that user.
        let reading = DaemonClock.restartReading()
        let limiter = try RateLimiter(
            stateDirectory: configuration.stateDirectory,
            clock: ClockReading(wall: reading.wall, bootID: reading.bootID, sinceBoot: reading.sinceBoot))
        let clock = DaemonClock()
        let policySource = PolicySource(
            ActivePolicy(configuration: configuration, overrides: overrides, limiter: limiter), clock: clock)
        policySlot.fill(with: policySource)
        let heldMessages = try HeldMessageStore(directory: configuration.stateDirectory)
        let runtime = DaemonRuntime(
            startedAt: Date(), listen: configuration.listen, controlSocket: configuration.control.socketPath,
            configurationSource: source, limitStorePath: limiter.storePath, heldStorePath: heldMessages.path,
            metrics: metrics)
        recorder.attach(heldStore: heldMessages, runtime: runtime)
        let notifier = startNotifier(configuration: configuration, policySource: policySource, recorder: recorder, logger: logger)
        notifierSlot.fill(with: notifier)

        startReloadThread(options: options, policySource: policySource, runtime: runtime, logger: logger)
        let checkpoints = startCheckpointThread(limiter: limiter, clock: clock, runtime: runtime, logger: logger)
        let control = startControlServer(
            controlListener, policySource: policySource, recorder: recorder, runtime: runtime, notifier: notifier,
            options: options, logger: logger)
        let metricsServer = try startMetricsServer(
            metricsListener, settings: configuration.metrics, metrics: metrics, limiter: limiter, logger: logger)
        logger.notice("""
            starting egress-milter \(egressMilterVersion): listen=\(configuration.listen) \
            config=\(logValue(source)) user=\(currentUserName()) state=\(limiter.storePath ?? "memory") \
            limits=\(configuration.limits.count) overrides=\(overrides.entries.count) \
            suspended=\(limiter.suspensions().count) tracked_keys=\(limiter.trackedKeyCount) \
            stamp_key=\(configuration.identity.stampKey == nil ? "none" : "loaded") \
            control=\(control?.path ?? "off") \
            notifications=\(configuration.notifications.isEnabled ? "on" : "off")
            """)
        try server.run()

        control?.stop()
        metricsServer?.stop()
        notifier.stop()
        checkpoints.stop()
        do {
            try limiter.checkpoint(now: clock.now())
        } catch {
            logger.error("final checkpoint of the rate limit counters failed: \(error)")
        }
    }

    /// Reads the submission stamp key. At start-up (as root) a missing file is normal on a
    /// server without the wrapper; after that, the daemon's user usually cannot read the
    /// file, and the caller keeps the key it has.
    static func loadStampKey(_ path: String, logger: Logger, atStart: Bool) -> StampKey? {
        guard FileManager.default.fileExists(atPath: path) else {
            if atStart {
                logger.info("no submission stamp key at \(path); local mail without a verified identity counts as local-unverified")
            }
            return nil
        }
        do {
            return try StampKey.load(contentsOf: path)
        } catch {
            logger.log(atStart ? .warning : .debug, "cannot read the submission stamp key: \(error); stamps will not verify")
            return nil
        }
    }

    /// Writes the rate limit counters to the state store every few seconds, so a crash loses
    /// at most that much of the counts.
    static func startCheckpointThread(limiter: RateLimiter, clock: DaemonClock, runtime: DaemonRuntime, logger: Logger) -> CheckpointTimer {
        let timer = CheckpointTimer()
        let thread = Thread {
            var failures = 0
            while !timer.waitForStop(seconds: checkpointIntervalSeconds) {
                do {
                    try limiter.checkpoint(now: clock.now())
                    runtime.storeWritten(DaemonRuntime.limitStoreName, at: Date())
                    if failures > 0 {
                        logger.notice("rate limit checkpoints work again after \(failures) failures")
                    }
                    failures = 0
                } catch {
                    failures += 1
                    runtime.storeFailed(DaemonRuntime.limitStoreName, error: "\(error)", at: Date())
                    // One line for the first failure and then one a minute, not one every interval.
                    if failures == 1 || failures % Int(60 / checkpointIntervalSeconds) == 0 {
                        logger.error("checkpoint of the rate limit counters failed (\(failures) in a row): \(error)")
                    }
                }
            }
        }
        thread.name = "checkpoint"
        thread.start()
        return timer
    }

    /// Waits for SIGUSR1 on a thread of its own and reloads the configuration each time. An
    /// invalid file is reported and the running configuration stays in force.
    static func startReloadThread(options: CommandLineOptions, policySource: PolicySource, runtime: DaemonRuntime, logger: Logger) {
        let thread = Thread {
            var signals = sigset_t()
            sigemptyset(&signals)
            sigaddset(&signals, SIGUSR1)
            while true {
                var received: Int32 = 0
                guard sigwait(&signals, &received) == 0 else { continue }
                reloadRecordingStatus(options: options, policySource: policySource, runtime: runtime, logger: logger)
            }
        }
        thread.name = "reload"
        thread.start()
    }

    /// Reloads the configuration; call it through reloadRecordingStatus, which runs one
    /// reload at a time.
    static func reload(options: CommandLineOptions, policySource: PolicySource, logger: Logger) -> ReloadReport {
        let active = policySource.current
        let running = active.configuration
        var fresh: Configuration
        let source: String
        let overrides: LimitOverrides
        do {
            (fresh, source) = try loadConfiguration(options)
            overrides = try loadOverrides(fresh)
        } catch {
            logger.error("reload failed, keeping the running configuration: \(error)")
            return ReloadReport(succeeded: false, configuration: options.configurationPath, error: "\(error)")
        }

        // These are bound at start-up: the socket is open and root is gone.
        let restartOnly: [(String, Bool)] = [
            ("listen", fresh.listen != running.listen),
            ("user", fresh.user != running.user),
            ("state_directory", fresh.stateDirectory != running.stateDirectory),
            ("socket", fresh.socketMode != running.socketMode || fresh.socketGroup != running.socketGroup),
            ("timeout", fresh.timeoutSeconds != running.timeoutSeconds),
            ("fail_action", fresh.failAction != running.failAction),
            ("control", fresh.control != running.control),
            ("metrics", fresh.metrics != running.metrics),
        ]
        for (key, changed) in restartOnly where changed {
            logger.warning("reload: a change of '\(key)' takes effect only after a restart")
        }
        fresh.listen = running.listen
        fresh.user = running.user
        fresh.stateDirectory = running.stateDirectory
        fresh.socketMode = running.socketMode
        fresh.socketGroup = running.socketGroup
        fresh.timeoutSeconds = running.timeoutSeconds
        fresh.failAction = running.failAction
        fresh.control = running.control
        fresh.metrics = running.metrics
        // Root could read the key at start-up; the daemon's user usually cannot, so a key
        // that cannot be read now stays as it was.
        fresh.identity.stampKey = loadStampKey(fresh.identity.stampKeyFile, logger: logger, atStart: false)
            ?? running.identity.stampKey

        policySource.replace(with: ActivePolicy(configuration: fresh, overrides: overrides, limiter: active.policy.limiter))
        logger.level = LogLevel(fresh.logLevel)
        logger.notice("configuration reloaded from \(logValue(source)): limits=\(fresh.limits.count) overrides=\(overrides.entries.count)")
        return ReloadReport(succeeded: true, configuration: source, restartRequired: restartOnly.filter(\.1).map(\.0),
                            limits: fresh.limits.count, overrides: overrides.entries.count)
    }
}

/// Seconds between two checkpoints of the rate limit counters: what a crash may lose.
let checkpointIntervalSeconds = 5.0

/// Lets the checkpoint thread sleep until the next interval or until shutdown.
final class CheckpointTimer: Sendable {
    private let condition = NSCondition()
    private let stopped = Mutex(false)

    /// Waits up to `seconds`; returns true once stop() was called.
    func waitForStop(seconds: Double) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if stopped.withLock({ $0 }) { return true }
        _ = condition.wait(until: Date().addingTimeInterval(seconds))
        return stopped.withLock { $0 }
    }

    func stop() {
        condition.lock()
        stopped.withLock { $0 = true }
        condition.signal()
        condition.unlock()
    }
}

func blockHandledSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    for signal in [SIGHUP, SIGTERM, SIGINT, SIGUSR1] {
        sigaddset(&signals, signal)
    }
    pthread_sigmask(SIG_BLOCK, &signals, nil)
}

/// Returns the file path of a `unix:` or `local:` listen spec, or nil for a TCP spec.
func unixSocketPath(_ spec: String) -> String? {
    for scheme in ["unix:", "local:"] where spec.hasPrefix(scheme) {
        return String(spec.dropFirst(scheme.count))
    }
    return nil
}

func currentUserName() -> String {
    guard let entry = getpwuid(geteuid()) else { return "uid \(geteuid())" }
    return String(cString: entry.pointee.pw_name)
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

extension Reply {
    init(failAction: Action) {
        switch failAction {
        case .accept: self = .accept
        case .reject: self = .reject
        default: self = .tempfail
        }
    }
}

extension LogLevel {
    init(_ setting: LogLevelSetting) {
        switch setting {
        case .debug: self = .debug
        case .info: self = .info
        case .notice: self = .notice
        case .warning: self = .warning
        case .error: self = .error
        }
    }
}
