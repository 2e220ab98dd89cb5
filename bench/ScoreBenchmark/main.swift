// Benchmark of content scoring over a mail corpus: per folder, the messages, the mean and
// 99th-percentile time per message, the throughput in MB/s, and for spam and ham folders the
// share of messages tagged, held or rejected.
//
//   score-benchmark CORPUS_DIRECTORY [--config FILE] [--rounds N] [--list] [--slowest N] [--symbols]
//
// The corpus has one directory per source with spam/, ham/ and malformed/ folders of .eml
// files, and an index.tsv whose third column says whether a message is real mail. Every
// message is timed from its raw bytes to its score: header split, streaming decode, identity
// and all rules, on one thread, the way the milter scores one message. The envelope (sender
// and recipients, which the MTA passes to the milter) is taken from the headers beforehand.
// Files are read into memory before timing starts, and one untimed round warms up the caches. --list prints the
// spam that stays below the tag threshold and the ham at or above it, with their symbols;
// --slowest N names the N slowest messages; --symbols counts each symbol in spam and ham.
//
// Run it through bench/score-corpus, which builds it in release mode.

import EgressCore
import Foundation

struct Arguments {
    var corpus = ""
    var configuration: String?
    var rounds = 5
    var list = false
    var slowest = 0
    var symbolStatistics = false

    init(_ arguments: [String]) {
        var remaining = arguments.dropFirst()[...]
        while let argument = remaining.popFirst() {
            switch argument {
            case "--config": configuration = remaining.popFirst()
            case "--rounds": rounds = max(1, Int(remaining.popFirst() ?? "") ?? 5)
            case "--list": list = true
            case "--symbols": symbolStatistics = true
            case "--slowest": slowest = max(0, Int(remaining.popFirst() ?? "") ?? 10)
            default: corpus = argument
            }
        }
    }
}

struct Message {
    var folder: String
    var path: String
    var bytes: [UInt8]
    var isReal: Bool
    /// The envelope, which the MTA hands the milter; taken from the headers before timing.
    var sender = ""
    var recipients: [String] = []
}

struct FolderResult {
    var messages = 0
    var bytes = 0
    var times: [UInt64] = []
    var tagged = 0
    var held = 0
    var rejected = 0
    var atOrAboveTag = 0
    var realMessages = 0
    var realAtOrAboveTag = 0
}

let arguments = Arguments(CommandLine.arguments)
guard !arguments.corpus.isEmpty else {
    FileHandle.standardError.write(Data("usage: score-benchmark CORPUS_DIRECTORY [--config FILE] [--rounds N] [--list]\n".utf8))
    exit(2)
}

/// Reads every .eml under CORPUS/SOURCE/CLASS/, with the provenance from SOURCE/index.tsv.
func loadCorpus(_ root: String) -> [Message] {
    let manager = FileManager.default
    var messages: [Message] = []
    let sources = ((try? manager.contentsOfDirectory(atPath: root)) ?? []).sorted()
    for source in sources {
        var realFiles = Set<String>()
        if let index = try? String(contentsOfFile: "\(root)/\(source)/index.tsv", encoding: .utf8) {
            for line in index.split(separator: "\n") {
                let columns = line.split(separator: "\t", omittingEmptySubsequences: false)
                if columns.count > 2, columns[2] == "real" {
                    realFiles.insert(String(columns[0]))
                }
            }
        }
        for kind in ["spam", "ham", "malformed"] {
            let directory = "\(root)/\(source)/\(kind)"
            guard let files = try? manager.contentsOfDirectory(atPath: directory) else { continue }
            for file in files.sorted() where file.hasSuffix(".eml") {
                guard let data = manager.contents(atPath: "\(directory)/\(file)") else { continue }
                messages.append(Message(folder: "\(source)/\(kind)", path: "\(directory)/\(file)", bytes: [UInt8](data),
                                        isReal: realFiles.contains("\(kind)/\(file)")))
            }
        }
    }
    return messages
}

