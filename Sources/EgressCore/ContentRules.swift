// The built-in content rules and the admin's pattern rules, evaluated on one message's
// facts and scan result. Each rule adds at most one symbol (see BuiltInRules.swift for the
// names, weights and descriptions), with the text that made it fire.
//
// Rules look only at the message in front of them; campaign counting, which needs other
// messages, is in ContentScorer.swift. No rule may fail: missing headers, empty texts and
// odd addresses simply make a rule not fire (or fire the rule about the missing part).
// This file has the envelope and header rules; ContentRulesText.swift the links, HTML and
// phrases; ContentRulesAttachments.swift attachments, local scripts and decoding.

import Foundation

/// A message as the rules see it, with the values several rules share computed once.
struct RuleInput {
    let facts: MessageFacts
    let scan: ScanResult
    let resolution: IdentityResolution
    let subject: String
    /// The plain text and the visible HTML text.
    let visibleText: String
    let from: MailboxAddress?
    let isNullSender: Bool
    /// A delivery status or feedback report (multipart/report), as bounces are.
    let isDeliveryReport: Bool
    /// From names the mail system itself (MAILER-DAEMON, postmaster), as bounces do.
    let isFromMailSystem: Bool

    init(facts: MessageFacts, scan: ScanResult, resolution: IdentityResolution) {
        self.facts = facts
        self.scan = scan
        self.resolution = resolution
        self.subject = scan.headerValue("Subject") ?? ""
        self.visibleText = scan.visibleText
        self.from = scan.mailboxes("From").first
        let sender = facts.envelopeSender.trimmingCharacters(in: .whitespaces)
        self.isNullSender = sender.isEmpty || sender == "<>"
        self.isDeliveryReport = scan.headerValue("Content-Type")?.lowercased().hasPrefix("multipart/report") ?? false
        let fromLocalPart = from?.localPart.lowercased() ?? ""
        self.isFromMailSystem = fromLocalPart == "mailer-daemon" || fromLocalPart == "postmaster"
    }
}

/// The built-in phrase patterns, compiled once per scorer.
final class CompiledPhrases: Sendable {
    /// Every phrase category, found in one pass over the text.
    let matcher: PhraseMatcher
    let advertisementSubject: RegularExpression?
    let replySubject: RegularExpression?

    init(matchLimit: UInt32, depthLimit: UInt32) {
        func compile(_ pattern: String) -> RegularExpression? {
            // The built-in patterns are tested; nil would only mean a PCRE2 without UTF support.
            try? RegularExpression(pattern, options: [.caseless, .unicodeProperties], matchLimit: matchLimit, depthLimit: depthLimit)
        }
        matcher = PhraseMatcher.builtIn
        advertisementSubject = compile(PhrasePatterns.advertisementSubject)
        replySubject = compile(PhrasePatterns.replySubject)
    }
}

/// Evaluates the built-in rules on one message.
struct ContentRules {
    let scorer: ContentScorer
    let phrases: CompiledPhrases
    let input: RuleInput

    /// Bytes of text the phrase and text rules read; phrases past it do not count. Spam
    /// says what it sells early, and the limit keeps long texts from slowing every rule.
    static let maximumPhraseTextBytes = 128 * 1024

    /// Phrase counts at which the counting rules fire.
    static let spamPhraseCount = 4
    static let manySpamPhraseCount = 6
    static let advanceFeeCount = 2
    static let adultCount = 2
    static let pharmacyCount = 2
    static let manyAdultCount = 4
    static let manyPharmacyCount = 4

    func evaluate(into hits: inout HitCollector) {
        checkGTUBE(&hits)
        checkRecipients(&hits)
        checkFrom(&hits)
        checkHeaders(&hits)
        checkSubject(&hits)
        checkLinks(&hits)
        checkHTML(&hits)
        checkPhrases(&hits)
        checkText(&hits)
        checkAttachments(&hits)
        checkLocalScript(&hits)
        checkDecoding(&hits)
    }

    // MARK: Envelope and headers

    static let gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

