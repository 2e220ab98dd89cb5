// The streaming MIME decoder: `MessageScanner` takes a message's header fields and then its
// body in chunks as the MTA sends them (`addHeader`, `feed`, `finish`), and returns a
// `ScanResult`. Internally every entity (the message, each part, each attached message) is a
// `MIMEEntity` (MIMEEntity.swift) that reads its own header block and then pipes its body
// through a transfer decoder (MIMEDecoders.swift) into a sink: a multipart splitter with child
// entities, a nested message, text collectors or an attachment recorder (MIMESinks.swift).
//
// It must never crash, hang or grow without bound on any input: every limit in `ScanLimits`
// is checked where data is kept, and each limit reached is recorded in the result's
// anomalies instead of failing the message.
//
// `MessageScanner` is not thread-safe: one scanner per message, fed by one thread at a time.

/// Decodes one message as it arrives and collects what scoring reads.
public final class MessageScanner {
    private let context: ScanContext
    private var headerFields: [RawHeaderField] = []
    private var headerBytes = 0
    private var root: MIMEEntity?
    private var result: ScanResult?

    public init(limits: ScanLimits = .defaults) {
        context = ScanContext(limits: limits)
    }

    /// Adds a top-level header field, value as the MTA sent it (folding included). Fields
    /// must come before the first body chunk; later ones are recorded but cannot change how
    /// the body is decoded.
    public func addHeader(name: String, value: [UInt8]) {
        let size = name.utf8.count + value.count + 2
        guard headerBytes + size <= context.limits.maximumHeaderBytes else {
            context.anomalies.headerLimitReached = true
            return
        }
        headerBytes += size
        headerFields.append(RawHeaderField(name: name, value: value))
    }

    /// Decodes a chunk of the body; bytes past the scan limit are counted only.
    public func feed(_ chunk: UnsafeBufferPointer<UInt8>) {
        guard result == nil else { return }
        context.bodyBytes += chunk.count
        let room = context.limits.scanLimitBytes - context.scannedBytes
        guard room > 0 else {
            if !chunk.isEmpty {
                context.anomalies.scanLimitReached = true
            }
            return
        }
        let taken = min(room, chunk.count)
        if taken < chunk.count {
            context.anomalies.scanLimitReached = true
        }
        context.scannedBytes += taken
        rootEntity().write(UnsafeBufferPointer(rebasing: chunk[0..<taken]))
    }

    public func feed(_ chunk: [UInt8]) {
        chunk.withUnsafeBufferPointer { feed($0) }
    }

    /// Ends the body and returns what the message holds. Calling it again returns the same
    /// result; chunks fed after it are ignored.
    public func finish() -> ScanResult {
        if let result {
            return result
        }
        rootEntity().finish()
        var scan = context.result
        let fallback = context.firstTextCharset
        scan.headers = headerFields.map { field in
            let unfolded = HeaderText.unfold(field.value)
            let value = HeaderText.decode(unfolded, converter: context.converter, fallbackCharset: fallback).trimmingWhitespace()
            return DecodedHeader(name: field.name, value: value, unfolded: unfolded)
        }
        scan.bodyBytes = context.bodyBytes
        scan.scannedBytes = context.scannedBytes
        scan.partCount = context.partCount
        scan.anomalies = context.anomalies
        scan.anomalies.replacementCharacters = context.converter.replacements
        scan.anomalies.unknownCharsets = context.converter.unknownCharsets
        result = scan
        return scan
    }

    private func rootEntity() -> MIMEEntity {
        if let root {
            return root
        }
        context.partCount = 1
        let entity = MIMEEntity(context: context, depth: 0, defaultType: "text/plain", headers: headerFields)
        root = entity
        return entity
    }

    // MARK: Whole messages

    /// Scans a complete message in RFC 5322 form (header fields, empty line, body), as read
    /// from a file; a leading mbox "From " line is skipped.
    public static func scan(message: [UInt8], limits: ScanLimits = .defaults) -> ScanResult {
        let parts = splitHeaders(of: message, maximumHeaderBytes: limits.maximumHeaderBytes)
        let scanner = MessageScanner(limits: limits)
        for header in parts.headers {
            scanner.addHeader(name: header.name, value: header.value)
        }
        if parts.headersTruncated {
            scanner.context.anomalies.headerLimitReached = true
        }
        scanner.feed(parts.body)
        return scanner.finish()
    }

    /// The header fields and the body of a complete message, as the MTA would pass them to
    /// a milter: values without the space after the colon, folding kept.
    public struct SplitMessage: Sendable {
        public var headers: [Header]
        public var body: [UInt8]
        /// Header bytes beyond the limit were dropped.
        public var headersTruncated: Bool
    }