let configuration: Configuration
do {
    configuration = try arguments.configuration.map { try Configuration.load(contentsOf: $0) } ?? .defaults
} catch {
    FileHandle.standardError.write(Data("score-benchmark: \(error)\n".utf8))
    exit(2)
}
let policy = Policy(configuration: configuration)
let messages = loadCorpus(arguments.corpus).map { message -> Message in
    var message = message
    let facts = MessageFacts(message: message.bytes)
    message.sender = facts.envelopeSender
    message.recipients = facts.recipients
    return message
}
guard !messages.isEmpty else {
    FileHandle.standardError.write(Data("score-benchmark: no .eml files under \(arguments.corpus)\n".utf8))
    exit(2)
}

/// Scores one message from its raw bytes; campaigns count in their own tracker.
func score(_ message: Message, campaigns: CampaignTracker, now: Date) -> ScoreReport {
    let facts = MessageFacts(message: message.bytes, sender: message.sender, recipients: message.recipients,
                             limits: configuration.scoring.scanLimits)
    let resolution = policy.identityResolver.resolve(facts, now: now)
    return policy.scorer.score(facts, resolution: resolution, campaigns: campaigns, now: now)
}

func nanoseconds() -> UInt64 {
    DispatchTime.now().uptimeNanoseconds
}

let now = Date()
// Warm-up round: page in the code, fill the iconv module cache.
var reports: [ScoreReport] = []
let warmupCampaigns = CampaignTracker()
for message in messages {
    reports.append(score(message, campaigns: warmupCampaigns, now: now))
}

// Every message is timed once per round; its time is the median of its rounds, so a moment
// when the machine was busy with something else does not count as the scorer's.
var roundTimes = [[UInt64]](repeating: [], count: messages.count)
for _ in 0..<arguments.rounds {
    // Each round starts with empty campaign counts, as the warm-up did, so every round
    // scores the same.
    let campaigns = CampaignTracker()
    for (index, message) in messages.enumerated() {
        let start = nanoseconds()
        _ = score(message, campaigns: campaigns, now: now)
        roundTimes[index].append(nanoseconds() - start)
    }
}
let medianTimes = roundTimes.map { times -> UInt64 in
    let sorted = times.sorted()
    return sorted[sorted.count / 2]
}

var results: [String: FolderResult] = [:]
for (index, message) in messages.enumerated() {
    results[message.folder, default: FolderResult()].times.append(medianTimes[index])
}
let allTimes = medianTimes
let totalNanoseconds = medianTimes.reduce(0, +)
for (message, report) in zip(messages, reports) {
    var result = results[message.folder, default: FolderResult()]
    result.messages += 1
    result.bytes += message.bytes.count
    switch report.action {
    case .tag: result.tagged += 1
    case .hold: result.held += 1
    case .reject: result.rejected += 1
    default: break
    }
    if report.isSpam {
        result.atOrAboveTag += 1
    }
    if message.isReal {
        result.realMessages += 1
        result.realAtOrAboveTag += report.isSpam ? 1 : 0
    }
    results[message.folder] = result
}

func percentile(_ times: [UInt64], _ fraction: Double) -> Double {
    let sorted = times.sorted()
    guard !sorted.isEmpty else { return 0 }
    let index = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
    return Double(sorted[max(0, index)]) / 1000
}

func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let padding = String(repeating: " ", count: max(0, width - text.count))
    return left ? padding + text : text + padding
}

func share(_ count: Int, of total: Int) -> String {
    total == 0 ? "-" : String(format: "%.0f%%", Double(count) * 100 / Double(total))
}

let tag = configuration.scoring.smtpThresholds
print("score benchmark: \(messages.count) messages, median of \(arguments.rounds) timed rounds after one warm-up, one thread; "
      + "thresholds tag \(tag.tag.map { String($0) } ?? "off"), hold \(tag.hold.map { String($0) } ?? "off"), "
      + "reject \(tag.reject.map { String($0) } ?? "off") (smtp path)")
print(pad("folder", 32) + pad("msgs", 6, left: true) + pad("mean µs", 10, left: true) + pad("p99 µs", 10, left: true)
      + pad("MB/s", 8, left: true) + pad("tagged", 8, left: true) + pad("held", 7, left: true) + pad("rejected", 9, left: true)
      + pad("≥tag", 7, left: true))
