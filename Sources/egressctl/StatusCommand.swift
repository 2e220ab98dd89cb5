// egressctl status: the daemon's version, uptime, configuration, decisions since start,
// tracked and suspended keys, held messages and the health of its state stores.
// Exit status 1 when a store fails or the last reload was refused.

import EgressCore
import Foundation

let statusHelp = """
    Usage: egressctl status [--json] [--socket PATH] [--config PATH]

    Prints the daemon's version and uptime, the configuration file in force and when it was
    loaded, the reloads since start (applied, and refused because the new file was invalid;
    the metric egress_milter_config_reloads_total counts both), the listen socket, the
    messages decided by action since start, the tracked and suspended keys, the held
    messages recorded for release, and whether the state stores write.

    Exit status: 0 all is well, 1 a state store fails or the last reload was refused (the
    previous configuration stays in force), 2 usage error or the daemon cannot be reached.

    Options:
    \(commonOptionsHelp)
    """

func statusCommand(_ arguments: [String]) -> Int32 {
    runDaemonCommand("status", help: statusHelp, arguments: arguments) { parsed, client in
        try parsed.requireNoPositionals(command: "status")
        let report = try client.send(ControlRequest(command: .status), expecting: StatusReport.self)
        if parsed.wantsJSON {
            try printJSON(report)
        } else {
            print(renderStatus(report), terminator: "")
        }
        return report.hasFinding ? ExitStatus.finding : ExitStatus.ok
    }
}

func renderStatus(_ report: StatusReport) -> String {
    var table = TextTable()
    table.append(["version", "\(report.version) (pid \(report.pid))"])
    table.append(["uptime", "\(formatDuration(seconds: report.uptimeSeconds)) (since \(formatTime(report.startedAt)))"])
    table.append(["configuration", "\(report.configuration) (loaded \(formatTime(report.configurationLoadedAt)))"])
    table.append(["reloads", "\(report.reloadsApplied) applied, \(report.reloadsRefused) refused"])
    if let error = report.reloadError {
        table.append(["last reload", "FAILED, the configuration above stays in force: \(error)"])
    }
    table.append(["listen", report.listen])
    table.append(["control socket", report.controlSocket])

    let decided = report.decided
    table.append(["decided", "\(decided.total) messages: accept \(decided.accept), tag \(decided.tag), hold \(decided.hold), reject \(decided.reject), tempfail \(decided.tempfail), failed \(decided.failed)"])
    table.append(["tracked keys", "\(report.trackedKeys)"])
    table.append(["suspended keys", report.suspendedKeys == 0 ? "0" : "\(report.suspendedKeys) (list them with: egressctl suspended)"])
    table.append(["held messages", "\(report.heldMessages) recorded for egressctl release"])
    for store in report.stores {
        var text = store.healthy ? "ok" : "FAILING"
        text += " \(store.path ?? "in memory")"
        if let error = store.error {
            text += ": \(error)"
            if let failedAt = store.failedAt {
                text += " (at \(formatTime(failedAt)))"
            }
        } else if let written = store.lastWriteAt {
            text += " (last write \(formatTime(written)))"
        }
        table.append(["store \(store.name)", text])
    }
    if let notices = report.notifications {
        var text = "\(notices.sent) sent, \(notices.failed) failed, \(notices.dropped) dropped since start"
        if let failure = notices.lastFailure {
            text += "; last failure"
            if let failedAt = notices.lastFailureAt {
                text += " at \(formatTime(failedAt))"
            }
            text += ": \(failure)"
        }
        table.append(["notifications", text])
    }
    return table.render()
}
