// egressctl suspended: every suspended key, with when and why it was suspended, by which rule
// or admin, and how many of its messages are recorded in the hold queue. It lists idle keys
// too, which top leaves out because they send nothing now.

import EgressCore
import Foundation

let suspendedHelp = """
    Usage: egressctl suspended [--json] [--socket PATH] [--config PATH]

    Lists every suspended identity key, oldest suspension first: since when, the reason,
    who suspended it (the limit rule, or "admin uid N" for 'egressctl suspend'), and the
    held messages recorded under it. An empty list is no error.

    Exit status: 0 listed (also when no key is suspended), 1 the daemon could not read its
    held-message store, 2 usage error or the daemon cannot be reached.

    Options:
    \(commonOptionsHelp)
    """

func suspendedCommand(_ arguments: [String]) -> Int32 {
    runDaemonCommand("suspended", help: suspendedHelp, arguments: arguments) { parsed, client in
        try parsed.requireNoPositionals(command: "suspended")
        let report = try client.send(ControlRequest(command: .suspended), expecting: SuspendedReport.self)
        if parsed.wantsJSON {
            try printJSON(report)
        } else if report.keys.isEmpty {
            print("no key is suspended")
        } else {
            print(renderSuspended(report), terminator: "")
        }
        return ExitStatus.ok
    }
}

func renderSuspended(_ report: SuspendedReport) -> String {
    var table = TextTable(header: ["KEY", "SINCE", "BY", "HELD", "REASON"], rightAligned: [3])
    for entry in report.keys {
        let suspension = entry.suspension
        table.append([shellQuoted(suspension.key), formatTime(suspension.since), suspension.origin,
                      "\(entry.heldMessages)", suspension.reason])
    }
    return table.render()
}
