// The daemon's facts about itself for `egressctl status`: when it started, which
// configuration is in force since when, how the last reload went, and whether its two state
// stores write. The reload, checkpoint and session code report here; the control handler reads.
// Reloads and store failures also count in the Prometheus metrics, when the daemon serves them.
//
// Thread-safe: one mutex around plain values. It never logs; the code that reports a failure
// logs it.

import EgressCore
import EgressMetrics
import Foundation
import Synchronization

final class DaemonRuntime: Sendable {
    /// Names of the stores in status output.
    static let limitStoreName = "limits"
    static let heldStoreName = "held"

    private struct State {
        var configurationSource: String
        var configurationLoadedAt: Date
        var reloadsApplied = 0
        var reloadsRefused = 0
        var reloadError: String?
        var stores: [StoreHealth]
    }

    let startedAt: Date
    let listen: String
    let controlSocket: String
    private let state: Mutex<State>
    /// The Prometheus counters; nil counts nothing.
    private let metrics: DaemonMetrics?

    init(startedAt: Date, listen: String, controlSocket: String, configurationSource: String,
         limitStorePath: String?, heldStorePath: String?, metrics: DaemonMetrics? = nil) {
        self.startedAt = startedAt
        self.metrics = metrics
        self.listen = listen
        self.controlSocket = controlSocket
        state = Mutex(State(
            configurationSource: configurationSource, configurationLoadedAt: startedAt,
            stores: [
                StoreHealth(name: Self.limitStoreName, path: limitStorePath),
                StoreHealth(name: Self.heldStoreName, path: heldStorePath),
            ]))
    }

    var configurationSource: String { state.withLock { $0.configurationSource } }
    var configurationLoadedAt: Date { state.withLock { $0.configurationLoadedAt } }
    /// Reloads that put a new configuration in force, and reloads that failed and kept the
    /// running one. The reload metric counts both.
    var reloadsApplied: Int { state.withLock { $0.reloadsApplied } }
    var reloadsRefused: Int { state.withLock { $0.reloadsRefused } }
    var reloadError: String? { state.withLock { $0.reloadError } }
    var stores: [StoreHealth] { state.withLock { $0.stores } }

    func reloadSucceeded(source: String, at time: Date) {
        state.withLock { state in
            state.configurationSource = source
            state.configurationLoadedAt = time
            state.reloadsApplied &+= 1
            state.reloadError = nil
        }
        metrics?.recordReload(succeeded: true)
    }

    func reloadFailed(_ error: String) {
        state.withLock { state in
            state.reloadError = error
            state.reloadsRefused &+= 1
        }
        metrics?.recordReload(succeeded: false)
    }

    /// Marks a store healthy after a successful write.
    func storeWritten(_ name: String, at time: Date) {
        updateStore(name) { store in
            store.healthy = true
            store.error = nil
            store.failedAt = nil
            store.lastWriteAt = time
        }
    }

    /// Marks a store unhealthy until its next successful write.
    func storeFailed(_ name: String, error: String, at time: Date) {
        updateStore(name) { store in
            store.healthy = false
            store.error = error
            store.failedAt = time
        }
        metrics?.recordStoreError(store: name)
    }

    private func updateStore(_ name: String, _ change: (inout StoreHealth) -> Void) {
        state.withLock { state in
            if let index = state.stores.firstIndex(where: { $0.name == name }) {
                change(&state.stores[index])
            }
        }
    }
}