    func checkGTUBE(_ hits: inout HitCollector) {
        guard hits.isEnabled(BuiltInSymbol.gtube) else { return }
        if input.scan.plainText.utf8Contains(Self.gtube) || input.scan.htmlText.utf8Contains(Self.gtube) {
            hits.add(BuiltInSymbol.gtube)
        }
    }

    func checkRecipients(_ hits: inout HitCollector) {
        let recipients = input.facts.recipients
        let settings = scorer.settings
        if recipients.count >= settings.bulkRecipients {
            hits.add(BuiltInSymbol.bulkRecipients, detail: "\(recipients.count) recipients")
        }
        guard recipients.count >= settings.bulkRecipientDomains else { return }
        let domains = Set(recipients.compactMap { recipient -> String? in
            EnvelopeSender(recipient)?.domain
        })
        if domains.count >= settings.bulkRecipientDomains {
            hits.add(BuiltInSymbol.manyRecipientDomains, detail: "\(domains.count) domains")
        }
    }

    func checkFrom(_ hits: inout HitCollector) {
        guard let from = input.from, !from.address.isEmpty else {
            hits.add(BuiltInSymbol.fromMissing)
            return
        }
        guard let domain = from.domain, domain.contains("."), !from.address.contains(where: { $0 == " " || $0 == "\t" }) else {
            hits.add(BuiltInSymbol.fromInvalid, detail: from.address)
            return
        }
        let organization = DomainLists.organizationalDomain(domain)

        if !scorer.hostedDomains.isEmpty, !input.isNullSender,
           !scorer.hostedDomains.contains(where: { DomainLists.domain(domain, isWithin: $0) }) {
            hits.add(BuiltInSymbol.fromNotHosted, detail: domain)
        }
        if DomainLists.isFreeMail(domain) {
            hits.add(BuiltInSymbol.fromFreeMail, detail: domain)
        }
        if let shown = Self.addressDomains(in: from.displayName).first(where: { DomainLists.organizationalDomain($0) != organization }) {
            hits.add(BuiltInSymbol.fromDisplayNameSpoof, detail: "\"\(from.displayName)\" <\(from.address)>, shows \(shown)")
        }
        if from.localPart.filter(\.isASCIIDigitCharacter).count >= 4 {
            hits.add(BuiltInSymbol.fromLocalPartDigits, detail: from.address)
        }
        // The registered name, not a host label such as "smtpgw".
        let registeredLabel = organization.split(separator: ".").first.map(String.init) ?? ""
        if Self.hasConsonantRun(from.localPart) || Self.hasConsonantRun(registeredLabel) {
            hits.add(BuiltInSymbol.fromRandomLetters, detail: from.address)
        }
        if DomainLists.hasAbusedTopLevelDomain(domain) {
            hits.add(BuiltInSymbol.suspiciousTLD, detail: from.address)
        }
        let replyTo = input.scan.mailboxes("Reply-To").first
        if DomainLists.isDynamicDNS(domain) {
            hits.add(BuiltInSymbol.fromDynamicDNS, detail: from.address)
        } else if let replyDomain = replyTo?.domain, DomainLists.isDynamicDNS(replyDomain) {
            hits.add(BuiltInSymbol.fromDynamicDNS, detail: replyTo?.address ?? replyDomain)
        }
        if let replyTo, let replyDomain = replyTo.domain, DomainLists.organizationalDomain(replyDomain) != organization {
            if DomainLists.isFreeMail(replyDomain) {
                hits.add(BuiltInSymbol.replyToFreeMail, detail: replyTo.address)
            } else if input.scan.headerValue("List-Id") == nil && input.scan.headerValue("List-Post") == nil {
                hits.add(BuiltInSymbol.replyToOtherDomain, detail: replyTo.address)
            }
        }
        if let envelope = EnvelopeSender(input.facts.envelopeSender), let envelopeDomain = envelope.domain,
           Self.webServerAccounts.contains(envelope.localPart.lowercased()),
           DomainLists.organizationalDomain(envelopeDomain) != organization {
            hits.add(BuiltInSymbol.envelopeWebServerUser, detail: "\(envelope.address) as \(from.address)")
        }
    }

