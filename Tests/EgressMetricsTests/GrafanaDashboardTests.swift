// The packaged Grafana dashboard: well-formed JSON for import, with the schema version and the
// DS_PROMETHEUS input that every panel and query uses. Every metric name in its queries must
// be one that DaemonMetrics exports, so no panel stays empty because of a typo or a rename.
import EgressCore
import EgressMetrics
import Foundation
import XCTest

final class GrafanaDashboardTests: XCTestCase {
    private static let dashboardURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Packaging/grafana/egress-milter.json")

    private func loadDashboard() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.dashboardURL))
        return try XCTUnwrap(object as? [String: Any], "the dashboard must be a JSON object")
    }

    /// Returns every string under a key named `key`, anywhere in the JSON.
    private func strings(forKey key: String, in value: Any) -> [String] {
        if let object = value as? [String: Any] {
            return object.flatMap { entry -> [String] in
                if entry.key == key, let text = entry.value as? String {
                    return [text]
                }
                return strings(forKey: key, in: entry.value)
            }
        }
        if let array = value as? [Any] {
            return array.flatMap { strings(forKey: key, in: $0) }
        }
        return []
    }

    func testDashboardIsImportable() throws {
        let dashboard = try loadDashboard()
        XCTAssertEqual(dashboard["schemaVersion"] as? Int, 39)
        XCTAssertEqual(dashboard["uid"] as? String, "egress-milter")
        let inputs = try XCTUnwrap(dashboard["__inputs"] as? [[String: Any]])
        XCTAssertEqual(inputs.map { $0["name"] as? String }, ["DS_PROMETHEUS"])
        XCTAssertEqual(inputs.first?["pluginId"] as? String, "prometheus")

        let panels = try XCTUnwrap(dashboard["panels"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(panels.count, 8)
        XCTAssertEqual(Set(panels.compactMap { $0["id"] as? Int }).count, panels.count, "panel ids must be unique")
        // Every datasource reference is the input, so the import requests one Prometheus.
        let uids = strings(forKey: "uid", in: dashboard["panels"] as Any)
        XCTAssertFalse(uids.isEmpty)
        XCTAssertEqual(Set(uids), ["${DS_PROMETHEUS}"])
        for panel in panels {
            let targets = try XCTUnwrap(panel["targets"] as? [[String: Any]], "panel \(panel["title"] ?? "?")")
            XCTAssertFalse(targets.isEmpty, "panel \(panel["title"] ?? "?") has no query")
        }
    }

    func testQueriesUseOnlyExportedMetrics() throws {
        let metrics = DaemonMetrics(startTime: Date(), version: "test")
        // Labelled counters list their series only once counted.
        metrics.recordDecision(path: .smtp, action: .tag, symbols: ["GTUBE"], limitTrips: ["accounts"],
                               seconds: 0.002, scannedBytes: 10)
        let exported = Set(metrics.exposition(suspendedKeys: 0, trackedKeys: 0)
            .split(separator: "\n")
            .filter { !$0.hasPrefix("#") }
            .map { line in String(line.prefix(while: { $0 != "{" && $0 != " " })) })

        let dashboard = try loadDashboard()
        let queries = strings(forKey: "expr", in: dashboard) + strings(forKey: "query", in: dashboard)
        XCTAssertGreaterThanOrEqual(queries.count, 10)
        var queried = Set<String>()
        for query in queries {
            let words = query.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") })
            queried.formUnion(words.filter { $0.hasPrefix("egress_milter_") }.map(String.init))
        }
        for name in queried.sorted() {
            XCTAssertTrue(exported.contains(name), "the dashboard queries \(name), which DaemonMetrics does not export")
        }
        // The panels the dashboard promises.
        for name in ["egress_milter_messages_total", "egress_milter_rule_hits_total", "egress_milter_limit_trips_total",
                     "egress_milter_suspended_keys", "egress_milter_tracked_keys",
                     "egress_milter_decision_duration_seconds_bucket", "egress_milter_config_reloads_total"] {
            XCTAssertTrue(queried.contains(name), "no panel queries \(name)")
        }
    }
}
