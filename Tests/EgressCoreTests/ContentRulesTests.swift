// Tests for each built-in scoring rule: a message that fires it and a near miss that must
// not, from one clean message that fires nothing. A last test checks that every built-in
// symbol has a case here.

import Foundation
import XCTest
@testable import EgressCore

final class ContentRulesTests: XCTestCase {
    struct Case {
        var symbol: String
        var fires: Sample
        var quiet: Sample
    }

    static var clean: Sample { Sample() }

    /// Executable bytes: an MZ header and padding.
    static let windowsProgram: [UInt8] = [0x4D, 0x5A, 0x90, 0x00] + Array(repeating: 0, count: 60)

    static var cases: [Case] {
        let clean = Self.clean
        let manyRecipients = (1...25).map { "user\($0)@example.net" }
        let manyDomains = (1...12).map { "user@domain\($0).example" }
        let textWithShouting = String(repeating: "THIS OFFER ENDS SOON AND YOU MUST ACT ", count: 8)
        let nested = (0..<4).reduce("Content-Type: text/plain\n\ndeep text\n") { inner, level in
            "Content-Type: multipart/mixed; boundary=n\(level)\n\n--n\(level)\n\(inner)--n\(level)--\n"
        }
        var invalidBytes = Array("Hi Bob, here are the notes: ".utf8)
        invalidBytes += Array(repeating: 0xFF, count: 12)
        var fewInvalidBytes = Array("Hi Bob, here are the notes: ".utf8)
        fewInvalidBytes += [0xFF, 0xFE]

        return [
            Case(symbol: BuiltInSymbol.gtube,
                 fires: clean.with(body: "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\n"),
                 quiet: clean.with(body: "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD\n")),
            Case(symbol: BuiltInSymbol.bulkRecipients,
                 fires: { var sample = clean; sample.recipients = manyRecipients; return sample }(),
                 quiet: { var sample = clean; sample.recipients = Array(manyRecipients.prefix(19)); return sample }()),
            Case(symbol: BuiltInSymbol.manyRecipientDomains,
                 fires: { var sample = clean; sample.recipients = manyDomains; return sample }(),
                 quiet: { var sample = clean; sample.recipients = manyRecipients; return sample }()),
            Case(symbol: BuiltInSymbol.fromNotHosted,
                 fires: clean.setting("From", "Alice <alice@elsewhere.example>").configured { $0.hostedDomains = ["shop.example"] },
                 quiet: clean.setting("From", "Alice <alice@mail.shop.example>").configured { $0.hostedDomains = ["shop.example"] }),
            Case(symbol: BuiltInSymbol.fromDisplayNameSpoof,
                 fires: clean.setting("From", "\"service@paypal.com\" <alice@shop.example>"),
                 quiet: clean.setting("From", "\"alice@shop.example\" <alice@shop.example>")),
            Case(symbol: BuiltInSymbol.replyToFreeMail,
                 fires: clean.setting("Reply-To", "claims.dept@gmail.com"),
                 quiet: clean.setting("Reply-To", "support@shop.example")),
            Case(symbol: BuiltInSymbol.replyToOtherDomain,
                 fires: clean.setting("Reply-To", "orders@another.example"),
                 quiet: clean.setting("Reply-To", "list@lists.example").setting("List-Id", "<team.lists.example>")),
            Case(symbol: BuiltInSymbol.fromFreeMail,
                 fires: clean.setting("From", "Alice <alice.example@gmail.com>"),
                 quiet: clean.setting("From", "Alice <alice@gmail-fans.example>")),
            Case(symbol: BuiltInSymbol.fromMissing, fires: clean.removing("From"), quiet: clean),
            Case(symbol: BuiltInSymbol.fromInvalid,
                 fires: clean.setting("From", "iplvwq@"),
                 quiet: clean.setting("From", "iplvwq@shop.example")),
            Case(symbol: BuiltInSymbol.fromLocalPartDigits,
                 fires: clean.setting("From", "sb55sb123456789@shop.example"),
                 quiet: clean.setting("From", "alice24@shop.example")),
            Case(symbol: BuiltInSymbol.fromRandomLetters,
                 fires: clean.setting("From", "xyzzfsjccsqyxhkw@shop.example"),
                 quiet: clean.setting("From", "zzzzzz@shop.example")),
            Case(symbol: BuiltInSymbol.fromDynamicDNS,
                 fires: clean.setting("From", "offers@deals.duckdns.org"),
                 quiet: clean.setting("From", "offers@duckdns-fans.example")),
            Case(symbol: BuiltInSymbol.envelopeWebServerUser,
                 fires: { var sample = clean.setting("From", "notices@bank.example"); sample.envelopeSender = "www-data@vps1.host.example"; return sample }(),
                 quiet: { var sample = clean.setting("From", "www-data@host.example"); sample.envelopeSender = "www-data@vps1.host.example"; return sample }()),
            Case(symbol: BuiltInSymbol.toMissing, fires: clean.removing("To"), quiet: clean.removing("To").setting("Cc", "bob@example.net")),
            Case(symbol: BuiltInSymbol.toUndisclosed,
                 fires: clean.setting("To", "undisclosed-recipients:;"),
                 quiet: clean.setting("To", "Disclosure Team <team@example.net>")),
            Case(symbol: BuiltInSymbol.missingDate, fires: clean.removing("Date"), quiet: clean),
            Case(symbol: BuiltInSymbol.missingMessageID, fires: clean.removing("Message-ID"), quiet: clean),
            Case(symbol: BuiltInSymbol.messageIDNoDomain,
                 fires: clean.setting("Message-ID", "<d3de01cd60c6$1491c120@admin>"),
                 quiet: clean.setting("Message-ID", "<d3de01cd60c6$1491c120@admin.example>")),
            Case(symbol: BuiltInSymbol.dateInvalid,
                 fires: clean.setting("Date", "Sat, 18 Jan 2003 19:50:57 01900"),
                 quiet: clean.setting("Date", "18 Jan 2003 19:50:57 -0500 (EST)")),
            Case(symbol: BuiltInSymbol.subjectMissing, fires: clean.setting("Subject", "   "), quiet: clean.setting("Subject", "hi")),
            Case(symbol: BuiltInSymbol.subjectAllCaps,
                 fires: clean.setting("Subject", "PROTECT YOUR COMPUTER NOW"),
                 quiet: clean.setting("Subject", "Notes on the NASA and ESA call")),
            Case(symbol: BuiltInSymbol.subjectAdvertisement,
                 fires: clean.setting("Subject", "ADV: your brand new house"),
                 quiet: clean.setting("Subject", "Advice on the new house")),
            Case(symbol: BuiltInSymbol.subjectAdvertising,
                 fires: clean.setting("Subject", "Special offer for you"),
                 quiet: clean.setting("Subject", "Special guests for you")),
            Case(symbol: BuiltInSymbol.subjectAdult,
                 fires: clean.setting("Subject", "Hot singles near you"),
                 quiet: clean.setting("Subject", "Single sign-on near you")),
            Case(symbol: BuiltInSymbol.fakeReply,
                 fires: clean.setting("Subject", "Re[4]: Regarding your activation"),
                 quiet: clean.setting("Subject", "Re: notes").setting("In-Reply-To", "<1@shop.example>")),
            Case(symbol: BuiltInSymbol.subjectExclamations,
                 fires: clean.setting("Subject", "Say goodbye to stained teeth!!!"),
                 quiet: clean.setting("Subject", "Thanks for the notes!")),
            Case(symbol: BuiltInSymbol.subjectPadding,
                 fires: clean.setting("Subject", "Your vacation             35001"),
                 quiet: clean.setting("Subject", "Your vacation  plan")),
            Case(symbol: BuiltInSymbol.subjectRandomToken,
                 fires: clean.setting("Subject", "5uj9s"),
                 quiet: clean.setting("Subject", "2024")),
            Case(symbol: BuiltInSymbol.priorityHigh,
                 fires: clean.setting("X-Priority", "1 (Highest)"),
                 quiet: clean.setting("X-Priority", "3 (Normal)")),
            Case(symbol: BuiltInSymbol.linkTextMismatch,
                 fires: clean.html("<p>Log in at <a href=\"https://evil.example/login\">www.paypal.com</a></p>"),
                 quiet: clean.html("<p>Log in at <a href=\"https://www.paypal.com/signin\">www.paypal.com</a></p>")),
            Case(symbol: BuiltInSymbol.urlIPAddress,
                 fires: clean.with(body: "See http://192.0.2.7/offer for details\n"),
                 quiet: clean.with(body: "See version 1.2.3.4 for details\n")),
            Case(symbol: BuiltInSymbol.urlShortener,
                 fires: clean.with(body: "See https://bit.ly/3abcdef\n"),
                 quiet: clean.with(body: "See https://bitly-alternatives.example/\n")),
            Case(symbol: BuiltInSymbol.urlObfuscated,
                 fires: clean.with(body: "See http://www.bank.example@evil.example/login\n"),
                 quiet: clean.with(body: "Mail www.bank.example or evil.example\n")),
            Case(symbol: BuiltInSymbol.urlDynamicDNS,
                 fires: clean.with(body: "See http://krkr.redirectme.net/offer\n"),
                 quiet: clean.with(body: "See http://redirectme.example/offer\n")),
            Case(symbol: BuiltInSymbol.suspiciousTLD,
                 fires: clean.with(body: "See http://www.moneytrack.top/l/x1\n"),
                 quiet: clean.with(body: "See http://www.top.example/l/x1\n")),
            Case(symbol: BuiltInSymbol.urlAdultHost,
                 fires: clean.html("<a href=\"http://www.freesexontheweb.example/\">here we go</a>"),
                 quiet: clean.html("<a href=\"http://www.essex.ac.example/\">here we go</a>")),
            Case(symbol: BuiltInSymbol.clickHereLink,
                 fires: clean.alternative(plain: "See the notes", html: "<a href=\"https://shop.example/notes\">Click here</a>"),
                 quiet: clean.alternative(plain: "See the notes", html: "<a href=\"https://shop.example/notes\">the notes</a>")),
            Case(symbol: BuiltInSymbol.htmlForm,
                 fires: clean.alternative(plain: "Form", html: "<form action=\"https://collect.example/\"><input name=q></form>"),
                 quiet: clean.alternative(plain: "Form", html: "<p>form</p>")),
            Case(symbol: BuiltInSymbol.htmlPasswordField,
                 fires: clean.alternative(plain: "Login", html: "<form><input type=\"password\" name=p></form>"),
                 quiet: clean.alternative(plain: "Login", html: "<p>Your password stays with you.</p>")),
            Case(symbol: BuiltInSymbol.htmlOnly,
                 fires: clean.html("<p>Hi Bob, here are the notes.</p>"),
                 quiet: clean.alternative(plain: "Hi Bob, here are the notes.", html: "<p>Hi Bob, here are the notes.</p>")),
            Case(symbol: BuiltInSymbol.htmlImageOnly,
                 fires: clean.alternative(plain: "", html: "<img src=\"cid:1\">"),
                 quiet: clean.alternative(plain: "", html: "<img src=\"cid:1\"><p>" + Sample.cleanBody + Sample.cleanBody + "</p>")),
            Case(symbol: BuiltInSymbol.htmlImageOnlyMany,
                 fires: clean.alternative(plain: "", html: String(repeating: "<img src=\"cid:1\">", count: 5)),
                 quiet: clean.alternative(plain: "", html: String(repeating: "<img src=\"cid:1\">", count: 4))),
            Case(symbol: BuiltInSymbol.htmlHiddenText,
                 fires: clean.alternative(plain: "Hi", html: "<p>Hi</p><font color=white>" + String(repeating: "random words here ", count: 10) + "</font>"),
                 quiet: clean.alternative(plain: "Hi", html: "<p>Hi</p><font color=navy>" + String(repeating: "random words here ", count: 10) + "</font>")),
            Case(symbol: BuiltInSymbol.htmlSplitWords,
                 fires: clean.alternative(plain: "x", html: "V<b></b>IA<i></i>GR<!-- x -->A and mi<u></u>llion"),
                 quiet: clean.alternative(plain: "x", html: "<b>Hello</b> <i>world</i> and<br>more")),
            Case(symbol: BuiltInSymbol.textObfuscated,
                 fires: clean.with(body: "Join our A`D`U`L`T site for F^R^E^E\n"),
                 quiet: clean.with(body: "It's rock'n'roll, isn't it\n")),
            Case(symbol: BuiltInSymbol.textShouting,
                 fires: clean.with(body: textWithShouting),
                 quiet: clean.with(body: textWithShouting.lowercased())),
            Case(symbol: BuiltInSymbol.phishAccountVerify,
                 fires: clean.with(body: "Please verify your account within 24 hours.\n"),
                 quiet: clean.with(body: "Please verify the numbers in the account report.\n")),
            Case(symbol: BuiltInSymbol.phishPasswordExpiry,
                 fires: clean.with(body: "Ihr Passwort läuft heute ab. Behalten Sie es hier.\n"),
                 quiet: { var sample = clean.with(body: "Your mailbox is full.\n"); sample.envelopeSender = ""; return sample }()),
            Case(symbol: BuiltInSymbol.phishPaymentLure,
                 fires: clean.with(body: "Please see the attached invoice, the payment is overdue.\n"),
                 quiet: clean.with(body: "The invoice template is in the wiki.\n")),
            Case(symbol: BuiltInSymbol.advanceFee,
                 fires: clean.with(body: "I am a barrister. You are the beneficiary of my late client.\n"),
                 quiet: clean.with(body: "I am a barrister in London.\n")),
            Case(symbol: BuiltInSymbol.spamPhrases,
                 fires: clean.with(body: "Click here for a special offer, order now, money back guaranteed.\n"),
                 quiet: clean.with(body: "Click here for the notes, order of topics below.\n")),
            Case(symbol: BuiltInSymbol.spamPhrasesMany,
                 fires: clean.with(body: "Click here! Special offer, order now, money back, risk-free, act now, limited time, bonus, free gift.\n"),
                 quiet: clean.with(body: "Click here for a special offer, order now, money back guaranteed.\n")),
            Case(symbol: BuiltInSymbol.adultWords,
                 fires: clean.with(body: "Naked and horny, see our site.\n"),
                 quiet: clean.with(body: "A naked eye can see the comet.\n")),
            Case(symbol: BuiltInSymbol.adultWordsMany,
                 fires: clean.with(body: "Naked, horny, sexy, hardcore, see our site.\n"),
                 quiet: clean.with(body: "Naked and horny, see our site.\n")),
            Case(symbol: BuiltInSymbol.pharmacyWords,
                 fires: clean.with(body: "Cheap viagra and cialis without a doctor.\n"),
                 quiet: clean.with(body: "Take the pills the doctor gave you.\n")),
            Case(symbol: BuiltInSymbol.pharmacyWordsMany,
                 fires: clean.with(body: "Viagra, cialis, valium and xanax from our pharmacy.\n"),
                 quiet: clean.with(body: "Cheap viagra and cialis without a doctor.\n")),
            Case(symbol: BuiltInSymbol.unsubscribeWithoutHeader,
                 fires: clean.with(body: "To unsubscribe reply with REMOVE.\n"),
                 quiet: clean.with(body: "To unsubscribe reply with REMOVE.\n").setting("List-Unsubscribe", "<mailto:leave@shop.example>")),
            Case(symbol: BuiltInSymbol.attachExecutable,
                 fires: clean.attaching(name: "tool.bin.data", type: "application/octet-stream", content: windowsProgram),
                 quiet: clean.attaching(name: "notes.txt", type: "text/plain", content: Array("notes".utf8))),
            Case(symbol: BuiltInSymbol.attachScript,
                 fires: clean.attaching(name: "invoice.js", type: "application/javascript", content: Array("var a = 1;".utf8)),
                 quiet: clean.attaching(name: "invoice.json", type: "application/json", content: Array("{}".utf8))),
            Case(symbol: BuiltInSymbol.attachHTML,
                 fires: clean.attaching(name: "login.html", type: "text/html", content: Array("<p>x</p>".utf8)),
                 quiet: clean.attaching(name: "login.txt", type: "text/plain", content: Array("x".utf8))),
            Case(symbol: BuiltInSymbol.attachDiskImage,
                 fires: clean.attaching(name: "scan.iso", type: "application/octet-stream", content: [1, 2, 3]),
                 quiet: clean.attaching(name: "scan.pdf", type: "application/pdf", content: Array("%PDF-1.4".utf8))),
            Case(symbol: BuiltInSymbol.attachMacroDocument,
                 fires: clean.attaching(name: "order.docm", type: "application/octet-stream", content: [1, 2, 3]),
                 quiet: clean.attaching(name: "order.docx", type: "application/octet-stream", content: zipWithEntries(["word/document.xml"]))),
            Case(symbol: BuiltInSymbol.attachDoubleExtension,
                 fires: clean.attaching(name: "invoice.pdf.scr", type: "application/octet-stream", content: [1, 2, 3]),
                 quiet: clean.attaching(name: "invoice.2024.pdf", type: "application/pdf", content: Array("%PDF-1.4".utf8))),
            Case(symbol: BuiltInSymbol.attachTypeMismatch,
                 fires: clean.attaching(name: "statement.pdf", type: "application/pdf", content: windowsProgram),
                 quiet: clean.attaching(name: "statement.pdf", type: "application/pdf", content: Array("%PDF-1.4".utf8))),
            Case(symbol: BuiltInSymbol.archiveHidesExecutable,
                 fires: clean.attaching(name: "docs.zip", type: "application/zip", content: zipWithEntries(["readme.txt", "setup.exe"])),
                 quiet: clean.attaching(name: "docs.zip", type: "application/zip", content: zipWithEntries(["readme.txt", "photo.jpg"]))),
            Case(symbol: BuiltInSymbol.archiveEncrypted,
                 fires: clean.attaching(name: "docs.zip", type: "application/zip", content: {
                     var archive = zipWithEntries(["readme.txt"])
                     archive[6] = 1
                     return archive
                 }()),
                 quiet: clean.attaching(name: "docs.zip", type: "application/zip", content: zipWithEntries(["readme.txt"]))),
            Case(symbol: BuiltInSymbol.scriptInUploadDirectory,
                 fires: { var sample = clean; sample.path = .local; sample.identityKeys = [IdentityKey(level: .script, value: "alice:/home/alice/public_html/wp-content/uploads/2024/x.php"), .server]; return sample }(),
                 quiet: { var sample = clean; sample.path = .local; sample.identityKeys = [IdentityKey(level: .script, value: "alice:/home/alice/public_html/contact.php"), .server]; return sample }()),
            Case(symbol: IdentitySymbol.stampForged,
                 fires: { var sample = clean; sample.identitySymbols = [IdentitySymbol.stampForged]; return sample }(),
                 quiet: clean),
            Case(symbol: IdentitySymbol.phpScriptUIDMismatch,
                 fires: { var sample = clean; sample.identitySymbols = [IdentitySymbol.phpScriptUIDMismatch]; return sample }(),
                 quiet: clean),
            Case(symbol: IdentitySymbol.stampSenderChanged,
                 fires: { var sample = clean; sample.identitySymbols = [IdentitySymbol.stampSenderChanged]; return sample }(),
                 quiet: clean),
            Case(symbol: BuiltInSymbol.scanLimitReached,
                 fires: clean.with(body: String(repeating: "a line of text\n", count: 200)).configured { $0.scanLimits.scanLimitBytes = 1024 },
                 quiet: clean.with(body: String(repeating: "a line of text\n", count: 60)).configured { $0.scanLimits.scanLimitBytes = 1024 }),
            Case(symbol: BuiltInSymbol.mimeNestingLimit,
                 fires: clean.replacingContent(nested).configured { $0.scanLimits.maximumNestingDepth = 2 },
                 quiet: clean.replacingContent(nested).configured { $0.scanLimits.maximumNestingDepth = 8 }),
            Case(symbol: BuiltInSymbol.mimePartLimit,
                 fires: clean.attaching(name: "a.txt", type: "text/plain", content: [0x61]).configured { $0.scanLimits.maximumParts = 2 },
                 quiet: clean.attaching(name: "a.txt", type: "text/plain", content: [0x61]).configured { $0.scanLimits.maximumParts = 3 }),
            Case(symbol: BuiltInSymbol.mimeBroken,
                 fires: clean.with(body: "--b\nContent-Type: text/plain\n\nno end\n", contentType: "multipart/mixed; boundary=b"),
                 quiet: clean.with(body: "--b\nContent-Type: text/plain\n\nend\n--b--\n", contentType: "multipart/mixed; boundary=b")),
            Case(symbol: BuiltInSymbol.invalidCharacters,
                 fires: { var sample = clean; sample.rawBody = invalidBytes; return sample }(),
                 quiet: { var sample = clean; sample.rawBody = fewInvalidBytes; return sample }()),
            Case(symbol: BuiltInSymbol.unknownCharset,
                 fires: clean.setting("Content-Type", "text/plain; charset=x-no-such-charset"),
                 quiet: clean.setting("Content-Type", "text/plain; charset=koi8-r")),
            Case(symbol: BuiltInSymbol.patternLimit,
                 fires: clean.with(body: String(repeating: "a", count: 40) + "!\n").configured {
                     $0.patternMatchLimit = 1000
                     $0.rules = [CustomRule(name: "NESTED", target: .body, pattern: "(a+)+$", weight: 1)]
                 },
                 quiet: clean.with(body: "short\n").configured {
                     $0.patternMatchLimit = 1000
                     $0.rules = [CustomRule(name: "NESTED", target: .body, pattern: "(a+)+$", weight: 1)]
                 }),
        ]
    }

