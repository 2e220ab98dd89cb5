// One milter session per MTA connection: it collects the facts of each message (envelope,
// macros, headers, body size), asks the policy core for a verdict at end of message, applies
// the verdict (reply, quarantine, headers) and writes the one notice line for the message.
// It must never lose mail: any failure here is thrown, and the Milter library answers with the
// configured fail action (tempfail by default) so the message stays queued at the MTA.
import EgressCore
import Foundation
import Milter

/// The macros the session asks the MTA for, per stage. Postfix sends its defaults as well;
/// these are the ones the policy needs.
let requestedMacros: [ProtocolStage: [String]] = [
    .connect: ["j", "_", "{daemon_name}", "{daemon_addr}", "{client_addr}", "{client_name}"],
    .helo: ["{tls_version}", "{cipher}"],
    .envelopeFrom: ["i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}"],
    .envelopeRecipient: ["i", "{rcpt_addr}"],
    .data: ["i"],
    .endOfHeaders: ["i"],
    .endOfMessage: ["i", "{daemon_name}"],
]

final class EgressSession: MilterSession {
    private let policySource: PolicySource
    /// Keeps each decision for egressctl; nil records nothing.
    private let recorder: DecisionRecorder?
    /// Queues admin notices and checks the seal of the daemon's own notices; nil sends none.
    private let notifier: Notifier?
    private let logger: Logger

    // Connection state, kept across the messages of one SMTP session.
    private var clientHostname: String?
    private var clientAddress: String?
    private var daemonName: String?
    private var heloName: String?
    private var messageCount = 0

    // Message state, reset when a new MAIL FROM starts, after the decision and on abort.
    private var queueID: String?
    private var saslLogin: String?
    private var envelopeSender = ""
    private var recipients: [String] = []
    private var headers: [Header] = []
    private var headerBytes = 0
    private var bodyBytes = 0
    /// When MAIL FROM arrived, the start of the decision latency in the metrics.
    private var messageStartedAt: ContinuousClock.Instant?
    /// Decodes the content for scoring as headers and body chunks arrive; nil when scoring is off.
    private var scanner: MessageScanner?

    init(policySource: PolicySource, recorder: DecisionRecorder? = nil, notifier: Notifier? = nil, logger: Logger) {
        self.policySource = policySource
        self.recorder = recorder
        self.notifier = notifier
        self.logger = logger
    }

    func connect(hostname: String, address: PeerAddress, macros: Macros) throws -> Reply {
        clientHostname = hostname
        clientAddress = address.host ?? macros["{client_addr}"]
        daemonName = macros["{daemon_name}"]
        logger.debug("connect from \(hostname)[\(clientAddress ?? "unknown")] daemon=\(daemonName ?? "-")")
        return .continue
    }

    func helo(_ name: String, macros: Macros) throws -> Reply {
        heloName = name
        return .continue
    }

    func envelopeFrom(_ sender: String, arguments: [String], macros: Macros) throws -> Reply {
        resetMessage()
        messageStartedAt = .now
        messageCount += 1
        envelopeSender = stripAngleBrackets(sender)
        saslLogin = macros["{auth_authen}"].flatMap { $0.isEmpty ? nil : $0 }
        queueID = macros["i"]
        if daemonName == nil { daemonName = macros["{daemon_name}"] }
        let scoring = policySource.current.configuration.scoring
        scanner = scoring.enabled ? MessageScanner(limits: scoring.scanLimits) : nil
        return .continue
    }

    func envelopeRecipient(_ recipient: String, arguments: [String], macros: Macros) throws -> Reply {
        recipients.append(stripAngleBrackets(recipient))
        if queueID == nil { queueID = macros["i"] }
        return .continue
    }

    func header(name: String, value: [UInt8], macros: Macros) throws -> Reply {
        headers.append(Header(name: name, value: value))
        headerBytes += name.utf8.count + value.count + 3
        scanner?.addHeader(name: name, value: value)
        return .continue
    }