    /// Accounts that web servers and PHP run as; mail they send in another domain's name is
    /// what an exploited web site sends.
    static let webServerAccounts: Set<String> = ["www-data", "apache", "nobody", "httpd", "nginx", "wwwrun", "www", "php", "daemon", "web"]

    /// Whether the text has six ASCII consonants in a row, four of them different (y counts
    /// as a vowel), which generated names have and real words and names in mail addresses
    /// almost never do. The distinct letters leave out placeholders such as "zzzzzz".
    static func hasConsonantRun(_ text: String) -> Bool {
        var run: [UInt8] = []
        for byte in text.utf8 {
            let lower = asciiLowercase(byte)
            let isConsonant = lower >= 0x61 && lower <= 0x7A && !"aeiouy".utf8.contains(lower)
            guard isConsonant else {
                run.removeAll(keepingCapacity: true)
                continue
            }
            run.append(lower)
            if run.count >= 6 && Set(run).count >= 4 { return true }
        }
        return false
    }

    /// Returns the domains of the addresses written in a display name.
    static func addressDomains(in text: String) -> [String] {
        guard text.contains("@") else { return [] }
        let separators: Set<Character> = [" ", "\t", "\"", "'", "<", ">", "(", ")", "[", "]", ",", ";"]
        return text.split(whereSeparator: { separators.contains($0) }).compactMap { token in
            guard let at = token.lastIndex(of: "@") else { return nil }
            var domain = token[token.index(after: at)...].lowercased()
            while let last = domain.last, !last.isLetter && !last.isNumber {
                domain.removeLast()
            }
            return domain.contains(".") ? domain : nil
        }
    }

    func checkHeaders(_ hits: inout HitCollector) {
        let scan = input.scan
        if scan.headerValue("Date") == nil {
            hits.add(BuiltInSymbol.missingDate)
        }
        if scan.headerValue("Message-ID") == nil {
            hits.add(BuiltInSymbol.missingMessageID)
        }
        if let messageID = scan.headerValue("Message-ID"), let at = messageID.lastIndex(of: "@"),
           !messageID[messageID.index(after: at)...].contains(".") {
            hits.add(BuiltInSymbol.messageIDNoDomain, detail: messageID)
        }
        if let date = scan.headerValue("Date"), !DateHeader.isValid(date) {
            hits.add(BuiltInSymbol.dateInvalid, detail: date)
        }
        let to = scan.headerValue("To")
        if to == nil && scan.headerValue("Cc") == nil {
            hits.add(BuiltInSymbol.toMissing)
        }
        if let to, to.lowercased().utf8Contains("undisclosed") {
            hits.add(BuiltInSymbol.toUndisclosed, detail: to)
        }
        let priority = (scan.headerValue("X-Priority") ?? "").trimmingWhitespace()
        let importance = [scan.headerValue("Importance"), scan.headerValue("X-MSMail-Priority"), scan.headerValue("Priority")]
            .compactMap { $0?.lowercased().trimmingWhitespace() }
        if priority.hasPrefix("1") || priority.hasPrefix("2") || importance.contains("high") || importance.contains("urgent") {
            hits.add(BuiltInSymbol.priorityHigh, detail: priority.isEmpty ? importance.joined(separator: ", ") : "X-Priority \(priority)")
        }
    }

    /// The Subject as sent, folding included; nil without one.
    private var rawSubject: [UInt8]? {
        input.facts.headers.first { $0.name.caseInsensitiveEquals("Subject") }?.value
    }

    /// Whether a header value has a run of four spaces or tabs within one line; the white
    /// space that starts a folded line is not counted, because folding puts it there.
    static func isPadded(_ value: [UInt8]?) -> Bool {
        guard let value else { return false }
        var run = 0
        var atLineStart = true
        for byte in value {
            if byte == 0x0A || byte == 0x0D {
                run = 0
                atLineStart = true
            } else if byte == 0x20 || byte == 0x09 {
                if !atLineStart {
                    run += 1
                    if run >= 4 { return true }
                }
            } else {
                run = 0
                atLineStart = false
            }
        }
        return false
    }

