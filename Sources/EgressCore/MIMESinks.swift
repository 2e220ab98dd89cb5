// The ends of the decoder pipeline: text parts collected and converted to UTF-8, HTML reduced
// to text and links, attachments recorded and sniffed, and URLs found in plain text. Part of
// the streaming decoder (MIMEScanner.swift), with its contract: any input, bounded work,
// every limit recorded.

/// Collects a text/plain or text/html part, converts it to UTF-8 at its end, and hands the
/// text (and for HTML the links) to the context.
final class TextSink: ByteSink {
    enum Kind {
        case plain, html
    }

    private let kind: Kind
    private let charset: String?
    private let context: ScanContext
    private var bytes: [UInt8] = []

    init(kind: Kind, charset: String?, context: ScanContext) {
        self.kind = kind
        self.charset = charset
        self.context = context
        if context.firstTextCharset == nil, let charset, !charset.isEmpty {
            context.firstTextCharset = charset
        }
    }

    func write(_ input: UnsafeBufferPointer<UInt8>) {
        let room = context.limits.maximumTextBytes - context.rawTextBytes
        guard room > 0 else {
            context.anomalies.textLimitReached = true
            return
        }
        let taken = min(room, input.count)
        if taken < input.count {
            context.anomalies.textLimitReached = true
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[0..<taken]))
        context.rawTextBytes += taken
    }

    func finish() {
        let text = context.converter.convert(bytes, charset: charset)
        bytes = []
        switch kind {
        case .plain:
            context.addPlainText(normalizedLineEndings(text))
        case .html:
            let room = max(0, context.limits.maximumLinks - context.result.links.count)
            context.addHTML(HTMLText.extract(text, maximumLinks: room))
        }
    }
}

/// Records an attachment: its name, declared type, size, and what its first bytes show.
final class AttachmentSink: ByteSink {
    private let name: String
    private let declaredType: String
    private let context: ScanContext
    private var head: [UInt8] = []
    private var size = 0

    init(name: String, declaredType: String, context: ScanContext) {
        self.name = name
        self.declaredType = declaredType
        self.context = context
    }

    func write(_ input: UnsafeBufferPointer<UInt8>) {
        size += input.count
        let room = context.limits.attachmentInspectBytes - head.count
        if room > 0 {
            head.append(contentsOf: UnsafeBufferPointer(rebasing: input[0..<min(room, input.count)]))
        }
    }

    var wantsBytes: Bool {
        head.count < context.limits.attachmentInspectBytes
    }

    func skip(_ count: Int) {
        size += count
    }

    func finish() {
        let sniffed = ContentSniffer.sniff(head)
        var attachment = Attachment(name: name, declaredType: declaredType, sniffedType: sniffed, size: size)
        if sniffed == .zip {
            let listing = ContentSniffer.zipEntries(head, maximumEntries: context.limits.maximumArchiveEntries)
            attachment.archiveEntries = listing.names
            attachment.hasEncryptedEntries = listing.encrypted
        }
        let lowerName = name.lowercased()
        if sniffed == .html || declaredType == "text/html" || lowerName.hasSuffix(".html") || lowerName.hasSuffix(".htm") {
            let text = context.converter.repairingUTF8Silently(head)
            let room = max(0, context.limits.maximumLinks - context.result.links.count)
            let extraction = HTMLText.extract(text, maximumLinks: room)
            attachment.hasPasswordField = extraction.hasPasswordField
            context.addLinks(extraction.links)
        }
        head = []
        context.addAttachment(attachment)
    }
}

/// Drops everything: parts past the part limit, entities past the nesting limit.
final class DiscardSink: ByteSink {
    func write(_ bytes: UnsafeBufferPointer<UInt8>) {}
    func finish() {}
    var wantsBytes: Bool { false }
}

/// Replaces CRLF and bare CR with LF.
func normalizedLineEndings(_ text: String) -> String {
    guard text.utf8.contains(0x0D) else { return text }
    var output: [UInt8] = []
    output.reserveCapacity(text.utf8.count)
    var previousWasCR = false
    for byte in text.utf8 {
        if byte == 0x0D {
            output.append(0x0A)
            previousWasCR = true
            continue
        }
        if byte == 0x0A && previousWasCR {
            previousWasCR = false
            continue
        }
        previousWasCR = false
        output.append(byte)
    }
    return String(decoding: output, as: UTF8.self)
}

extension CharsetConverter {
    /// Decodes bytes of unknown charset for inspection only, without counting replacements:
    /// attachments are not text the recipient reads.
    func repairingUTF8Silently(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

/// Finds URLs written in plain text: "http://", "https://" and "www." at a word start.
enum TextLinks {
    /// Longest URL kept from text, in bytes.
    static let maximumURLBytes = 2048

    static func extract(_ text: String, into links: inout [Link], maximum: Int, context: ScanContext) {
        var copy = text
        copy.withUTF8 { bytes in
            let count = bytes.count
            var index = 0
            while index + 4 <= count {
                let byte = asciiLowercase(bytes[index])
                guard byte == 0x68 || byte == 0x77 else {
                    index += 1
                    continue
                }
                if index > 0 {
                    let previous = bytes[index - 1]
                    if HTMLText.isNameByteValue(previous) || previous == 0x2E || previous == 0x2F || previous == 0x40 {
                        index += 1
                        continue
                    }
                }
                guard startsURL(bytes, at: index) else {
                    index += 1
                    continue
                }
                var end = index
                while end < count, end - index < maximumURLBytes {
                    let character = bytes[end]
                    if character <= 0x20 || character == 0x3C || character == 0x3E || character == 0x22 || character == 0x27 {
                        break
                    }
                    end += 1
                }
                while end > index, [0x2E, 0x2C, 0x3B, 0x3A, 0x21, 0x3F, 0x29, 0x5D].contains(bytes[end - 1]) {
                    end -= 1
                }
                guard links.count < maximum else {
                    context.anomalies.linkOrAttachmentLimitReached = true
                    return
                }
                links.append(Link(target: String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<end]), as: UTF8.self),
                                  source: .text))
                index = max(end, index + 1)
            }
        }
    }

    private static func startsURL(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        func matches(_ literal: String) -> Bool {
            let needle = Array(literal.utf8)
            guard index + needle.count <= bytes.count else { return false }
            for (offset, expected) in needle.enumerated() where asciiLowercase(bytes[index + offset]) != expected {
                return false
            }
            return true
        }
        return matches("http://") || matches("https://") || matches("www.")
    }
}
