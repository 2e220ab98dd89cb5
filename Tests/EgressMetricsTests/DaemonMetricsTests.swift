// Tests of the metrics registry and its exposition text: every family with HELP and TYPE,
// counts by path and action, symbols and limit rules, escaped label values, cumulative
// histogram buckets with _sum and _count, the label cap, reload and store counters, and the
// notices counter.
import EgressCore
import EgressMetrics
import XCTest

final class DaemonMetricsTests: XCTestCase {
    private func makeMetrics() -> DaemonMetrics {
        DaemonMetrics(startTime: Date(timeIntervalSince1970: 1_800_000_000.5), version: "1.2.3")
    }

    private func record(_ metrics: DaemonMetrics, path: SubmissionPath = .smtp, action: Action = .accept,
                        symbols: [String] = [], trips: [String] = [], seconds: Double? = 0.001, bytes: Int = 100) {
        metrics.recordDecision(path: path, action: action, symbols: symbols, limitTrips: trips,
                               seconds: seconds, scannedBytes: bytes)
    }

    // MARK: Families

    func testEveryFamilyHasHelpAndType() throws {
        let parsed = try ParsedExposition(makeMetrics().exposition(suspendedKeys: 0, trackedKeys: 0))
        let expected: [String: String] = [
            "egress_milter_messages_total": "counter",
            "egress_milter_decision_failures_total": "counter",
            "egress_milter_rule_hits_total": "counter",
            "egress_milter_limit_trips_total": "counter",
            "egress_milter_suspended_keys": "gauge",
            "egress_milter_tracked_keys": "gauge",
            "egress_milter_decision_duration_seconds": "histogram",
            "egress_milter_scanned_bytes_total": "counter",
            "egress_milter_store_errors_total": "counter",
            "egress_milter_config_reloads_total": "counter",
            "egress_milter_config_reload_failures_total": "counter",
            "egress_milter_start_time_seconds": "gauge",
            "egress_milter_build_info": "gauge",
            "egress_milter_notices_total": "counter",
        ]
        XCTAssertEqual(parsed.types, expected)
        XCTAssertEqual(Set(parsed.helps.keys), Set(expected.keys))
        for sample in parsed.samples {
            let family = expected.keys.first { sample.name == $0 || sample.name.hasPrefix($0 + "_") }
            XCTAssertNotNil(family, "sample \(sample.name) belongs to no declared family")
        }
    }

    func testEmptyRegistryListsZeroSeries() throws {
        let parsed = try ParsedExposition(makeMetrics().exposition(suspendedKeys: 2, trackedKeys: 40))
        for path in ["smtp", "local"] {
            for action in ["accept", "tag", "hold", "reject", "tempfail"] {
                XCTAssertEqual(parsed.value("egress_milter_messages_total", ["path": path, "action": action]), 0)
            }
        }
        XCTAssertEqual(parsed.value("egress_milter_store_errors_total", ["store": "limits"]), 0)
        XCTAssertEqual(parsed.value("egress_milter_store_errors_total", ["store": "held"]), 0)
        XCTAssertEqual(parsed.value("egress_milter_suspended_keys"), 2)
        XCTAssertEqual(parsed.value("egress_milter_tracked_keys"), 40)
        XCTAssertEqual(parsed.value("egress_milter_start_time_seconds"), 1_800_000_000.5)
        XCTAssertEqual(parsed.value("egress_milter_build_info", ["version": "1.2.3"]), 1)
        XCTAssertTrue(parsed.samples.filter { $0.name == "egress_milter_rule_hits_total" }.isEmpty)
    }

    // MARK: Counters

