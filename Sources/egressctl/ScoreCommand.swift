// egressctl score FILE.eml... | -: scores messages offline with the scoring rules of a
// configuration and prints, per message, the score, the thresholds, the action the score
// asks for, and every symbol with its weight and the text that matched; --json for scripts.
// The output shapes live in ScoreOutput.swift.
//
// It needs no daemon and changes nothing. Each message is scored on its own, so the campaign
// rules, which count traffic across messages, never fire here. A configuration with
// `scoring.enabled: false` is still scored, with a note, so the admin can check what the
// rules would give. A file that cannot be read is reported and skipped, and the others are still scored.
// Exit status 2 on a usage error, an invalid configuration or any unreadable file, else 1
// when any message reaches its tag threshold, else 0.

import EgressCore
import Foundation

private let scoreUsage = """
    Usage: egressctl score [options] FILE.eml... | -
           egressctl score --list-rules [--json] [--config FILE]

    Scores each message (a file in RFC 5322 form; "-" reads one message from standard input)
    and prints the configuration used, then per message its score, the thresholds of its
    path, the action the score asks for, and every symbol with its weight and the text that
    matched. A file that cannot be read is named on standard error and skipped.

    Options:
      --config FILE     score with this configuration (default \(defaultConfigurationPath) when it
                        exists, else the built-in defaults)
      --path PATH       submission path whose thresholds apply: smtp (default) or local
      --sender ADDRESS  envelope sender (default: the Return-Path header, else the From address)
      --rcpt ADDRESS    envelope recipient; repeat for several (default: the To, Cc and Bcc addresses)
      --json            print a JSON array with one object per message (with --list-rules,
                        one object per symbol)
      --list-rules      print every symbol of the configuration, built-in and custom, with its
                        weight and description, and mark the ones that never fire "off" with
                        the setting that turns them off; takes no FILE
      -h, --help        print this help

    With scoring.enabled: false in the configuration the daemon scores nothing; egressctl
    still scores the messages with the rules, and prints a note on standard error.
    Campaign symbols need traffic across messages and never fire here.

    Exit status: 0 no message reached its tag threshold, 1 at least one did, 2 a usage error,
    an invalid or unreadable configuration, or a message file that could not be read (2 wins
    over 1).
    """

/// The options of one `score` run.
private struct ScoreOptions {
    var configurationPath: String?
    var path = SubmissionPath.smtp
    var pathWasGiven = false
    var sender: String?
    var recipients: [String] = []
    var json = false
    var listRules = false
    var help = false
    var files: [String] = []

    init(_ arguments: [String]) throws {
        var remaining = arguments[...]
        func value(for option: String) throws -> String {
            guard let value = remaining.popFirst() else {
                throw ScoreUsageError(message: "option \(option) needs a value")
            }
            return value
        }
        var optionsEnded = false
        while let argument = remaining.popFirst() {
            if optionsEnded || argument == "-" || !argument.hasPrefix("-") {
                files.append(argument)
                continue
            }
            switch argument {
            case "--":
                optionsEnded = true
            case "--config":
                configurationPath = try value(for: argument)
            case "--path":
                let name = try value(for: argument)
                guard let path = SubmissionPath(rawValue: name) else {
                    throw ScoreUsageError(message: "invalid --path '\(name)'; expected smtp or local")
                }
                self.path = path
                pathWasGiven = true
            case "--sender":
                sender = try value(for: argument)
            case "--rcpt":
                recipients.append(try value(for: argument))
            case "--json":
                json = true
            case "--list-rules":
                listRules = true
            case "--help", "-h":
                help = true
            default:
                throw ScoreUsageError(message: "unknown option '\(argument)'")
            }
        }
        guard !help else { return }

        if listRules {
            // The list comes from the configuration alone, so a FILE or an envelope would be
            // ignored silently, which hides a mistake in the command line.
            if let file = files.first {
                throw ScoreUsageError(message: "--list-rules takes no FILE, got '\(file)'; score messages in a separate run")
            }
            if pathWasGiven || sender != nil || !recipients.isEmpty {
                throw ScoreUsageError(message: "--list-rules takes no --path, --sender or --rcpt")
            }
            return
        }
        if files.isEmpty {
            throw ScoreUsageError(message: "expected at least one FILE.eml, or - for standard input")
        }
        if files.filter({ $0 == "-" }).count > 1 {
            throw ScoreUsageError(message: "standard input (-) can be read only once")
        }
    }
}

private struct ScoreUsageError: Error {
    var message: String
}

