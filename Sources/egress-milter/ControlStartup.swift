// The control socket's part of the daemon's start-up and reload. It opens the socket while
// the daemon is root and starts its server once the state stores are open. It also runs
// reloads one at a time, whether SIGUSR1 or egressctl requested them.
//
// A control socket that cannot be created stops the start-up, like a milter socket that
// cannot be: a daemon nobody can release senders from would hold their mail with no way out
// but a restart. An empty `control.socket` turns it off on purpose.

import EgressCore
import Foundation
import Synchronization

/// Serializes reloads: SIGUSR1 and the control socket may ask at the same moment.
private let reloadLock = Mutex(())

extension Daemon {
    /// Creates the control socket; nil when the configuration turns it off. Call it as root,
    /// before the privileges go, with the account the daemon switches to (nil when it does
    /// not run as root).
    static func openControlSocket(_ settings: ControlSettings, account: Account?, logger: Logger) throws -> ControlListener? {
        guard !settings.socketPath.isEmpty else {
            logger.info("control socket disabled (control.socket is empty); egressctl status, show, suspend and release will not work")
            return nil
        }
        let group = try account.map { try groupID(named: settings.socketGroup, emptyMeans: $0, key: "control.group") }
        do {
            return try ControlListener.open(path: settings.socketPath, mode: settings.socketMode, group: group, owner: account)
        } catch {
            throw StartupError(description: "cannot create the control socket: \(error)")
        }
    }

    /// Starts the server of the control socket; nil when the socket is turned off.
    static func startControlServer(_ listener: ControlListener?, policySource: PolicySource, recorder: DecisionRecorder,
                                   runtime: DaemonRuntime, notifier: Notifier? = nil, options: CommandLineOptions,
                                   logger: Logger) -> ControlServer? {
        guard let listener else { return nil }
        let handler = ControlHandler(
            policySource: policySource, recorder: recorder, runtime: runtime, logger: logger, notifier: notifier,
            reload: { reloadRecordingStatus(options: options, policySource: policySource, runtime: runtime, logger: logger) })
        let server = ControlServer(listener: listener, handler: handler, logger: logger)
        server.start()
        return server
    }

    /// Runs one reload at a time and records its outcome for `egressctl status`.
    @discardableResult
    static func reloadRecordingStatus(options: CommandLineOptions, policySource: PolicySource, runtime: DaemonRuntime,
                                      logger: Logger) -> ReloadReport {
        reloadLock.withLock { _ in
            let report = reload(options: options, policySource: policySource, logger: logger)
            if report.succeeded {
                runtime.reloadSucceeded(source: report.configuration, at: Date())
            } else {
                runtime.reloadFailed(report.error ?? "unknown error")
            }
            return report
        }
    }
}
