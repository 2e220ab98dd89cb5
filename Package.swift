// swift-tools-version:6.0
// Egress Milter: an outbound spam filter loaded by Postfix or Sendmail as a milter.
import PackageDescription

let package = Package(
    name: "EgressMilter",
    products: [
        .library(name: "Milter", targets: ["Milter"]),
        .library(name: "EgressCore", targets: ["EgressCore"]),
        .executable(name: "egress-milter", targets: ["egress-milter"]),
        .executable(name: "egress-sendmail", targets: ["egress-sendmail"]),
        .executable(name: "egressctl", targets: ["egressctl"]),
    ],
    targets: [
        // Debian's C libraries, found through pkg-config.
        .systemLibrary(name: "CMilter", pkgConfig: "milter", providers: [.apt(["libmilter-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        // C helpers for the variadic libmilter and syslog calls that Swift cannot import.
        .target(name: "CMilterShim", dependencies: ["CMilter"]),
        // C helper for libmicrohttpd's variadic MHD_start_daemon, which serves /metrics.
        .target(name: "CMicroHTTPDShim", dependencies: ["CMicroHTTPD"]),

        .target(name: "Milter", dependencies: ["CMilter", "CMilterShim"]),
        .target(name: "EgressCore", dependencies: ["CYAML", "CSQLite", "CPCRE2"]),
        // The daemon's Prometheus counters and their text exposition, apart from any socket.
        .target(name: "EgressMetrics", dependencies: ["EgressCore"]),
        .executableTarget(name: "egress-milter", dependencies: ["Milter", "EgressCore", "EgressMetrics", "CMilterShim", "CMicroHTTPDShim"]),
        // The admin command line: talks to the daemon's control socket, and has offline tools.
        .executableTarget(name: "egressctl", dependencies: ["EgressCore"]),
        // The submission wrapper installed as PHP's sendmail_path: stamps the submitting uid and script.
        .executableTarget(name: "egress-sendmail", dependencies: ["EgressCore"]),
        // Benchmarks run by bench/ scripts; built in release mode only there.
        .executableTarget(name: "limits-benchmark", dependencies: ["EgressCore"], path: "bench/LimitsBenchmark"),
        .executableTarget(name: "score-benchmark", dependencies: ["EgressCore"], path: "bench/ScoreBenchmark"),
        .executableTarget(name: "metrics-benchmark", dependencies: ["EgressMetrics"], path: "bench/MetricsBenchmark"),
        // A listener that MilterTests start in a child process, because smfi_main runs once per process.
        .executableTarget(name: "milter-test-listener", dependencies: ["Milter"], path: "Tests/MilterTestListener"),

        .testTarget(name: "MilterTests", dependencies: ["Milter"]),
        .testTarget(name: "EgressCoreTests", dependencies: ["EgressCore"]),
        .testTarget(name: "EgressMetricsTests", dependencies: ["EgressMetrics"]),
        .testTarget(name: "DaemonTests", dependencies: ["egress-milter"]),
        .testTarget(name: "EgressControlTests", dependencies: ["egressctl"]),
        .testTarget(name: "IntegrationTests", dependencies: ["EgressCore"]),
    ]
)
