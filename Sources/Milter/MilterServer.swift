// The public entry point: registers the milter with libmilter, opens the listening socket and
// runs libmilter's accept loop. open() is separate from run() so that a daemon can open a
// privileged socket as root and drop privileges before serving. libmilter keeps one milter
// per process; a second server in the same process fails to open instead of replacing the first.
import CMilter
import Glibc
import Synchronization

/// A milter: registration, listening socket and one session per MTA connection.
public final class MilterServer: Sendable {
    public let configuration: MilterConfiguration
    private let runtime: ServerRuntime
    private let opened = Mutex<Bool>(false)

    /// - Parameters:
    ///   - log: receives every line the server logs, from any thread.
    ///   - makeSession: creates the session for a new connection, on a libmilter thread.
    public init(configuration: MilterConfiguration,
                log: @escaping @Sendable (LogLevel, String) -> Void,
                makeSession: @escaping @Sendable () -> MilterSession) {
        self.configuration = configuration
        runtime = ServerRuntime(configuration: configuration, log: log, makeSession: makeSession)
    }

    /// Registers the milter and opens the socket: removes a stale unix socket file when
    /// `removeStaleSocket` is set, then applies `socketMode` and `socketGroup`. Calling it
    /// again after success does nothing.
    public func open() throws {
        try opened.withLock { isOpen in
            guard !isOpen else {
                return
            }
            try validate()
            try install()
            try register()
            try openSocket()
            isOpen = true
        }
    }

    /// Runs libmilter's main loop (smfi_main), opening first if needed. Blocks until
    /// `stop()`, SIGTERM or SIGHUP; libmilter handles those signals itself. Once per process.
    public func run() throws {
        try open()
        runtime.log(.info, "milter \(configuration.name) serving \(configuration.listen)")
        guard smfi_main() == MI_SUCCESS else {
            throw MilterError(operation: "smfi_main", detail: configuration.listen)
        }
        runtime.log(.info, "milter \(configuration.name) stopped")
    }

    /// Asks libmilter's main loop to stop (smfi_stop); connections in progress are abandoned.
    public static func stop() {
        _ = smfi_stop()
    }

    // MARK: - Steps of open()

    private func validate() throws {
        guard !configuration.name.isEmpty else {
            throw MilterError(operation: "configure milter", detail: "name is empty")
        }
        for stage in configuration.macros.keys where stage.macroListIndex == nil {
            throw MilterError(operation: "configure milter",
                              detail: "macros cannot be requested for stage \(stage.rawValue); use connect, helo, envelopeFrom, envelopeRecipient, data, endOfHeaders or endOfMessage")
        }
        for stage in configuration.noReplyStages.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard stage.noReplyProtocolBit != nil else {
                throw MilterError(operation: "configure milter",
                                  detail: "stage \(stage.rawValue) cannot be a no-reply stage; the MTA always waits for its reply")
            }
            guard configuration.stages.contains(stage) else {
                throw MilterError(operation: "configure milter",
                                  detail: "no-reply stage \(stage.rawValue) is not in stages; add it to stages or remove it from noReplyStages")
            }
        }
        guard configuration.timeoutSeconds > 0, configuration.timeoutSeconds <= Int(Int32.max) else {
            throw MilterError(operation: "configure milter", detail: "invalid timeout \(configuration.timeoutSeconds) seconds")
        }
    }

    /// Makes this server the one the C callbacks reach.
    private func install() throws {
        try installedRuntime.withLock { installed in
            if let installed, installed !== runtime {
                throw MilterError(operation: "open milter",
                                  detail: "another MilterServer already opened in this process; libmilter runs one milter per process")
            }
            installed = runtime
        }
    }

    private func register() throws {
        // The description's name must outlive smfi_main; one copy per process is kept for good.
        guard let name = strdup(configuration.name) else {
            throw MilterError.system("strdup", "milter name")
        }
        let description = makeFilterDescription(name: name, runtime: runtime)
        try checkMilterCall(smfi_register(description), "smfi_register", configuration.name)
        try checkMilterCall(smfi_settimeout(Int32(configuration.timeoutSeconds)), "smfi_settimeout", "\(configuration.timeoutSeconds) seconds")
        try checkMilterCall(smfi_setbacklog(configuration.backlog), "smfi_setbacklog", "\(configuration.backlog)")
        try checkMilterCall(smfi_setdbg(configuration.debugLevel), "smfi_setdbg", "\(configuration.debugLevel)")
    }

    private func openSocket() throws {
        let address = try ListenAddress(spec: configuration.listen)
        var spec = configuration.listen
        if case .inet(let family, let port, let host) = address {
            let descriptor = try openTCPListener(family: family, port: port, host: host, backlog: configuration.backlog)
            spec = "fd:\(descriptor)"
        }

        try checkMilterCall(spec.withCString { smfi_setconn(UnsafeMutablePointer(mutating: $0)) }, "smfi_setconn", spec)

        // A umask matching socketMode keeps the socket from being wider than asked even
        // before the chmod below.
        let previousMask: mode_t? = configuration.socketMode.map { umask(mode_t(~$0 & 0o777)) }
        let result = smfi_opensocket(configuration.removeStaleSocket)
        if let previousMask {
            umask(previousMask)
        }
        try checkMilterCall(result, "smfi_opensocket", configuration.listen)

        if case .unix(let path) = address {
            try applyOwnership(path: path)
        }
        runtime.log(.debug, "milter \(configuration.name) listening on \(configuration.listen)")
    }

    private func applyOwnership(path: String) throws {
        if let mode = configuration.socketMode, chmod(path, mode_t(mode)) != 0 {
            throw MilterError.system("chmod", "\(path) to \(String(mode, radix: 8))")
        }
        if let group = configuration.socketGroup, chown(path, uid_t.max, gid_t(group)) != 0 {
            throw MilterError.system("chown", "\(path) to group \(group)")
        }
    }
}
