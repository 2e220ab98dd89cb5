// Sends the admin's notices and the daily summary from one worker thread, so a slow MTA or
// command never delays a decision: milter threads only record samples and append a job to
// a bounded queue.
//
// Per job the worker claims the notice in `NoticeLedger` (one per key and kind per period,
// durable), composes it, pipes it to `sendmail -i -f FROM -- TO...` and runs the configured
// command with EGRESS_* variables. Each run has a timeout, after which the child is killed.
// It must never crash or block mail: every failure is logged and the job dropped. A full
// queue drops new jobs, with one log line per hundred dropped. One notice line is logged per notice
// sent. The notice mail carries the seal of `NoticeSeal`, which the session checks when the
// mail comes back through the milter.
//
// Admin suspensions (`egressctl suspend`) send no notice: the admin who ran it knows, and
// the log has a line for it. Every suspension, by a rule or an admin, and every release is
// written to the suspension history in the ledger's file, so the daily summary lists the
// suspensions that began in its period, released ones included. Each mail and command run
// is counted in `egress_milter_notices_total` and in the health that `egressctl status`
// shows. NOTE: settings are read per job, so a reload applies to the next notice; the
// summary time is read at every wake-up.

import EgressCore
import EgressMetrics
import Foundation
import Glibc
import Synchronization

final class Notifier: Sendable {
    /// Jobs waiting at most; a burst of suspensions beyond it loses its notices.
    static let maximumQueuedJobs = 1000
    /// Bytes of a program's output kept for the debug log.
    static let maximumOutputBytes = 16 * 1024
    /// Seconds the worker sleeps at most, so it notices the summary time after a reload.
    static let wakeIntervalSeconds = 30.0
    /// Seconds of activity a summary covers.
    static let summarySpanSeconds = 86_400.0
    /// Seconds `egressctl summary --send` waits for the worker: below egressctl's reply
    /// timeout of 60 s, so the admin gets a reply even when sendmail hangs.
    static let summaryReplyWaitSeconds = 50.0
    /// Ledger kind of the daily summary, keyed by local date.
    static let summaryKind = "daily-summary"

    enum Job: Sendable {
        /// `action` is the tripped rule's action, for a limit trip.
        case notice(SenderNotice.Kind, key: String, reason: String, action: Action?, identity: String, queueID: String?,
                    time: Date)
        case summary(reply: SummaryReplySlot)

        var metricKind: DaemonMetrics.NoticeKind {
            switch self {
            case .notice(.suspension, _, _, _, _, _, _): return .suspension
            case .notice(.limitTrip, _, _, _, _, _, _): return .limitTrip
            case .summary: return .summary
            }
        }
    }

    private struct Queue {
        var jobs: [Job] = []
        var dropped = 0
        var stopped = false
    }

    let seal: NoticeSeal
    let activity: SenderActivity
    private let policySource: PolicySource
    private let recorder: DecisionRecorder
    private let ledger: NoticeLedger?
    private let logger: Logger
    private let hostname: String
    private let queue = Mutex(Queue())
    private let condition = NSCondition()
    private let healthState = Mutex(NotificationHealth())

    init(policySource: PolicySource, recorder: DecisionRecorder, ledger: NoticeLedger?, logger: Logger,
         seal: NoticeSeal = NoticeSeal(), activity: SenderActivity = SenderActivity(), hostname: String = Notifier.hostname()) {
        self.policySource = policySource
        self.recorder = recorder
        self.ledger = ledger
        self.logger = logger
        self.seal = seal
        self.activity = activity
        self.hostname = hostname
    }

    private var settings: NotificationSettings {
        policySource.current.configuration.notifications
    }

    // MARK: Milter threads

