// egressctl suspend KEY and egressctl release KEY [--deliver|--delete]: the admin's hand on a
// sender. Suspend holds all of a key's mail from now on. Release lifts the suspension and, on
// request, delivers or deletes the key's messages in Postfix's hold queue one by one, and
// prints the outcome of each.
//
// The daemon records the change durably and logs it before it answers. The hold queue is
// acted on here, not in the daemon, because postsuper needs root and the daemon has dropped
// it; egressctl then reports each message's outcome back, so the daemon logs one line per
// message (queue ID first) and forgets the ones that left the hold queue.

import EgressCore
import Foundation

let suspendHelp = """
    Usage: egressctl suspend KEY [--reason TEXT] [--json] [--socket PATH] [--config PATH]

    Suspends an identity key (account:alice, script:alice:/home/alice/x.php, login:crm,
    sender:info@shop.example, ...): from now on every message whose identity contains the
    key is held in Postfix's hold queue until 'egressctl release KEY'. The suspension is
    stored in the state directory, so it survives a restart, and the daemon logs it.
    Suspending a key that is suspended already changes nothing.

    The daemon writes KEY as its identity resolver does (domains lower-cased, IPv6
    addresses grouped by identity.ipv6_prefix) and prints the key it suspended; it rejects
    a key no message can carry, such as ip:999.1.1.1. 'egressctl suspended' lists them all.

    Options:
      --reason TEXT   why, for the log, the quarantine reason and status (at most 500 bytes)
    \(commonOptionsHelp)
    """

let releaseHelp = """
    Usage: egressctl release KEY [--deliver | --delete] [--postfix-config DIR] [--json]
                             [--socket PATH] [--config PATH]

    Lifts the suspension of KEY, so its mail flows again, and gives it fresh counters. The
    daemon records the held messages of each key; with --deliver or --delete egressctl acts
    on those still in Postfix's hold queue, and prints what it did with each. Messages whose
    queue ID has gone or now names another sender's message are left alone. Without either
    option the held messages stay held and are listed. KEY is written as for suspend.

    With --deliver or --delete egressctl first reads the hold queue (postqueue -j). When
    that fails (Postfix stopped, a wrong --postfix-config), it changes nothing: the key
    stays suspended and its messages stay held.

    Exit status: 0 done, 1 the hold queue could not be read (nothing changed), postqueue or
    postsuper failed for a message (it stays held), or the daemon could not store the
    release, 2 usage error or the daemon cannot be reached.

    Options:
      --deliver       release the key's held messages for delivery (postsuper -H, then
                      postqueue -i); they do not pass the milter again
      --delete        delete the key's held messages (postsuper -d)
      --postfix-config DIR
                      Postfix configuration directory of the instance, passed to
                      postqueue and postsuper as -c DIR (default: Postfix's own)
    \(commonOptionsHelp)
    """

func suspendCommand(_ arguments: [String]) -> Int32 {
    runDaemonCommand("suspend", help: suspendHelp, arguments: arguments, valued: ["--reason"]) { parsed, client in
        let key = try parsed.key(command: "suspend")
        let reason = parsed.values["--reason"]
        if let reason, reason.utf8.count > ControlProtocol.maximumReasonBytes {
            throw CommandFailure.usage("egressctl suspend: the reason is \(reason.utf8.count) bytes long; the maximum is \(ControlProtocol.maximumReasonBytes)")
        }
        let report = try client.send(ControlRequest(command: .suspend, key: key, reason: reason), expecting: SuspendReport.self)
        // The daemon's form of the key, which may differ from the typed one in case or grouping.
        let suspended = shellQuoted(report.key)
        if parsed.wantsJSON {
            try printJSON(report)
        } else if report.alreadySuspended {
            print("\(suspended) was suspended already, since \(formatTime(report.suspension.since)): \(report.suspension.reason)")
        } else {
            print("suspended \(suspended): \(report.suspension.reason)")
            print("Its mail is held until: egressctl release \(suspended) [--deliver|--delete]")
        }
        return ExitStatus.ok
    }
}

/// The JSON form of release: the daemon's report and what was done with each held message.
struct ReleaseOutput: Encodable {
    var release: ReleaseReport
    /// deliver, delete, or nil when the held messages were left alone.
    var mode: String?
    var outcomes: [HeldMessageOutcome]
}

