// Domain facts the built-in rules need: free-mail providers, URL shorteners, the
// organizational part of a domain, and the host of a URL.
//
// The lists are short and built in on purpose: they name the providers that abuse from
// hosting servers uses most, and an admin adds more with custom rules. The organizational
// domain is an approximation (the last two labels, three under a known two-level public
// suffix), not the Public Suffix List; it must never be used to decide that two domains
// are the same owner beyond comparing links and senders for scoring.

enum DomainLists {
    /// Free-mail domains: a hosting server's customers do not send as these, and a Reply-To
    /// there takes the replies away from the sender's own domain.
    static let freeMail: Set<String> = [
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.co.jp", "yahoo.fr", "yahoo.de", "yahoo.es",
        "yahoo.it", "yahoo.com.br", "ymail.com", "rocketmail.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr",
        "hotmail.de", "hotmail.it", "hotmail.es", "outlook.com", "outlook.fr", "outlook.de", "live.com", "live.fr",
        "live.de", "msn.com", "aol.com", "aim.com", "icloud.com", "me.com", "mac.com", "mail.com", "email.com",
        "gmx.com", "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "web.de", "t-online.de", "freenet.de", "mail.ru",
        "inbox.ru", "list.ru", "bk.ru", "yandex.ru", "yandex.com", "ya.ru", "rambler.ru", "protonmail.com",
        "proton.me", "pm.me", "tutanota.com", "zoho.com", "qq.com", "163.com", "126.com", "sina.com", "sohu.com",
        "yeah.net", "naver.com", "daum.net", "hanmail.net", "libero.it", "virgilio.it", "tiscali.it", "orange.fr",
        "wanadoo.fr", "laposte.net", "free.fr", "sfr.fr", "seznam.cz", "wp.pl", "o2.pl", "interia.pl", "onet.pl",
        "rediffmail.com", "earthlink.net", "excite.com", "lycos.com", "hushmail.com", "inbox.com", "fastmail.com",
        // Mailboxes of consumer Internet providers, which a hosted site does not send as either.
        "mindspring.com", "att.net", "sbcglobal.net", "bellsouth.net", "comcast.net", "verizon.net", "cox.net", "charter.net",
        "juno.com", "netzero.net", "prodigy.net", "compuserve.com", "shaw.ca", "rogers.com", "sympatico.ca", "telus.net",
        "btinternet.com", "ntlworld.com", "virginmedia.com", "blueyonder.co.uk", "sky.com", "talktalk.net", "alice.it",
        "tin.it", "bigpond.com", "optusnet.com.au", "xtra.co.nz", "arcor.de", "telenet.be", "skynet.be", "ziggo.nl",
        "bluewin.ch", "aon.at", "telia.com", "online.no", "hetnet.nl", "uol.com.br", "bol.com.br", "terra.com.br",
        "prodigy.net.mx", "ocn.ne.jp", "nifty.com", "biglobe.ne.jp", "so-net.ne.jp",
    ]

    /// URL shortening services, which hide the real target of a link.
    static let urlShorteners: Set<String> = [
        "bit.ly", "bitly.com", "tinyurl.com", "goo.gl", "t.co", "ow.ly", "is.gd", "v.gd", "buff.ly", "rebrand.ly",
        "cutt.ly", "shorturl.at", "tiny.cc", "rb.gy", "bit.do", "t.ly", "s.id", "x.co", "adf.ly", "shorte.st",
        "qrco.de", "tr.im", "su.pr", "clck.ru", "u.to", "short.io", "bl.ink", "lnkd.in", "db.tt", "soo.gd",
        "trib.al", "urlz.fr", "shrtco.de", "tinu.be", "rotf.lol", "urlr.me", "2no.co", "iplogger.org", "grabify.link",
    ]

    /// Dynamic DNS services and throwaway hosting, whose free names spam and phishing use
    /// because they cost nothing and change fast; a link to any subdomain of these counts.
    static let dynamicDNS: [String] = [
        "mydns.jp", "dyndns.org", "dyndns.info", "dyndns.biz", "dyndns.tv", "dyndns.dk", "dynu.net", "no-ip.org", "no-ip.biz",
        "no-ip.info", "ddns.net", "redirectme.net", "hopto.org", "zapto.org", "sytes.net", "servehttp.com", "serveftp.com",
        "myftp.biz", "myftp.org", "duckdns.org", "afraid.org", "ngrok.io", "ngrok-free.app", "ngrok.app", "000webhostapp.com",
        "serveo.net", "trycloudflare.com", "freeddns.org", "dnsalias.com", "homeip.net", "gotdns.com", "3utilities.com",
    ]

    /// Top-level domains that abuse reports (Spamhaus's most abused TLD statistics) rank
    /// among the worst for spam and phishing, because names there are cheap or free.
    static let abusedTopLevelDomains: Set<String> = [
        "top", "xyz", "click", "loan", "work", "gq", "tk", "ml", "cf", "ga", "buzz", "rest", "fit", "cam", "bid", "win", "kim",
        "science", "party", "review", "stream", "trade", "date", "racing", "accountant", "cricket", "faith", "download", "men",
        "country", "icu", "cyou", "cfd", "sbs", "monster", "quest", "zip", "mov", "lol", "surf",
    ]

