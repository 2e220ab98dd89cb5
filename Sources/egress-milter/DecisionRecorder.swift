// Records each decided message for the admin. The in-memory journal keeps recent decisions
// per key and counts per action. For a held message, the held-message store keeps its queue ID
// under every key of its identity, so `egressctl release KEY --deliver` finds it later.
//
// It must never change what happens to the message: it runs after the verdict was applied,
// and a failed write is logged (queue ID first) and marks the store unhealthy in status, while
// the message stays held in Postfix's hold queue, where postsuper still reaches it.

import EgressCore
import Foundation
import Synchronization

final class DecisionRecorder: Sendable {
    let journal: DecisionJournal
    private let heldStore = Mutex<HeldMessageStore?>(nil)
    private let runtime = Mutex<DaemonRuntime?>(nil)
    private let logger: Logger

    init(journal: DecisionJournal = DecisionJournal(), logger: Logger) {
        self.journal = journal
        self.logger = logger
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

    /// Counts a message whose decision or its application failed.
    func recordFailure() {
        journal.recordFailure()
    }
}
