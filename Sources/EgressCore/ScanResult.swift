// What the content scanner found in one message: decoded header fields, the text a reader
// sees, links, attachments and the anomalies met on the way. Scoring rules read it; it holds
// no judgement of its own.
//
// Everything here is bounded by `ScanLimits`, and every place where input was lost or cut
// (a limit, an undecodable byte, an unknown charset) is counted in `anomalies`, so no part of
// a message can disappear from scoring without a trace.

/// One header field after unfolding and RFC 2047 decoding.
public struct DecodedHeader: Sendable, Equatable {
    /// The field name as sent.
    public var name: String
    /// The value unfolded, encoded words decoded and converted to UTF-8, leading and trailing
    /// white space removed.
    public var value: String
    /// The value unfolded but not decoded, as bytes; address lists are split on these, because
    /// a decoded display name may contain commas and angle brackets.
    public var unfolded: [UInt8]

    public init(name: String, value: String, unfolded: [UInt8]? = nil) {
        self.name = name
        self.value = value
        self.unfolded = unfolded ?? Array(value.utf8)
    }
}

/// A mailbox from an address header such as From or Reply-To.
public struct MailboxAddress: Sendable, Equatable {
    /// The display name, decoded; empty when there is none.
    public var displayName: String
    /// The address as written, without angle brackets; may lack a domain in broken mail.
    public var address: String

    public init(displayName: String, address: String) {
        self.displayName = displayName
        self.address = address
    }

    /// The domain after the last "@", lowercased, without a trailing dot; nil when the
    /// address has no "@" or nothing after it.
    public var domain: String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        var domain = address[address.index(after: at)...].lowercased()
        if domain.hasSuffix(".") {
            domain.removeLast()
        }
        return domain.isEmpty ? nil : domain
    }

    /// The part before the last "@", or the whole address when there is none.
    public var localPart: String {
        guard let at = address.lastIndex(of: "@") else { return address }
        return String(address[..<at])
    }
}

/// Where a link was found.
public enum LinkSource: String, Sendable {
    /// `<a href>` or `<area href>` in HTML.
    case anchor
    /// `<form action>` in HTML.
    case form
    /// A URL written in plain text (or in the visible text of HTML).
    case text
    /// `<img src>` in HTML: the image loads from there when the message is shown.
    case image
}

/// A link in the message: its target and, for HTML anchors, the text shown for it.
public struct Link: Sendable, Equatable {
    /// The target as written, entities decoded and white space trimmed.
    public var target: String
    /// The visible text of the anchor, collapsed white space; empty for other sources.
    public var text: String
    public var source: LinkSource

    public init(target: String, text: String = "", source: LinkSource) {
        self.target = target
        self.text = text
        self.source = source
    }
}

/// The kind of file that an attachment's first bytes reveal.
public enum SniffedType: String, Sendable, CaseIterable {
    /// Windows executable (MZ header): .exe, .dll, .scr, .com with a header.
    case windowsExecutable = "pe"
    case elf
    case machO = "mach-o"
    /// Shell, Python, Perl or other interpreter script starting with "#!".
    case shebangScript = "script"
    case windowsShortcut = "lnk"
    case javaClass = "java-class"
    case zip
    case rar
    case sevenZip = "7z"
    case gzip
    case bzip2
    case xz
    case cabinet = "cab"
    case diskImage = "iso"
    case pdf
    /// Office 97-2003 compound file (.doc, .xls, .msi).
    case compoundFile = "ole"
    case rtf
    case html
    case png
    case jpeg
    case gif
    /// Text without any of the signatures above.
    case text
    /// Bytes without a known signature.
    case unknown
    /// An attachment with no content.
    case empty

    /// Whether the type runs as a program on some system.
    public var isExecutable: Bool {
        switch self {
        case .windowsExecutable, .elf, .machO, .windowsShortcut, .javaClass: return true
        default: return false
        }
    }

    /// Whether the type is an archive whose entries `ContentSniffer` can list (zip) or at
    /// least recognise.
    public var isArchive: Bool {
        switch self {
        case .zip, .rar, .sevenZip, .gzip, .bzip2, .xz, .cabinet, .diskImage: return true
        default: return false
        }
    }
}

/// An attachment: a part with a file name or a content type that is not message text.
public struct Attachment: Sendable, Equatable {
    /// The file name from Content-Disposition or Content-Type, decoded; empty when absent.
    public var name: String
    /// The declared content type, lowercased, such as "application/pdf".
    public var declaredType: String
    public var sniffedType: SniffedType
    /// Decoded bytes seen; less than the real size when the scan limit cut the part.
    public var size: Int
    /// Entry names of a zip archive, as far as the inspected bytes reach.
    public var archiveEntries: [String]
    /// Whether a zip entry is encrypted, which hides its content from any scanner.
    public var hasEncryptedEntries: Bool
    /// For HTML attachments: whether the page has a password field, as a login page does.
    public var hasPasswordField: Bool

