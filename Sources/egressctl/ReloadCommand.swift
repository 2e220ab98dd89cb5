// egressctl reload: makes the daemon read its configuration file again, as SIGUSR1 does, and
// prints the outcome. An invalid file is reported with its line and column, and the running
// configuration stays in force (exit status 1).

import EgressCore
import Foundation

let reloadHelp = """
    Usage: egressctl reload [--json] [--socket PATH] [--config PATH]

    Makes the daemon read its configuration file and limits overrides table again, as
    SIGUSR1 does. When the new file is invalid the daemon keeps the running configuration
    and egressctl prints the error. Settings bound at start-up (listen, socket, user,
    state_directory, timeout, fail_action, control, metrics) change only with a restart; a reload
    that changes them says so.

    Exit status: 0 reloaded, 1 the new configuration was refused, 2 usage error or the
    daemon cannot be reached.

    Options:
    \(commonOptionsHelp)
    """

func reloadCommand(_ arguments: [String]) -> Int32 {
    runDaemonCommand("reload", help: reloadHelp, arguments: arguments) { parsed, client in
        try parsed.requireNoPositionals(command: "reload")
        let report = try client.send(ControlRequest(command: .reload), expecting: ReloadReport.self)
        if parsed.wantsJSON {
            try printJSON(report)
        } else if report.succeeded {
            print("configuration reloaded from \(report.configuration): limit rules \(report.limits), override keys \(report.overrides)")
            for key in report.restartRequired {
                print("note: the change of '\(key)' takes effect only after a restart")
            }
        } else {
            printToStandardError("egressctl reload: the daemon kept its running configuration, because the new one is invalid:")
            printToStandardError(report.error ?? "unknown error")
        }
        return report.succeeded ? ExitStatus.ok : ExitStatus.finding
    }
}
