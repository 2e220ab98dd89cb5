// The configuration and policy in force, shared by every session and swapped whole on reload.
// Sessions take one snapshot per message, so a reload never mixes two configurations in one
// decision.
import EgressCore
import Synchronization

struct ActivePolicy: Sendable {
    let configuration: Configuration
    let policy: Policy
    let loadedAt: ContinuousClock.Instant

    init(configuration: Configuration) {
        self.configuration = configuration
        self.policy = Policy(configuration: configuration)
        self.loadedAt = .now
    }
}

final class PolicySource: Sendable {
    private let active: Mutex<ActivePolicy>

    init(_ initial: ActivePolicy) {
        active = Mutex(initial)
    }

    var current: ActivePolicy {
        active.withLock { $0 }
    }

    func replace(with policy: ActivePolicy) {
        active.withLock { $0 = policy }
    }
}
