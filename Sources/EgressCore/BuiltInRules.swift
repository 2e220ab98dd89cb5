// The catalogue of built-in scoring symbols: each name with its default weight and a
// one-line description. The config file reweights a symbol (`scoring.weights`) or turns it
// off (`scoring.disabled`); docs/scoring.md lists the same table for admins.
//
// Weights are chosen so that one signal alone stays below the tag threshold (5) unless it
// is conclusive on its own (GTUBE, an executable attachment or script), and so that a
// message needs several independent signals to reach the hold threshold.

/// A symbol that a rule adds to a message's score.
public struct RuleDescription: Sendable, Equatable {
    public var name: String
    public var weight: Double
    public var description: String

    public init(name: String, weight: Double, description: String) {
        self.name = name
        self.weight = weight
        self.description = description
    }
}

/// One symbol that fired for a message: its weight as applied and the text that matched.
public struct SymbolHit: Sendable, Equatable {
    public var name: String
    public var weight: Double
    public var description: String
    /// What matched: a phrase, a link, a header value or a count; empty when the symbol
    /// says it all.
    public var detail: String

    public init(name: String, weight: Double, description: String, detail: String = "") {
        self.name = name
        self.weight = weight
        self.description = description
        self.detail = detail
    }
}

/// Names of the built-in symbols.
public enum BuiltInSymbol {
    public static let gtube = "GTUBE"
    public static let bulkRecipients = "BULK_RECIPIENTS"
    public static let manyRecipientDomains = "MANY_RECIPIENT_DOMAINS"
    public static let fromNotHosted = "FROM_NOT_HOSTED"
    public static let fromDisplayNameSpoof = "FROM_DISPLAY_NAME_SPOOF"
    public static let replyToFreeMail = "REPLY_TO_FREEMAIL"
    public static let fromFreeMail = "FROM_FREEMAIL"
    public static let fromMissing = "FROM_MISSING"
    public static let fromInvalid = "FROM_INVALID"
    public static let fromLocalPartDigits = "FROM_LOCALPART_DIGITS"
    public static let fromRandomLetters = "FROM_RANDOM_LETTERS"
    public static let fromDynamicDNS = "FROM_DYNAMIC_DNS"
    public static let replyToOtherDomain = "REPLY_TO_OTHER_DOMAIN"
    public static let envelopeWebServerUser = "ENVELOPE_WEB_SERVER_USER"
    public static let dateInvalid = "DATE_INVALID"
    public static let subjectRandomToken = "SUBJECT_RANDOM_TOKEN"
    public static let toMissing = "TO_MISSING"
    public static let toUndisclosed = "TO_UNDISCLOSED"
    public static let subjectAdult = "SUBJECT_ADULT"
    public static let subjectAdvertising = "SUBJECT_ADVERTISING_WORDS"
    public static let clickHereLink = "CLICK_HERE_LINK"
    public static let missingDate = "MISSING_DATE"
    public static let missingMessageID = "MISSING_MESSAGE_ID"
    public static let subjectMissing = "SUBJECT_MISSING"
    public static let subjectAllCaps = "SUBJECT_ALL_CAPS"
    public static let subjectAdvertisement = "SUBJECT_ADVERTISEMENT"
    public static let fakeReply = "FAKE_REPLY"
    public static let subjectExclamations = "SUBJECT_EXCLAMATIONS"
    public static let subjectPadding = "SUBJECT_PADDING"
    public static let priorityHigh = "PRIORITY_HIGH"
    public static let linkTextMismatch = "LINK_TEXT_MISMATCH"
    public static let urlIPAddress = "URL_IP_ADDRESS"
    public static let urlShortener = "URL_SHORTENER"
    public static let urlObfuscated = "URL_OBFUSCATED"
    public static let urlDynamicDNS = "URL_DYNAMIC_DNS"
    public static let suspiciousTLD = "SUSPICIOUS_TLD"
    public static let urlAdultHost = "URL_ADULT_HOST"
    public static let messageIDNoDomain = "MESSAGE_ID_NO_DOMAIN"
    public static let htmlHiddenText = "HTML_HIDDEN_TEXT"
    public static let htmlSplitWords = "HTML_SPLIT_WORDS"
    public static let htmlImageOnlyMany = "HTML_IMAGE_ONLY_MANY"
    public static let textObfuscated = "TEXT_OBFUSCATED"
    public static let textShouting = "TEXT_SHOUTING"
    public static let htmlForm = "HTML_FORM"
    public static let htmlPasswordField = "HTML_PASSWORD_FIELD"
    public static let htmlOnly = "HTML_ONLY"
    public static let htmlImageOnly = "HTML_IMAGE_ONLY"
    public static let phishAccountVerify = "PHISH_ACCOUNT_VERIFY"
    public static let phishPasswordExpiry = "PHISH_PASSWORD_EXPIRY"
    public static let phishPaymentLure = "PHISH_PAYMENT_LURE"
    public static let advanceFee = "ADVANCE_FEE"
    public static let spamPhrases = "SPAM_PHRASES"
    public static let spamPhrasesMany = "SPAM_PHRASES_MANY"
    public static let adultWords = "ADULT_WORDS"
    public static let adultWordsMany = "ADULT_WORDS_MANY"
    public static let pharmacyWords = "PHARMACY_WORDS"
    public static let pharmacyWordsMany = "PHARMACY_WORDS_MANY"
    public static let unsubscribeWithoutHeader = "UNSUBSCRIBE_NO_LIST_HEADER"
    public static let attachExecutable = "ATTACH_EXECUTABLE"
    public static let attachScript = "ATTACH_SCRIPT"
    public static let attachHTML = "ATTACH_HTML"
    public static let attachDiskImage = "ATTACH_DISK_IMAGE"
    public static let attachMacroDocument = "ATTACH_MACRO_DOCUMENT"
    public static let attachDoubleExtension = "ATTACH_DOUBLE_EXTENSION"
    public static let attachTypeMismatch = "ATTACH_TYPE_MISMATCH"
    public static let archiveHidesExecutable = "ARCHIVE_HIDES_EXECUTABLE"
    public static let archiveEncrypted = "ARCHIVE_ENCRYPTED"
    public static let scriptInUploadDirectory = "SCRIPT_IN_UPLOAD_DIR"
    public static let campaignBulk = "CAMPAIGN_BULK"
    public static let campaignMultiSender = "CAMPAIGN_MULTI_SENDER"
    public static let subjectBurst = "SUBJECT_BURST"
    public static let scanLimitReached = "SCAN_LIMIT_REACHED"
    public static let mimeNestingLimit = "MIME_NESTING_LIMIT"
    public static let mimePartLimit = "MIME_PART_LIMIT"
    public static let mimeBroken = "MIME_BROKEN"
    public static let invalidCharacters = "INVALID_CHARACTERS"
    public static let unknownCharset = "UNKNOWN_CHARSET"
    public static let patternLimit = "PATTERN_LIMIT"
}