    public init(name: String, declaredType: String, sniffedType: SniffedType, size: Int,
                archiveEntries: [String] = [], hasEncryptedEntries: Bool = false, hasPasswordField: Bool = false) {
        self.name = name
        self.declaredType = declaredType
        self.sniffedType = sniffedType
        self.size = size
        self.archiveEntries = archiveEntries
        self.hasEncryptedEntries = hasEncryptedEntries
        self.hasPasswordField = hasPasswordField
    }
}

/// Places where the scanner cut, skipped or repaired input.
public struct ScanAnomalies: Sendable, Equatable {
    /// The body was longer than the scan limit; the rest was not decoded.
    public var scanLimitReached = false
    /// An entity was nested deeper than the nesting limit and was not decoded further.
    public var nestingLimitReached = false
    /// The message had more parts than the part limit; the rest was skipped.
    public var partLimitReached = false
    /// Header fields (of the message or of a part) were longer than their limit.
    public var headerLimitReached = false
    /// More decoded text than the text limit; the rest was dropped.
    public var textLimitReached = false
    /// More links or attachments than their limits; the rest was not recorded.
    public var linkOrAttachmentLimitReached = false
    /// Bytes that could not be converted to UTF-8 and were replaced by U+FFFD.
    public var replacementCharacters = 0
    /// Characters inside base64 content that are not part of the base64 alphabet.
    public var invalidBase64Characters = 0
    /// Charset names that the system's iconv does not know; their text was read as UTF-8
    /// with replacement characters.
    public var unknownCharsets: [String] = []
    /// A multipart entity without a boundary parameter, or one whose closing boundary never
    /// came.
    public var brokenMultipart = false

    public init() {}
}

/// The result of scanning one message.
public struct ScanResult: Sendable {
    /// Top-level header fields in order, decoded.
    public var headers: [DecodedHeader] = []
    /// Text of the text/plain parts, converted to UTF-8, line ends as "\n".
    public var plainText = ""
    /// Visible text of the text/html parts.
    public var htmlText = ""
    public var links: [Link] = []
    public var attachments: [Attachment] = []
    /// Number of text/plain and text/html body parts (attachments not counted).
    public var plainPartCount = 0
    public var htmlPartCount = 0
    /// Images referenced by `<img>` in HTML parts.
    public var htmlImageCount = 0
    /// Whether an HTML body part has a `<form>` or a password field.
    public var htmlHasForm = false
    public var htmlHasPasswordField = false
    /// Bytes of text in HTML body parts that is styled to be invisible.
    public var htmlHiddenTextBytes = 0
    /// Words split by invisible markup in HTML body parts.
    public var htmlWordSplits = 0
    /// MIME entities decoded, the message itself included.
    public var partCount = 0
    /// Body bytes received, and the part of them that was decoded.
    public var bodyBytes = 0
    public var scannedBytes = 0
    public var anomalies = ScanAnomalies()

    public init() {}

    /// Returns the decoded values of every header field named `name` (case-insensitive).
    public func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    /// Returns the first decoded value of the header field `name`, or nil.
    public func headerValue(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Returns the mailboxes of every header field named `name`.
    public func mailboxes(_ name: String) -> [MailboxAddress] {
        headers.filter { $0.name.caseInsensitiveEquals(name) }.flatMap { AddressListParser.parse($0.unfolded) }
    }

    /// The plain text and the visible HTML text, separated by a line break.
    public var visibleText: String {
        if htmlText.isEmpty { return plainText }
        if plainText.isEmpty { return htmlText }
        return plainText + "\n" + htmlText
    }
}

extension String {
    /// Compares ASCII case-insensitively, as header field names compare.
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let left = utf8, right = other.utf8
        guard left.count == right.count else { return false }
        return zip(left, right).allSatisfy { asciiLowercase($0) == asciiLowercase($1) }
    }
}

extension String {
    /// Returns whether the UTF-8 bytes of `needle` occur in the string; a plain byte
    /// search, without the Unicode equivalence that `contains` costs.
    func utf8Contains(_ needle: String) -> Bool {
        var haystack = self
        var pattern = needle
        return haystack.withUTF8 { text in
            pattern.withUTF8 { word in
                guard let first = word.first else { return true }
                guard text.count >= word.count else { return false }
                var index = 0
                let last = text.count - word.count
                while index <= last {
                    if text[index] == first {
                        var offset = 1
                        while offset < word.count && text[index + offset] == word[offset] {
                            offset += 1
                        }
                        if offset == word.count { return true }
                    }
                    index += 1
                }
                return false
            }
        }
    }
}

@inline(__always)
func asciiLowercase(_ byte: UInt8) -> UInt8 {
    (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
}
