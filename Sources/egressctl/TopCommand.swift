// egressctl top: the busiest senders now, each with its counts per window against its
// limits, its held messages and whether it is suspended.

import EgressCore
import Foundation

let topHelp = """
    Usage: egressctl top [--by messages|recipients|score|held] [--level LEVEL] [-n N] [--json]
                         [--socket PATH] [--config PATH]

    Lists the busiest identity keys now. messages and recipients rank by the largest count
    in any window of the key's limit rules, so only levels with a limit rule are counted;
    held ranks by the messages recorded in the hold queue; score by the highest score among
    the key's recent decisions. Keys with nothing to rank by are left out.

    Options:
      --by ORDER      messages (default), recipients, score or held
      --level LEVEL   only keys of this level: script, account, login, sender, domain, ip,
                      local-unverified or server (default: every level)
      -n N            rows to print, 1 to 1000 (default 10)
    \(commonOptionsHelp)
    """

func topCommand(_ arguments: [String]) -> Int32 {
    runDaemonCommand("top", help: topHelp, arguments: arguments, valued: ["--by", "--level", "-n"]) { parsed, client in
        try parsed.requireNoPositionals(command: "top")
        var order = TopOrder.messages
        if let text = parsed.values["--by"] {
            guard let value = TopOrder(rawValue: text) else {
                throw CommandFailure.usage("egressctl top: invalid --by '\(text)'; expected \(TopOrder.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            order = value
        }
        let level = parsed.values["--level"]
        if let level, !IdentityLevel.allCases.contains(where: { $0.rawValue == level }) {
            throw CommandFailure.usage("egressctl top: invalid --level '\(level)'; expected \(IdentityLevel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var count = 10
        if let text = parsed.values["-n"] {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw CommandFailure.usage("egressctl top: -n needs a number from 1 to 1000, not '\(text)'")
            }
            count = value
        }

        let report = try client.send(ControlRequest(command: .top, order: order, level: level, count: count), expecting: TopReport.self)
        if parsed.wantsJSON {
            try printJSON(report)
        } else if report.rows.isEmpty {
            print("no \(level.map { "\($0) " } ?? "")keys to rank by \(order.rawValue) now")
        } else {
            print(renderTop(report), terminator: "")
        }
        return ExitStatus.ok
    }
}

func renderTop(_ report: TopReport) -> String {
    var table = TextTable(header: ["KEY", "MESSAGES", "RECIPIENTS", "HELD", "SCORE", "SUSPENDED"], rightAligned: [3, 4])
    for row in report.rows {
        let windows = row.limits.flatMap(\.windows)
        let messages = windows.filter { $0.unit == "messages" }.map(\.countText).joined(separator: ", ")
        let recipients = windows.filter { $0.unit == "recipients" }.map(\.countText).joined(separator: ", ")
        table.append([row.key, messages.isEmpty ? "-" : messages, recipients.isEmpty ? "-" : recipients,
                      "\(row.heldMessages)", String(format: "%.1f", row.highestScore), row.suspended ? "yes" : "no"])
    }
    return table.render()
}
