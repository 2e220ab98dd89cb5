// The streaming MIME decoder: `MessageScanner` takes a message's header fields and then its
// body in chunks as the MTA sends them (`addHeader`, `feed`, `finish`), and returns a
// `ScanResult`. Internally every entity (the message, each part, each attached message) is a
// `MIMEEntity` that reads its own header block and then pipes its body through a transfer
// decoder into a sink: a multipart splitter with child entities, a nested message, text
// collectors or an attachment recorder.
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
        scan.headers = headerFields.map { field in
            let unfolded = HeaderText.unfold(field.value)
            let value = HeaderText.decode(unfolded, converter: context.converter).trimmingWhitespace()
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

/// One MIME entity: reads its header block (unless given), then decodes its body.
final class MIMEEntity: ByteSink {
    private let context: ScanContext
    private let depth: Int
    /// Type assumed without a usable Content-Type: text/plain, or message/rfc822 inside
    /// multipart/digest.
    private let defaultType: String
    private var reader: PartHeaderReader?
    private var pendingHeaders: [RawHeaderField]?
    private var body: ByteSink?
    private var skipLeadingLF = false

    init(context: ScanContext, depth: Int, defaultType: String, headers: [RawHeaderField]?) {
        self.context = context
        self.depth = depth
        self.defaultType = defaultType
        if let headers {
            pendingHeaders = headers
        } else {
            reader = PartHeaderReader(maximumBytes: context.limits.maximumPartHeaderBytes)
        }
    }

    func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        var input = bytes
        if reader != nil {
            switch reader!.consume(input) {
            case .needMore:
                return
            case .done(let offset, let pushback, let skip):
                let fields = reader!.fields
                if reader!.truncated {
                    context.anomalies.headerLimitReached = true
                }
                reader = nil
                let sink = startBody(fields)
                if !pushback.isEmpty {
                    sink.write(pushback)
                }
                input = UnsafeBufferPointer(rebasing: input[offset...])
                skipLeadingLF = skip
            }
        }
        if skipLeadingLF, !input.isEmpty {
            skipLeadingLF = false
            if input[0] == 0x0A {
                input = UnsafeBufferPointer(rebasing: input[1...])
            }
        }
        guard !input.isEmpty else { return }
        (body ?? startBody(pendingHeaders ?? [])).write(input)
    }

    func finish() {
        if reader != nil {
            let pushback = reader!.finish()
            let fields = reader!.fields
            reader = nil
            let sink = startBody(fields)
            if !pushback.isEmpty {
                sink.write(pushback)
            }
        }
        (body ?? startBody(pendingHeaders ?? [])).finish()
    }

    /// Chooses the body's pipeline from the entity's header fields.
    private func startBody(_ fields: [RawHeaderField]) -> ByteSink {
        if let body {
            return body
        }
        pendingHeaders = nil
        let converter = context.converter
        func field(_ name: String) -> [UInt8]? {
            fields.first { $0.name.caseInsensitiveEquals(name) }.map { HeaderText.unfold($0.value) }
        }

        let contentType = field("Content-Type").map { HeaderParameters($0, converter: converter) }
        var type = contentType?.value ?? ""
        if !type.contains("/") {
            type = defaultType
        }
        let encoding = field("Content-Transfer-Encoding").map {
            String(decoding: $0, as: UTF8.self).trimmingWhitespace().lowercased()
        } ?? ""
        let disposition = field("Content-Disposition").map { HeaderParameters($0, converter: converter) }
        let fileName = disposition?.parameters["filename"] ?? contentType?.parameters["name"] ?? ""
        let charset = contentType?.parameters["charset"]

        let content = contentSink(type: type, parameters: contentType?.parameters ?? [:], charset: charset,
                                  fileName: fileName, isAttachment: disposition?.value == "attachment")
        let sink: ByteSink
        switch encoding {
        case "base64":
            sink = Base64DecodingSink(downstream: content, context: context)
        case "quoted-printable":
            sink = QuotedPrintableDecodingSink(downstream: content, maximumLineBytes: context.limits.maximumLineBytes)
        default:
            sink = content
        }
        body = sink
        return sink
    }

    private func contentSink(type: String, parameters: [String: String], charset: String?, fileName: String,
                             isAttachment: Bool) -> ByteSink {
        if type.hasPrefix("multipart/") {
            guard depth < context.limits.maximumNestingDepth else {
                context.anomalies.nestingLimitReached = true
                return DiscardSink()
            }
            guard let boundary = parameters["boundary"], !boundary.isEmpty else {
                // Without a boundary the parts cannot be found; read the body as text.
                context.anomalies.brokenMultipart = true
                return TextSink(kind: .plain, charset: charset, context: context)
            }
            let childType = type == "multipart/digest" ? "message/rfc822" : "text/plain"
            return MultipartSink(boundary: boundary, depth: depth, childDefaultType: childType, context: context)
        }
        if (type == "message/rfc822" || type == "message/global") && !isAttachment {
            guard depth < context.limits.maximumNestingDepth else {
                context.anomalies.nestingLimitReached = true
                return DiscardSink()
            }
            return context.makePart(depth: depth + 1, defaultType: "text/plain")
        }

        let isText = type.hasPrefix("text/") || type == "message/delivery-status" || type == "message/disposition-notification"
            || type == "message/feedback-report"
        if isAttachment || !fileName.isEmpty || !isText {
            return AttachmentSink(name: fileName, declaredType: type, context: context)
        }
        return TextSink(kind: type == "text/html" ? .html : .plain, charset: charset, context: context)
    }
}

