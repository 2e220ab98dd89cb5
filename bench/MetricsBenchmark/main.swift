// Benchmark of metric counting: the cost of one DaemonMetrics.recordDecision call per message,
// on one thread and on several threads at once (sessions run on libmilter's threads and share
// one mutex), and the time to render the exposition text of a scrape.
//
//   metrics-benchmark [RECORDS] [THREADS]   default 2,000,000 records, 2 threads
//
// Run it through bench/metrics, which builds it in release mode. It only computes, and never
// touches files or the network.

import EgressCore
import EgressMetrics
import Foundation

let arguments = CommandLine.arguments.dropFirst()
let records = arguments.first.flatMap { Int($0) } ?? 2_000_000
let threadCount = arguments.dropFirst().first.flatMap { Int($0) } ?? 2

/// A realistic mix: most messages accepted with no symbol, some tagged with two symbols, a
/// few tempfailed by a limit, latencies spread over the buckets.
struct Sample {
    var path: SubmissionPath
    var action: Action
    var symbols: [String]
    var trips: [String]
    var seconds: Double
}

let samples: [Sample] = (0..<64).map { index in
    switch index % 16 {
    case 0, 1:
        return Sample(path: .smtp, action: .tag, symbols: ["FROM_FREEMAIL", "PHISH_PHRASE"], trips: [], seconds: 0.004)
    case 2:
        return Sample(path: .local, action: .tempfail, symbols: [], trips: ["accounts"], seconds: 0.0007)
    case 3:
        return Sample(path: .local, action: .hold, symbols: ["SCRIPT_UPLOAD_PATH"], trips: [], seconds: 0.02)
    default:
        return Sample(path: index % 2 == 0 ? .smtp : .local, action: .accept, symbols: [], trips: [],
                      seconds: Double(index % 7 + 1) * 0.0003)
    }
}

func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) / 1e18
}

func record(_ metrics: DaemonMetrics, count: Int, offset: Int) {
    for index in 0..<count {
        let sample = samples[(index &+ offset) & 63]
        metrics.recordDecision(path: sample.path, action: sample.action, symbols: sample.symbols,
                               limitTrips: sample.trips, seconds: sample.seconds, scannedBytes: 4096)
    }
}

let clock = ContinuousClock()
print("metrics benchmark: \(records) records; \(ProcessInfo.processInfo.activeProcessorCount) cores")

// One thread: the cost a session pays when no other session records at the same moment.
let single = DaemonMetrics(startTime: Date(), version: "bench")
let singleTime = clock.measure { record(single, count: records, offset: 0) }
print(String(format: "1 thread:   %.1f ns per recordDecision", seconds(singleTime) / Double(records) * 1e9))

// Several threads on one instance: the mutex is contended on every call, the worst case.
let shared = DaemonMetrics(startTime: Date(), version: "bench")
let perThread = records / threadCount
let group = DispatchGroup()
let sharedTime = clock.measure {
    for thread in 0..<threadCount {
        group.enter()
        Thread {
            record(shared, count: perThread, offset: thread * 7)
            group.leave()
        }.start()
    }
    group.wait()
}
print(String(format: "%d threads:  %.1f ns per recordDecision (wall time / all records)",
             threadCount, seconds(sharedTime) / Double(perThread * threadCount) * 1e9))

// A scrape: one rendering of the text, as the HTTP thread does per request.
let renderings = 2000
var bytes = 0
let renderTime = clock.measure {
    for _ in 0..<renderings {
        bytes = shared.exposition(suspendedKeys: 3, trackedKeys: 1200).utf8.count
    }
}
print(String(format: "exposition: %.1f µs per rendering of %d bytes", seconds(renderTime) / Double(renderings) * 1e6, bytes))
