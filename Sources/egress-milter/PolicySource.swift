// The configuration and policy in force, shared by every session and swapped whole on reload.
// Sessions take one snapshot per message, so a reload never mixes two configurations in one
// decision. The rate limiter is the one object every policy shares, so counts and suspensions
// carry over a reload.
import EgressCore
import Synchronization

struct ActivePolicy: Sendable {
    let configuration: Configuration
    let policy: Policy

    init(configuration: Configuration, overrides: LimitOverrides, limiter: RateLimiter) {
        self.configuration = configuration
        self.policy = Policy(
            configuration: configuration, limiter: limiter, overrides: overrides, accounts: PasswdAccounts())
    }
}

final class PolicySource: Sendable {
    private let active: Mutex<ActivePolicy>
    let clock: DaemonClock

    init(_ initial: ActivePolicy, clock: DaemonClock) {
        active = Mutex(initial)
        self.clock = clock
    }

    var current: ActivePolicy {
        active.withLock { $0 }
    }

    func replace(with policy: ActivePolicy) {
        active.withLock { $0 = policy }
    }
}

/// Holds the policy source from the moment the state store is open; the session factory is
/// created earlier, together with the socket, while the daemon is still root.
final class PolicySourceSlot: Sendable {
    private let value = Mutex<PolicySource?>(nil)

    func fill(with source: PolicySource) {
        value.withLock { $0 = source }
    }

    var source: PolicySource {
        guard let source = value.withLock({ $0 }) else {
            preconditionFailure("a milter session started before the policy was ready")
        }
        return source
    }
}
