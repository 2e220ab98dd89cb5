// The daemon's replies to control requests: status, show, top, suspend, release, the list of
// suspended keys, the outcome report after a release, and reload. Every key a request names
// is turned into the form the identity resolver builds (`IdentityResolver.canonicalKey`)
// before it is used, and the reply carries that form, so "sender:Carol@X.Example" suspends
// the key that Carol's messages carry. It works on decoded requests and returns encoded reply
// lines, so tests drive it without a socket; ControlServer only moves the lines.
//
// Every change an admin makes is durable before the reply says it happened (suspensions and
// releases go through the limiter's store first, held-message records through theirs) and
// gets one notice line naming the key and the peer's uid. A store failure is an error reply
// that says nothing changed. It never acts on Postfix's queue itself: the daemon's user may
// not run postsuper, so egressctl does that and reports back with held-outcome.

import EgressCore
import Foundation
import Glibc

/// A request the daemon refuses, with the reason for the admin.
struct ControlRequestError: Error, CustomStringConvertible {
    var description: String
}

final class ControlHandler: Sendable {
    /// Rows `top` returns when the request names no count, and the most it returns.
    static let defaultTopCount = 10
    static let maximumTopCount = 1000
    /// Reason of an admin's suspension when egressctl sends none.
    static let defaultSuspensionReason = "suspended by an admin"

    private let policySource: PolicySource
    private let recorder: DecisionRecorder
    private let runtime: DaemonRuntime
    private let reloadConfiguration: @Sendable () -> ReloadReport
    private let logger: Logger
    /// Builds and sends the daily summary; nil in tests that do not need it.
    private let notifier: Notifier?

    init(policySource: PolicySource, recorder: DecisionRecorder, runtime: DaemonRuntime, logger: Logger,
         notifier: Notifier? = nil, reload: @escaping @Sendable () -> ReloadReport) {
        self.policySource = policySource
        self.recorder = recorder
        self.runtime = runtime
        self.logger = logger
        self.notifier = notifier
        self.reloadConfiguration = reload
    }

    /// Returns the reply line for one request line.
    func reply(to line: [UInt8], from peer: ControlPeer?) -> [UInt8] {
        let request: ControlRequest
        do {
            request = try ControlProtocol.decodeLine(ControlRequest.self, from: line)
        } catch {
            return Self.errorLine("invalid request: \(Self.describe(decodingError: error)); expected one JSON object per line such as {\"version\":\(ControlProtocol.version),\"command\":\"status\"}")
        }
        guard request.version == ControlProtocol.version else {
            return Self.errorLine("this daemon speaks control protocol version \(ControlProtocol.version), the request has version \(request.version); use the egressctl of the same release, or restart the daemon after an upgrade")
        }
        let who = peer?.description ?? "an unknown peer"
        switch request.command {
        case .status:
            return Self.encode { status() }
        case .show:
            return Self.encode { try show(key: try requireKey(request)) }
        case .top:
            return Self.encode { try top(order: request.order ?? .messages, level: request.level, count: request.count) }
        case .suspend:
            return Self.encode { try suspend(key: try requireKey(request), reason: request.reason, by: who, adminUID: peer?.uid) }
        case .release:
            return Self.encode { try release(key: try requireKey(request), by: who) }
        case .suspended:
            return Self.encode { try suspended() }
        case .heldOutcome:
            return Self.encode { try recordOutcomes(key: try requireKey(request), request.outcomes ?? [], by: who) }
        case .reload:
            logger.info("reload requested over the control socket by \(who)")
            return Self.encode { reloadConfiguration() }
        case .summary:
            return Self.encode { try summary(send: request.send ?? false, by: who) }
        }
    }

    // MARK: Commands

    func status() -> StatusReport {
        let limiter = policySource.current.policy.limiter
        var heldCount = 0
        if let store = recorder.heldMessages {
            do {
                heldCount = try store.count()
            } catch {
                runtime.storeFailed(DaemonRuntime.heldStoreName, error: "\(error)", at: Date())
            }
        }
        let now = Date()
        var report = StatusReport(
            version: egressMilterVersion, pid: getpid(), startedAt: runtime.startedAt,
            uptimeSeconds: max(0, Int(now.timeIntervalSince(runtime.startedAt))),
            configuration: runtime.configurationSource, configurationLoadedAt: runtime.configurationLoadedAt,
            reloadsApplied: runtime.reloadsApplied, reloadsRefused: runtime.reloadsRefused,
            reloadError: runtime.reloadError, listen: runtime.listen,
            controlSocket: runtime.controlSocket, decided: recorder.journal.actionCounts,
            trackedKeys: limiter.trackedKeyCount, suspendedKeys: limiter.suspensions().count,
            heldMessages: heldCount, stores: runtime.stores)
        report.notifications = notifier?.health
        return report
    }