    func testCleanMessageFiresNothing() {
        XCTAssertEqual(Self.clean.symbols, [])
        XCTAssertEqual(Self.clean.score().score, 0)
    }

    func testEachRuleFiresAndHasANearMiss() {
        for item in Self.cases {
            XCTAssertTrue(item.fires.symbols.contains(item.symbol), "\(item.symbol) should fire; got \(item.fires.symbols)")
            XCTAssertFalse(item.quiet.symbols.contains(item.symbol), "\(item.symbol) should not fire; got \(item.quiet.symbols)")
        }
    }

    func testEveryBuiltInSymbolHasACase() {
        let covered = Set(Self.cases.map(\.symbol)).union(CampaignRulesTests.symbols)
        for rule in BuiltInRules.all {
            XCTAssertTrue(covered.contains(rule.name), "no test case for \(rule.name)")
        }
    }

    func testHitsCarryWeightDescriptionAndMatchedText() throws {
        let report = Self.clean.with(body: "Please verify your account today.\n").score()
        let hit = try XCTUnwrap(report.hits.first { $0.name == BuiltInSymbol.phishAccountVerify })
        XCTAssertEqual(hit.weight, 3.0)
        XCTAssertEqual(hit.detail, "verify your account")
        XCTAssertFalse(hit.description.isEmpty)
        XCTAssertEqual(report.score, 3.0)
    }

