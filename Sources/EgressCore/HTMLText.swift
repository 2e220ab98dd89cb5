// Reduces HTML to the text a reader sees and the links it holds, keeping each link's target
// apart from the text shown for it, because phishing shows one address and links another.
//
// This is a tolerant tokenizer, not a browser. It handles tags, attributes, comments,
// character references and the elements whose content is never shown (script, style, title,
// template). The head element is not skipped as a whole, because spam often leaves it open. It must accept any bytes: an unterminated tag or comment ends the text, an
// unknown entity stays literal, and nothing is ever read past the input.

/// The text, links and form facts of one HTML document.
struct HTMLExtraction {
    /// Visible text, white space collapsed, block elements as line breaks.
    var text = ""
    var links: [Link] = []
    var imageCount = 0
    var hasForm = false
    var hasPasswordField = false
    /// Bytes of text inside elements styled to be invisible (white or tiny font,
    /// display:none), which spam fills with random words against filters. That text is
    /// not part of `text`.
    var hiddenTextBytes = 0
    /// Markup that splits a word in two without showing anything ("VIA<b></b>GRA"), which
    /// spam uses to hide words from filters.
    var wordSplits = 0
}

enum HTMLText {
    /// Maximum anchor text kept per link, in bytes.
    static let maximumAnchorTextBytes = 512
    /// Maximum attribute value kept, in bytes; longer values are cut.
    static let maximumAttributeBytes = 4096

    /// The treatment the reducer gives an element.
    struct TagInfo: OptionSet {
        let rawValue: UInt8
        /// Its content is never shown in a mail reader.
        static let hidden = TagInfo(rawValue: 1)
        /// It starts a new line of text.
        static let block = TagInfo(rawValue: 2)
        /// Its style can hide the text inside it.
        static let container = TagInfo(rawValue: 4)
        /// It carries a link, a form, an image or a cell border.
        static let special = TagInfo(rawValue: 8)
    }

    /// The elements the reducer handles, looked up once per tag.
    static let tags: [String: TagInfo] = {
        var table: [String: TagInfo] = [:]
        for name in ["script", "style", "title", "template", "xml"] {
            table[name, default: []].insert(.hidden)
        }
        for name in ["br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr",
                     "pre", "section", "article", "header", "footer", "center", "dd", "dt", "address"] {
            table[name, default: []].insert(.block)
        }
        for name in ["font", "span", "div", "p", "td", "table", "a", "b", "small", "center"] {
            table[name, default: []].insert(.container)
        }
        for name in ["a", "area", "form", "input", "img", "td", "th"] {
            table[name, default: []].insert(.special)
        }
        return table
    }()

    /// Attributes the reducer reads.
    static let wantedAttributes: Set<String> = ["href", "src", "action", "type", "color", "size", "style"]

    /// Returns ASCII bytes lowercased as a string.
    static func lowercasedName(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { buffer in
            for (index, byte) in bytes.enumerated() {
                buffer[index] = asciiLowercase(byte)
            }
            return bytes.count
        }
    }

    static func extract(_ html: String, maximumLinks: Int) -> HTMLExtraction {
        var copy = html
        return copy.withUTF8 { extract($0, maximumLinks: maximumLinks) }
    }

    static func extract(_ bytes: UnsafeBufferPointer<UInt8>, maximumLinks: Int) -> HTMLExtraction {
        var state = Tokenizer(bytes: bytes, maximumLinks: maximumLinks)
        state.run()
        var result = state.extraction
        result.text = String(decoding: state.text, as: UTF8.self).trimmingWhitespace()
        return result
    }

    private struct Tokenizer {
        let bytes: UnsafeBufferPointer<UInt8>
        let maximumLinks: Int
        var extraction = HTMLExtraction()
        var text: [UInt8] = []
        var lastWasSpace = true
        /// The open anchor's target and text so far.
        var anchorTarget: String?
        var anchorText: [UInt8] = []
        /// The element that hides its content, and how deep elements of its name nest inside
        /// it; nil while text is visible.
        var hidingElement: (name: String, depth: Int)?

        init(bytes: UnsafeBufferPointer<UInt8>, maximumLinks: Int) {
            self.bytes = bytes
            self.maximumLinks = maximumLinks
            text.reserveCapacity(bytes.count / 2)
        }

        mutating func run() {
            var index = 0
            let count = bytes.count
            while index < count {
                let byte = bytes[index]
                if byte == 0x3C {
                    index = tag(at: index)
                    // A letter on both sides of markup that showed nothing: a split word.
                    if let last = text.last, isASCIILetter(last), !lastWasSpace, index < count, isASCIILetter(bytes[index]) {
                        extraction.wordSplits += 1
                    }
                } else if byte == 0x26 {
                    var decoded: [UInt8] = []
                    index = HTMLText.entity(bytes, at: index, into: &decoded)
                    for character in decoded {
                        appendText(character)
                    }
                } else {
                    appendText(byte)
                    index += 1
                }
            }
            closeAnchor()
        }

