// Option parsing shared by the subcommands that talk to the daemon, and the errors that map to
// egressctl's exit statuses. Parsing never prints or exits: it returns values or throws
// `CommandFailure`, and each command decides what to print.

import EgressCore
import Foundation

/// Exit statuses of every command.
enum ExitStatus {
    static let ok: Int32 = 0
    /// A finding: a suspended key, a store error, a reload that failed, an action that failed.
    static let finding: Int32 = 1
    /// A usage error, or the daemon could not be reached.
    static let usageOrConnection: Int32 = 2
}

/// A failure that ends a command with exit status 2.
enum CommandFailure: Error, CustomStringConvertible {
    /// Invalid arguments. The text names them and points to --help.
    case usage(String)
    /// The daemon could not be reached or sent no reply.
    case connection(String)

    var description: String {
        switch self {
        case .usage(let text), .connection(let text):
            return text
        }
    }
}

/// An error reply of the daemon: the command could not be carried out (exit status 1).
struct DaemonError: Error, CustomStringConvertible {
    var description: String
}

/// Arguments after the subcommand's name: options with values, flags and positional words.
struct CommandArguments {
    var values: [String: String] = [:]
    var flags: Set<String> = []
    var positionals: [String] = []

    /// Options every daemon command takes.
    static let commonValued: Set<String> = ["--socket", "--config"]
    static let commonFlags: Set<String> = ["--json", "--help", "-h"]

    /// Parses `arguments`. `valued` and `flags` name the command's own options (short forms
    /// included); --socket, --config, --json and --help are added. Accepts "--name value"
    /// and "--name=value"; "--" ends the options.
    init(_ arguments: [String], command: String, valued: Set<String> = [], flags: Set<String> = []) throws {
        let valuedNames = valued.union(Self.commonValued)
        let flagNames = flags.union(Self.commonFlags)
        var remaining = arguments[...]
        var optionsEnded = false
        while let argument = remaining.popFirst() {
            if optionsEnded || !argument.hasPrefix("-") || argument == "-" {
                positionals.append(argument)
                continue
            }
            if argument == "--" {
                optionsEnded = true
                continue
            }
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            if valuedNames.contains(name) {
                guard let value = inlineValue ?? remaining.popFirst() else {
                    throw CommandFailure.usage("egressctl \(command): option \(name) needs a value; see egressctl \(command) --help")
                }
                values[name] = value
            } else if flagNames.contains(name), inlineValue == nil {
                self.flags.insert(name)
            } else {
                throw CommandFailure.usage("egressctl \(command): unknown option '\(argument)'; see egressctl \(command) --help")
            }
        }
    }

    var wantsHelp: Bool { flags.contains("--help") || flags.contains("-h") }
    var wantsJSON: Bool { flags.contains("--json") }

    /// Returns the single positional KEY of show, suspend and release after checking its form.
    func key(command: String) throws -> String {
        guard positionals.count == 1 else {
            let problem = positionals.isEmpty ? "needs a KEY" : "takes one KEY, got \(positionals.count) words"
            throw CommandFailure.usage("egressctl \(command): \(problem); see egressctl \(command) --help")
        }
        if let problem = ControlProtocol.keyProblem(positionals[0]) {
            throw CommandFailure.usage("egressctl \(command): \(problem)")
        }
        return positionals[0]
    }

    func requireNoPositionals(command: String) throws {
        guard positionals.isEmpty else {
            throw CommandFailure.usage("egressctl \(command): unexpected argument '\(positionals[0])'; see egressctl \(command) --help")
        }
    }
}

/// The option lines every daemon command's --help ends with.
let commonOptionsHelp = """
      --socket PATH   control socket of the daemon (default: control.socket of the
                      configuration file, else /run/egress-milter/control.sock)
      --config PATH   configuration file to read control.socket from
                      (default /etc/egress-milter/egress-milter.yaml)
      --json          print the result as JSON instead of columns
      -h, --help      print this help
    """

/// Runs a daemon command and turns its failures into exit statuses and messages.
func runDaemonCommand(_ name: String, help: String, arguments: [String], valued: Set<String> = [], flags: Set<String> = [],
                      _ body: (CommandArguments, ControlClient) throws -> Int32) -> Int32 {
    do {
        let parsed = try CommandArguments(arguments, command: name, valued: valued, flags: flags)
        if parsed.wantsHelp {
            print(help)
            return ExitStatus.ok
        }
        let client = try ControlClient(arguments: parsed)
        return try body(parsed, client)
    } catch let failure as CommandFailure {
        printToStandardError(failure.description)
        return ExitStatus.usageOrConnection
    } catch {
        printToStandardError("egressctl \(name): \(error)")
        return ExitStatus.finding
    }
}

/// Prints a value as pretty JSON with sorted keys, for --json.
func printJSON<Value: Encodable>(_ value: Value) throws {
    let data = try ControlProtocol.makeEncoder(pretty: true).encode(value)
    print(String(decoding: data, as: UTF8.self))
}
