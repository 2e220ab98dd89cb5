// The metrics endpoint's part of the daemon's start-up. The socket is bound while the daemon is
// root, before the milter socket, so any port works and a port in use stops the start-up at
// once. The HTTP server starts after the privileges are gone and the rate limiter is open,
// because every scrape reads the limiter's gauges.
//
// A metrics socket that cannot be bound stops the start-up: an admin who turned the endpoint
// on would otherwise find out only from a silent dashboard. `metrics.enabled: false` (the
// default) turns it off.

import EgressCore
import EgressMetrics
import Foundation

extension Daemon {
    /// Binds the metrics socket; nil when metrics are off. Call it as root, before the
    /// privileges go.
    static func openMetricsListener(_ settings: MetricsSettings, logger: Logger) throws -> MetricsListener? {
        guard settings.enabled else { return nil }
        guard let address = settings.address else {
            // The decoder accepts only addresses that parse, so this is a programmer error.
            preconditionFailure("metrics.listen '\(settings.listen)' passed validation but does not parse")
        }
        if !address.isLoopback {
            logger.warning("metrics: \(address) is not a loopback address and the endpoint has no authentication; restrict it with a firewall or a reverse proxy")
        }
        return try MetricsListener.open(address)
    }

    /// Starts serving the metrics on the listener; nil when metrics are off.
    static func startMetricsServer(_ listener: MetricsListener?, settings: MetricsSettings, metrics: DaemonMetrics,
                                   limiter: RateLimiter, logger: Logger) throws -> MetricsServer? {
        guard let listener else { return nil }
        let endpoint = MetricsEndpoint(path: settings.path) {
            metrics.exposition(suspendedKeys: limiter.suspensions().count, trackedKeys: limiter.trackedKeyCount)
        }
        let server = try MetricsServer(listener: listener, endpoint: endpoint)
        logger.notice("metrics served at http://\(listener.address)\(settings.path)")
        return server
    }
}
