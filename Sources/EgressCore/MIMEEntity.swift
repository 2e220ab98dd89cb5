// The structure of a MIME message: an entity reads its header block and picks its body's
// pipeline; multipart bodies are split at their boundary into child entities. Part of the
// streaming decoder (MIMEScanner.swift), with its contract: any input, bounded work, every
// limit recorded.

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
    /// followed by white space), or nil when the line is no field. A line starting with "--"
    /// is a MIME boundary, never a field, even when it holds a colon ("--b=:1").
    private static func nameEnd(_ line: [UInt8]) -> Int? {
        if line.count >= 2 && line[0] == 0x2D && line[1] == 0x2D {
            return nil
        }
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
    private var sawDelimiter = false
    /// The preamble, kept until the first delimiter: when none ever comes, it is read as
    /// text, so a wrong boundary cannot hide a body from the rules.
    private var preamble: [UInt8] = []

    /// Preamble bytes kept for that case.
    static let maximumPreambleBytes = 64 * 1024

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
        if !sawDelimiter && !preamble.isEmpty {
            let text = TextSink(kind: .plain, charset: nil, context: context)
            text.write(preamble)
            text.finish()
            preamble = []
        }
    }

    private func handle(_ line: UnsafeBufferPointer<UInt8>, _ ending: LineEnding) {
        let startsLine = atLineStart
        atLineStart = ending != .none
        if startsLine, !closed, let isClose = delimiterKind(line) {
            child?.finish()
            child = nil
            heldEnding = .none
            sawDelimiter = true
            preamble = []
            if isClose {
                closed = true
                inPart = false
            } else {
                inPart = true
                child = context.makePart(depth: depth + 1, defaultType: childDefaultType)
            }
            return
        }
        guard inPart, let child else {
            if !sawDelimiter && preamble.count < Self.maximumPreambleBytes {
                preamble.append(contentsOf: line.prefix(Self.maximumPreambleBytes - preamble.count))
                preamble.append(contentsOf: ending.bytes)
            }
            return
        }
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