    func show(key: String) throws -> KeyReport {
        let active = policySource.current
        return KeyReport(
            key: key,
            suspension: active.policy.limiter.suspension(of: key).map(SuspensionReport.init),
            limits: active.policy.limitUsage(for: key, now: policySource.clock.now()),
            recentDecisions: recorder.journal.recentDecisions(for: key),
            heldMessages: try heldMessages(forKey: key))
    }

    func top(order: TopOrder, level: String?, count: Int?) throws -> TopReport {
        if let level, !IdentityLevel.allCases.contains(where: { $0.rawValue == level }) {
            throw ControlRequestError(description: "unknown level '\(level)'; levels: \(IdentityLevel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let rowCount = count ?? Self.defaultTopCount
        guard (1...Self.maximumTopCount).contains(rowCount) else {
            throw ControlRequestError(description: "count must be from 1 to \(Self.maximumTopCount), not \(rowCount)")
        }

        let active = policySource.current
        let now = policySource.clock.now()
        let belongs: (String) -> Bool = { key in level == nil || ControlProtocol.level(ofKey: key) == level }
        var activity: [String: KeyActivity] = [:]
        for entry in active.policy.keyActivity(level: level, now: now) {
            activity[entry.key] = entry
        }
        var held: [String: Int] = [:]
        if let store = recorder.heldMessages {
            held = try readStore { try store.countsByKey(level: level) }
        }
        var candidates = Set(activity.keys).union(held.keys)
        if order == .score {
            candidates.formUnion(recorder.journal.keys.filter(belongs))
        }
        let scores = recorder.journal.highestScores(for: Array(candidates))

        func metric(_ key: String) -> Double {
            switch order {
            case .messages: return Double(activity[key]?.messages ?? 0)
            case .recipients: return Double(activity[key]?.recipients ?? 0)
            case .score: return scores[key] ?? 0
            case .held: return Double(held[key] ?? 0)
            }
        }
        // Idle keys stay tracked until their windows drain; "now" means they sent something.
        let ranked = candidates.filter { metric($0) > 0 }
            .sorted { (metric($0), $1) > (metric($1), $0) }
            .prefix(rowCount)
        let rows = ranked.map { key in
            TopRow(key: key, limits: active.policy.limitUsage(for: key, now: now), heldMessages: held[key] ?? 0,
                   highestScore: scores[key] ?? 0, suspended: active.policy.limiter.suspension(of: key) != nil)
        }
        return TopReport(order: order, level: level, rows: rows)
    }

    /// Lists every suspended key, oldest first, with its recorded held messages. Unlike top,
    /// it includes idle keys.
    func suspended() throws -> SuspendedReport {
        let suspensions = policySource.current.policy.limiter.suspensions()
        var held: [String: Int] = [:]
        if let store = recorder.heldMessages, !suspensions.isEmpty {
            held = try readStore { try store.countsByKey(level: nil) }
        }
        return SuspendedReport(keys: suspensions.map { suspension in
            SuspendedKey(suspension: SuspensionReport(suspension), heldMessages: held[suspension.key] ?? 0)
        })
    }

    func suspend(key: String, reason: String?, by who: String, adminUID: UInt32? = nil) throws -> SuspendReport {
        let reason = try Self.checkReason(reason) ?? Self.defaultSuspensionReason
        let limiter = policySource.current.policy.limiter
        if let existing = limiter.suspension(of: key) {
            logger.info("suspend of \(key) by \(who): already suspended since \(Self.format(existing.since)): \(existing.reason)")
            return SuspendReport(key: key, suspension: SuspensionReport(existing), alreadySuspended: true)
        }
        do {
            try limiter.suspend(key, reason: reason, now: policySource.clock.now(), adminUID: adminUID)
            runtime.storeWritten(DaemonRuntime.limitStoreName, at: Date())
        } catch {
            runtime.storeFailed(DaemonRuntime.limitStoreName, error: "\(error)", at: Date())
            logger.error("suspend of \(key) by \(who) failed: \(error); nothing changed")
            throw ControlRequestError(description: "cannot suspend \(key): \(error); nothing changed")
        }
        logger.notice("suspended \(key) by \(who): reason=\(logValue(reason)); its mail is held until released")
        guard let suspension = limiter.suspension(of: key) else {
            // Only a release between the two calls removes it, and that was logged.
            throw ControlRequestError(description: "\(key) was released while it was being suspended")
        }
        notifier?.recordSuspension(suspension, by: who)
        return SuspendReport(key: key, suspension: SuspensionReport(suspension), alreadySuspended: false)
    }

    func release(key: String, by who: String) throws -> ReleaseReport {
        let limiter = policySource.current.policy.limiter
        let existing = limiter.suspension(of: key)
        if let existing {
            do {
                try limiter.release(key, now: policySource.clock.now())
                runtime.storeWritten(DaemonRuntime.limitStoreName, at: Date())
            } catch {
                runtime.storeFailed(DaemonRuntime.limitStoreName, error: "\(error)", at: Date())
                logger.error("release of \(key) by \(who) failed: \(error); it stays suspended")
                throw ControlRequestError(description: "cannot release \(key): \(error); it stays suspended")
            }
            notifier?.recordRelease(key: key, at: policySource.clock.now(), by: who)
            logger.notice("released \(key) by \(who): suspended since \(Self.format(existing.since)) reason=\(logValue(existing.reason)); its counters start afresh")
        } else {
            logger.info("release of \(key) by \(who): it was not suspended")
        }
        return ReleaseReport(key: key, liftedSuspension: existing.map(SuspensionReport.init),
                             heldMessages: try heldMessages(forKey: key))
    }

    /// Logs what egressctl did with each held message of `key` and forgets the ones that
    /// left the hold queue. Queue IDs not recorded under the key are ignored.
    func recordOutcomes(key: String, _ outcomes: [HeldMessageOutcome], by who: String) throws -> HeldOutcomeReport {
        guard let store = recorder.heldMessages else {
            return HeldOutcomeReport(forgotten: 0)
        }
        let recorded = Set(try heldMessages(forKey: key).map(\.queueID))
        var ended: [String] = []
        for outcome in outcomes where recorded.contains(outcome.queueID) {
            let detail = outcome.detail.map { ": \($0)" } ?? ""
            switch outcome.action {
            case .delivered:
                logger.notice("\(outcome.queueID): held message of \(key) released for delivery by \(who)")
            case .deleted:
                logger.notice("\(outcome.queueID): held message of \(key) deleted by \(who)")
            case .missing:
                logger.notice("\(outcome.queueID): held message of \(key) is no longer in the queue; record dropped")
            case .notHeld:
                logger.notice("\(outcome.queueID): held message of \(key) is no longer on hold; record dropped")
            case .otherMessage:
                logger.notice("\(outcome.queueID): the queue ID now names another message than the one held for \(key); record dropped")
            case .failed:
                logger.warning("\(outcome.queueID): release of the held message of \(key) by \(who) failed\(detail); it stays held")
            }
            if outcome.endsRecord {
                ended.append(outcome.queueID)
            }
        }
        let forgotten = try readStore { try store.forget(queueIDs: ended) }
        return HeldOutcomeReport(forgotten: forgotten)
    }

    func summary(send: Bool, by who: String) throws -> SummaryReport {
        guard let notifier else {
            throw ControlRequestError(description: "this daemon runs without the notifier")
        }
        if send {
            logger.info("daily summary requested over the control socket by \(who)")
        }
        return notifier.summary(send: send)
    }

    // MARK: Helpers

    private func heldMessages(forKey key: String) throws -> [HeldMessage] {
        guard let store = recorder.heldMessages else { return [] }
        return try readStore { try store.messages(forKey: key) }
    }

    /// Runs a held-store operation; a failure marks the store unhealthy and becomes an error
    /// reply.
    private func readStore<Value>(_ body: () throws -> Value) throws -> Value {
        do {
            let value = try body()
            return value
        } catch {
            runtime.storeFailed(DaemonRuntime.heldStoreName, error: "\(error)", at: Date())
            throw ControlRequestError(description: "the held-message store failed: \(error)")
        }
    }

    /// Returns the request's key in the form the active identity settings build it.
    private func requireKey(_ request: ControlRequest) throws -> String {
        guard let key = request.key else {
            throw ControlRequestError(description: "\(request.command.rawValue) needs a key")
        }
        do {
            return try policySource.current.policy.identityResolver.canonicalKey(key)
        } catch let error as IdentityKeyError {
            throw ControlRequestError(description: error.description)
        }
    }

    /// Returns the reason when it is fit for a log line, nil when none was given.
    private static func checkReason(_ reason: String?) throws -> String? {
        guard let reason, !reason.isEmpty else { return nil }
        guard reason.utf8.count <= ControlProtocol.maximumReasonBytes else {
            throw ControlRequestError(description: "the reason is \(reason.utf8.count) bytes long; the maximum is \(ControlProtocol.maximumReasonBytes)")
        }
        guard !reason.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ControlRequestError(description: "the reason contains a control character such as a line break")
        }
        return reason
    }

    private static func encode<Result: Codable & Sendable>(_ body: () throws -> Result) -> [UInt8] {
        do {
            return try ControlProtocol.encodeLine(ControlReply(result: try body()))
        } catch {
            return errorLine("\(error)")
        }
    }

    static func errorLine(_ message: String) -> [UInt8] {
        // JSONEncoder fails only on values JSON cannot hold (such as a NaN double), which a
        // reply of one string does not contain; the fallback keeps the line valid JSON anyway.
        (try? ControlProtocol.encodeLine(ControlReply<EmptyResult>(error: message)))
            ?? Array("{\"ok\":false,\"error\":\"internal error\"}\n".utf8)
    }

    private static func describe(decodingError error: Error) -> String {
        guard let decoding = error as? DecodingError else { return "\(error)" }
        switch decoding {
        case .dataCorrupted(let context):
            return context.debugDescription
        case .keyNotFound(let key, _):
            return "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "invalid value of '\(path)': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
