// Logging of the daemon: syslog (facility mail, ident egress-milter) or standard error in the
// foreground. One notice line per decided message is written by the session; everything else is
// debug, or warning and error for failures. The level can change on reload, so it is atomic.
// Logging must never block mail for long or throw: a failed write is dropped.
import CMilterShim
import Foundation
import Milter
import Synchronization

enum LogDestination: Sendable {
    case syslog
    case standardError
    /// Every line that passes the level goes to the closure, for tests that read the log.
    case lines(@Sendable (LogLevel, String) -> Void)
}

final class Logger: Sendable {
    private let destination: LogDestination
    private let minimumLevel: Atomic<Int>
    private let standardErrorLock = Mutex(())

    init(destination: LogDestination, level: LogLevel) {
        self.destination = destination
        self.minimumLevel = Atomic(level.rawValue)
        if case .syslog = destination {
            egress_openlog("egress-milter", LOG_PID | LOG_NDELAY, LOG_MAIL)
        }
    }

    var level: LogLevel {
        get { LogLevel(rawValue: minimumLevel.load(ordering: .relaxed)) ?? .notice }
        set { minimumLevel.store(newValue.rawValue, ordering: .relaxed) }
    }

    func isEnabled(_ level: LogLevel) -> Bool {
        level.rawValue >= minimumLevel.load(ordering: .relaxed)
    }

    func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard isEnabled(level) else { return }
        let text = message()
        switch destination {
        case .syslog:
            egress_syslog(level.syslogPriority, text)
        case .standardError:
            let line = "egress-milter[\(getpid())]: \(level.name): \(text)\n"
            standardErrorLock.withLock { _ in
                FileHandle.standardError.write(Data(line.utf8))
            }
        case .lines(let handler):
            handler(level, text)
        }
    }

    func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    func notice(_ message: @autoclosure () -> String) { log(.notice, message()) }
    func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    func error(_ message: @autoclosure () -> String) { log(.error, message()) }
}

extension LogLevel {
    var syslogPriority: Int32 {
        switch self {
        case .debug: return LOG_DEBUG
        case .info: return LOG_INFO
        case .notice: return LOG_NOTICE
        case .warning: return LOG_WARNING
        case .error: return LOG_ERR
        }
    }

    var name: String {
        switch self {
        case .debug: return "debug"
        case .info: return "info"
        case .notice: return "notice"
        case .warning: return "warning"
        case .error: return "error"
        }
    }
}
