// The metrics endpoint of a running daemon behind a real Postfix. Messages are accepted, tagged
// by a scoring rule, held and rejected by sender rules and tempfailed by a rate limit. Then a
// scrape over loopback is parsed by Prometheus's own Python parser (prometheus_client). Its
// counts must match what was sent and what the daemon logged, and it must contain every
// metric the Grafana dashboard queries. A reload by SIGUSR1 and a failed one must show
// in the reload counters.
//
// The parser runs in python3: $EGRESS_PYTHON, else the first python3 on PATH or /usr/bin/python3
// that can import prometheus_client (Packaging/install-dependencies installs it).
import Foundation
import Glibc
import XCTest

final class MetricsTests: IntegrationTestCase {
    private var metricsPort: UInt16 = 0
    private static let tagMarker = "metrics-tag-marker"
    private static let limitRule = "metrics-senders"

    override func prepareEnvironment(_ environment: IntegrationEnvironment) throws {
        metricsPort = try freeLoopbackPort()
        // limit_weight 1, so the tagged message counts once in the limit like the others.
        environment.additionalDaemonConfiguration = """
            limits:
              - name: \(Self.limitRule)
                level: sender
                messages: [2/1h]
                action: tempfail
            scoring:
              limit_weight: 1
              rules:
                - name: METRICS_TAG_MARK
                  target: body
                  pattern: '\(Self.tagMarker)'
                  weight: 6.0
                  description: marker of the metrics integration test
            metrics:
              enabled: true
              listen: 127.0.0.1:\(metricsPort)
              path: /metrics

            """
    }

    func testScrapeCountsWhatWasSent() throws {
        let python = try locatePython()

        // Six messages, one of each action, and a third one from a sender whose limit is 2/1h.
        XCTAssertEqual(send(from: "metrics-accept@shop.example").outcome, .accepted)
        XCTAssertEqual(send(from: "metrics-tag@shop.example", body: "Hello, \(Self.tagMarker).\n").outcome, .accepted)
        XCTAssertEqual(send(from: RuleSender.hold).outcome, .accepted)
        XCTAssertEqual(send(from: RuleSender.reject).outcome, .rejected)
        let limited = "metrics-limited@shop.example"
        XCTAssertEqual(send(from: limited).outcome, .accepted)
        XCTAssertEqual(send(from: limited).outcome, .accepted)
        XCTAssertEqual(send(from: limited).outcome, .deferred)

        let scrape = try Scrape.fetch(python: python, port: metricsPort)
        XCTAssertEqual(scrape.status, 200)
        XCTAssertEqual(scrape.contentType, "text/plain; version=0.0.4; charset=utf-8")

        let expected = ["accept": 3, "tag": 1, "hold": 1, "reject": 1, "tempfail": 1]
        for (action, count) in expected {
            XCTAssertEqual(scrape.value("egress_milter_messages_total", ["path": "smtp", "action": action]), Double(count),
                           "action \(action): \(environment.daemon.log())")
            XCTAssertEqual(scrape.value("egress_milter_messages_total", ["path": "local", "action": action]), 0)
        }
        // The daemon's decision lines agree with the counters.
        let logged = Dictionary(grouping: environment.daemon.decisions(), by: { $0.action ?? "?" }).mapValues(\.count)
        XCTAssertEqual(logged, expected)

        XCTAssertEqual(scrape.value("egress_milter_rule_hits_total", ["symbol": "METRICS_TAG_MARK"]), 1)
        XCTAssertEqual(scrape.value("egress_milter_limit_trips_total", ["rule": Self.limitRule]), 1)
        XCTAssertEqual(scrape.value("egress_milter_suspended_keys"), 0)
        XCTAssertGreaterThanOrEqual(scrape.value("egress_milter_tracked_keys") ?? 0, 3)
        XCTAssertEqual(scrape.value("egress_milter_decision_failures_total"), 0)
        XCTAssertGreaterThan(scrape.value("egress_milter_scanned_bytes_total") ?? 0, 7 * 100)
        XCTAssertEqual(scrape.value("egress_milter_store_errors_total", ["store": "limits"]), 0)
        XCTAssertEqual(scrape.value("egress_milter_build_info", ["version": "0.1.0"]), 1)
        let startTime = try XCTUnwrap(scrape.value("egress_milter_start_time_seconds"))
        XCTAssertLessThanOrEqual(startTime, Date().timeIntervalSince1970)
        XCTAssertGreaterThan(startTime, Date().timeIntervalSince1970 - 600)

        // The histogram as the parser reads it: one family, cumulative buckets ending in +Inf.
        XCTAssertEqual(scrape.types["egress_milter_decision_duration_seconds"], "histogram")
        XCTAssertEqual(scrape.types["egress_milter_messages"], "counter")
        let buckets = scrape.samples.filter { $0.name == "egress_milter_decision_duration_seconds_bucket" }
        XCTAssertEqual(buckets.last?.labels["le"], "+Inf")
        XCTAssertEqual(buckets.map(\.value), buckets.map(\.value).sorted(), "buckets must be cumulative")
        XCTAssertEqual(buckets.last?.value, 7)
        XCTAssertEqual(scrape.value("egress_milter_decision_duration_seconds_count"), 7)
        XCTAssertGreaterThan(scrape.value("egress_milter_decision_duration_seconds_sum") ?? 0, 0)

        // Checked here, where the labelled counters have series: the dashboard's metrics.
        let sampleNames = Set(scrape.samples.map(\.name))
        let dashboard = repositoryRoot.appendingPathComponent("Packaging/grafana/egress-milter.json")
        let queried = try GrafanaDashboard.load(dashboard).metricNames
        XCTAssertGreaterThanOrEqual(queried.count, 10)
        for name in queried.sorted() {
            XCTAssertTrue(sampleNames.contains(name), "the dashboard queries \(name), which the daemon does not export")
        }
    }