        mutating func appendText(_ byte: UInt8) {
            let isSpace = byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C
            // A link keeps its text even where the text is hidden.
            if anchorTarget != nil && anchorText.count < HTMLText.maximumAnchorTextBytes {
                if !isSpace {
                    anchorText.append(byte)
                } else if let last = anchorText.last, last != 0x20 {
                    anchorText.append(0x20)
                }
            }
            if hidingElement != nil {
                if !isSpace {
                    extraction.hiddenTextBytes += 1
                }
                return
            }
            if isSpace {
                if !lastWasSpace {
                    text.append(0x20)
                    lastWasSpace = true
                }
                return
            }
            lastWasSpace = false
            text.append(byte)
        }

        mutating func lineBreak() {
            while text.last == 0x20 {
                text.removeLast()
            }
            if !text.isEmpty && text.last != 0x0A {
                text.append(0x0A)
            }
            lastWasSpace = true
            if anchorTarget != nil && anchorText.last != 0x20 && !anchorText.isEmpty {
                anchorText.append(0x20)
            }
        }

        /// Handles the markup starting at "<"; returns the index after it.
        mutating func tag(at start: Int) -> Int {
            let count = bytes.count
            // Comments run to "-->"; an unterminated one hides the rest, as in browsers.
            if matches(start, "<!--") {
                guard let end = find(Array("-->".utf8), from: start + 4) else { return count }
                return end + 3
            }
            var index = start + 1
            guard index < count else {
                appendText(0x3C)
                return count
            }
            if bytes[index] == 0x21 || bytes[index] == 0x3F {
                // <!DOCTYPE ...>, <![CDATA[ ...]]>, <?xml ...?>
                guard let end = find([0x3E], from: index) else { return count }
                return end + 1
            }
            var isClosing = false
            if bytes[index] == 0x2F {
                isClosing = true
                index += 1
                // "</" without a name is dropped up to ">", as browsers drop it.
                if index < count, !isASCIILetter(bytes[index]) {
                    guard let end = find([0x3E], from: index) else { return count }
                    return end + 1
                }
            }
            let nameStart = index
            while index < count, isNameByte(bytes[index]) {
                index += 1
            }
            guard index > nameStart else {
                // "<" not followed by a name is text ("a < b").
                appendText(0x3C)
                return start + 1
            }
            let name = HTMLText.lowercasedName(UnsafeBufferPointer(rebasing: bytes[nameStart..<index]))
            let info = HTMLText.tags[name] ?? []
            var attributes: [String: String] = [:]
            index = readAttributes(from: index, into: &attributes)

            if isClosing {
                closeTag(name, info)
            } else {
                openTag(name, info, attributes)
                if info.contains(.hidden) {
                    return skipContent(of: name, from: index)
                }
            }
            return index
        }

        mutating func openTag(_ name: String, _ info: TagInfo, _ attributes: [String: String]) {
            if info.contains(.block) {
                lineBreak()
            }
            if let hiding = hidingElement, hiding.name == name {
                hidingElement = (name, hiding.depth + 1)
            } else if hidingElement == nil, info.contains(.container), !attributes.isEmpty, HTMLText.hidesContent(attributes) {
                hidingElement = (name, 1)
            }
            guard info.contains(.special) else { return }
            switch name {
            case "a":
                closeAnchor()
                if let href = attributes["href"] {
                    anchorTarget = href
                    anchorText.removeAll(keepingCapacity: true)
                }
            case "area":
                if let href = attributes["href"] {
                    addLink(Link(target: href, source: .anchor))
                }
            case "form":
                extraction.hasForm = true
                if let action = attributes["action"], !action.isEmpty {
                    addLink(Link(target: action, source: .form))
                }
            case "input":
                if attributes["type"]?.lowercased() == "password" {
                    extraction.hasPasswordField = true
                }
            case "img":
                extraction.imageCount += 1
                if let source = attributes["src"], !source.isEmpty {
                    addLink(Link(target: source, source: .image))
                }
            case "td", "th":
                appendText(0x20)
            default:
                break
            }
        }

        mutating func closeTag(_ name: String, _ info: TagInfo) {
            if let hiding = hidingElement, hiding.name == name {
                hidingElement = hiding.depth > 1 ? (name, hiding.depth - 1) : nil
            }
            if name == "a" {
                closeAnchor()
            } else if info.contains(.block) {
                lineBreak()
            }
        }

