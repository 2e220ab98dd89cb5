// The built-in rules on what a message shows: links, HTML tricks, phrases and the shape of
// its text. Part of `ContentRules` (ContentRules.swift), with the same contract: a rule
// never fails, it fires or it does not.

extension ContentRules {
    // MARK: Links and HTML

    func checkLinks(_ hits: inout HitCollector) {
        for link in input.scan.links {
            guard let target = URLParts(link.target) else { continue }
            if target.isNumericHost || target.hasUserInfo {
                hits.add(BuiltInSymbol.urlObfuscated, detail: link.target)
            } else if target.isIPAddress {
                hits.add(BuiltInSymbol.urlIPAddress, detail: link.target)
            }
            if DomainLists.isURLShortener(target.host) {
                hits.add(BuiltInSymbol.urlShortener, detail: link.target)
            }
            if DomainLists.isDynamicDNS(target.host) {
                hits.add(BuiltInSymbol.urlDynamicDNS, detail: link.target)
            }
            if link.source != .image, DomainLists.isAdultHost(target.host) {
                hits.add(BuiltInSymbol.urlAdultHost, detail: link.target)
            }
            if link.source != .image, DomainLists.hasAbusedTopLevelDomain(target.host) {
                hits.add(BuiltInSymbol.suspiciousTLD, detail: link.target)
            }
            if link.source == .anchor, Self.callToActionTexts.contains(link.text.lowercased()) {
                hits.add(BuiltInSymbol.clickHereLink, detail: "\(link.text): \(link.target)")
            }
            if link.source == .anchor, !link.text.isEmpty, !target.isIPAddress,
               let shown = Self.shownHost(link.text),
               DomainLists.organizationalDomain(shown) != DomainLists.organizationalDomain(target.host) {
                hits.add(BuiltInSymbol.linkTextMismatch, detail: "text \(shown), target \(target.host)")
            }
        }
    }

    /// Link texts that say nothing about the target.
    static let callToActionTexts: Set<String> = ["click here", "here", "click", "click here!", "click here.", "klicken sie hier", "cliquez ici",
                                                  "haga clic aquí", "clicca qui", "clique aqui", "klik hier"]

