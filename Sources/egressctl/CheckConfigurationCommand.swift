// egressctl check-config [FILE]: validates a configuration file and its limits overrides
// table without a running daemon, and prints the effective settings, or with --json one
// object for scripts. It never writes a file and never contacts the daemon.
import EgressCore
import Foundation

let defaultConfigurationPath = "/etc/egress-milter/egress-milter.yaml"

let checkConfigurationHelp = """
    Usage: egressctl check-config [--json] [FILE]

    Validates FILE (default \(defaultConfigurationPath); --config FILE names it too) and its
    limits overrides table, then prints the effective settings.

    Options:
      --json          print one JSON object: {"file", "valid", "error": {"file", "line",
                      "column", "key", "message"} or null, "overrides": {"file", "keys"} or
                      null, "settings": the effective settings as YAML text, or null}
      -h, --help      print this help

    Exit status: 0 valid, 1 invalid or unreadable, 2 usage error.
    """

/// The outcome of check-config, as --json prints it.
struct ConfigurationCheck: Encodable, Equatable {
    struct Problem: Encodable, Equatable {
        /// The file the problem is in: the configuration or its overrides table.
        var file: String
        /// 1-based line and column; 0 when the problem concerns the whole file.
        var line: Int
        var column: Int
        /// Dotted key path; empty when the problem is not under a key.
        var key: String
        var message: String
    }

    struct Overrides: Encodable, Equatable {
        var file: String
        var keys: Int
    }

    var file: String
    var valid: Bool
    var error: Problem?
    var overrides: Overrides?
    /// The effective settings as YAML text, as the daemon's --check-config prints them.
    var settings: String?

    /// Written by hand so that absent values are JSON null instead of missing keys.
    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(file, forKey: .file)
        try container.encode(valid, forKey: .valid)
        try container.encode(error, forKey: .error)
        try container.encode(overrides, forKey: .overrides)
        try container.encode(settings, forKey: .settings)
    }

    enum CodingKeys: String, CodingKey {
        case file, valid, error, overrides, settings
    }
}

/// Loads and validates the configuration at `path` and its overrides table.
func checkConfiguration(at path: String) -> ConfigurationCheck {
    do {
        let configuration = try Configuration.load(contentsOf: path)
        var overrides: ConfigurationCheck.Overrides?
        if !configuration.limitsOverrides.isEmpty {
            let table = try LimitOverrides.load(contentsOf: configuration.limitsOverrides)
            overrides = ConfigurationCheck.Overrides(file: configuration.limitsOverrides, keys: table.entries.count)
        }
        return ConfigurationCheck(file: path, valid: true, error: nil, overrides: overrides, settings: configuration.summary())
    } catch let error as ConfigurationError {
        let problem = ConfigurationCheck.Problem(file: error.file, line: error.line, column: error.column, key: error.key,
                                                 message: error.message)
        return ConfigurationCheck(file: path, valid: false, error: problem, overrides: nil, settings: nil)
    } catch {
        let problem = ConfigurationCheck.Problem(file: path, line: 0, column: 0, key: "", message: "\(error)")
        return ConfigurationCheck(file: path, valid: false, error: problem, overrides: nil, settings: nil)
    }
}

func checkConfigurationCommand(_ arguments: [String]) -> Int32 {
    let parsed: CommandArguments
    do {
        parsed = try CommandArguments(arguments, command: "check-config")
        if parsed.values["--socket"] != nil {
            throw CommandFailure.usage("egressctl check-config: --socket does not apply, because check-config reads the file without the daemon")
        }
        guard parsed.positionals.count <= 1 else {
            throw CommandFailure.usage("egressctl check-config: expected at most one FILE, got \(parsed.positionals.count); see egressctl check-config --help")
        }
        if let named = parsed.values["--config"], let positional = parsed.positionals.first, named != positional {
            throw CommandFailure.usage("egressctl check-config: --config \(named) and FILE \(positional) name different files; give one")
        }
    } catch {
        printToStandardError("\(error)")
        return ExitStatus.usageOrConnection
    }
    if parsed.wantsHelp {
        print(checkConfigurationHelp)
        return ExitStatus.ok
    }

    let path = parsed.positionals.first ?? parsed.values["--config"] ?? defaultConfigurationPath
    let check = checkConfiguration(at: path)
    if parsed.wantsJSON {
        do {
            try printJSON(check)
        } catch {
            printToStandardError("egressctl check-config: \(error)")
            return ExitStatus.finding
        }
    } else if let problem = check.error {
        let error = ConfigurationError(file: problem.file, line: problem.line, column: problem.column, key: problem.key,
                                       message: problem.message)
        printToStandardError("egressctl: \(error)")
    } else {
        print("# configuration OK: \(path)")
        if let overrides = check.overrides {
            print("# limits overrides OK: \(overrides.file), \(overrides.keys) keys")
        }
        print(check.settings ?? "", terminator: "")
    }
    return check.valid ? ExitStatus.ok : ExitStatus.finding
}