    func body(_ chunk: [UInt8], macros: Macros) throws -> Reply {
        bodyBytes += chunk.count
        scanner?.feed(chunk)
        return .continue
    }

    func endOfMessage(_ message: borrowing EndOfMessage, macros: Macros) throws -> Reply {
        if let id = macros["i"] { queueID = id }
        if let name = macros["{daemon_name}"], daemonName == nil { daemonName = name }

        let active = policySource.current
        let facts = MessageFacts(
            queueID: queueID,
            path: active.configuration.submissionPath(daemonName: daemonName),
            clientAddress: clientAddress,
            clientHostname: clientHostname,
            helo: heloName,
            saslLogin: saslLogin,
            envelopeSender: envelopeSender,
            recipients: recipients,
            headers: headers,
            bodyBytes: bodyBytes,
            scan: scanner?.finish())
        let id = queueID ?? "NOQUEUE"

        var verdict: Verdict
        do {
            if let notice = noticeVerdict(facts: facts, policy: active.policy) {
                verdict = notice
            } else {
                verdict = try active.policy.evaluate(facts, now: policySource.clock.now(), wallClock: Date())
                verdict.removeHeaders += IdentityResolver.stampRemovals(in: headers, named: NoticeSeal.headerName)
            }
        } catch {
            // The Milter library logs the error and answers with the fail action.
            logger.error("\(id): decision failed for \(facts.envelopeSender.isEmpty ? "<>" : facts.envelopeSender): \(error)")
            recorder?.recordFailure(error)
            throw error
        }

        let reply: Reply
        do {
            reply = try apply(verdict, to: message)
        } catch {
            active.policy.release(verdict)
            logger.error("\(id): applying action=\(verdict.action.rawValue) failed: \(error)")
            recorder?.recordFailure(error)
            throw error
        }

        // Only mail the MTA accepts counts against the limits.
        if verdict.action == .accept || verdict.action == .tag {
            active.policy.commit(verdict)
        } else {
            active.policy.release(verdict)
        }

        logger.notice(decisionLine(facts: facts, verdict: verdict))
        for suspension in verdict.newSuspensions {
            logger.notice("\(id): suspended \(logValue(suspension.key)): \(suspension.reason); identity=\(logValue(verdict.identity.description)); its mail is held until released")
        }
        recorder?.record(facts: facts, verdict: verdict, time: Date())
        recorder?.recordMetrics(facts: facts, verdict: verdict, startedAt: messageStartedAt, bytes: headerBytes + bodyBytes)
        if verdict.reason != Self.noticeReason {
            notifier?.observe(facts: facts, verdict: verdict, time: Date())
        }
        resetMessage()
        return reply
    }

    func abort(macros: Macros) {
        if let id = queueID ?? macros["i"] {
            logger.debug("\(id): message aborted by the MTA")
        }
        resetMessage()
    }

    func close() {
        logger.debug("disconnect from \(clientHostname ?? "unknown")[\(clientAddress ?? "unknown")] messages=\(messageCount)")
    }

    /// The reason of the decision line of the daemon's own notices.
    static let noticeReason = "notice from egress-milter (valid \(NoticeSeal.headerName) seal)"

    /// Returns the verdict for one of the daemon's own notices: accept, outside every limit,
    /// with the seal removed. Nil for every other message, including one whose seal is
    /// forged, replayed or arrived over SMTP; those are logged and decided as ordinary mail
    /// (the caller removes their seal too).
    private func noticeVerdict(facts: MessageFacts, policy: Policy) -> Verdict? {
        guard let notifier else { return nil }
        let id = facts.queueID ?? "NOQUEUE"
        let removals = IdentityResolver.stampRemovals(in: headers, named: NoticeSeal.headerName)
        guard !removals.isEmpty else { return nil }
        guard facts.path == .local else {
            logger.warning("\(id): \(NoticeSeal.headerName) on a message received over SMTP; removed, and the message is judged as ordinary mail")
            return nil
        }
        switch notifier.seal.redeem(headers: headers, now: Date().timeIntervalSince1970) {
        case .absent:
            return nil
        case .invalid(let problem):
            logger.warning("\(id): invalid \(NoticeSeal.headerName): \(problem); removed, and the message is judged as ordinary mail")
            return nil
        case .valid:
            var verdict = Verdict(action: .accept, reason: Self.noticeReason, identity: policy.identity(for: facts, now: Date()))
            verdict.removeHeaders = removals
            return verdict
        }
    }