    /// Records a decided message's samples and queues the notices it causes. Cheap: a
    /// dictionary update per identity key and, rarely, a queue append.
    func observe(facts: MessageFacts, verdict: Verdict, time: Date) {
        let keys = verdict.identity.keys.map(\.description)
        let subject = facts.headers.last { $0.name.lowercased() == "subject" }.map { SenderActivity.decodeSubject($0.value) }
        activity.record(keys: keys, subject: subject, recipients: facts.recipients, action: verdict.action,
                        trips: verdict.trippedLimits, time: time)
        for suspension in verdict.newSuspensions {
            recordSuspension(suspension, by: nil)
        }

        let settings = self.settings
        guard settings.isEnabled else { return }
        let identity = verdict.identity.description
        for suspension in verdict.newSuspensions {
            enqueue(.notice(.suspension, key: suspension.key, reason: suspension.reason, action: nil, identity: identity,
                            queueID: facts.queueID, time: time))
        }
        guard settings.onLimitTrip else { return }
        let suspended = Set(verdict.newSuspensions.map(\.key))
        var seen = Set<String>()
        for trip in verdict.trippedLimits where !suspended.contains(trip.key) && seen.insert(trip.key).inserted {
            enqueue(.notice(.limitTrip, key: trip.key, reason: trip.description, action: trip.action, identity: identity,
                            queueID: facts.queueID, time: time))
        }
    }

    func enqueue(_ job: Job) {
        let accepted = queue.withLock { state -> Bool in
            guard !state.stopped else { return false }
            guard state.jobs.count < Self.maximumQueuedJobs else {
                state.dropped += 1
                if state.dropped % 100 == 1 {
                    logger.error("notification queue full (\(Self.maximumQueuedJobs) jobs); \(state.dropped) notices dropped so far")
                }
                countDropped(job)
                return false
            }
            state.jobs.append(job)
            return true
        }
        if accepted {
            condition.lock()
            condition.signal()
            condition.unlock()
        }
    }

    // MARK: Worker

    /// Starts the worker thread.
    func start() {
        let thread = Thread { [self] in
            run()
        }
        thread.name = "notifier"
        thread.start()
    }