    /// Characters of the Subject the subject rules read; real subjects are far shorter.
    static let maximumSubjectCharacters = 512

    func checkSubject(_ hits: inout HitCollector) {
        let subject = String(input.subject.prefix(Self.maximumSubjectCharacters))
        guard !subject.isEmpty else {
            hits.add(BuiltInSymbol.subjectMissing)
            return
        }
        if subject.utf8.count { $0 == 0x21 } >= 2 {
            hits.add(BuiltInSymbol.subjectExclamations, detail: subject)
        }
        if Self.isPadded(rawSubject) {
            hits.add(BuiltInSymbol.subjectPadding, detail: subject)
        }
        let token = subject.trimmingWhitespace()
        if (4...16).contains(token.utf8.count), token.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains(asciiLowercase($0)) }),
           token.utf8.contains(where: { (0x30...0x39).contains($0) }), token.utf8.contains(where: { (0x61...0x7A).contains(asciiLowercase($0)) }) {
            hits.add(BuiltInSymbol.subjectRandomToken, detail: token)
        }
        let letters = subject.filter(\.isLetter)
        let upper = letters.filter(\.isUppercase).count
        let cased = letters.filter { $0.isUppercase || $0.isLowercase }.count
        if cased >= 8, Double(upper) >= Double(cased) * 0.85, subject.split(separator: " ").count >= 2 {
            hits.add(BuiltInSymbol.subjectAllCaps, detail: subject)
        }
        if let pattern = phrases.advertisementSubject, hits.isEnabled(BuiltInSymbol.subjectAdvertisement), pattern.matches(subject) {
            hits.add(BuiltInSymbol.subjectAdvertisement, detail: subject)
        }
        if let pattern = phrases.replySubject, hits.isEnabled(BuiltInSymbol.fakeReply),
           input.scan.headerValue("In-Reply-To") == nil, input.scan.headerValue("References") == nil, pattern.matches(subject) {
            hits.add(BuiltInSymbol.fakeReply, detail: subject)
        }
    }
}

/// A check of the Date header's form (RFC 5322 section 3.3, with the obsolete zone names):
/// "[Day, ]DD Mon YYYY HH:MM[:SS] ZONE". It only judges the form; the time itself is not
/// compared with the clock.
enum DateHeader {
    private static let months: Set<String> = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let days: Set<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    private static let zoneNames: Set<String> = ["ut", "gmt", "utc", "est", "edt", "cst", "cdt", "mst", "mdt", "pst", "pdt", "z"]

    static func isValid(_ value: String) -> Bool {
        // Comments such as "(PDT)" may follow the zone.
        var text = HeaderParameters.stripComments(Substring(value)).lowercased()
        if let comma = text.firstIndex(of: ",") {
            guard days.contains(text[..<comma].trimmingWhitespace()) else { return false }
            text = String(text[text.index(after: comma)...])
        }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 4 else { return false }
        guard let day = Int(fields[0]), (1...31).contains(day), months.contains(fields[1]),
              let year = Int(fields[2]), fields[2].count == 4 || fields[2].count == 2, year >= 0 else {
            return false
        }
        let time = fields[3].split(separator: ":", omittingEmptySubsequences: false)
        guard time.count == 2 || time.count == 3,
              time.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCIIDigitCharacter) }),
              let hour = Int(time[0]), hour < 24, let minute = Int(time[1]), minute < 60 else {
            return false
        }
        // RFC 5322 requires a zone; the obsolete form allows names and military letters.
        guard fields.count == 5 else { return false }
        let zone = fields[4]
        if zoneNames.contains(zone) || (zone.count == 1 && zone.first?.isLetter == true) {
            return true
        }
        guard zone.count == 5, zone.first == "+" || zone.first == "-",
              zone.dropFirst().allSatisfy(\.isASCIIDigitCharacter),
              let hours = Int(zone.dropFirst().prefix(2)), let minutes = Int(zone.suffix(2)) else {
            return false
        }
        return hours <= 14 && minutes < 60
    }
}
