// egressctl score FILE.eml... | -: scores messages offline with the scoring rules of a
// configuration and prints, per message, the score, the thresholds, the action the score
// asks for, and every symbol with its weight and the text that matched; --json for scripts.
//
// It needs no daemon and changes nothing: each message is scored on its own, so the
// campaign rules, which count traffic across messages, never fire here. Exit status 1 when
// any message reaches its tag threshold, 0 when none does, 2 on a usage error or a file that
// cannot be read.

import EgressCore
import Foundation

private let scoreUsage = """
    Usage: egressctl score [options] FILE.eml... | -

    Scores each message (a file in RFC 5322 form; "-" reads one message from standard input)
    and prints its score, the thresholds of its path, the action the score asks for, and every
    symbol with its weight and the text that matched.

    Options:
      --config FILE     score with this configuration (default \(defaultConfigurationPath) when it
                        exists, else the built-in defaults)
      --path PATH       submission path whose thresholds apply: smtp (default) or local
      --sender ADDRESS  envelope sender (default: the Return-Path header, else the From address)
      --rcpt ADDRESS    envelope recipient; repeat for several (default: the To, Cc and Bcc addresses)
      --json            print a JSON array with one object per message
      --list-rules      print every symbol of the configuration (built-in and custom, without the
                        disabled ones) with its weight and description, and exit
      --help            print this help

    Campaign symbols need traffic across messages and never fire here.
    Exit status: 0 no message reached its tag threshold, 1 at least one did, 2 usage error or unreadable file.
    """