/// Reads a header block up to the empty line that ends it. A line that is neither a field
/// nor a continuation also ends it and becomes the first line of the body, because broken
/// mail often omits the empty line.
struct PartHeaderReader {
    let maximumBytes: Int
    private(set) var fields: [RawHeaderField] = []
    /// Fields or bytes were dropped because of `maximumBytes`.
    private(set) var truncated = false
    private var line: [UInt8] = []
    private var lineOverflowed = false
    private var keptBytes = 0
    private var skipLF = false

    enum Outcome {
        case needMore
        /// The block ended; the body starts at `bodyOffset` of the last input, preceded by
        /// `pushback`, and an LF at its start is to be skipped when `skipLeadingLF`.
        case done(bodyOffset: Int, pushback: [UInt8], skipLeadingLF: Bool)
    }

    init(maximumBytes: Int) {
        self.maximumBytes = maximumBytes
    }

    mutating func consume(_ input: UnsafeBufferPointer<UInt8>) -> Outcome {
        var index = 0
        let count = input.count
        while index < count {
            let byte = input[index]
            if skipLF {
                skipLF = false
                if byte == 0x0A {
                    index += 1
                    continue
                }
            }
            guard byte == 0x0D || byte == 0x0A else {
                if line.count < maximumBytes {
                    line.append(byte)
                } else {
                    lineOverflowed = true
                }
                index += 1
                continue
            }

            index += 1
            var skipNext = false
            if byte == 0x0D {
                if index < count {
                    if input[index] == 0x0A { index += 1 }
                } else {
                    skipNext = true
                }
            }
            if line.isEmpty && !lineOverflowed {
                return .done(bodyOffset: index, pushback: [], skipLeadingLF: skipNext)
            }
            if var pushback = endLine() {
                pushback.append(0x0A)
                return .done(bodyOffset: index, pushback: pushback, skipLeadingLF: skipNext)
            }
            skipLF = skipNext
        }
        return .needMore
    }

    /// Ends the input without an empty line; returns a last line that was not a field.
    mutating func finish() -> [UInt8] {
        guard !line.isEmpty else { return [] }
        return endLine() ?? []
    }

