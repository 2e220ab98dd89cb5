// Postfix's hold queue as `egressctl release --deliver|--delete` uses it: listing the queue
// with `postqueue -j`, releasing held messages with `postsuper -H` and scheduling them with
// `postqueue -i`, deleting them with `postsuper -d`.
//
// It acts only on a message that is still in the hold queue under the recorded queue ID and
// from the recorded sender, because Postfix reuses short queue IDs once a message has left the
// queue: a bare ID could name another customer's mail. Whether an action worked is read back
// from the queue afterwards, not from postsuper's wording. The Postfix programs run with the
// caller's privileges; postsuper needs root.

import EgressCore
import Foundation

/// One message of `postqueue -j` (Postfix 3.1 and later print one JSON object per line).
struct QueueEntry: Decodable, Equatable {
    var queueName: String
    var queueID: String
    var sender: String

    enum CodingKeys: String, CodingKey {
        case queueName = "queue_name"
        case queueID = "queue_id"
        case sender
    }

    var isHeld: Bool { queueName == "hold" }
}

/// The action of release on a key's held messages.
enum HeldMessageMode: String {
    case deliver
    case delete
}

/// The decision for one recorded held message before anything runs: act on it, or an outcome
/// that needs no action.
enum HeldMessagePlan: Equatable {
    case act(HeldMessage)
    case skip(HeldMessageOutcome)
}

/// Compares the recorded held messages with the queue. Only a message in the hold queue,
/// from the recorded sender (compared without regard to case), is acted on.
func planHeldMessages(_ messages: [HeldMessage], queue: [QueueEntry]) -> [HeldMessagePlan] {
    let entries = Dictionary(queue.map { ($0.queueID, $0) }, uniquingKeysWith: { first, _ in first })
    return messages.map { message in
        guard let entry = entries[message.queueID] else {
            return .skip(HeldMessageOutcome(queueID: message.queueID, action: .missing,
                                            detail: "no longer in the queue (delivered or deleted earlier)"))
        }
        guard entry.sender.lowercased() == message.sender.lowercased() else {
            return .skip(HeldMessageOutcome(
                queueID: message.queueID, action: .otherMessage,
                detail: "the queue ID now names a message from <\(entry.sender)>, the held one was from <\(message.sender)>; left alone (if address rewriting changed the sender, act on it with postsuper)"))
        }
        guard entry.isHeld else {
            return .skip(HeldMessageOutcome(queueID: message.queueID, action: .notHeld,
                                            detail: "in the \(entry.queueName) queue, no longer on hold; left alone"))
        }
        return .act(message)
    }
}

struct HoldQueue {
    /// Maximum run time of one Postfix program, in seconds.
    static let commandTimeoutSeconds = 120.0

    var postqueue: String
    var postsuper: String
    /// Postfix's configuration directory for `-c`; nil for the default instance.
    var configDirectory: String?

    /// Finds postqueue and postsuper in the usual directories and $PATH.
    init(configDirectory: String?) throws {
        guard let postqueue = findProgram("postqueue"), let postsuper = findProgram("postsuper") else {
            throw DaemonError(description: "postqueue or postsuper not found; is Postfix installed? The held messages stay in the hold queue")
        }
        self.init(postqueue: postqueue, postsuper: postsuper, configDirectory: configDirectory)
    }

    init(postqueue: String, postsuper: String, configDirectory: String?) {
        self.postqueue = postqueue
        self.postsuper = postsuper
        self.configDirectory = configDirectory
    }

    private var instanceArguments: [String] {
        configDirectory.map { ["-c", $0] } ?? []
    }

    /// Lists the queue with `postqueue -j`.
    func entries() throws -> [QueueEntry] {
        let result = try runProgram(postqueue, instanceArguments + ["-j"], timeoutSeconds: Self.commandTimeoutSeconds)
        guard result.status == 0 else {
            throw DaemonError(description: "postqueue -j failed (exit status \(result.status)): \(result.standardErrorText.trimmingCharacters(in: .whitespacesAndNewlines)); is Postfix running?")
        }
        // A listing missing its end would make held messages look gone.
        guard result.outputIsComplete else {
            throw DaemonError(description: "postqueue -j output was still open \(Int(ChildProgram.outputDeadlineSeconds)) s after postqueue exited, so the queue listing may be incomplete; try again")
        }
        let decoder = JSONDecoder()
        return try result.standardOutput.split(separator: UInt8(ascii: "\n")).map { line in
            do {
                return try decoder.decode(QueueEntry.self, from: Data(line))
            } catch {
                throw DaemonError(description: "cannot read postqueue -j output: \(error)")
            }
        }
    }

    /// Runs `postsuper -H` (deliver) or `-d` (delete) on the queue IDs, all in one run that
    /// reads them from standard input. Returns postsuper's messages for each queue ID and
    /// its exit status.
    func apply(_ mode: HeldMessageMode, to queueIDs: [String]) throws -> (status: Int32, messages: [String: String]) {
        guard !queueIDs.isEmpty else { return (0, [:]) }
        let option = mode == .deliver ? "-H" : "-d"
        let input = Array(queueIDs.map { $0 + "\n" }.joined().utf8)
        let result = try runProgram(postsuper, instanceArguments + [option, "-"], input: input,
                                    timeoutSeconds: Self.commandTimeoutSeconds)
        // postsuper writes "postsuper: QUEUEID: removed" and the like to standard error.
        var messages: [String: String] = [:]
        for line in result.standardErrorText.split(separator: "\n") {
            for queueID in queueIDs where line.contains(" \(queueID): ") || line.hasPrefix("\(queueID): ") {
                messages[queueID] = String(line)
            }
        }
        messages[""] = result.standardErrorText.trimmingCharacters(in: .whitespacesAndNewlines)
        return (result.status, messages)
    }

    /// Asks the queue manager to deliver one deferred message now (`postqueue -i`).
    func scheduleDelivery(_ queueID: String) -> String? {
        do {
            let result = try runProgram(postqueue, instanceArguments + ["-i", queueID], timeoutSeconds: Self.commandTimeoutSeconds)
            guard result.status == 0 else {
                return "postqueue -i failed: \(result.standardErrorText.trimmingCharacters(in: .whitespacesAndNewlines))"
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}

/// Runs a Postfix program to its end with the caller's environment, feeding `input` and
/// keeping all of both outputs, because a cut `postqueue -j` listing would hide messages.
/// Kills it after `timeoutSeconds`. Throws `DaemonError`.
func runProgram(_ path: String, _ arguments: [String], input: [UInt8] = [], timeoutSeconds: Double) throws -> ChildProgram.Result {
    do {
        return try ChildProgram.run(path, arguments, environment: nil, input: input,
                                    timeoutSeconds: timeoutSeconds, maximumOutputBytes: .max)
    } catch ChildProgramError.launchFailed(_, let reason) {
        throw DaemonError(description: "cannot run \(path): \(reason)")
    } catch ChildProgramError.timedOut {
        throw DaemonError(description: "\(path) \(arguments.joined(separator: " ")) did not finish within \(Int(timeoutSeconds)) s")
    }
}

/// Finds a Postfix program in the directories Debian installs it to, then in $PATH.
func findProgram(_ name: String) -> String? {
    var directories = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
    if let path = ProcessInfo.processInfo.environment["PATH"] {
        directories += path.split(separator: ":").map(String.init)
    }
    return directories.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}