enum BuiltInRules {
    /// Every built-in symbol with its default weight, in the order the docs list them.
    static let all: [RuleDescription] = [
        RuleDescription(name: BuiltInSymbol.gtube, weight: 1000,
                        description: "contains GTUBE, the test string that every spam filter must catch"),
        // Envelope and headers
        RuleDescription(name: BuiltInSymbol.bulkRecipients, weight: 2.0,
                        description: "many envelope recipients in one message (scoring.bulk_recipients)"),
        RuleDescription(name: BuiltInSymbol.manyRecipientDomains, weight: 2.0,
                        description: "recipients in many different domains (scoring.bulk_recipient_domains)"),
        RuleDescription(name: BuiltInSymbol.fromNotHosted, weight: 3.0,
                        description: "From domain is not one of this server's hosted domains"),
        RuleDescription(name: BuiltInSymbol.fromDisplayNameSpoof, weight: 3.0,
                        description: "From display name shows an address in another domain than the real sender"),
        RuleDescription(name: BuiltInSymbol.replyToFreeMail, weight: 2.5,
                        description: "Reply-To sends replies to a free-mail domain other than the From domain"),
        RuleDescription(name: BuiltInSymbol.fromFreeMail, weight: 1.0,
                        description: "From is a free-mail address, which a hosting server does not send for"),
        RuleDescription(name: BuiltInSymbol.fromMissing, weight: 1.0, description: "no From header, or one without an address"),
        RuleDescription(name: BuiltInSymbol.fromInvalid, weight: 1.5, description: "From address has no valid domain"),
        RuleDescription(name: BuiltInSymbol.fromLocalPartDigits, weight: 1.0,
                        description: "From local part has a long run of digits, as generated addresses do"),
        RuleDescription(name: BuiltInSymbol.fromRandomLetters, weight: 1.5,
                        description: "From address made of random letters (six consonants in a row), as generated addresses are"),
        RuleDescription(name: BuiltInSymbol.fromDynamicDNS, weight: 2.0,
                        description: "From or Reply-To address at a dynamic DNS or throwaway hosting name"),
        RuleDescription(name: BuiltInSymbol.replyToOtherDomain, weight: 0.5,
                        description: "Reply-To sends replies to another domain than the From domain, outside mailing lists"),
        RuleDescription(name: BuiltInSymbol.envelopeWebServerUser, weight: 2.5,
                        description: "sent by a web server account (www-data, apache, nobody) with a From in another domain"),
        RuleDescription(name: BuiltInSymbol.toMissing, weight: 1.0, description: "no To or Cc header: every recipient is hidden"),
        RuleDescription(name: BuiltInSymbol.toUndisclosed, weight: 1.0,
                        description: "To names \"undisclosed recipients\": the real recipients are hidden in Bcc"),
        RuleDescription(name: BuiltInSymbol.missingDate, weight: 1.0, description: "no Date header"),
        RuleDescription(name: BuiltInSymbol.missingMessageID, weight: 1.0, description: "no Message-ID header"),
        RuleDescription(name: BuiltInSymbol.messageIDNoDomain, weight: 0.5,
                        description: "Message-ID without a domain name after the @, as bulk mailing tools write it"),
        RuleDescription(name: BuiltInSymbol.dateInvalid, weight: 1.0,
                        description: "Date header not in RFC 5322 form, or with an impossible time zone, as bulk mailers write it"),
        RuleDescription(name: BuiltInSymbol.subjectMissing, weight: 0.5, description: "no Subject, or an empty one"),
        RuleDescription(name: BuiltInSymbol.subjectAllCaps, weight: 1.5, description: "Subject written in capitals"),
        RuleDescription(name: BuiltInSymbol.subjectAdvertisement, weight: 2.5,
                        description: "Subject labelled as advertising (ADV:, 未承諾広告)"),
        RuleDescription(name: BuiltInSymbol.fakeReply, weight: 1.0,
                        description: "Subject starts like a reply (Re:, AW:) but the message replies to nothing"),
        RuleDescription(name: BuiltInSymbol.subjectExclamations, weight: 1.0, description: "Subject with two exclamation marks or more"),
        RuleDescription(name: BuiltInSymbol.subjectRandomToken, weight: 1.5,
                        description: "Subject is one token of mixed letters and digits (5uj9s), as filter-busting subjects are"),
        RuleDescription(name: BuiltInSymbol.subjectPadding, weight: 1.5,
                        description: "Subject padded with runs of spaces, as filter-busting subjects are"),
        RuleDescription(name: BuiltInSymbol.priorityHigh, weight: 1.0,
                        description: "marked urgent (X-Priority 1 or 2, Importance: high), as bulk mail from scripts often is"),
        // Links and HTML
        RuleDescription(name: BuiltInSymbol.linkTextMismatch, weight: 3.0,
                        description: "a link's text shows one domain and the link goes to another"),
        RuleDescription(name: BuiltInSymbol.urlIPAddress, weight: 2.0, description: "a link to a raw IP address"),
        RuleDescription(name: BuiltInSymbol.urlShortener, weight: 1.5, description: "a link through a URL shortener, which hides the target"),
        RuleDescription(name: BuiltInSymbol.urlObfuscated, weight: 2.5,
                        description: "a link with user information before the host or a host written as a number"),
        RuleDescription(name: BuiltInSymbol.clickHereLink, weight: 0.5, description: "a link whose whole text is \"click here\" or \"here\""),
        RuleDescription(name: BuiltInSymbol.urlDynamicDNS, weight: 1.5,
                        description: "a link to a dynamic DNS or throwaway hosting name (no-ip, duckdns, ngrok ...)"),
        RuleDescription(name: BuiltInSymbol.suspiciousTLD, weight: 1.5,
                        description: "From address or link in a top-level domain that abuse reports rank among the most abused"),
        RuleDescription(name: BuiltInSymbol.urlAdultHost, weight: 1.5, description: "a link to a host named after porn or sex"),
        RuleDescription(name: BuiltInSymbol.htmlForm, weight: 1.5, description: "HTML body with a form that submits data"),
        RuleDescription(name: BuiltInSymbol.htmlPasswordField, weight: 3.5,
                        description: "HTML body or attachment with a password field, as login-page phishing has"),
        RuleDescription(name: BuiltInSymbol.htmlOnly, weight: 1.0, description: "HTML without a plain-text alternative"),
        RuleDescription(name: BuiltInSymbol.htmlImageOnly, weight: 2.5, description: "HTML made of images with almost no text"),
        RuleDescription(name: BuiltInSymbol.htmlImageOnlyMany, weight: 1.0,
                        description: "HTML made of five images or more with almost no text, as image spam is"),
        RuleDescription(name: BuiltInSymbol.htmlSplitWords, weight: 2.0,
                        description: "markup that shows nothing between two letters of a word (VIA<b></b>GRA), at three places or more, to hide words from filters"),
        RuleDescription(name: BuiltInSymbol.htmlHiddenText, weight: 1.0,
                        description: "HTML text made invisible (white or tiny font, display:none), as filter-busting text is"),
        RuleDescription(name: BuiltInSymbol.textObfuscated, weight: 2.0,
                        description: "words spelt with a symbol between every letter (F^R^E^E, A`D`U`L`T) to slip past filters"),
        RuleDescription(name: BuiltInSymbol.textShouting, weight: 1.0, description: "text written mostly in capitals"),
        // Phrases
        RuleDescription(name: BuiltInSymbol.phishAccountVerify, weight: 3.0,
                        description: "asks to verify or confirm an account, or says it was suspended"),
        RuleDescription(name: BuiltInSymbol.phishPasswordExpiry, weight: 3.0,
                        description: "says a password expires or a mailbox is full"),
        RuleDescription(name: BuiltInSymbol.phishPaymentLure, weight: 2.0,
                        description: "invoice, payment or transfer lure (overdue invoice, payment failed, swift copy)"),
        RuleDescription(name: BuiltInSymbol.advanceFee, weight: 3.0,
                        description: "advance-fee fraud wording (beneficiary, next of kin, millions to transfer), two phrases or more"),
        RuleDescription(name: BuiltInSymbol.spamPhrases, weight: 1.5, description: "bulk advertising wording, four phrases or more"),
        RuleDescription(name: BuiltInSymbol.spamPhrasesMany, weight: 2.0, description: "bulk advertising wording, six phrases or more"),
        RuleDescription(name: BuiltInSymbol.adultWords, weight: 2.5, description: "explicit adult wording, two words or more"),
        RuleDescription(name: BuiltInSymbol.adultWordsMany, weight: 1.5, description: "explicit adult wording, four words or more"),
        RuleDescription(name: BuiltInSymbol.subjectAdult, weight: 1.5, description: "explicit adult wording in the Subject"),
        RuleDescription(name: BuiltInSymbol.subjectAdvertising, weight: 1.5,
                        description: "bulk advertising wording in the Subject (free, discount, special offer ...)"),
        RuleDescription(name: BuiltInSymbol.pharmacyWords, weight: 2.5, description: "pharmacy spam wording, two words or more"),
        RuleDescription(name: BuiltInSymbol.pharmacyWordsMany, weight: 1.5, description: "pharmacy spam wording, four words or more"),
        RuleDescription(name: BuiltInSymbol.unsubscribeWithoutHeader, weight: 1.0,
                        description: "tells how to unsubscribe but has no List-Unsubscribe header, as bulk mail from a script does"),
        // Attachments
        RuleDescription(name: BuiltInSymbol.attachExecutable, weight: 6.0,
                        description: "executable attachment, by name (.exe, .scr, .msi ...) or by content"),
        RuleDescription(name: BuiltInSymbol.attachScript, weight: 5.0,
                        description: "script attachment (.js, .vbs, .hta, .ps1, .bat, .sh ...)"),
        RuleDescription(name: BuiltInSymbol.attachHTML, weight: 2.0, description: "HTML attachment, a common carrier of fake login pages"),
        RuleDescription(name: BuiltInSymbol.attachDiskImage, weight: 3.0, description: "disk image attachment (.iso, .img, .vhd)"),
        RuleDescription(name: BuiltInSymbol.attachMacroDocument, weight: 2.5, description: "Office document with macros"),
        RuleDescription(name: BuiltInSymbol.attachDoubleExtension, weight: 3.0,
                        description: "attachment name with a double extension (invoice.pdf.exe)"),
        RuleDescription(name: BuiltInSymbol.attachTypeMismatch, weight: 2.5,
                        description: "attachment content is a program or archive while its name or type says document or image"),
        RuleDescription(name: BuiltInSymbol.archiveHidesExecutable, weight: 6.0,
                        description: "archive attachment containing an executable or a script"),
        RuleDescription(name: BuiltInSymbol.archiveEncrypted, weight: 2.0,
                        description: "encrypted archive attachment, whose content no scanner can see"),
        // Local submissions
        RuleDescription(name: BuiltInSymbol.scriptInUploadDirectory, weight: 4.0,
                        description: "local mail from a script in an upload, cache or temp folder of a site, where attackers drop scripts"),
        RuleDescription(name: IdentitySymbol.stampForged, weight: 4.5,
                        description: "submission stamp that does not verify: forged, copied or too old"),
        RuleDescription(name: IdentitySymbol.phpScriptUIDMismatch, weight: 3.5,
                        description: "X-PHP-Originating-Script names another uid than the verified submitter"),
        RuleDescription(name: IdentitySymbol.stampSenderChanged, weight: 0.5,
                        description: "envelope sender differs from the one the wrapper stamped (canonical maps can do this)"),
        // Campaigns
        // Below the tag threshold together (2.0 + 2.5): on a hosting server many sites send the
        // same CMS templates (password resets, order notices), so a campaign alone is not spam.
        RuleDescription(name: BuiltInSymbol.campaignBulk, weight: 2.0,
                        description: "the same content went to many recipients within the campaign window"),
        RuleDescription(name: BuiltInSymbol.campaignMultiSender, weight: 2.5,
                        description: "the same content came from several senders within the campaign window"),
        RuleDescription(name: BuiltInSymbol.subjectBurst, weight: 2.0,
                        description: "one sender sent many messages with the same subject within the subject window"),
        // Decoding
        RuleDescription(name: BuiltInSymbol.scanLimitReached, weight: 0,
                        description: "message longer than the scan limit; scored on its first part only"),
        RuleDescription(name: BuiltInSymbol.mimeNestingLimit, weight: 1.0,
                        description: "MIME parts nested deeper than the nesting limit, as scanner evasion does"),
        RuleDescription(name: BuiltInSymbol.mimePartLimit, weight: 1.0, description: "more MIME parts than the part limit"),
        RuleDescription(name: BuiltInSymbol.mimeBroken, weight: 0, description: "multipart without a boundary or without its closing boundary"),
        RuleDescription(name: BuiltInSymbol.invalidCharacters, weight: 0.5,
                        description: "text with many bytes that are invalid in its charset (replaced by U+FFFD)"),
        RuleDescription(name: BuiltInSymbol.unknownCharset, weight: 0.5, description: "text in a charset the system does not know"),
        RuleDescription(name: BuiltInSymbol.patternLimit, weight: 0,
                        description: "a pattern gave up at its match limit on this message; the rule did not fire"),
    ]

    static let byName: [String: RuleDescription] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