/// The options of one `score` run.
private struct ScoreOptions {
    var configurationPath: String?
    var path = SubmissionPath.smtp
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
        if !help && !listRules && files.isEmpty {
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

/// One scored message, as --json prints it.
private struct ScoredMessage: Encodable {
    struct Symbol: Encodable {
        var name: String
        var weight: Double
        var description: String
        var matched: String
    }

    var file: String
    var path: String
    var score: Double
    var thresholds: [String: Double]
    var action: String
    var isSpam: Bool
    var symbols: [Symbol]

    enum CodingKeys: String, CodingKey {
        case file, path, score, thresholds, action, isSpam = "is_spam", symbols
    }
}

func scoreCommand(_ arguments: [String]) -> Int32 {
    let result = runScore(arguments) { FileHandle.standardInput.readDataToEndOfFile() }
    print(result.output, terminator: "")
    if !result.errors.isEmpty {
        printToStandardError(result.errors)
    }
    return result.status
}

/// The output and exit status of one `score` run.
struct ScoreRun {
    var status: Int32
    /// Standard output: the report, or the JSON array.
    var output: String
    /// Standard error: usage and file errors, without a final line break.
    var errors: String
}

/// Runs `egressctl score` with `arguments`, reading "-" from `standardInput`.
func runScore(_ arguments: [String], standardInput: () -> Data) -> ScoreRun {
    let options: ScoreOptions
    do {
        options = try ScoreOptions(arguments)
    } catch let problem as ScoreUsageError {
        return ScoreRun(status: 2, output: "", errors: "egressctl score: \(problem.message); see egressctl score --help")
    } catch {
        return ScoreRun(status: 2, output: "", errors: "egressctl score: \(error)")
    }
    if options.help {
        return ScoreRun(status: 0, output: scoreUsage + "\n", errors: "")
    }

    let configuration: Configuration
    do {
        configuration = try scoringConfiguration(options.configurationPath)
    } catch {
        return ScoreRun(status: 2, output: "", errors: "egressctl score: \(error)")
    }
    let policy = Policy(configuration: configuration)
    if options.listRules {
        return ScoreRun(status: 0, output: renderRules(policy.scorer.effectiveRules()), errors: "")
    }

    var output = ""
    var results: [ScoredMessage] = []
    var anySpam = false
    for file in options.files {
        let bytes: [UInt8]
        if file == "-" {
            bytes = [UInt8](standardInput())
        } else {
            do {
                bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            } catch {
                return ScoreRun(status: 2, output: output, errors: "egressctl score: cannot read \(file): \(error.localizedDescription)")
            }
        }
        let facts = MessageFacts(message: bytes, path: options.path, sender: options.sender,
                                 recipients: options.recipients.isEmpty ? nil : options.recipients,
                                 limits: configuration.scoring.scanLimits)
        let now = Date()
        let resolution = policy.identityResolver.resolve(facts, now: now)
        let report = policy.scorer.score(facts, resolution: resolution, campaigns: nil, now: now)
        anySpam = anySpam || report.isSpam
        let scored = ScoredMessage(report, file: file, path: options.path)
        if options.json {
            results.append(scored)
        } else {
            output += render(scored)
        }
    }
    if options.json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if let data = try? encoder.encode(results) {
            output = String(decoding: data, as: UTF8.self) + "\n"
        }
    }
    return ScoreRun(status: anySpam ? 1 : 0, output: output, errors: "")
}

/// The configuration named by --config; else the installed one when it exists; else the
/// built-in defaults. Campaign counting is off, because files are scored one by one.
private func scoringConfiguration(_ path: String?) throws -> Configuration {
    var configuration: Configuration
    if let path {
        configuration = try Configuration.load(contentsOf: path)
    } else if FileManager.default.fileExists(atPath: defaultConfigurationPath) {
        configuration = try Configuration.load(contentsOf: defaultConfigurationPath)
    } else {
        configuration = Configuration.defaults
    }
    configuration.scoring.campaign.enabled = false
    return configuration
}

private extension ScoredMessage {
    init(_ report: ScoreReport, file: String, path: SubmissionPath) {
        var thresholds: [String: Double] = [:]
        thresholds["tag"] = report.thresholds.tag
        thresholds["hold"] = report.thresholds.hold
        thresholds["reject"] = report.thresholds.reject
        self.init(file: file, path: path.rawValue, score: report.score, thresholds: thresholds, action: report.action.rawValue,
                  isSpam: report.isSpam,
                  symbols: report.hits.map { Symbol(name: $0.name, weight: $0.weight, description: $0.description, matched: $0.detail) })
    }
}

/// The text form, in the manner of `spamassassin -t`: a summary line, then one line per
/// symbol with its weight, name, description and the matched text.
private func render(_ message: ScoredMessage) -> String {
    func format(_ value: Double?) -> String {
        value.map { ContentScorer.format($0) } ?? "off"
    }
    var text = "\(message.file)\n"
    text += "  score \(ContentScorer.format(message.score)), tag \(format(message.thresholds["tag"])), "
        + "hold \(format(message.thresholds["hold"])), reject \(format(message.thresholds["reject"])) "
        + "(\(message.path) path): \(message.action)\n"
    guard !message.symbols.isEmpty else {
        return text + "  no symbols\n\n"
    }
    let nameWidth = message.symbols.map(\.name.count).max() ?? 0
    text += "   " + "pts".leftPadded(to: 6) + "  " + "symbol".padding(toLength: nameWidth, withPad: " ", startingAt: 0)
        + "  description: matched text\n"
    for symbol in message.symbols {
        let weight = formatWeight(symbol.weight).leftPadded(to: 6)
        var line = "   \(weight)  \(symbol.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(symbol.description)"
        if !symbol.matched.isEmpty {
            line += ": \(symbol.matched)"
        }
        text += line + "\n"
    }
    return text + "\n"
}

private func renderRules(_ rules: [RuleDescription]) -> String {
    let nameWidth = rules.map(\.name.count).max() ?? 0
    var text = "   " + "pts".leftPadded(to: 6) + "  " + "symbol".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  description\n"
    for rule in rules {
        let weight = formatWeight(rule.weight).leftPadded(to: 6)
        text += "   \(weight)  \(rule.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(rule.description)\n"
    }
    return text
}

/// One decimal, or two when the weight needs them (0.75).
private func formatWeight(_ weight: Double) -> String {
    (weight * 10).rounded() == weight * 10 ? String(format: "%.1f", weight) : String(format: "%.2f", weight)
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