    func testReloadsShowInCounters() throws {
        let python = try locatePython()
        let before = try Scrape.fetch(python: python, port: metricsPort)
        XCTAssertEqual(before.value("egress_milter_config_reloads_total"), 0)

        environment.daemon.send(signal: SIGUSR1)
        XCTAssertTrue(try waitForValue("egress_milter_config_reloads_total", 1, python: python), environment.daemon.log())
        XCTAssertEqual(try Scrape.fetch(python: python, port: metricsPort).value("egress_milter_config_reload_failures_total"), 0)

        // A broken file: the reload fails, the running configuration and the endpoint stay.
        let path = environment.daemon.configurationPath
        let original = try String(contentsOfFile: path, encoding: .utf8)
        try (original + "metric_typo: 1\n").write(toFile: path, atomically: true, encoding: .utf8)
        environment.daemon.send(signal: SIGUSR1)
        XCTAssertTrue(try waitForValue("egress_milter_config_reload_failures_total", 1, python: python), environment.daemon.log())
        XCTAssertEqual(try Scrape.fetch(python: python, port: metricsPort).value("egress_milter_config_reloads_total"), 2)
    }

    // MARK: Helpers

    private func send(from sender: String, body: String = "Hello from the metrics test.\n") -> SMTPDeliveryResult {
        let token = uniqueToken("metrics")
        return SMTPConnection.sendOne(
            port: environment.postfix.smtpPort, from: sender, to: ["friend@remote.example"],
            content: testMessage(from: sender, to: "friend@remote.example", token: token, body: body))
    }

    private func waitForValue(_ name: String, _ value: Double, python: String) throws -> Bool {
        try waitUntil(timeoutSeconds: 20, pollSeconds: 0.2) {
            try Scrape.fetch(python: python, port: metricsPort).value(name) == value
        }
    }

    /// Returns a python3 that can import prometheus_client, or fails the test with the fix.
    private func locatePython() throws -> String {
        var candidates: [String] = []
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["EGRESS_PYTHON"], !path.isEmpty {
            candidates.append(path)
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(directory)/python3")
        }
        candidates.append("/usr/bin/python3")
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            if let result = try? CommandRunner.run(candidate, ["-c", "import prometheus_client"], timeoutSeconds: 30), result.succeeded {
                return candidate
            }
        }
        throw CommandError(description: """
            no python3 with prometheus_client found (tried \(candidates.joined(separator: ", "))); \
            run Packaging/install-dependencies or set EGRESS_PYTHON
            """)
    }

    /// Returns a loopback TCP port that was free a moment ago.
    private func freeLoopbackPort() throws -> UInt16 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw CommandError(description: "socket failed: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 ? getsockname(descriptor, socketAddress, &length) : -1
            }
        }
        guard result == 0 else { throw CommandError(description: "bind failed: \(String(cString: strerror(errno)))") }
        return UInt16(bigEndian: address.sin_port)
    }
}

/// One scrape of the endpoint, fetched and parsed by prometheus_client in a python3 child.
struct Scrape: Decodable {
    struct Sample: Decodable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var status: Int
    var contentType: String
    /// Family name as the parser reports it (counters lose their _total suffix) to its type.
    var types: [String: String]
    var samples: [Sample]

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// The script prints the status, the Content-Type and every family and sample as JSON.
    /// JSON has no infinity, so a sample value of +Inf (none of the daemon's) comes out as 1e308.
    private static let script = """
        import json, sys, urllib.request
        from prometheus_client.parser import text_string_to_metric_families
        with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
            status = response.status
            content_type = response.headers.get("Content-Type")
            text = response.read().decode("utf-8")
        types, samples = {}, []
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for sample in family.samples:
                value = sample.value if sample.value != float("inf") else 1e308
                samples.append({"name": sample.name, "labels": sample.labels, "value": value})
        json.dump({"status": status, "contentType": content_type, "types": types, "samples": samples}, sys.stdout)
        """

    static func fetch(python: String, port: UInt16, path: String = "/metrics") throws -> Scrape {
        let result = try CommandRunner.run(python, ["-c", script, "http://127.0.0.1:\(port)\(path)"], timeoutSeconds: 30)
        guard result.succeeded else {
            throw CommandError(description: "scrape with prometheus_client failed (\(result.status)): \(result.standardError)")
        }
        return try JSONDecoder().decode(Scrape.self, from: Data(result.standardOutput.utf8))
    }
}

/// The metric names that the PromQL expressions and variable queries of a Grafana dashboard refer to.
struct GrafanaDashboard {
    var expressions: [String]

    static func load(_ url: URL) throws -> GrafanaDashboard {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        var expressions: [String] = []
        func walk(_ value: Any) {
            if let object = value as? [String: Any] {
                for (key, item) in object {
                    if key == "expr" || key == "query", let text = item as? String {
                        expressions.append(text)
                    } else {
                        walk(item)
                    }
                }
            } else if let array = value as? [Any] {
                array.forEach(walk)
            }
        }
        walk(json)
        return GrafanaDashboard(expressions: expressions)
    }

    /// Every `egress_milter_…` word in the expressions.
    var metricNames: Set<String> {
        var names = Set<String>()
        for expression in expressions {
            var current = ""
            for character in expression + " " {
                if character.isLetter || character.isNumber || character == "_" || character == ":" {
                    current.append(character)
                } else {
                    if current.hasPrefix("egress_milter_") {
                        names.insert(current)
                    }
                    current = ""
                }
            }
        }
        return names
    }
}