func scoreCommand(_ arguments: [String]) -> Int32 {
    let result = runScore(arguments) { FileHandle.standardInput.readDataToEndOfFile() }
    print(result.output, terminator: "")
    if !result.errors.isEmpty {
        // The report first, so that the errors follow it in a terminal or a shared log.
        fflush(nil)
        printToStandardError(result.errors)
    }
    return result.status
}

/// The output and exit status of one `score` run.
struct ScoreRun {
    var status: Int32
    /// Standard output: the report, or the JSON array.
    var output: String
    /// Standard error: notes, usage and file errors, one per line, without a final line break.
    var errors: String
}

/// Runs `egressctl score` with `arguments`, reading "-" from `standardInput`.
func runScore(_ arguments: [String], standardInput: () -> Data) -> ScoreRun {
    let options: ScoreOptions
    do {
        options = try ScoreOptions(arguments)
    } catch let problem as ScoreUsageError {
        return ScoreRun(status: ExitStatus.usageOrConnection, output: "",
                        errors: "egressctl score: \(problem.message); see egressctl score --help")
    } catch {
        return ScoreRun(status: ExitStatus.usageOrConnection, output: "", errors: "egressctl score: \(error)")
    }
    if options.help {
        return ScoreRun(status: ExitStatus.ok, output: scoreUsage + "\n", errors: "")
    }

    let source: ScoringSource
    do {
        source = try scoringSource(options.configurationPath)
    } catch {
        return ScoreRun(status: ExitStatus.usageOrConnection, output: "",
                        errors: "egressctl score: \(error)")
    }
    var errors: [String] = []
    if !source.scoringEnabled {
        errors.append("egressctl score: note: scoring.enabled is false in \(source.path ?? "the configuration"): "
                      + "the daemon does not score mail; this output shows what its rules would do with scoring on")
    }

    if options.listRules {
        let rules = listedRules(source)
        let output = options.json ? encodeScoreJSON(rules) : source.headerLine + "\n\n" + render(rules)
        return ScoreRun(status: ExitStatus.ok, output: output, errors: errors.joined(separator: "\n"))
    }

    let policy = Policy(configuration: source.configuration)
    var output = source.headerLine + "\n\n"
    var results: [ScoredMessage] = []
    var anySpam = false
    var anyUnreadable = false
    for file in options.files {
        let bytes: [UInt8]
        if file == "-" {
            bytes = [UInt8](standardInput())
        } else {
            do {
                bytes = try readWholeFile(file)
            } catch {
                // One bad name in a batch must not hide the scores of the other files.
                errors.append("egressctl score: \(error)")
                anyUnreadable = true
                continue
            }
        }
        let facts = MessageFacts(message: bytes, path: options.path, sender: options.sender,
                                 recipients: options.recipients.isEmpty ? nil : options.recipients,
                                 limits: source.configuration.scoring.scanLimits)
        let now = Date()
        let resolution = policy.identityResolver.resolve(facts, now: now)
        let report = policy.scorer.score(facts, resolution: resolution, campaigns: nil, now: now)
        anySpam = anySpam || report.isSpam
        let scored = ScoredMessage(report, file: file, path: options.path, source: source)
        if options.json {
            results.append(scored)
        } else {
            output += render(scored)
        }
    }
    if options.json {
        output = encodeScoreJSON(results)
    }

    let status = anyUnreadable ? ExitStatus.usageOrConnection : (anySpam ? ExitStatus.finding : ExitStatus.ok)
    return ScoreRun(status: status, output: output, errors: errors.joined(separator: "\n"))
}

/// Loads the configuration named by --config, else the installed one when it exists, else
/// the built-in defaults. The result scores with scoring turned on and campaign counting off
/// (see `ScoringSource.configuration`), and keeps the file's own values beside that.
private func scoringSource(_ path: String?) throws -> ScoringSource {
    var configuration: Configuration
    var file: String?
    if let path {
        configuration = try Configuration.load(contentsOf: path)
        file = path
    } else if FileManager.default.fileExists(atPath: defaultConfigurationPath) {
        configuration = try Configuration.load(contentsOf: defaultConfigurationPath)
        file = defaultConfigurationPath
    } else {
        configuration = Configuration.defaults
    }
    let scoringEnabled = configuration.scoring.enabled
    let campaignEnabled = configuration.scoring.campaign.enabled
    configuration.scoring.enabled = true
    configuration.scoring.campaign.enabled = false
    return ScoringSource(configuration: configuration, path: file, scoringEnabled: scoringEnabled, campaignEnabled: campaignEnabled)
}