        mutating func closeAnchor() {
            guard let target = anchorTarget else { return }
            anchorTarget = nil
            let shown = String(decoding: anchorText, as: UTF8.self).trimmingWhitespace()
            addLink(Link(target: target, text: shown, source: .anchor))
        }

        mutating func addLink(_ link: Link) {
            if extraction.links.count < maximumLinks {
                extraction.links.append(link)
            }
        }

        /// Skips to the end of "</name>"; returns the index after it, or the end of input.
        func skipContent(of name: String, from index: Int) -> Int {
            let closing = Array("</\(name)".utf8)
            var position = index
            while let found = findCaseInsensitive(closing, from: position) {
                let after = found + closing.count
                if after >= bytes.count || !isNameByte(bytes[after]) {
                    return find([0x3E], from: after).map { $0 + 1 } ?? bytes.count
                }
                position = after
            }
            return bytes.count
        }

        /// Reads attributes up to ">" (or "/>"); returns the index after the tag.
        func readAttributes(from start: Int, into attributes: inout [String: String]) -> Int {
            let count = bytes.count
            var index = start
            while index < count {
                let byte = bytes[index]
                if byte == 0x3E {
                    return index + 1
                }
                if !isNameByte(byte) || byte == 0x2F {
                    index += 1
                    continue
                }
                let nameStart = index
                while index < count, bytes[index] != 0x3D, bytes[index] != 0x3E, !isSpace(bytes[index]), bytes[index] != 0x2F {
                    index += 1
                }
                let nameBytes = UnsafeBufferPointer(rebasing: bytes[nameStart..<index])
                // Only the attributes the rules read are kept; building the others would cost
                // a string per attribute of every tag.
                let name = (3...6).contains(nameBytes.count) ? HTMLText.lowercasedName(nameBytes) : ""
                let isWanted = HTMLText.wantedAttributes.contains(name)
                while index < count, isSpace(bytes[index]) {
                    index += 1
                }
                guard index < count, bytes[index] == 0x3D else {
                    if isWanted && attributes[name] == nil { attributes[name] = "" }
                    continue
                }
                index += 1
                while index < count, isSpace(bytes[index]) {
                    index += 1
                }
                guard index < count else { break }
                var valueStart = index
                var valueEnd = index
                let quote = bytes[index]
                if quote == 0x22 || quote == 0x27 {
                    valueStart = index + 1
                    valueEnd = valueStart
                    while valueEnd < count, bytes[valueEnd] != quote {
                        valueEnd += 1
                    }
                    index = min(count, valueEnd + 1)
                } else {
                    while valueEnd < count, !isSpace(bytes[valueEnd]), bytes[valueEnd] != 0x3E {
                        valueEnd += 1
                    }
                    index = valueEnd
                }
                if isWanted && attributes[name] == nil {
                    let end = min(valueEnd, valueStart + HTMLText.maximumAttributeBytes)
                    attributes[name] = HTMLText.decodeAttribute(UnsafeBufferPointer(rebasing: bytes[valueStart..<end]))
                }
            }
            return count
        }

        func matches(_ index: Int, _ literal: String) -> Bool {
            let needle = Array(literal.utf8)
            guard index + needle.count <= bytes.count else { return false }
            return bytes[index..<index + needle.count].elementsEqual(needle)
        }

        func find(_ needle: [UInt8], from start: Int) -> Int? {
            guard let first = needle.first else { return nil }
            var index = start
            let last = bytes.count - needle.count
            while index <= last {
                if bytes[index] == first && bytes[index..<index + needle.count].elementsEqual(needle) {
                    return index
                }
                index += 1
            }
            return nil
        }

        func findCaseInsensitive(_ needle: [UInt8], from start: Int) -> Int? {
            var index = start
            let last = bytes.count - needle.count
            while index <= last {
                if bytes[index] == needle[0] {
                    var matched = true
                    for offset in 1..<needle.count where asciiLowercase(bytes[index + offset]) != needle[offset] {
                        matched = false
                        break
                    }
                    if matched { return index }
                }
                index += 1
            }
            return nil
        }
    }

    /// Style declarations that hide text, each after ";" (or at the start, where a ";" is put).
    private static let hidingStyles: [[UInt8]] = {
        let declarations = ["display:none", "visibility:hidden", "font-size:0", "font-size:1px", "max-height:0", "opacity:0;",
                            "color:white", "color:#fff;", "color:#ffffff", "color:#fefefe", "color:#fdfdfd"]
        return declarations.map { Array(";\($0)".utf8) }
    }()

