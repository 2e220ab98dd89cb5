// The metrics: section: its defaults, every key, IPv4 and IPv6 addresses, invalid values with
// file, line, column and key, a typo's suggestion, and the settings summary.

import Foundation
import XCTest
@testable import EgressCore

final class ConfigurationMetricsTests: XCTestCase {
    func testDefaultsAreOffOnLoopback() throws {
        let metrics = Configuration.defaults.metrics
        XCTAssertFalse(metrics.enabled)
        XCTAssertEqual(metrics.listen, "127.0.0.1:9899")
        XCTAssertEqual(metrics.path, "/metrics")
        let address = try XCTUnwrap(metrics.address)
        XCTAssertEqual(address.host, "127.0.0.1")
        XCTAssertEqual(address.port, 9899)
        XCTAssertFalse(address.isIPv6)
        XCTAssertTrue(address.isLoopback)
    }

    func testEveryKeyIsParsed() throws {
        let text = "metrics:\n  enabled: true\n  listen: \"[::1]:9100\"\n  path: /internal/prometheus\n"
        let metrics = try Configuration.parse(text, file: "t.yaml").metrics
        XCTAssertTrue(metrics.enabled)
        XCTAssertEqual(metrics.listen, "[::1]:9100")
        XCTAssertEqual(metrics.path, "/internal/prometheus")
        XCTAssertEqual(metrics.address, MetricsAddress(host: "::1", port: 9100, isIPv6: true))
    }

    func testAddressesParsed() throws {
        let cases: [(text: String, host: String, port: UInt16, isIPv6: Bool, isLoopback: Bool)] = [
            ("127.0.0.1:9899", "127.0.0.1", 9899, false, true),
            ("127.0.0.53:1", "127.0.0.53", 1, false, true),
            ("0.0.0.0:65535", "0.0.0.0", 65535, false, false),
            ("192.0.2.10:9899", "192.0.2.10", 9899, false, false),
            ("[::1]:9899", "::1", 9899, true, true),
            ("[::]:9899", "::", 9899, true, false),
            ("[2001:db8::5]:80", "2001:db8::5", 80, true, false),
        ]
        for item in cases {
            let address = try MetricsAddress(parsing: item.text)
            XCTAssertEqual(address.host, item.host, item.text)
            XCTAssertEqual(address.port, item.port, item.text)
            XCTAssertEqual(address.isIPv6, item.isIPv6, item.text)
            XCTAssertEqual(address.isLoopback, item.isLoopback, item.text)
            XCTAssertEqual(address.description, item.text)
        }
    }

    func testInvalidValuesNameFileLineAndKey() {
        let cases: [(String, String)] = [
            ("metrics:\n  listen: localhost:9899\n", "t.yaml:2:11: metrics.listen: invalid IPv4 address 'localhost' in 'localhost:9899'; expected a numeric address"),
            ("metrics:\n  listen: 127.0.0.1\n", "t.yaml:2:11: metrics.listen: invalid address '127.0.0.1'; expected HOST:PORT"),
            ("metrics:\n  listen: 127.0.0.1:0\n", "t.yaml:2:11: metrics.listen: invalid port '0' in '127.0.0.1:0'"),
            ("metrics:\n  listen: 127.0.0.1:65536\n", "metrics.listen: invalid port '65536'"),
            ("metrics:\n  listen: 127.0.0.1:http\n", "metrics.listen: invalid port 'http'"),
            ("metrics:\n  listen: 300.0.0.1:9899\n", "metrics.listen: invalid IPv4 address '300.0.0.1'"),
            ("metrics:\n  listen: \"::1:9899\"\n", "metrics.listen: invalid address '::1:9899'; expected HOST:PORT"),
            ("metrics:\n  listen: \"[::1]\"\n", "metrics.listen: invalid address '[::1]'; an IPv6 address needs brackets and a port"),
            ("metrics:\n  listen: \"[::g]:9899\"\n", "metrics.listen: invalid IPv6 address '::g'"),
            ("metrics:\n  listen: \"[127.0.0.1]:9899\"\n", "metrics.listen: invalid IPv6 address '127.0.0.1'"),
            ("metrics:\n  listen: \"\"\n", "metrics.listen: invalid address ''"),
            ("metrics:\n  path: metrics\n", "t.yaml:2:9: metrics.path: must start with '/'"),
            ("metrics:\n  path: \"/a b\"\n", "metrics.path: invalid path '/a b'"),
            ("metrics:\n  path: /metrics?x=1\n", "metrics.path: invalid path '/metrics?x=1'"),
            ("metrics:\n  enabled: yes\n", "t.yaml:2:12: metrics.enabled: expected true or false"),
            ("metrics:\n  enabled: \"true\"\n", "metrics.enabled: expected true or false"),
            ("metrics:\n  listn: 127.0.0.1:9899\n", "t.yaml:2:3: metrics.listn: unknown key; did you mean 'listen'?"),
            ("metrics: 9899\n", "t.yaml:1:10: metrics: expected a mapping with the keys enabled, listen, path"),
            ("metric:\n  enabled: true\n", "t.yaml:1:1: metric: unknown key; did you mean 'metrics'?"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try Configuration.parse(text, file: "t.yaml"), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text.debugDescription): \(error)")
            }
        }
    }

    func testSummaryReadsBack() throws {
        var configuration = Configuration.defaults
        configuration.metrics.enabled = true
        configuration.metrics.listen = "[::1]:9900"
        configuration.metrics.path = "/stats/egress"
        let summary = configuration.summary()
        XCTAssertTrue(summary.hasSuffix("metrics:\n  enabled: true\n  listen: \"[::1]:9900\"\n  path: /stats/egress\n"), summary)
        XCTAssertEqual(try Configuration.parse(summary, file: "summary"), configuration)
    }
}