for folder in results.keys.sorted() {
    let result = results[folder]!
    let total = result.times.reduce(0, +)
    let mean = Double(total) / Double(max(1, result.times.count)) / 1000
    let megabytesPerSecond = Double(result.bytes) / (Double(total) / 1e9) / 1e6
    let isClassified = folder.hasSuffix("/spam") || folder.hasSuffix("/ham")
    var line = pad(folder, 32) + pad("\(result.messages)", 6, left: true) + pad(String(format: "%.1f", mean), 10, left: true)
        + pad(String(format: "%.1f", percentile(result.times, 0.99)), 10, left: true)
        + pad(String(format: "%.1f", megabytesPerSecond), 8, left: true)
    if isClassified {
        line += pad(share(result.tagged, of: result.messages), 8, left: true) + pad(share(result.held, of: result.messages), 7, left: true)
            + pad(share(result.rejected, of: result.messages), 9, left: true)
            + pad(share(result.atOrAboveTag, of: result.messages), 7, left: true)
    }
    print(line)
}

let totalBytes = messages.reduce(0) { $0 + $1.bytes.count }
let seconds = Double(totalNanoseconds) / 1e9
print("")
print(String(format: "all: %.0f messages/s, mean %.1f µs, p99 %.1f µs, %.1f MB/s", Double(allTimes.count) / seconds,
             Double(totalNanoseconds) / Double(allTimes.count) / 1000, percentile(allTimes, 0.99), Double(totalBytes) / seconds / 1e6))

let spamFolders = results.filter { $0.key.hasSuffix("/spam") }.values
let hamFolders = results.filter { $0.key.hasSuffix("/ham") }.values
let realSpam = spamFolders.reduce(0) { $0 + $1.realMessages }
let realSpamCaught = spamFolders.reduce(0) { $0 + $1.realAtOrAboveTag }
let allSpam = spamFolders.reduce(0) { $0 + $1.messages }
let allSpamCaught = spamFolders.reduce(0) { $0 + $1.atOrAboveTag }
let ham = hamFolders.reduce(0) { $0 + $1.messages }
let hamHeldOrRejected = hamFolders.reduce(0) { $0 + $1.held + $1.rejected }
let hamTagged = hamFolders.reduce(0) { $0 + $1.tagged }
print("real spam at or above tag: \(realSpamCaught) of \(realSpam) (\(share(realSpamCaught, of: realSpam))); "
      + "all spam: \(allSpamCaught) of \(allSpam) (\(share(allSpamCaught, of: allSpam)))")
print("ham held or rejected: \(hamHeldOrRejected) of \(ham); ham tagged: \(hamTagged) of \(ham) (\(share(hamTagged, of: ham)))")

if arguments.slowest > 0 {
    print("")
    for index in medianTimes.indices.sorted(by: { medianTimes[$0] > medianTimes[$1] }).prefix(arguments.slowest) {
        print(String(format: "%9.1f µs %8d bytes  ", Double(medianTimes[index]) / 1000, messages[index].bytes.count) + messages[index].path)
    }
}

if arguments.list {
    print("")
    for (message, report) in zip(messages, reports) {
        let isSpamFolder = message.folder.hasSuffix("/spam")
        let isHamFolder = message.folder.hasSuffix("/ham")
        guard (isSpamFolder && !report.isSpam) || (isHamFolder && report.isSpam) else { continue }
        let symbols = report.hits.map { "\($0.name)(\($0.weight))" }.joined(separator: " ")
        print("\(isSpamFolder ? "missed" : "ham   ") \(String(format: "%5.1f", report.score)) \(message.path) \(message.isReal ? "" : "[not real] ")\(symbols)")
    }
}

if arguments.symbolStatistics {
    // How often each symbol fires in spam and in ham folders, to check that a rule says
    // something about spam.
    var counts: [String: (spam: Int, ham: Int)] = [:]
    for (message, report) in zip(messages, reports) {
        let isSpam = message.folder.hasSuffix("/spam")
        guard isSpam || message.folder.hasSuffix("/ham") else { continue }
        for hit in report.hits {
            var count = counts[hit.name, default: (0, 0)]
            if isSpam { count.spam += 1 } else { count.ham += 1 }
            counts[hit.name] = count
        }
    }
    print("")
    print(pad("symbol", 28) + pad("spam", 6, left: true) + pad("ham", 6, left: true))
    for name in counts.keys.sorted() {
        print(pad(name, 28) + pad("\(counts[name]!.spam)", 6, left: true) + pad("\(counts[name]!.ham)", 6, left: true))
    }
}