func releaseCommand(_ arguments: [String]) -> Int32 {
    runDaemonCommand("release", help: releaseHelp, arguments: arguments, valued: ["--postfix-config"],
                     flags: ["--deliver", "--delete"]) { parsed, client in
        let key = try parsed.key(command: "release")
        if parsed.flags.contains("--deliver") && parsed.flags.contains("--delete") {
            throw CommandFailure.usage("egressctl release: --deliver and --delete exclude each other")
        }
        let mode: HeldMessageMode? = parsed.flags.contains("--deliver") ? .deliver : parsed.flags.contains("--delete") ? .delete : nil
        // Find the Postfix programs and read the queue before anything changes: lifting the
        // suspension and then failing on the queue would let new mail flow while the held
        // mail stays.
        let holdQueue = try mode.map { _ in try HoldQueue(configDirectory: parsed.values["--postfix-config"]) }
        if let holdQueue {
            do {
                _ = try holdQueue.entries()
            } catch {
                throw DaemonError(description: "cannot read the hold queue, so nothing changed (no suspension lifted, no held message touched): \(error)")
            }
        }

        let report = try client.send(ControlRequest(command: .release, key: key), expecting: ReleaseReport.self)
        let released = shellQuoted(report.key)
        if !parsed.wantsJSON {
            if let lifted = report.liftedSuspension {
                print("released \(released) (suspended since \(formatTime(lifted.since)): \(lifted.reason))")
            } else {
                print("\(released) was not suspended")
            }
        }

        guard let mode, let holdQueue, !report.heldMessages.isEmpty else {
            if parsed.wantsJSON {
                try printJSON(ReleaseOutput(release: report, mode: nil, outcomes: []))
            } else if report.heldMessages.isEmpty {
                print("no held messages are recorded under \(released)")
            } else {
                print("\(report.heldMessages.count) held messages stay in the hold queue; act on them with egressctl release \(released) --deliver or --delete:")
                print(renderHeldMessages(report.heldMessages), terminator: "")
            }
            return ExitStatus.ok
        }

        let outcomes = try actOnHeldMessages(report.heldMessages, mode: mode, holdQueue: holdQueue)
        // The queue has changed whatever the daemon replies now, so a failed report only warns.
        var reportError: String?
        for start in stride(from: 0, to: outcomes.count, by: ControlProtocol.outcomesPerRequest) {
            let batch = Array(outcomes[start..<min(start + ControlProtocol.outcomesPerRequest, outcomes.count)])
            do {
                _ = try client.send(ControlRequest(command: .heldOutcome, key: report.key, outcomes: batch), expecting: HeldOutcomeReport.self)
            } catch {
                reportError = "\(error)"
                break
            }
        }

        if parsed.wantsJSON {
            try printJSON(ReleaseOutput(release: report, mode: mode.rawValue, outcomes: outcomes))
        } else {
            print(renderOutcomes(outcomes, messages: report.heldMessages), terminator: "")
        }
        if let reportError {
            printToStandardError("egressctl release: the daemon did not take the outcome report, so it still lists these messages: \(reportError)")
        }
        return outcomes.contains { $0.action == .failed } ? ExitStatus.finding : ExitStatus.ok
    }
}

/// Delivers or deletes the held messages that are still held, and reads the queue back to
/// tell what happened to each.
func actOnHeldMessages(_ messages: [HeldMessage], mode: HeldMessageMode, holdQueue: HoldQueue) throws -> [HeldMessageOutcome] {
    let plans = planHeldMessages(messages, queue: try holdQueue.entries())
    let targets = plans.compactMap { plan -> String? in
        if case .act(let message) = plan { return message.queueID }
        return nil
    }
    let applied = try holdQueue.apply(mode, to: targets)
    let after = Dictionary(try holdQueue.entries().map { ($0.queueID, $0) }, uniquingKeysWith: { first, _ in first })

    return plans.map { plan in
        switch plan {
        case .skip(let outcome):
            return outcome
        case .act(let message):
            let said = applied.messages[message.queueID] ?? applied.messages[""] ?? ""
            let entry = after[message.queueID]
            switch mode {
            case .delete:
                guard entry == nil else {
                    return HeldMessageOutcome(queueID: message.queueID, action: .failed,
                                              detail: "postsuper -d left it in the \(entry?.queueName ?? "hold") queue (exit status \(applied.status)): \(said)")
                }
                return HeldMessageOutcome(queueID: message.queueID, action: .deleted, detail: "deleted (postsuper -d)")
            case .deliver:
                guard entry?.isHeld != true else {
                    return HeldMessageOutcome(queueID: message.queueID, action: .failed,
                                              detail: "postsuper -H left it on hold (exit status \(applied.status)): \(said)")
                }
                guard entry != nil else {
                    return HeldMessageOutcome(queueID: message.queueID, action: .delivered, detail: "released from hold and already delivered")
                }
                if let problem = holdQueue.scheduleDelivery(message.queueID) {
                    return HeldMessageOutcome(queueID: message.queueID, action: .delivered,
                                              detail: "released from hold; goes out at the next queue run, because \(problem)")
                }
                return HeldMessageOutcome(queueID: message.queueID, action: .delivered,
                                          detail: "released from hold (postsuper -H), delivery scheduled (postqueue -i)")
            }
        }
    }
}

func renderOutcomes(_ outcomes: [HeldMessageOutcome], messages: [HeldMessage]) -> String {
    let senders = Dictionary(messages.map { ($0.queueID, $0.sender) }, uniquingKeysWith: { first, _ in first })
    var table = TextTable(header: ["QUEUE ID", "FROM", "RESULT", "DETAIL"])
    for outcome in outcomes {
        table.append([outcome.queueID, "<\(senders[outcome.queueID] ?? "")>", outcome.action.rawValue, outcome.detail ?? ""])
    }
    return table.render()
}