    /// Stops the worker after the job in progress; queued jobs are dropped.
    func stop() {
        queue.withLock { $0.stopped = true }
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    private func run() {
        var lastWake = Date()
        while true {
            condition.lock()
            if queue.withLock({ $0.jobs.isEmpty && !$0.stopped }) {
                _ = condition.wait(until: Date().addingTimeInterval(Self.wakeIntervalSeconds))
            }
            condition.unlock()

            let (job, stopped) = queue.withLock { state -> (Job?, Bool) in
                state.stopped ? (nil, true) : (state.jobs.isEmpty ? nil : state.jobs.removeFirst(), false)
            }
            if stopped {
                return
            }
            if let job {
                perform(job)
            }
            let now = Date()
            sendScheduledSummary(between: lastWake, and: now)
            lastWake = now
        }
    }

    private func perform(_ job: Job) {
        switch job {
        case let .notice(kind, key, reason, action, identity, queueID, time):
            sendNotice(kind: kind, key: key, reason: reason, action: action, identity: identity, queueID: queueID, time: time)
        case let .summary(reply):
            let summary = makeSummary(now: Date())
            reply.fill(with: deliverSummary(summary))
        }
    }

    // MARK: Notices

    func sendNotice(kind: SenderNotice.Kind, key: String, reason: String, action: Action? = nil, identity: String,
                    queueID: String?, time: Date) {
        let settings = self.settings
        guard settings.isEnabled else { return }
        guard claim(kind: kind.rawValue, key: key, periodSeconds: settings.periodSeconds) else {
            logger.debug("no \(kind.rawValue) notice for \(key): one was sent within the last \(settings.periodSeconds) s")
            return
        }
        let active = policySource.current
        let notice = SenderNotice(
            kind: kind, key: key, identity: identity, reason: reason, time: time, queueID: queueID,
            limits: active.policy.limitUsage(for: key, now: policySource.clock.now()),
            samples: activity.samples(for: key), hostname: hostname, tripAction: kind == .limitTrip ? action : nil,
            controlSocket: Self.socketOption(active.configuration.control.socketPath))

        if !settings.mailTo.isEmpty {
            sendMail(subject: notice.subject, body: notice.body, to: settings.mailTo, settings: settings,
                     description: "\(kind.rawValue) notice for \(key)", kind: kind == .suspension ? .suspension : .limitTrip)
        }
        if !settings.command.isEmpty {
            runNotificationCommand(notice, settings: settings)
        }
    }

    /// Claims a notice in the ledger; true when it may be sent. A broken ledger sends it
    /// anyway, because a repeated notice is better than none.
    private func claim(kind: String, key: String, periodSeconds: Int?) -> Bool {
        guard let ledger else { return true }
        do {
            return try ledger.claim(kind: kind, key: key, now: Date(), periodSeconds: periodSeconds)
        } catch {
            logger.error("cannot record the \(kind) notice for \(key) in the notice ledger: \(error); sending it anyway")
            return true
        }
    }

    /// Sends one mail through sendmail and logs the outcome. Returns the error text, nil
    /// when sendmail exited 0.
    @discardableResult
    func sendMail(subject: String, body: String, to recipients: [String], settings: NotificationSettings,
                  description: String, kind: DaemonMetrics.NoticeKind) -> String? {
        // The sender's domain, when it has one, because a host name without a dot makes a
        // Message-ID that receivers and the scoring rules treat as broken.
        let domain = settings.mailFrom.split(separator: "@").dropFirst().last.map(String.init) ?? hostname
        let sealed = seal.issue(domain: domain, now: Date().timeIntervalSince1970)
        let message = NoticeMail.compose(
            from: settings.mailFrom, to: recipients, subject: subject, body: body, messageID: sealed.messageID,
            date: Date(), extraHeaders: [HeaderField(name: NoticeSeal.headerName, value: sealed.sealValue)])
        let arguments = Array(settings.sendmailCommand.dropFirst()) + ["-i", "-f", settings.mailFrom, "--"] + recipients
        let program = settings.sendmailCommand[0]
        do {
            let result = try ChildProgram.run(program, arguments, environment: ChildProgram.baseEnvironment, input: message,
                                              timeoutSeconds: Double(settings.timeoutSeconds), maximumOutputBytes: Self.maximumOutputBytes)
            if !result.outputText.isEmpty {
                logger.debug("\(program) output for the \(description): \(logValue(result.outputText))")
            }
            guard result.status == 0 else {
                let detail = result.failureDetail
                let problem = "\(program) exited with status \(result.status)" + (detail.isEmpty ? "" : ": \(detail)")
                logger.error("\(description) not sent: \(problem)")
                countFailure(kind: kind, channel: .mail, problem: "\(description) not sent: \(problem)")
                return problem
            }
            logger.notice("\(description) sent: to=\(recipients.joined(separator: ",")) message_id=\(sealed.messageID)")
            countSent(kind: kind, channel: .mail)
            return nil
        } catch {
            logger.error("\(description) not sent: \(error)")
            countFailure(kind: kind, channel: .mail, problem: "\(description) not sent: \(error)")
            return "\(error)"
        }
    }

    private func runNotificationCommand(_ notice: SenderNotice, settings: NotificationSettings) {
        let program = settings.command[0]
        let kind: DaemonMetrics.NoticeKind = notice.kind == .suspension ? .suspension : .limitTrip
        var environment = ChildProgram.baseEnvironment
        environment.merge(notice.environment) { _, new in new }
        do {
            let result = try ChildProgram.run(program, Array(settings.command.dropFirst()), environment: environment, input: [],
                                              timeoutSeconds: Double(settings.timeoutSeconds), maximumOutputBytes: Self.maximumOutputBytes)
            if !result.outputText.isEmpty {
                logger.debug("notification command \(program) output: \(logValue(result.outputText))")
            }
            if result.status == 0 {
                logger.notice("\(notice.kind.rawValue) notice for \(notice.key) passed to \(program): exit status 0")
                countSent(kind: kind, channel: .command)
            } else {
                let detail = result.failureDetail
                let problem = "notification command \(program) for \(notice.key) exited with status \(result.status)"
                    + (detail.isEmpty ? "" : ": \(detail)")
                logger.error(problem)
                countFailure(kind: kind, channel: .command, problem: problem)
            }
        } catch {
            let problem = "notification command \(program) for \(notice.key) failed: \(error)"
            logger.error(problem)
            countFailure(kind: kind, channel: .command, problem: problem)
        }
    }

    // MARK: Counting

    /// Counts of notices sent, failed and dropped since start, for `egressctl status`.
    var health: NotificationHealth {
        healthState.withLock { $0 }
    }

    private func countSent(kind: DaemonMetrics.NoticeKind, channel: DaemonMetrics.NoticeChannel) {
        recorder.metrics?.recordNotice(kind: kind, channel: channel, result: .sent)
        healthState.withLock { $0.sent &+= 1 }
    }

    private func countFailure(kind: DaemonMetrics.NoticeKind, channel: DaemonMetrics.NoticeChannel, problem: String) {
        recorder.metrics?.recordNotice(kind: kind, channel: channel, result: .failed)
        healthState.withLock { health in
            health.failed &+= 1
            health.lastFailureAt = Date()
            health.lastFailure = String(problem.prefix(NotificationHealth.maximumFailureCharacters))
        }
    }

    /// Counts a job the full queue refused, once per channel that would have carried it.
    private func countDropped(_ job: Job) {
        let settings = self.settings
        var channels: [DaemonMetrics.NoticeChannel] = []
        if case .summary = job {
            channels = [.mail]
        } else {
            if !settings.mailTo.isEmpty { channels.append(.mail) }
            if !settings.command.isEmpty { channels.append(.command) }
        }
        for channel in channels {
            recorder.metrics?.recordNotice(kind: job.metricKind, channel: channel, result: .dropped)
        }
        healthState.withLock { $0.dropped &+= 1 }
    }

    // MARK: Suspension history

    /// Records the beginning of a suspension in the history; `admin` is nil for a rule's
    /// suspension. A failure is logged, never thrown: the suspension itself is in force.
    func recordSuspension(_ suspension: Suspension, by admin: String?) {
        guard let ledger else { return }
        do {
            try ledger.recordSuspension(suspension, by: admin)
        } catch {
            logger.error("cannot record the suspension of \(suspension.key) in the suspension history: \(error); the daily summary may miss it once released")
        }
    }

    /// Records the release of a key's suspension in the history.
    func recordRelease(key: String, at time: Date, by admin: String) {
        guard let ledger else { return }
        do {
            try ledger.recordRelease(key: key, at: time, by: admin)
        } catch {
            logger.error("cannot record the release of \(key) in the suspension history: \(error); the daily summary may show it in force")
        }
    }

    /// Returns the control socket path for egressctl commands, or nil when it is egressctl's
    /// default (or disabled, when no command can reach the daemon anyway).
    static func socketOption(_ path: String) -> String? {
        path.isEmpty || path == ControlSettings().socketPath ? nil : path
    }

    // MARK: Summary

    /// Builds the summary of the last 24 hours from the activity, the suspension history,
    /// the limiter and the held-message store.
    func makeSummary(now: Date) -> DailySummary {
        let from = now.addingTimeInterval(-Self.summarySpanSeconds)
        let active = policySource.current
        let current = active.policy.limiter.suspensions()
        var held = 0
        var heldByKey: [String: Int] = [:]
        if let store = recorder.heldMessages {
            do {
                held = try store.count()
                heldByKey = try store.countsByKey(level: nil)
            } catch {
                logger.error("the daily summary cannot read the held-message store: \(error)")
            }
        }
        return DailySummary(
            hostname: hostname, from: from, to: now, countsSince: activity.startedAt > from ? activity.startedAt : nil,
            senders: activity.totals(since: from), trips: activity.tripsByRule(since: from),
            suspensions: suspensionEvents(since: from, current: current), suspendedNow: current.count,
            heldMessages: held, heldByKey: heldByKey,
            controlSocket: Self.socketOption(active.configuration.control.socketPath))
    }

    /// Returns the suspensions that began at or after `from`: the history's, plus those in
    /// force that it lacks (begun while its file could not be written, or before the upgrade that
    /// added it).
    private func suspensionEvents(since from: Date, current: [Suspension]) -> [SuspensionEvent] {
        var events: [SuspensionEvent] = []
        if let ledger {
            do {
                events = try ledger.suspensionEvents(since: from)
            } catch {
                logger.error("the daily summary cannot read the suspension history: \(error); it lists only the suspensions in force")
            }
        }
        for suspension in current where suspension.since >= from {
            // The file stores seconds since 1970 as a double. The round trip through Date's
            // own reference date can change the last bit, so times match within a millisecond.
            let recorded = events.contains {
                $0.key == suspension.key && abs($0.since.timeIntervalSince(suspension.since)) < 0.001
            }
            if !recorded {
                events.append(SuspensionEvent(suspension))
            }
        }
        return events
    }

    /// Mails a summary to the summary's recipients; returns the control reply.
    private func deliverSummary(_ summary: DailySummary) -> SummaryReport {
        let settings = self.settings
        let recipients = settings.dailySummary.mailTo.isEmpty ? settings.mailTo : settings.dailySummary.mailTo
        guard !recipients.isEmpty else {
            return SummaryReport(text: summary.body, subject: summary.subject, sent: false, recipients: [],
                                 error: "no recipients: set notifications.daily_summary.mail_to or notifications.mail_to",
                                 summary: summary)
        }
        let problem = sendMail(subject: summary.subject, body: summary.body, to: recipients, settings: settings,
                               description: "daily summary", kind: .summary)
        return SummaryReport(text: summary.body, subject: summary.subject, sent: problem == nil, recipients: recipients,
                             error: problem, summary: summary)
    }

    /// Sends the summary when its local time of day fell between two wake-ups and the
    /// ledger has no summary of that date yet (a restart at that minute sends none twice).
    func sendScheduledSummary(between earlier: Date, and now: Date) {
        let settings = self.settings.dailySummary
        guard settings.enabled else { return }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let midnight = calendar.startOfDay(for: now)
        guard let scheduled = calendar.date(byAdding: .minute, value: settings.minuteOfDay, to: midnight),
              earlier < scheduled, scheduled <= now else { return }
        let formatter = DateFormatter()
        formatter.calendar = calendar
        formatter.timeZone = calendar.timeZone
        formatter.dateFormat = "yyyy-MM-dd"
        guard claim(kind: Self.summaryKind, key: formatter.string(from: now), periodSeconds: nil) else { return }
        _ = deliverSummary(makeSummary(now: now))
    }

    /// Returns the summary for `egressctl summary` and, with `send`, mails it from the worker
    /// so it never runs beside a notice. Waits for the worker at most
    /// `summaryReplyWaitSeconds`.
    func summary(send: Bool) -> SummaryReport {
        guard send else {
            let summary = makeSummary(now: Date())
            return SummaryReport(text: summary.body, subject: summary.subject, sent: false, recipients: [], error: nil,
                                 summary: summary)
        }
        let slot = SummaryReplySlot()
        enqueue(.summary(reply: slot))
        let wait = Self.summaryReplyWaitSeconds
        return slot.wait(seconds: wait)
            ?? SummaryReport(text: "", subject: "", sent: false, recipients: [],
                             error: "the notification worker did not finish within \(Int(wait)) s; the summary may still be sent")
    }

    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}

/// Carries the worker's summary reply back to the control thread that waits for it.
final class SummaryReplySlot: Sendable {
    private let value = Mutex<SummaryReport?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func fill(with report: SummaryReport) {
        value.withLock { $0 = report }
        done.signal()
    }

    func wait(seconds: Double) -> SummaryReport? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return value.withLock { $0 }
    }
}

/// Holds the notifier from the moment the state directory is open; sessions are created
/// after that, in `server.run()`.
final class NotifierSlot: Sendable {
    private let value = Mutex<Notifier?>(nil)

    func fill(with notifier: Notifier) {
        value.withLock { $0 = notifier }
    }

    var notifier: Notifier? {
        value.withLock { $0 }
    }
}

extension Daemon {
    /// Opens the notice ledger and starts the notifier. A ledger that cannot be opened is
    /// logged and the notifier runs without it (notices may then repeat after a restart).
    static func startNotifier(configuration: Configuration, policySource: PolicySource, recorder: DecisionRecorder,
                              logger: Logger) -> Notifier {
        var ledger: NoticeLedger?
        do {
            ledger = try NoticeLedger(directory: configuration.stateDirectory)
        } catch {
            logger.error("cannot open the notice ledger: \(error); notices may repeat after a restart")
        }
        let notifier = Notifier(policySource: policySource, recorder: recorder, ledger: ledger, logger: logger)
        notifier.start()
        return notifier
    }
}