    /// Whether the attributes make an element's text invisible: white or near-white text
    /// (readers show mail on white), a font size of 0 or 1, display:none, visibility:hidden.
    static func hidesContent(_ attributes: [String: String]) -> Bool {
        let whites: Set<String> = ["white", "#fff", "#ffffff", "#fefefe", "#fdfdfd", "#fcfcfc"]
        if let color = attributes["color"]?.lowercased(), whites.contains(color) {
            return true
        }
        if let size = attributes["size"], size == "1" || size == "0" || size == "-2" || size == "-3" {
            return true
        }
        guard let style = attributes["style"], !style.isEmpty else { return false }
        // ";" around it, white space out and lowercase, so each test is one byte search.
        var compact: [UInt8] = [0x3B]
        compact.reserveCapacity(style.utf8.count + 1)
        for byte in style.utf8 where byte != 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D {
            compact.append(asciiLowercase(byte))
        }
        compact.append(0x3B)
        return compact.withUnsafeBufferPointer { bytes in
            hidingStyles.contains { ContentSniffer.contains(bytes, $0) }
        }
    }

    @inline(__always)
    static func isNameByteValue(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39)
            || byte == 0x2D || byte == 0x5F || byte == 0x3A
    }

    /// Decodes character references in an attribute value and trims white space.
    static func decodeAttribute(_ value: UnsafeBufferPointer<UInt8>) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(value.count)
        var index = 0
        while index < value.count {
            if value[index] == 0x26 {
                index = entity(value, at: index, into: &output)
            } else {
                output.append(value[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self).trimmingWhitespace()
    }

    /// Decodes the character reference at "&" into `output`; returns the index after it. A
    /// reference it does not know is copied as written.
    static func entity(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int, into output: inout [UInt8]) -> Int {
        let count = bytes.count
        var index = start + 1
        if index < count, bytes[index] == 0x23 {
            index += 1
            var isHex = false
            if index < count, bytes[index] == 0x78 || bytes[index] == 0x58 {
                isHex = true
                index += 1
            }
            var value: UInt32 = 0
            let digitsStart = index
            while index < count, index - digitsStart < 8 {
                let byte = bytes[index]
                if let digit = isHex ? hexValue(byte) : ((byte >= 0x30 && byte <= 0x39) ? byte - 0x30 : nil) {
                    value = value * (isHex ? 16 : 10) + UInt32(digit)
                    index += 1
                } else {
                    break
                }
            }
            guard index > digitsStart else {
                output.append(0x26)
                return start + 1
            }
            if index < count, bytes[index] == 0x3B {
                index += 1
            }
            let valid = value > 0 && value <= 0x10FFFF && !(0xD800...0xDFFF).contains(value)
            appendUTF8(valid ? value : 0xFFFD, to: &output)
            return index
        }

        let nameStart = index
        while index < count, index - nameStart < 10, isNameByteValue(bytes[index]) {
            index += 1
        }
        if index < count, bytes[index] == 0x3B, index > nameStart {
            let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[nameStart..<index]), as: UTF8.self)
            if let scalar = namedEntities[name] {
                appendUTF8(scalar, to: &output)
                return index + 1
            }
        }
        output.append(0x26)
        return start + 1
    }

    /// The named references that mail HTML uses in practice.
    private static let namedEntities: [String: UInt32] = [
        "amp": 0x26, "lt": 0x3C, "gt": 0x3E, "quot": 0x22, "apos": 0x27, "nbsp": 0xA0,
        "copy": 0xA9, "reg": 0xAE, "trade": 0x2122, "euro": 0x20AC, "pound": 0xA3, "yen": 0xA5, "cent": 0xA2,
        "hellip": 0x2026, "mdash": 0x2014, "ndash": 0x2013, "laquo": 0xAB, "raquo": 0xBB,
        "lsquo": 0x2018, "rsquo": 0x2019, "ldquo": 0x201C, "rdquo": 0x201D, "bull": 0x2022, "middot": 0xB7,
        "shy": 0xAD, "zwnj": 0x200C, "zwj": 0x200D, "deg": 0xB0, "times": 0xD7, "sect": 0xA7, "para": 0xB6,
        "auml": 0xE4, "ouml": 0xF6, "uuml": 0xFC, "Auml": 0xC4, "Ouml": 0xD6, "Uuml": 0xDC, "szlig": 0xDF,
        "eacute": 0xE9, "egrave": 0xE8, "ecirc": 0xEA, "agrave": 0xE0, "aacute": 0xE1, "acirc": 0xE2,
        "ccedil": 0xE7, "iacute": 0xED, "oacute": 0xF3, "uacute": 0xFA, "ntilde": 0xF1, "Eacute": 0xC9,
    ]
}

@inline(__always)
private func isNameByte(_ byte: UInt8) -> Bool {
    HTMLText.isNameByteValue(byte)
}

@inline(__always)
private func isASCIILetter(_ byte: UInt8) -> Bool {
    (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
}

@inline(__always)
private func isSpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C
}