    /// Returns the host that a link text shows: a URL's host, or the text itself when it is
    /// one domain name ("www.bank.example", "bank.example/login"); nil for other text.
    static func shownHost(_ text: String) -> String? {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty, !trimmed.contains(" ") else { return nil }
        if let parts = URLParts(trimmed) {
            return parts.host
        }
        let host = trimmed.split(separator: "/", maxSplits: 1).first.map(String.init)?.lowercased() ?? ""
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        // ASCII only: a domain written in text next to other words ("example.jp規約") is
        // not a host name.
        let isHostCharacter: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        guard labels.count >= 2, !host.contains("@"),
              labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy(isHostCharacter) }),
              let top = labels.last, top.count >= 2, top.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            return nil
        }
        return host
    }

    func checkHTML(_ hits: inout HitCollector) {
        let scan = input.scan
        if scan.htmlHasPasswordField || scan.attachments.contains(where: \.hasPasswordField) {
            hits.add(BuiltInSymbol.htmlPasswordField)
        } else if scan.htmlHasForm {
            hits.add(BuiltInSymbol.htmlForm)
        }
        if scan.htmlHiddenTextBytes >= Self.hiddenTextThreshold {
            hits.add(BuiltInSymbol.htmlHiddenText, detail: "\(scan.htmlHiddenTextBytes) bytes")
        }
        guard scan.htmlPartCount > 0 else { return }
        if scan.plainPartCount == 0 {
            hits.add(BuiltInSymbol.htmlOnly)
        }
        let textCharacters = input.visibleText.utf8.count { $0 > 0x20 }
        if scan.htmlImageCount > 0 && textCharacters < 200 {
            hits.add(BuiltInSymbol.htmlImageOnly,
                     detail: "\(Self.counted(scan.htmlImageCount, "image")), \(Self.counted(textCharacters, "text byte"))")
            if scan.htmlImageCount >= 5 {
                hits.add(BuiltInSymbol.htmlImageOnlyMany, detail: "\(scan.htmlImageCount) images")
            }
        }
        if scan.htmlWordSplits >= 3 {
            // Each run of markup between two letters counts once, so V<b>I</b>AGRA counts twice.
            hits.add(BuiltInSymbol.htmlSplitWords, detail: "\(scan.htmlWordSplits) places where markup splits a word")
        }
    }

    /// "1 image", "3 images": a count with its noun, for details.
    static func counted(_ count: Int, _ noun: String) -> String {
        count == 1 ? "1 \(noun)" : "\(count) \(noun)s"
    }

    /// Invisible text bytes from which HTML_HIDDEN_TEXT fires; newsletters hide a short
    /// preview line, filter-busting spam whole paragraphs.
    static let hiddenTextThreshold = 120

    // MARK: Text

    /// Letters (ASCII) of visible text that TEXT_SHOUTING needs before it judges, and the
    /// share of capitals from which it fires.
    static let shoutingMinimumLetters = 200
    static let shoutingShare = 0.6

    func checkText(_ hits: inout HitCollector) {
        var copy = input.visibleText
        let (letters, capitals, obfuscated) = copy.withUTF8 { bytes -> (Int, Int, String?) in
            var letters = 0
            var capitals = 0
            for byte in bytes.prefix(Self.maximumPhraseTextBytes) {
                if byte >= 0x41 && byte <= 0x5A {
                    letters += 1
                    capitals += 1
                } else if byte >= 0x61 && byte <= 0x7A {
                    letters += 1
                }
            }
            return (letters, capitals, Self.obfuscatedWord(in: UnsafeBufferPointer(rebasing: bytes.prefix(Self.maximumPhraseTextBytes))))
        }
        if letters >= Self.shoutingMinimumLetters && Double(capitals) >= Double(letters) * Self.shoutingShare {
            hits.add(BuiltInSymbol.textShouting, detail: "\(capitals) of \(letters) letters")
        }
        if let obfuscated {
            hits.add(BuiltInSymbol.textObfuscated, detail: obfuscated)
        }
    }

    /// Returns the first word of four or more single ASCII letters joined by one repeated
    /// separator ("F^R^E^E", "A`D`U`L`T"), or nil. The separators are ` ^ * ' ~ |.
    static func obfuscatedWord(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        func isLetter(_ byte: UInt8) -> Bool {
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        }
        var index = 0
        while index + 6 < bytes.count {
            let separator = bytes[index + 1]
            // The cheap tests first: most bytes are letters followed by letters or spaces.
            guard separator == 0x60 || separator == 0x5E || separator == 0x2A || separator == 0x27 || separator == 0x7E
                    || separator == 0x7C,
                  isLetter(bytes[index]), isLetter(bytes[index + 2]), index == 0 || !isLetter(bytes[index - 1]) else {
                index += 1
                continue
            }
            var end = index
            var letters = 1
            while end + 2 < bytes.count, bytes[end + 1] == separator, isLetter(bytes[end + 2]),
                  end + 3 >= bytes.count || !isLetter(bytes[end + 3]) {
                end += 2
                letters += 1
            }
            if letters >= 4 {
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[index...min(bytes.count - 1, end + 1)]), as: UTF8.self)
            }
            index = end + 1
        }
        return nil
    }

    // MARK: Phrases

    /// Most phrase matches looked at per message, and distinct phrases kept per category.
    static let maximumPhraseMatches = 400
    static let maximumPhrasesPerCategory = 12

    func checkPhrases(_ hits: inout HitCollector) {
        let text = phraseText()
        let found = phrases.matcher.matches(in: text, maximumMatches: Self.maximumPhraseMatches,
                                            maximumPerCategory: Self.maximumPhrasesPerCategory)
        func texts(_ category: PhrasePatterns.Category) -> [String] {
            found[category.rawValue]
        }
        func add(_ symbol: String, _ texts: [String], minimum: Int) {
            if texts.count >= minimum {
                hits.add(symbol, detail: texts.joined(separator: ", "))
            }
        }

        // Bounces say "mailbox full" and "account disabled" for a living.
        if !input.isDeliveryReport && !input.isNullSender && !input.isFromMailSystem {
            add(BuiltInSymbol.phishAccountVerify, texts(.accountVerification), minimum: 1)
            add(BuiltInSymbol.phishPasswordExpiry, texts(.passwordExpiry), minimum: 1)
        }
        add(BuiltInSymbol.phishPaymentLure, texts(.paymentLure), minimum: 1)
        add(BuiltInSymbol.advanceFee, texts(.advanceFee), minimum: Self.advanceFeeCount)
        add(BuiltInSymbol.adultWords, texts(.adult), minimum: Self.adultCount)
        add(BuiltInSymbol.adultWordsMany, texts(.adult), minimum: Self.manyAdultCount)
        if !input.subject.isEmpty {
            let inSubject = phrases.matcher.matches(in: String(input.subject.prefix(Self.maximumSubjectCharacters)), maximumMatches: 16,
                                                    maximumPerCategory: 4)
            if let word = inSubject[PhrasePatterns.Category.adult.rawValue].first {
                hits.add(BuiltInSymbol.subjectAdult, detail: word)
            }
            if let word = inSubject[PhrasePatterns.Category.bulkAdvertising.rawValue].first {
                hits.add(BuiltInSymbol.subjectAdvertising, detail: word)
            }
        }
        add(BuiltInSymbol.pharmacyWords, texts(.pharmacy), minimum: Self.pharmacyCount)
        add(BuiltInSymbol.pharmacyWordsMany, texts(.pharmacy), minimum: Self.manyPharmacyCount)
        // A list that names its unsubscribe address in a header is doing what it should, so
        // its unsubscribe text counts as no spam phrase.
        let hasListHeader = input.scan.headerValue("List-Unsubscribe") != nil || input.scan.headerValue("List-Id") != nil
        let advertising = texts(.bulkAdvertising) + (hasListHeader ? [] : texts(.unsubscribe))
        add(BuiltInSymbol.spamPhrases, advertising, minimum: Self.spamPhraseCount)
        add(BuiltInSymbol.spamPhrasesMany, advertising, minimum: Self.manySpamPhraseCount)
        if let first = texts(.unsubscribe).first, !hasListHeader {
            hits.add(BuiltInSymbol.unsubscribeWithoutHeader, detail: first)
        }
        if text.utf8Contains(PhrasePatterns.japaneseAdvertisementLabel) {
            hits.add(BuiltInSymbol.subjectAdvertisement, detail: PhrasePatterns.japaneseAdvertisementLabel)
        }
    }

    /// The subject and the visible text, cut to `maximumPhraseTextBytes`.
    func phraseText() -> String {
        let text = input.subject + "\n" + input.visibleText
        guard text.utf8.count > Self.maximumPhraseTextBytes else { return text }
        return String(decoding: text.utf8.prefix(Self.maximumPhraseTextBytes), as: UTF8.self)
    }

    static func substring(_ text: String, _ range: Range<Int>) -> String {
        let utf8 = text.utf8
        guard range.lowerBound >= 0, range.upperBound <= utf8.count else { return "" }
        let lower = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
        let upper = utf8.index(lower, offsetBy: range.count)
        return String(decoding: utf8[lower..<upper], as: UTF8.self)
    }
}
