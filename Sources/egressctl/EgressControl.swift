// Dispatches egressctl's subcommands. Exit status: 0 ok, 1 a finding (an invalid file for
// check-config, spam for score, a suspended key for show), 2 a usage error, a daemon that
// cannot be reached, or for score an unreadable or invalid file. `usage` lists each command's.
import EgressCore
import Foundation

/// One subcommand: its name, a one-line summary for the command list, and its code.
struct Subcommand: Sendable {
    let name: String
    let summary: String
    let run: @Sendable ([String]) -> Int32
}

enum EgressControl {
    /// Every subcommand, in the order `egressctl --help` lists them.
    static let subcommands: [Subcommand] = [
        Subcommand(name: "check-config", summary: "validate a configuration file and print the effective settings",
                   run: checkConfigurationCommand),
        Subcommand(name: "score", summary: "score messages offline: each symbol with its weight and matched text",
                   run: scoreCommand),
        Subcommand(name: "status", summary: "the daemon's uptime, configuration, decisions, suspensions and store health",
                   run: statusCommand),
        Subcommand(name: "top", summary: "the busiest senders now, with their counts against their limits", run: topCommand),
        Subcommand(name: "show", summary: "one key's limits, recent decisions, held messages and suspension", run: showCommand),
        Subcommand(name: "suspend", summary: "hold all mail of a key until it is released", run: suspendCommand),
        Subcommand(name: "release", summary: "lift a suspension; deliver or delete the key's held messages", run: releaseCommand),
        Subcommand(name: "suspended", summary: "every suspended key with its reason, origin and held messages",
                   run: suspendedCommand),
        Subcommand(name: "reload", summary: "make the daemon read its configuration again", run: reloadCommand),
        Subcommand(name: "summary", summary: "the last 24 hours: top senders, limit trips, suspensions, held mail",
                   run: summaryCommand),
    ]

    static let usage = """
        Usage: egressctl [--socket PATH] [--config PATH] [--json] COMMAND [options]

        Admin command line of egress-milter. Run 'egressctl COMMAND --help' for a command's options.
        --socket, --config and --json may also come before COMMAND; they then apply to it as if
        written after it. Every command takes --json.

        Commands:
        \(subcommands.map { "  " + $0.name.padding(toLength: 14, withPad: " ", startingAt: 0) + $0.summary }.joined(separator: "\n"))

        Exit status of each command (its --help says more):
          check-config  0 valid, 1 invalid or unreadable configuration, 2 usage error
          score         0 no message reached its tag threshold, 1 at least one did,
                        2 usage error, invalid or unreadable configuration, or unreadable message file
          others        0 done, 1 a finding (show: the key is suspended; status: a failing
                        store or a refused reload; reload: the new configuration was refused;
                        release: postqueue or postsuper failed, or with --deliver or --delete
                        the hold queue could not be read, so nothing changed;
                        summary --send: not sent; or
                        the daemon could not carry out the request), 2 usage error or the
                        daemon cannot be reached
        """

    /// Options that may come before the command's name, with whether each takes a value.
    static let globalOptions: [String: Bool] = ["--socket": true, "--config": true, "--json": false]

    static func main(arguments: [String]) -> Int32 {
        let global: (options: [String], rest: [String])
        do {
            global = try splitGlobalOptions(Array(arguments.dropFirst()))
        } catch {
            printToStandardError("\(error)")
            return 2
        }
        let rest = global.rest
        guard let name = rest.first else {
            printToStandardError(usage)
            return 2
        }
        if name == "--help" || name == "-h" || name == "help" {
            print(usage)
            return 0
        }
        if name == "--version" {
            print("egressctl \(egressMilterVersion)")
            return 0
        }
        guard let command = subcommands.first(where: { $0.name == name }) else {
            printToStandardError("egressctl: unknown command '\(name)'; run 'egressctl --help' for the list")
            return 2
        }
        // The command parses the global options as its own, so they mean the same wherever
        // they stand. A command without --socket rejects it as an unknown option.
        return command.run(global.options + Array(rest.dropFirst()))
    }

    /// Splits leading global options ("--socket PATH", "--socket=PATH", "--json") from the
    /// command and its arguments. Throws `CommandFailure.usage` for a missing value or an
    /// unknown option before the command.
    static func splitGlobalOptions(_ arguments: [String]) throws -> (options: [String], rest: [String]) {
        var options: [String] = []
        var remaining = arguments[...]
        while let argument = remaining.first, argument.hasPrefix("--"), !["--help", "--version"].contains(argument) {
            remaining.removeFirst()
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            guard let takesValue = globalOptions[name] else {
                throw CommandFailure.usage("egressctl: unknown option '\(argument)' before the command; only --socket, --config and --json may come first; run 'egressctl --help'")
            }
            options.append(argument)
            if takesValue && !argument.contains("=") {
                guard let value = remaining.popFirst() else {
                    throw CommandFailure.usage("egressctl: option \(name) needs a value")
                }
                options.append(value)
            }
        }
        return (options, Array(remaining))
    }
}

func printToStandardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