    /// Turns a verdict into header edits, a quarantine and the reply to the MTA.
    private func apply(_ verdict: Verdict, to message: borrowing EndOfMessage) throws -> Reply {
        switch verdict.action {
        case .reject:
            return .custom(smtpReply(verdict.reply, fallback: .reject))
        case .tempfail:
            return .custom(smtpReply(verdict.reply, fallback: .tempfail))
        case .accept, .tag, .hold:
            for removal in verdict.removeHeaders {
                try message.deleteHeader(name: removal.name, occurrence: removal.occurrence)
            }
            for field in verdict.addHeaders {
                try message.addHeader(name: field.name, value: field.value)
            }
            for change in verdict.changeHeaders {
                try message.changeHeader(name: change.name, occurrence: change.occurrence, value: change.value)
            }
            if verdict.action == .hold {
                try message.quarantine(reason: verdict.quarantineReason ?? verdict.reason)
            }
            return .continue
        }
    }

    private func smtpReply(_ text: ReplyText?, fallback: Action) -> SMTPReply {
        if let text {
            return SMTPReply(code: text.code, enhancedStatus: text.enhancedStatus, text: text.text)
        }
        return fallback == .reject
            ? SMTPReply(code: 550, enhancedStatus: "5.7.1", text: "Message rejected")
            : SMTPReply(code: 451, enhancedStatus: "4.7.1", text: "Try again later")
    }

    private func resetMessage() {
        queueID = nil
        saslLogin = nil
        envelopeSender = ""
        recipients = []
        headers = []
        headerBytes = 0
        bodyBytes = 0
        messageStartedAt = nil
        scanner = nil
    }

    /// The notice line for one decided message, queue ID first as Postfix writes its own lines.
    private func decisionLine(facts: MessageFacts, verdict: Verdict) -> String {
        // Each symbol with its weight, as rspamd logs them, so the log alone explains a score.
        let symbols = verdict.scoring.map { report in
            report.hits.map { "\($0.name)(\(ContentScorer.format($0.weight)))" }.joined(separator: ",")
        } ?? verdict.symbols.joined(separator: ",")
        let score = String(format: "%.1f", verdict.score)
        return "\(facts.queueID ?? "NOQUEUE"): identity=\(logValue(verdict.identity.description)) from=<\(facts.envelopeSender)>"
            + " nrcpt=\(facts.recipients.count) size=\(headerBytes + bodyBytes) score=\(score)"
            + " symbols=\(symbols) action=\(verdict.action.rawValue) reason=\(logValue(verdict.reason))"
            + " path=\(facts.path.rawValue)"
            + (verdict.limitNotes.isEmpty ? "" : " notes=\(logValue(verdict.limitNotes.joined(separator: "; ")))")
    }
}

/// Removes the angle brackets the MTA keeps around envelope addresses.
func stripAngleBrackets(_ address: String) -> String {
    var text = Substring(address.trimmingCharacters(in: .whitespaces))
    if text.hasPrefix("<") { text = text.dropFirst() }
    if text.hasSuffix(">") { text = text.dropLast() }
    return String(text)
}

/// Quotes a log value that contains spaces, so every key=value pair stays one token.
func logValue(_ text: String) -> String {
    if text.isEmpty { return "\"\"" }
    guard text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
