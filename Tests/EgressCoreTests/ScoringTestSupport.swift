// A message builder for the scoring tests: a clean, plain message that no rule fires on,
// and small changes to it, each of which shows one rule.

import Foundation
@testable import EgressCore

/// A test message with its envelope, identity and scoring settings.
struct Sample {
    static let cleanHeaders: [(String, String)] = [
        ("From", "Alice Example <alice@shop.example>"),
        ("To", "Bob Example <bob@example.net>"),
        ("Subject", "Notes from our meeting on Tuesday"),
        ("Date", "Tue, 05 Mar 2024 10:00:00 +0100"),
        ("Message-ID", "<20240305100000.1234@shop.example>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]

    static let cleanBody = """
        Hi Bob,

        here are the notes from our meeting. We agreed to move the release to Friday and to
        review the open tickets next week.

        Alice

        """

    var headers = Sample.cleanHeaders
    var body = Sample.cleanBody
    /// Raw body bytes; when set, used instead of `body`.
    var rawBody: [UInt8]?
    var path = SubmissionPath.smtp
    var envelopeSender = "alice@shop.example"
    var recipients = ["bob@example.net"]
    var identityKeys: [IdentityKey] = [IdentityKey(level: .login, value: "alice"), .server]
    var identitySymbols: [String] = []
    var configure: (inout ScoringSettings) -> Void = { _ in }

    /// Returns a copy with the header `name` set to `value` (replaced, or added at the end).
    func setting(_ name: String, _ value: String) -> Sample {
        var copy = self
        if let index = copy.headers.firstIndex(where: { $0.0.lowercased() == name.lowercased() }) {
            copy.headers[index].1 = value
        } else {
            copy.headers.append((name, value))
        }
        return copy
    }

    func removing(_ name: String) -> Sample {
        var copy = self
        copy.headers.removeAll { $0.0.lowercased() == name.lowercased() }
        return copy
    }

    func with(body: String, contentType: String? = nil) -> Sample {
        var copy = contentType.map { setting("Content-Type", $0) } ?? self
        copy.body = body
        return copy
    }

    /// A copy whose body is HTML only.
    func html(_ markup: String) -> Sample {
        with(body: markup, contentType: "text/html; charset=utf-8")
    }

    /// A copy with a plain text part and an HTML alternative.
    func alternative(plain: String, html: String) -> Sample {
        with(body: """
            --alt
            Content-Type: text/plain; charset=utf-8

            \(plain)
            --alt
            Content-Type: text/html; charset=utf-8

            \(html)
            --alt--

            """, contentType: "multipart/alternative; boundary=alt")
    }

    /// A copy with the clean text and one base64 attachment.
    func attaching(name: String, type: String, content: [UInt8]) -> Sample {
        let encoded = Data(content).base64EncodedString(options: .lineLength76Characters)
        return with(body: """
            --mix
            Content-Type: text/plain; charset=utf-8

            \(Sample.cleanBody)
            --mix
            Content-Type: \(type); name="\(name)"
            Content-Disposition: attachment; filename="\(name)"
            Content-Transfer-Encoding: base64

            \(encoded)
            --mix--

            """, contentType: "multipart/mixed; boundary=mix")
    }

    func configured(_ change: @escaping (inout ScoringSettings) -> Void) -> Sample {
        var copy = self
        let previous = copy.configure
        copy.configure = { settings in
            previous(&settings)
            change(&settings)
        }
        return copy
    }

    var messageBytes: [UInt8] {
        let head = headers.map { "\($0.0): \($0.1)\n" }.joined()
        return Array((head + "\n").utf8) + (rawBody ?? Array(body.utf8))
    }

    var settings: ScoringSettings {
        var settings = ScoringSettings()
        configure(&settings)
        return settings
    }

    var facts: MessageFacts {
        MessageFacts(message: messageBytes, path: path, sender: envelopeSender, recipients: recipients,
                     limits: settings.scanLimits)
    }

    /// Scores the message with its settings; campaigns count in `campaigns` when given.
    func score(campaigns: CampaignTracker? = nil, now: Date = Date(timeIntervalSince1970: 1_700_000_000)) -> ScoreReport {
        let scorer = ContentScorer(settings: settings)
        let resolution = IdentityResolution(identity: Identity(keys: identityKeys), symbols: identitySymbols)
        return scorer.score(facts, resolution: resolution, campaigns: campaigns, now: now)
    }

    /// The names of the symbols that fire.
    var symbols: [String] {
        score().hits.map(\.name)
    }
}
