// Records each decided message for the admin. The in-memory journal keeps recent decisions
// per key and counts per action. For a held message, the held-message store keeps its queue ID
// under every key of its identity, so `egressctl release KEY --deliver` finds it later.
//
// It must never change what happens to the message: it runs after the verdict was applied,
// and a failed write is logged (queue ID first) and marks the store unhealthy in status, while
// the message stays held in Postfix's hold queue, where postsuper still reaches it.
// It also counts each decision in the Prometheus metrics, when the daemon serves them.

import EgressCore
import EgressMetrics
import Foundation
import Synchronization

final class DecisionRecorder: Sendable {
    let journal: DecisionJournal
    private let heldStore = Mutex<HeldMessageStore?>(nil)
    private let runtime = Mutex<DaemonRuntime?>(nil)
    private let logger: Logger
    /// The Prometheus counters; nil counts nothing.
    let metrics: DaemonMetrics?

    init(journal: DecisionJournal = DecisionJournal(), logger: Logger, metrics: DaemonMetrics? = nil) {
        self.journal = journal
        self.logger = logger
        self.metrics = metrics
    }

    /// Connects the store once it is open (after the daemon dropped root). Messages held
    /// before then are not recorded.
    func attach(heldStore store: HeldMessageStore, runtime status: DaemonRuntime) {
        heldStore.withLock { $0 = store }
        runtime.withLock { $0 = status }
    }

    var heldMessages: HeldMessageStore? {
        heldStore.withLock { $0 }
    }

    /// Records a decided message. `time` is the wall clock, which the admin reads.
    func record(facts: MessageFacts, verdict: Verdict, time: Date) {
        let keys = verdict.identity.keys.map(\.description)
        let record = DecisionRecord(
            time: time, queueID: facts.queueID, action: verdict.action.rawValue, reason: verdict.reason,
            path: facts.path.rawValue, sender: facts.envelopeSender, recipients: facts.recipients.count,
            score: verdict.score, identity: verdict.identity.description)
        journal.record(record, action: verdict.action, keys: keys)

        guard verdict.action == .hold, let store = heldMessages else { return }
        guard let queueID = facts.queueID, !queueID.isEmpty else {
            logger.warning("NOQUEUE: held message of \(verdict.identity) has no queue ID; egressctl release cannot find it, use postqueue -p")
            return
        }
        let held = HeldMessage(
            queueID: queueID, heldAt: time, sender: facts.envelopeSender, recipients: facts.recipients.count,
            reason: verdict.quarantineReason ?? verdict.reason, identity: verdict.identity.description)
        do {
            try store.record(held)
            runtime.withLock { $0 }?.storeWritten(DaemonRuntime.heldStoreName, at: time)
        } catch {
            logger.error("\(queueID): cannot record the held message for egressctl release: \(error); it stays in the hold queue")
            runtime.withLock { $0 }?.storeFailed(DaemonRuntime.heldStoreName, error: "\(error)", at: time)
        }
    }

    /// Counts a message whose decision or its application failed; a `StateStoreError` also
    /// counts as an error of the limits store, the one a decision writes.
    func recordFailure(_ error: (any Error)? = nil) {
        journal.recordFailure()
        metrics?.recordDecisionFailure()
        if error is StateStoreError {
            metrics?.recordStoreError(store: DaemonRuntime.limitStoreName)
        }
    }

    /// Counts a decided message in the metrics. `startedAt` is when its MAIL FROM arrived (nil
    /// when unknown), and the latency runs from there to this call at the end of the
    /// end-of-message step. `bytes` are its header and body bytes.
    func recordMetrics(facts: MessageFacts, verdict: Verdict, startedAt: ContinuousClock.Instant?, bytes: Int) {
        guard let metrics else { return }
        let seconds = startedAt.map { start in
            let elapsed = ContinuousClock.now - start
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        metrics.recordDecision(path: facts.path, action: verdict.action, symbols: verdict.symbols,
                               limitTrips: verdict.trippedLimits.map(\.rule), seconds: seconds, scannedBytes: bytes)
    }
}
