// Command-line options of egress-milter. Parsing never exits the process: it returns the options
// or a UsageError, and Daemon.main decides what to print and which exit status to use.

let defaultConfigurationPath = "/etc/egress-milter/egress-milter.yaml"

struct CommandLineOptions: Equatable {
    var configurationPath = defaultConfigurationPath
    /// True when --config was given, so a missing file is an error instead of "use the defaults".
    var configurationPathGiven = false
    var listen: String?
    var checkConfiguration = false
    var foreground = false
    var showHelp = false
    var showVersion = false
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
}

let usageText = """
    Usage: egress-milter [options]

    Outbound spam filter for Postfix and Sendmail, run as a milter.

    Options:
      --config PATH     configuration file (default \(defaultConfigurationPath));
                        when the default file does not exist the built-in defaults apply
      --listen SPEC     socket to listen on, overriding the configuration's listen key:
                        unix:/path, inet:PORT@HOST or inet6:PORT@HOST
      --check-config    validate the configuration, print the effective settings and exit
                        (exit status 0 when valid, 1 when not)
      --foreground      log to standard error instead of syslog; the daemon never forks,
                        with or without this option, so it suits systemd's Type=simple
      --help            print this help and exit
      --version         print the version and exit

    Signals: SIGTERM or SIGHUP stops the daemon; SIGUSR1 reloads the configuration and keeps
    the running one when the new file is invalid.
    """

func parseCommandLine(_ arguments: [String]) throws -> CommandLineOptions {
    var options = CommandLineOptions()
    var remaining = arguments.dropFirst()

    func value(for option: String) throws -> String {
        guard let next = remaining.popFirst(), !next.hasPrefix("--") else {
            throw UsageError(description: "option \(option) requires a value")
        }
        return next
    }

    while let argument = remaining.popFirst() {
        // Accept --option=value as well as --option value.
        var name = argument
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
            name = String(argument[..<equals])
            remaining.insert(String(argument[argument.index(after: equals)...]), at: remaining.startIndex)
        }
        switch name {
        case "--config":
            options.configurationPath = try value(for: name)
            options.configurationPathGiven = true
        case "--listen":
            options.listen = try value(for: name)
        case "--check-config":
            options.checkConfiguration = true
        case "--foreground", "-f":
            options.foreground = true
        case "--help", "-h":
            options.showHelp = true
        case "--version", "-V":
            options.showVersion = true
        default:
            throw UsageError(description: "unknown option '\(argument)'; see egress-milter --help")
        }
    }
    return options
}