    func testMessagesCountedByPathAndAction() throws {
        let metrics = makeMetrics()
        record(metrics, path: .smtp, action: .accept)
        record(metrics, path: .smtp, action: .accept)
        record(metrics, path: .local, action: .hold)
        record(metrics, path: .smtp, action: .tempfail)
        metrics.recordDecisionFailure()

        let parsed = try ParsedExposition(metrics.exposition(suspendedKeys: 0, trackedKeys: 0))
        XCTAssertEqual(parsed.value("egress_milter_messages_total", ["path": "smtp", "action": "accept"]), 2)
        XCTAssertEqual(parsed.value("egress_milter_messages_total", ["path": "local", "action": "hold"]), 1)
        XCTAssertEqual(parsed.value("egress_milter_messages_total", ["path": "smtp", "action": "tempfail"]), 1)
        XCTAssertEqual(parsed.value("egress_milter_messages_total", ["path": "local", "action": "accept"]), 0)
        XCTAssertEqual(parsed.value("egress_milter_decision_failures_total"), 1)
        XCTAssertEqual(parsed.value("egress_milter_scanned_bytes_total"), 400)
    }

    func testSymbolsAndLimitRulesCounted() throws {
        let metrics = makeMetrics()
        record(metrics, action: .tag, symbols: ["FROM_FREEMAIL", "GTUBE"])
        record(metrics, action: .tag, symbols: ["FROM_FREEMAIL"])
        record(metrics, action: .tempfail, trips: ["accounts", "shadow-domains"])

        let parsed = try ParsedExposition(metrics.exposition(suspendedKeys: 0, trackedKeys: 0))
        XCTAssertEqual(parsed.value("egress_milter_rule_hits_total", ["symbol": "FROM_FREEMAIL"]), 2)
        XCTAssertEqual(parsed.value("egress_milter_rule_hits_total", ["symbol": "GTUBE"]), 1)
        XCTAssertEqual(parsed.value("egress_milter_limit_trips_total", ["rule": "accounts"]), 1)
        XCTAssertEqual(parsed.value("egress_milter_limit_trips_total", ["rule": "shadow-domains"]), 1)
    }

    func testReloadAndStoreErrorsCounted() throws {
        let metrics = makeMetrics()
        metrics.recordReload(succeeded: true)
        metrics.recordReload(succeeded: false)
        metrics.recordReload(succeeded: true)
        metrics.recordStoreError(store: "held")
        metrics.recordStoreError(store: "held")

        let parsed = try ParsedExposition(metrics.exposition(suspendedKeys: 0, trackedKeys: 0))
        XCTAssertEqual(parsed.value("egress_milter_config_reloads_total"), 3)
        XCTAssertEqual(parsed.value("egress_milter_config_reload_failures_total"), 1)
        XCTAssertEqual(parsed.value("egress_milter_store_errors_total", ["store": "held"]), 2)
        XCTAssertEqual(parsed.value("egress_milter_store_errors_total", ["store": "limits"]), 0)
    }

    func testLabelValuesBeyondCapCountAsOther() throws {
        let metrics = makeMetrics()
        let symbols = (0..<(DaemonMetrics.maximumLabelValues + 5)).map { "SYMBOL_\($0)" }
        record(metrics, symbols: symbols)

        let parsed = try ParsedExposition(metrics.exposition(suspendedKeys: 0, trackedKeys: 0))
        let hits = parsed.samples.filter { $0.name == "egress_milter_rule_hits_total" }
        XCTAssertEqual(hits.count, DaemonMetrics.maximumLabelValues + 1)
        XCTAssertEqual(parsed.value("egress_milter_rule_hits_total", ["symbol": DaemonMetrics.overflowLabelValue]), 5)
        XCTAssertEqual(parsed.value("egress_milter_rule_hits_total", ["symbol": "SYMBOL_0"]), 1)
    }

    // MARK: Histogram

