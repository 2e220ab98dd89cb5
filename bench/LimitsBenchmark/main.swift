// Benchmark of the rate limit step: check+commit pairs per second on one thread, resident
// memory per tracked key, checkpoint time, and the time to load a 50,000-line overrides table.
//
//   limits-benchmark keys N [OPERATIONS] [wide]
//                                          one size: N tracked keys, OPERATIONS timed pairs;
//                                          "wide" raises one limit above 65,535, which needs
//                                          32-bit counters
//   limits-benchmark overrides [LINES]     load time of a generated overrides table
//
// Run it through bench/limits, which builds it in release mode and runs every size in its own
// process, so the memory of one size does not hide in the next one's figures. It writes only
// to a temporary directory it removes again, and never touches the network.

import EgressCore
import Foundation

/// The rule measured: three windows (two of messages, one of recipients) at the login level,
/// high enough that the benchmark's traffic never trips them, so every pair reserves, and low
/// enough for 16-bit counters (every limit at most 65,535), as with realistic limits.
let benchmarkRule = LimitRule(
    name: "logins", level: .login,
    messages: [RateWindow(limit: 600, seconds: 60), RateWindow(limit: 20_000, seconds: 3600)],
    recipients: [RateWindow(limit: 50_000, seconds: 3600)])

/// The same rule with a recipient limit that needs 32-bit counters.
let wideBenchmarkRule = LimitRule(
    name: "logins", level: .login, messages: benchmarkRule.messages,
    recipients: [RateWindow(limit: 100_000, seconds: 3600)])

let start = Date(timeIntervalSince1970: 1_800_000_000)

/// Resident set size of this process in bytes, from /proc/self/status (Linux).
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }
    return 0
}

func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) / 1e18
}

func formatted(_ value: Double) -> String {
    let number = NSNumber(value: value.rounded())
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.groupingSeparator = ","
    return formatter.string(from: number) ?? "\(value)"
}

/// A small deterministic generator (xorshift64*), so every run draws the same keys.
struct KeyGenerator {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    mutating func next(below bound: Int) -> Int {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return Int((state &* 0x2545_F491_4F6C_DD1D) % UInt64(bound))
    }
}

func measureKeys(count: Int, operations: Int, rule: LimitRule) throws {
    let directory = NSTemporaryDirectory() + "limits-benchmark-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }

    // The identities exist before the baseline, so only the limiter's own memory is measured.
    let identities = (0..<count).map { index in
        Identity(keys: [IdentityKey(level: .login, value: "customer\(index)"), .server])
    }
    var configuration = Configuration.defaults
    configuration.limits = [rule]
    let limiter = try RateLimiter(stateDirectory: directory, clock: ClockReading(wall: start))
    let policy = Policy(configuration: configuration, limiter: limiter, overrides: .empty)
    let baseline = residentBytes()

    // Every key once, one millisecond apart.
    for (index, identity) in identities.enumerated() {
        let now = start.addingTimeInterval(Double(index) / 1000)
        let decision = try policy.decideLimits(for: identity, path: .smtp, recipientCount: 1, now: now)
        guard let reservation = decision.reservation else {
            fatalError("the benchmark rule tripped while filling; raise its limits")
        }
        limiter.commit(reservation)
    }
    let filled = residentBytes()
    precondition(limiter.trackedKeyCount == count, "tracked \(limiter.trackedKeyCount) keys, expected \(count)")

    // Random keys, one millisecond of simulated time per pair, on this one thread. The daemon
    // resolves a fresh identity for every message, so the identities of each chunk are built
    // just before it (untimed): reusing the stored ones would add a cache miss per pair that
    // the daemon does not have.
    var generator = KeyGenerator()
    let timeBase = Double(count) / 1000
    let clock = ContinuousClock()
    let chunkSize = 1000
    var refused = 0
    var elapsed = Duration.zero
    var done = 0
    while done < operations {
        let chunk = (0..<min(chunkSize, operations - done)).map { _ in
            Identity(keys: [IdentityKey(level: .login, value: "customer\(generator.next(below: count))"), .server])
        }
        let first = done
        elapsed += try clock.measure {
            for (offset, identity) in chunk.enumerated() {
                let now = start.addingTimeInterval(timeBase + Double(first + offset) / 1000)
                let decision = try policy.decideLimits(for: identity, path: .smtp, recipientCount: 1, now: now)
                if let reservation = decision.reservation {
                    limiter.commit(reservation)
                } else {
                    refused += 1
                }
            }
        }
        done += chunk.count
    }

    let checkpointTime = start.addingTimeInterval(timeBase + Double(operations) / 1000)
    let checkpoint = try clock.measure {
        try limiter.checkpoint(now: checkpointTime)
    }

    let pairsPerSecond = Double(operations) / seconds(elapsed)
    let bytesPerKey = Double(filled - baseline) / Double(count)
    let counters = rule == benchmarkRule ? "16-bit counters" : "32-bit counters"
    print("keys \(formatted(Double(count))), \(counters)")
    print("  check+commit pairs per second, one thread: \(formatted(pairsPerSecond)) (\(formatted(Double(operations))) pairs in \(String(format: "%.2f", seconds(elapsed))) s, \(refused) refused)")
    print("  resident memory per tracked key (VmRSS):   \(formatted(bytesPerKey)) bytes (\(formatted(Double(filled - baseline) / 1_048_576)) MiB for \(formatted(Double(count))) keys)")
    print("  checkpoint writing every key to SQLite:     \(String(format: "%.0f", seconds(checkpoint) * 1000)) ms")
}

