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
// the log has a line for it. NOTE: settings are read per job, so a reload applies to the
// next notice; the summary time is read at every wake-up.

import EgressCore
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
        case notice(SenderNotice.Kind, key: String, reason: String, identity: String, queueID: String?, time: Date)
        case summary(reply: SummaryReplySlot)
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
                        trippedKeys: Set(verdict.trippedLimits.map(\.key)), time: time)

        let settings = self.settings
        guard settings.isEnabled else { return }
        let identity = verdict.identity.description
        for suspension in verdict.newSuspensions {
            enqueue(.notice(.suspension, key: suspension.key, reason: suspension.reason, identity: identity,
                            queueID: facts.queueID, time: time))
        }
        guard settings.onLimitTrip else { return }
        let suspended = Set(verdict.newSuspensions.map(\.key))
        var seen = Set<String>()
        for trip in verdict.trippedLimits where !suspended.contains(trip.key) && seen.insert(trip.key).inserted {
            enqueue(.notice(.limitTrip, key: trip.key, reason: trip.description, identity: identity,
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
        case let .notice(kind, key, reason, identity, queueID, time):
            sendNotice(kind: kind, key: key, reason: reason, identity: identity, queueID: queueID, time: time)
        case let .summary(reply):
            let summary = makeSummary(now: Date())
            reply.fill(with: deliverSummary(summary))
        }
    }

    // MARK: Notices

    func sendNotice(kind: SenderNotice.Kind, key: String, reason: String, identity: String, queueID: String?, time: Date) {
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
            samples: activity.samples(for: key), hostname: hostname)

        if !settings.mailTo.isEmpty {
            sendMail(subject: notice.subject, body: notice.body, to: settings.mailTo, settings: settings,
                     description: "\(kind.rawValue) notice for \(key)")
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
                  description: String) -> String? {
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
            if !result.output.isEmpty {
                logger.debug("\(program) output for the \(description): \(logValue(result.outputText))")
            }
            guard result.status == 0 else {
                let problem = "\(program) exited with status \(result.status): \(result.outputText.prefix(300))"
                logger.error("\(description) not sent: \(problem)")
                return problem
            }
            logger.notice("\(description) sent: to=\(recipients.joined(separator: ",")) message_id=\(sealed.messageID)")
            return nil
        } catch {
            logger.error("\(description) not sent: \(error)")
            return "\(error)"
        }
    }

    private func runNotificationCommand(_ notice: SenderNotice, settings: NotificationSettings) {
        let program = settings.command[0]
        var environment = ChildProgram.baseEnvironment
        environment.merge(notice.environment) { _, new in new }
        do {
            let result = try ChildProgram.run(program, Array(settings.command.dropFirst()), environment: environment, input: [],
                                              timeoutSeconds: Double(settings.timeoutSeconds), maximumOutputBytes: Self.maximumOutputBytes)
            if !result.output.isEmpty {
                logger.debug("notification command \(program) output: \(logValue(result.outputText))")
            }
            if result.status == 0 {
                logger.notice("\(notice.kind.rawValue) notice for \(notice.key) passed to \(program): exit status 0")
            } else {
                logger.error("notification command \(program) for \(notice.key) exited with status \(result.status)")
            }
        } catch {
            logger.error("notification command \(program) for \(notice.key) failed: \(error)")
        }
    }

    // MARK: Summary

    /// Builds the summary of the last 24 hours from the activity, the limiter and the
    /// held-message store.
    func makeSummary(now: Date) -> DailySummary {
        let from = now.addingTimeInterval(-Self.summarySpanSeconds)
        let limiter = policySource.current.policy.limiter
        let suspensions = limiter.suspensions()
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
            senders: activity.totals(since: from),
            newSuspensions: suspensions.filter { $0.since >= from }.sorted { $0.since < $1.since }.map(SuspensionReport.init),
            suspendedKeys: suspensions.count, heldMessages: held, heldByKey: heldByKey)
    }

    /// Mails a summary to the summary's recipients; returns the control reply.
    private func deliverSummary(_ summary: DailySummary) -> SummaryReport {
        let settings = self.settings
        let recipients = settings.dailySummary.mailTo.isEmpty ? settings.mailTo : settings.dailySummary.mailTo
        guard !recipients.isEmpty else {
            return SummaryReport(text: summary.body, subject: summary.subject, sent: false, recipients: [],
                                 error: "no recipients: set notifications.daily_summary.mail_to or notifications.mail_to")
        }
        let problem = sendMail(subject: summary.subject, body: summary.body, to: recipients, settings: settings,
                               description: "daily summary")
        return SummaryReport(text: summary.body, subject: summary.subject, sent: problem == nil, recipients: recipients, error: problem)
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
            return SummaryReport(text: summary.body, subject: summary.subject, sent: false, recipients: [], error: nil)
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
