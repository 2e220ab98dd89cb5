// egressctl show KEY: one key's suspension, its limits with the counts in each window now,
// its recent decisions with queue IDs, and its recorded held messages.
// Exit status 1 when the key is suspended.

import EgressCore
import Foundation

let showHelp = """
    Usage: egressctl show KEY [--json] [--socket PATH] [--config PATH]

    Shows one identity key, written as in the identity= field of the log (account:alice,
    script:alice:/home/alice/public_html/x.php, login:crm, sender:info@shop.example,
    domain:shop.example, ip:192.0.2.7, local-unverified, server): whether it is suspended,
    each limit rule at its level with the count in every window against the limit, for a
    rule with suspend_after the trips that count towards suspension ("trips: 1 of 3 within
    1h for rule logins"), its last decisions with their queue IDs, and the held messages
    recorded under it. The daemon writes KEY as its identity resolver does, so
    sender:Carol@X.Example shows sender:Carol@x.example.

    Exit status: 0 the key is not suspended, 1 it is suspended, 2 usage error or the daemon
    cannot be reached.

    Options:
    \(commonOptionsHelp)
    """

func showCommand(_ arguments: [String]) -> Int32 {
    runDaemonCommand("show", help: showHelp, arguments: arguments) { parsed, client in
        let key = try parsed.key(command: "show")
        let report = try client.send(ControlRequest(command: .show, key: key), expecting: KeyReport.self)
        if parsed.wantsJSON {
            try printJSON(report)
        } else {
            print(renderKeyReport(report), terminator: "")
        }
        return report.suspension == nil ? ExitStatus.ok : ExitStatus.finding
    }
}

func renderKeyReport(_ report: KeyReport) -> String {
    var text = "key         \(report.key)\n"
    if let suspension = report.suspension {
        text += "suspended   since \(formatTime(suspension.since)) by \(suspension.origin): \(suspension.reason)\n"
        text += "            release with: egressctl release \(shellQuoted(report.key)) [--deliver|--delete]\n"
    } else {
        text += "suspended   no\n"
    }
    for limit in report.limits {
        guard let progress = limit.tripProgress else { continue }
        text += "trips       \(progress.trips) of \(progress.threshold) within \(progress.period) for rule \(limit.rule)\n"
    }

    text += "\nLimits\n"
    if report.limits.isEmpty {
        text += "  no limit rule counts keys of this level\n"
    } else {
        var table = TextTable(header: ["RULE", "UNIT", "COUNT", "ACTION", "NOTE"], indent: "  ")
        for limit in report.limits {
            let action = limit.shadow ? "shadow" : "\(limit.smtpAction) (local \(limit.localAction))"
            var notes: [String] = []
            if let source = limit.overridesTable {
                notes.append(source == "exempt" ? "exempt in the overrides table" : "own limits from the overrides table")
            }
            if let cap = limit.maximumRecipients {
                notes.append("max \(cap) recipients a message")
            }
            if !limit.exempt.isEmpty {
                notes.append("exempt: \(limit.exempt.joined(separator: ", "))")
            }
            if limit.windows.isEmpty {
                table.append([limit.rule, "-", "-", action, notes.joined(separator: "; ")])
            }
            for (index, window) in limit.windows.enumerated() {
                table.append([limit.rule, window.unit, window.countText, action, index == 0 ? notes.joined(separator: "; ") : ""])
            }
        }
        text += table.render()
    }

    text += "\nRecent decisions, newest first\n"
    if report.recentDecisions.isEmpty {
        text += "  none since the daemon started\n"
    } else {
        var table = TextTable(header: ["TIME", "QUEUE ID", "ACTION", "PATH", "RCPT", "FROM", "REASON"], rightAligned: [4], indent: "  ")
        for decision in report.recentDecisions {
            table.append([formatTime(decision.time), decision.queueID ?? "NOQUEUE", decision.action, decision.path,
                          "\(decision.recipients)", "<\(decision.sender)>", decision.reason])
        }
        text += table.render()
    }

    text += "\nHeld messages recorded under this key\n"
    if report.heldMessages.isEmpty {
        text += "  none\n"
    } else {
        text += renderHeldMessages(report.heldMessages)
    }
    return text
}

func renderHeldMessages(_ messages: [HeldMessage]) -> String {
    var table = TextTable(header: ["QUEUE ID", "HELD AT", "RCPT", "FROM", "REASON"], rightAligned: [2], indent: "  ")
    for message in messages {
        table.append([message.queueID, formatTime(message.heldAt), "\(message.recipients)", "<\(message.sender)>", message.reason])
    }
    return table.render()
}