func measureOverrides(lines: Int) throws {
    let directory = NSTemporaryDirectory() + "limits-benchmark-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }

    // A realistic mix: window overrides (some shared, some unique), caps and exemptions.
    var text = "# generated by limits-benchmark\n"
    for index in 0..<lines {
        switch index % 4 {
        case 0: text += "account:customer\(index)  messages=500/1h,5000/1d recipients=2000/1h\n"
        case 1: text += "login:customer\(index)\tmessages=\(index % 5000 + 1)/1h\n"
        case 2: text += "sender:customer\(index)@shop\(index % 97).example  max_recipients=\(index % 900 + 1)\n"
        default: text += "account:newsletter\(index)  exempt\n"
        }
    }
    let path = directory + "/limits.overrides"
    try text.write(toFile: path, atomically: true, encoding: .utf8)

    var configuration = Configuration.defaults
    configuration.limits = [benchmarkRule,
                            LimitRule(name: "accounts", level: .account, messages: [RateWindow(limit: 200, seconds: 3600)])]
    let clock = ContinuousClock()
    var loads: [Double] = []
    var compiles: [Double] = []
    for _ in 0..<5 {
        var overrides = LimitOverrides.empty
        loads.append(seconds(try clock.measure { overrides = try LimitOverrides.load(contentsOf: path) }))
        precondition(overrides.entries.count == lines)
        let limiter = RateLimiter()
        compiles.append(seconds(clock.measure {
            _ = Policy(configuration: configuration, limiter: limiter, overrides: overrides)
        }))
    }
    let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    print("overrides table of \(formatted(Double(lines))) lines (\(formatted(Double(bytes) / 1024)) KiB)")
    print("  load (read and parse), best of 5:          \(String(format: "%.0f", loads.min()! * 1000)) ms (median \(String(format: "%.0f", loads.sorted()[2] * 1000)) ms)")
    print("  building a Policy with it, best of 5:      \(String(format: "%.0f", compiles.min()! * 1000)) ms")
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "keys":
    guard let count = arguments.dropFirst().first.flatMap({ Int($0) }), count > 0 else {
        FileHandle.standardError.write("usage: limits-benchmark keys N [OPERATIONS] [wide]\n".data(using: .utf8)!)
        exit(2)
    }
    let operations = arguments.dropFirst(2).first.flatMap { Int($0) } ?? 2_000_000
    let isWide = arguments.dropFirst(3).first == "wide"
    try measureKeys(count: count, operations: operations, rule: isWide ? wideBenchmarkRule : benchmarkRule)
case "overrides":
    let lines = arguments.dropFirst().first.flatMap { Int($0) } ?? 50_000
    try measureOverrides(lines: lines)
default:
    FileHandle.standardError.write("usage: limits-benchmark keys N [OPERATIONS] [wide] | limits-benchmark overrides [LINES]\n".data(using: .utf8)!)
    exit(2)
}