    /// Files the current line as a field or continuation; returns it when it is neither.
    private mutating func endLine() -> [UInt8]? {
        defer {
            line.removeAll(keepingCapacity: true)
            lineOverflowed = false
        }
        if lineOverflowed {
            truncated = true
        }
        if let first = line.first, first == 0x20 || first == 0x09, !fields.isEmpty {
            if keptBytes + line.count + 1 <= maximumBytes {
                fields[fields.count - 1].value.append(0x0A)
                fields[fields.count - 1].value.append(contentsOf: line)
                keptBytes += line.count + 1
            } else {
                truncated = true
            }
            return nil
        }
        guard let colon = Self.nameEnd(line) else {
            return line
        }
        var nameEnd = colon
        while nameEnd > 0 && (line[nameEnd - 1] == 0x20 || line[nameEnd - 1] == 0x09) {
            nameEnd -= 1
        }
        var valueStart = colon + 1
        while valueStart < line.count && (line[valueStart] == 0x20 || line[valueStart] == 0x09) {
            valueStart += 1
        }
        if keptBytes + line.count <= maximumBytes {
            fields.append(RawHeaderField(name: String(decoding: line[..<nameEnd], as: UTF8.self),
                                      value: Array(line[valueStart...])))
            keptBytes += line.count
        } else {
            truncated = true
        }
        return nil
    }

    /// Returns the index of the colon after a field name (printable ASCII, optionally
    /// followed by white space), or nil when the line is no field.
    private static func nameEnd(_ line: [UInt8]) -> Int? {
        var index = 0
        while index < line.count {
            let byte = line[index]
            if byte == 0x3A {
                return index > 0 ? index : nil
            }
            if byte == 0x20 || byte == 0x09 {
                guard index > 0 else { return nil }
                var after = index
                while after < line.count && (line[after] == 0x20 || line[after] == 0x09) {
                    after += 1
                }
                return after < line.count && line[after] == 0x3A ? after : nil
            }
            if byte < 0x21 || byte > 0x7E {
                return nil
            }
            index += 1
        }
        return nil
    }
}

/// Splits a multipart body at its boundary and passes each part to a child entity. The line
/// break before a boundary line belongs to the boundary, so each line's break is held back
/// until the next line shows it is not one.
final class MultipartSink: ByteSink {
    private let delimiter: [UInt8]
    private let depth: Int
    private let childDefaultType: String
    private let context: ScanContext
    private var splitter: LineSplitter
    private var child: ByteSink?
    private var inPart = false
    private var closed = false
    private var atLineStart = true
    private var heldEnding = LineEnding.none

    init(boundary: String, depth: Int, childDefaultType: String, context: ScanContext) {
        self.delimiter = Array("--\(boundary)".utf8)
        self.depth = depth
        self.childDefaultType = childDefaultType
        self.context = context
        self.splitter = LineSplitter(maximumLineBytes: context.limits.maximumLineBytes)
    }

    func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        splitter.write(bytes) { line, ending in
            handle(line, ending)
        }
    }

    func finish() {
        splitter.finish { line, ending in
            handle(line, ending)
        }
        child?.finish()
        child = nil
        if !closed {
            context.anomalies.brokenMultipart = true
        }
    }

    private func handle(_ line: UnsafeBufferPointer<UInt8>, _ ending: LineEnding) {
        let startsLine = atLineStart
        atLineStart = ending != .none
        if startsLine, !closed, let isClose = delimiterKind(line) {
            child?.finish()
            child = nil
            heldEnding = .none
            if isClose {
                closed = true
                inPart = false
            } else {
                inPart = true
                child = context.makePart(depth: depth + 1, defaultType: childDefaultType)
            }
            return
        }
        guard inPart, let child else { return }
        if heldEnding != .none {
            child.write(heldEnding.bytes)
        }
        child.write(line)
        heldEnding = ending
    }

    /// Returns whether the line is the close delimiter, the delimiter, or nil for neither.
    /// Trailing white space after the delimiter is allowed (RFC 2046 transport padding).
    private func delimiterKind(_ line: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard line.count >= delimiter.count, line[0] == 0x2D, line[1] == 0x2D,
              UnsafeBufferPointer(rebasing: line[0..<delimiter.count]).elementsEqual(delimiter) else {
            return nil
        }
        var index = delimiter.count
        var isClose = false
        if index + 1 < line.count, line[index] == 0x2D, line[index + 1] == 0x2D {
            isClose = true
            index += 2
        }
        while index < line.count {
            let byte = line[index]
            guard byte == 0x20 || byte == 0x09 else { return nil }
            index += 1
        }
        return isClose
    }
}

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