    func testPhrasesMatchAcrossLanguagesAndCase() {
        let samples = [
            "BITTE VERIFIZIEREN SIE IHR KONTO", "Vérifiez votre compte maintenant", "Verifique su cuenta hoy",
            "ПОДТВЕРДИТЕ ВАШ АККАУНТ", "アカウントの確認をお願いします",
        ]
        for text in samples {
            XCTAssertTrue(Self.clean.with(body: text + "\n").symbols.contains(BuiltInSymbol.phishAccountVerify), text)
        }
    }

    func testWeightsCanBeChangedAndRulesDisabled() {
        let sample = Self.clean.setting("From", "Alice <alice.example@gmail.com>")
        XCTAssertEqual(sample.configured { $0.weights = [BuiltInSymbol.fromFreeMail: 0.25] }.score().score, 0.25)
        XCTAssertEqual(sample.configured { $0.disabled = [BuiltInSymbol.fromFreeMail] }.symbols, [])
    }

    func testThresholdsMapScoreToAction() {
        let thresholds = ScoreThresholds(tag: 5, hold: 12, reject: 20)
        let cases: [(Double, Action)] = [(0, .accept), (4.9, .accept), (5, .tag), (11.9, .tag), (12, .hold), (20, .reject), (1000, .reject)]
        for (score, action) in cases {
            XCTAssertEqual(thresholds.action(for: score), action, "\(score)")
        }
        XCTAssertEqual(ScoreThresholds(tag: nil, hold: 10, reject: nil).action(for: 9), .accept)
        XCTAssertEqual(ScoreThresholds(tag: nil, hold: 10, reject: nil).action(for: 25), .hold)
    }