    public static func splitHeaders(of message: [UInt8], maximumHeaderBytes: Int = ScanLimits.defaults.maximumHeaderBytes)
        -> SplitMessage {
        var start = 0
        if message.starts(with: Array("From ".utf8)) {
            while start < message.count, message[start] != 0x0A, message[start] != 0x0D {
                start += 1
            }
            if start < message.count, message[start] == 0x0D { start += 1 }
            if start < message.count, message[start] == 0x0A { start += 1 }
        }

        var reader = PartHeaderReader(maximumBytes: maximumHeaderBytes)
        var body: [UInt8] = []
        let outcome = message.withUnsafeBufferPointer { buffer in
            reader.consume(UnsafeBufferPointer(rebasing: buffer[start...]))
        }
        switch outcome {
        case .needMore:
            body = reader.finish()
        case .done(let offset, let pushback, let skipLeadingLF):
            body = pushback
            var bodyStart = start + offset
            if skipLeadingLF, bodyStart < message.count, message[bodyStart] == 0x0A {
                bodyStart += 1
            }
            body.append(contentsOf: message[bodyStart...])
        }
        let headers = reader.fields.map { Header(name: $0.name, value: $0.value) }
        return SplitMessage(headers: headers, body: body, headersTruncated: reader.truncated)
    }
}

/// A header field as read: name and raw value bytes.
struct RawHeaderField {
    var name: String
    var value: [UInt8]
}

/// Per-message state that every stage of the pipeline shares. Not thread-safe.
final class ScanContext {
    let limits: ScanLimits
    let converter = CharsetConverter()
    var anomalies = ScanAnomalies()
    /// Texts, links and attachments collected so far; headers and counters are filled in
    /// by `MessageScanner.finish()`.
    var result = ScanResult()
    var partCount = 0
    var bodyBytes = 0
    var scannedBytes = 0
    /// Bytes of text-part content kept before conversion, against `maximumTextBytes`.
    var rawTextBytes = 0
    /// The charset of the first text part that names one; unlabelled 8-bit header text is
    /// read in it, as mail readers do.
    var firstTextCharset: String?

    init(limits: ScanLimits) {
        self.limits = limits
    }

    /// Returns the sink for a new part: an entity, or a discarding sink once the part limit
    /// is reached.
    func makePart(depth: Int, defaultType: String) -> ByteSink {
        guard partCount < limits.maximumParts else {
            anomalies.partLimitReached = true
            return DiscardSink()
        }
        partCount += 1
        return MIMEEntity(context: self, depth: depth, defaultType: defaultType, headers: nil)
    }

    func addPlainText(_ text: String) {
        guard !text.isEmpty else { return }
        result.plainPartCount += 1
        let kept = keptText(text)
        TextLinks.extract(kept, into: &result.links, maximum: limits.maximumLinks, context: self)
        if !result.plainText.isEmpty {
            result.plainText += "\n"
        }
        result.plainText += kept
    }

    func addHTML(_ extraction: HTMLExtraction) {
        result.htmlPartCount += 1
        result.htmlImageCount += extraction.imageCount
        result.htmlHasForm = result.htmlHasForm || extraction.hasForm
        result.htmlHasPasswordField = result.htmlHasPasswordField || extraction.hasPasswordField
        result.htmlHiddenTextBytes += extraction.hiddenTextBytes
        result.htmlWordSplits += extraction.wordSplits
        addLinks(extraction.links)
        let kept = keptText(extraction.text)
        TextLinks.extract(kept, into: &result.links, maximum: limits.maximumLinks, context: self)
        if !result.htmlText.isEmpty {
            result.htmlText += "\n"
        }
        result.htmlText += kept
    }

    func addLinks(_ links: [Link]) {
        for link in links {
            guard result.links.count < limits.maximumLinks else {
                anomalies.linkOrAttachmentLimitReached = true
                return
            }
            result.links.append(link)
        }
    }

    func addAttachment(_ attachment: Attachment) {
        guard result.attachments.count < limits.maximumAttachments else {
            anomalies.linkOrAttachmentLimitReached = true
            return
        }
        result.attachments.append(attachment)
    }

    /// Cuts text to what is left of the text limit after the texts kept so far.
    private func keptText(_ text: String) -> String {
        let used = result.plainText.utf8.count + result.htmlText.utf8.count
        let room = limits.maximumTextBytes - used
        guard text.utf8.count > room else { return text }
        anomalies.textLimitReached = true
        return room > 0 ? String(decoding: text.utf8.prefix(room), as: UTF8.self) : ""
    }
}