    /// Words in a host name that name porn sites; "sex" alone is left out, because of
    /// names such as essex.ac.uk.
    static let adultHostWords = ["porn", "xxx", "sexy", "freesex", "hotsex", "livesex", "sexcam", "camgirl", "nude", "milf",
                                 "hentai", "fetish", "xvideo", "adultfriend"]

    static func isAdultHost(_ host: String) -> Bool {
        adultHostWords.contains { host.utf8Contains($0) }
    }

    static func hasAbusedTopLevelDomain(_ host: String) -> Bool {
        guard let dot = host.lastIndex(of: ".") else { return false }
        return abusedTopLevelDomains.contains(String(host[host.index(after: dot)...]))
    }

    static func isDynamicDNS(_ host: String) -> Bool {
        dynamicDNS.contains { DomainLists.domain(host, isWithin: $0) }
    }

    /// Second-level labels under which registrations happen one level deeper
    /// ("shop.co.uk" is one organization, "co.uk" none).
    private static let twoLevelSuffixLabels: Set<String> = [
        "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "gob", "mil", "ltd", "plc", "sch", "nom",
    ]

    /// Returns the organizational domain: the last two labels, or three when the last two
    /// look like a two-level public suffix such as co.uk, com.au or ne.jp.
    static func organizationalDomain(_ domain: String) -> String {
        let labels = domain.lowercased().split(separator: ".", omittingEmptySubsequences: true)
        guard labels.count > 2 else { return labels.joined(separator: ".") }
        let secondLevel = String(labels[labels.count - 2])
        let isTwoLevelSuffix = labels[labels.count - 1].count == 2 && twoLevelSuffixLabels.contains(secondLevel)
        let keep = isTwoLevelSuffix ? 3 : 2
        return labels.suffix(keep).joined(separator: ".")
    }

    /// Returns whether `domain` is `parent` or a subdomain of it.
    static func domain(_ domain: String, isWithin parent: String) -> Bool {
        domain == parent || domain.hasSuffix("." + parent)
    }

    static func isFreeMail(_ domain: String) -> Bool {
        freeMail.contains(domain) || freeMail.contains(organizationalDomain(domain))
    }

    static func isURLShortener(_ host: String) -> Bool {
        urlShorteners.contains(host) || (host.hasPrefix("www.") && urlShorteners.contains(String(host.dropFirst(4))))
    }
}

/// The parts of a link target that the rules look at.
struct URLParts: Equatable {
    /// Lowercased scheme, such as "http"; empty for "www." links without one.
    var scheme: String
    /// Lowercased host without port, user information or trailing dot.
    var host: String
    /// Whether the authority had user information ("http://bank.example@evil.example/").
    var hasUserInfo: Bool

    /// Parses "scheme://[userinfo@]host[:port]/..." or "www.host/..."; nil for links without
    /// a host, such as mailto:, cid: and relative links.
    init?(_ target: String) {
        var rest = Substring(target.trimmingWhitespace())
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            scheme = rest[..<colon].lowercased()
            rest = rest[rest.index(colon, offsetBy: 3)...]
        } else if rest.lowercased().hasPrefix("www.") {
            scheme = ""
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" || $0 == "\\" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        hasUserInfo = false
        if let at = authority.lastIndex(of: "@") {
            hasUserInfo = true
            authority = authority[authority.index(after: at)...]
        }
        if authority.hasPrefix("[") {
            // An IPv6 literal keeps its brackets so it cannot be mistaken for a name.
            let close = authority.firstIndex(of: "]").map { authority.index(after: $0) } ?? authority.endIndex
            authority = authority[..<close]
        } else if let colon = authority.lastIndex(of: ":") {
            authority = authority[..<colon]
        }
        var lowered = authority.lowercased()
        while lowered.hasSuffix(".") {
            lowered.removeLast()
        }
        guard !lowered.isEmpty else { return nil }
        host = lowered
    }

    /// Whether the host is an IP address: dotted IPv4, a bracketed IPv6 literal, or a
    /// number that browsers read as IPv4 ("3232235777", "0xC0A80101").
    var isIPAddress: Bool {
        if host.hasPrefix("[") { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigitCharacter) }) {
            return true
        }
        return isNumericHost
    }

    /// Whether the host is written as one decimal, hexadecimal or octal number, which only
    /// a link that hides its target does.
    var isNumericHost: Bool {
        let lowered = host
        if lowered.hasPrefix("0x") {
            return lowered.count > 2 && lowered.dropFirst(2).allSatisfy(\.isHexDigit)
        }
        return lowered.count >= 8 && lowered.allSatisfy(\.isASCIIDigitCharacter)
    }
}

extension Character {
    var isASCIIDigitCharacter: Bool {
        ("0"..."9").contains(self)
    }
}