    func testHistogramBucketsAreCumulative() throws {
        let metrics = makeMetrics()
        let latencies = [0.0001, 0.0005, 0.002, 0.002, 0.7, 29.0, 100.0]
        for seconds in latencies {
            record(metrics, seconds: seconds)
        }
        record(metrics, seconds: nil)

        let parsed = try ParsedExposition(metrics.exposition(suspendedKeys: 0, trackedKeys: 0))
        let buckets = parsed.samples.filter { $0.name == "egress_milter_decision_duration_seconds_bucket" }
        XCTAssertEqual(buckets.map { $0.labels["le"] ?? "?" },
                       ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                        "1", "2.5", "5", "10", "30", "+Inf"])
        // A bound is inclusive: 0.0005 falls into the le="0.0005" bucket.
        let expected: [Double] = [2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 6, 7]
        XCTAssertEqual(buckets.map(\.value), expected)
        XCTAssertEqual(parsed.value("egress_milter_decision_duration_seconds_count"), 7)
        let sum = try XCTUnwrap(parsed.value("egress_milter_decision_duration_seconds_sum"))
        XCTAssertEqual(sum, latencies.reduce(0, +), accuracy: 1e-9)
        // The message without a latency still counts as a message.
        XCTAssertEqual(parsed.value("egress_milter_messages_total", ["path": "smtp", "action": "accept"]), 8)
    }

    // MARK: Escaping and numbers

    func testLabelValuesEscaped() throws {
        let cases: [(value: String, escaped: String)] = [
            ("plain", "plain"),
            ("back\\slash", "back\\\\slash"),
            ("say \"hi\"", "say \\\"hi\\\""),
            ("two\nlines", "two\\nlines"),
            ("crlf\r\nend", "crlf\r\\nend"),
            ("ünïcode ✓", "ünïcode ✓"),
            ("\\\"\n", "\\\\\\\"\\n"),
        ]
        for (value, escaped) in cases {
            XCTAssertEqual(ExpositionWriter.escapeLabelValue(value), escaped, "value \(value.debugDescription)")
        }

        let metrics = makeMetrics()
        record(metrics, action: .tempfail, trips: ["rule \"a\"\\b\nc"])
        let text = metrics.exposition(suspendedKeys: 0, trackedKeys: 0)
        XCTAssertTrue(text.contains("egress_milter_limit_trips_total{rule=\"rule \\\"a\\\"\\\\b\\nc\"} 1\n"), text)
        let parsed = try ParsedExposition(text)
        XCTAssertEqual(parsed.value("egress_milter_limit_trips_total", ["rule": "rule \"a\"\\b\nc"]), 1)
    }

    func testHelpTextEscaped() {
        var writer = ExpositionWriter()
        writer.family("x_total", type: .counter, help: "a \\ b\nc \"d\"")
        XCTAssertEqual(writer.text, "# HELP x_total a \\\\ b\\nc \"d\"\n# TYPE x_total counter\n")
    }

    func testNumbersFormattedForPrometheus() {
        let cases: [(Double, String)] = [
            (0, "0"), (1, "1"), (30, "30"), (2.5, "2.5"), (0.0005, "0.0005"), (1e-7, "1e-07"),
            (.infinity, "+Inf"), (-.infinity, "-Inf"), (.nan, "NaN"), (1_800_000_000.5, "1800000000.5"),
        ]
        for (value, text) in cases {
            XCTAssertEqual(ExpositionWriter.format(value), text, "value \(value)")
        }
    }

    func testNoticesAreCountedByKindChannelAndResult() throws {
        let metrics = makeMetrics()
        let empty = try ParsedExposition(metrics.exposition(suspendedKeys: 0, trackedKeys: 0))
        XCTAssertEqual(empty.samples.filter { $0.name == "egress_milter_notices_total" }.count, 18)
        XCTAssertEqual(empty.value("egress_milter_notices_total", ["kind": "summary", "channel": "mail", "result": "failed"]), 0)

        metrics.recordNotice(kind: .suspension, channel: .mail, result: .sent)
        metrics.recordNotice(kind: .suspension, channel: .mail, result: .sent)
        metrics.recordNotice(kind: .limitTrip, channel: .command, result: .failed)
        metrics.recordNotice(kind: .summary, channel: .mail, result: .dropped)
        let parsed = try ParsedExposition(metrics.exposition(suspendedKeys: 0, trackedKeys: 0))
        XCTAssertEqual(parsed.value("egress_milter_notices_total", ["kind": "suspension", "channel": "mail", "result": "sent"]), 2)
        XCTAssertEqual(parsed.value("egress_milter_notices_total", ["kind": "limit_trip", "channel": "command", "result": "failed"]), 1)
        XCTAssertEqual(parsed.value("egress_milter_notices_total", ["kind": "summary", "channel": "mail", "result": "dropped"]), 1)
        XCTAssertEqual(parsed.value("egress_milter_notices_total", ["kind": "suspension", "channel": "command", "result": "sent"]), 0)
    }
}