    func testDisabledScoringKeepsIdentitySymbolsWithoutWeight() {
        var sample = Self.clean.configured { $0.enabled = false }
        sample.identitySymbols = [IdentitySymbol.stampForged]
        let report = sample.score()
        XCTAssertEqual(report.hits.map(\.name), [IdentitySymbol.stampForged])
        XCTAssertEqual(report.score, 0)
        XCTAssertEqual(report.action, .accept)
    }

    func testUnsubscribeTextOfAListIsNoSpamPhrase() {
        let body = "Special offer for members, order now, money back. To unsubscribe, use the link below.\n"
        let withoutHeader = ContentRulesTests.clean.with(body: body)
        let withHeader = withoutHeader.setting("List-Unsubscribe", "<mailto:leave@shop.example>")
        XCTAssertTrue(withoutHeader.score().hits.contains { $0.name == BuiltInSymbol.spamPhrases })
        XCTAssertFalse(withHeader.score().hits.contains { $0.name == BuiltInSymbol.spamPhrases })
    }

    func testUploadFolderInScriptPath() {
        let table: [(path: String, folder: String?)] = [
            ("/home/alice/public_html/wp-content/uploads/2024/03/x.php", "uploads"),
            ("/home/alice/example.org/wp-content/cache/min.php", "cache"),
            ("/var/www/html/images/stories/shell.php", "images"),
            ("/home/bob/httpdocs/sites/default/files/a.php", "files"),
            ("/srv/site/upload/x.php", "upload"),
            ("/tmp/x.php", "/tmp/"),
            ("/dev/shm/.x/send.php", "/dev/shm/"),
            ("/home/alice/public_html/contact.php", nil),
            ("/srv/files/customer/public_html/index.php", nil),
            ("/home/alice/tmp/site/index.php", nil),
            ("/home/alice/cache-tools/send.php", nil),
            ("/home/alice/public_html/wp-content/plugins/forms/send.php", nil),
            ("/home/alice/public_html/wp-cron.php", nil),
        ]
        for row in table {
            XCTAssertEqual(ContentRules.uploadFolder(inScriptPath: row.path), row.folder, row.path)
        }
    }
}

extension Sample {
    /// A copy whose whole content (Content-Type header and body) is `entity`: header lines,
    /// an empty line, then the body.
    func replacingContent(_ entity: String) -> Sample {
        let parts = entity.components(separatedBy: "\n\n")
        var copy = self
        let headerLine = parts[0]
        if let colon = headerLine.firstIndex(of: ":") {
            copy = copy.setting(String(headerLine[..<colon]), headerLine[headerLine.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        copy.body = parts.dropFirst().joined(separator: "\n\n")
        return copy
    }
}
