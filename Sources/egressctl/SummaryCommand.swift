// egressctl summary: prints the daemon's summary of the last 24 hours (busiest senders,
// limit trips, suspensions, held messages), and with --send makes the daemon mail it to the
// summary's recipients now, as it does daily when notifications.daily_summary is enabled.
// --json prints the summary as data (`summary`) without the mail's text.

import EgressCore
import Foundation

let summaryHelp = """
    Usage: egressctl summary [--send] [--json] [--socket PATH] [--config PATH]

    Prints the daemon's summary of the last 24 hours: the busiest senders, the limit trips
    by rule, every suspension that began in the period (released or still in force) and the
    messages held now. Sender counts are kept in memory, so they begin at the daemon's last
    start. With --json it prints the summary as data: period, top senders, trips by rule,
    suspensions with their state, held messages, and whether the mail was sent.

    Exit status: 0 printed (and sent), 1 --send was given and the mail was not sent,
    2 usage error or the daemon cannot be reached.

    Options:
      --send          also mail the summary to notifications.daily_summary.mail_to, or to
                      notifications.mail_to when that is empty, through the daemon
    \(commonOptionsHelp)
    """

func summaryCommand(_ arguments: [String]) -> Int32 {
    runDaemonCommand("summary", help: summaryHelp, arguments: arguments, flags: ["--send"]) { parsed, client in
        try parsed.requireNoPositionals(command: "summary")
        let send = parsed.flags.contains("--send")
        let report = try client.send(ControlRequest(command: .summary, send: send), expecting: SummaryReport.self)
        if parsed.wantsJSON {
            var data = report
            data.text = nil
            try printJSON(data)
        } else {
            print(report.text ?? "", terminator: "")
            if report.sent {
                print("sent to \(report.recipients.joined(separator: ", "))")
            }
        }
        if send && !report.sent {
            printToStandardError("egressctl summary: the summary was not sent: \(report.error ?? "unknown error")")
            return ExitStatus.finding
        }
        return ExitStatus.ok
    }
}
