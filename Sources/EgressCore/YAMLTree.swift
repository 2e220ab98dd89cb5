// Reads YAML text into a small tree of nodes that remember where they start, using libyaml's
// event API. The configuration decoder needs the position of every key and value for its
// error messages. Reading events rather than libyaml's documents lets this file reject what a
// config file never needs (a second document, custom tags, deep nesting) as it goes.
//
// It must never keep a pointer into libyaml's memory: every event is copied into Swift values
// and freed before the next one is read. Aliases are resolved by copying the anchored node;
// arrays share their storage on copy, so an alias bomb costs no memory here.

import CYAML

/// A YAML node and the 1-based line and column where it starts.
struct YAMLNode: Sendable {
    enum Content: Sendable {
        /// A scalar's text. `isPlain` is false for quoted and block scalars and for `!!str`,
        /// which are strings whatever they contain.
        case scalar(String, isPlain: Bool)
        case sequence([YAMLNode])
        /// Pairs in file order; duplicate keys are kept so the decoder can report them.
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }

    var content: Content
    var line: Int
    var column: Int

    /// True for the plain scalars YAML reads as null: empty, `~`, `null`.
    var isNull: Bool {
        guard case .scalar(let text, isPlain: true) = content else { return false }
        return text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
    }

    /// A short name of the node's kind for "expected X, found Y" messages.
    var kindDescription: String {
        switch content {
        case .sequence: return "a sequence"
        case .mapping: return "a mapping"
        case .scalar(let text, let isPlain):
            if isNull { return "null" }
            return isPlain ? "'\(text)'" : "the string \"\(text)\""
        }
    }
}

/// A libyaml syntax error, or a YAML feature that config files may not use.
struct YAMLSyntaxError: Error, Equatable {
    var line: Int
    var column: Int
    var message: String
}

enum YAMLTree {
    /// Deepest nesting of sequences and mappings accepted. Freeing a Swift tree recurses once
    /// per level, so a file of a million `[` could otherwise overflow the stack.
    static let maximumNestingDepth = 64

    fileprivate static let stringTag = "tag:yaml.org,2002:str"
    fileprivate static let standardTagPrefix = "tag:yaml.org,2002:"

    /// Parses `bytes` (UTF-8, or UTF-16 with a byte order mark) and returns the root node of
    /// its only document, or nil when the text contains no document (empty, or only comments).
    /// Throws `YAMLSyntaxError`.
    static func parse(_ bytes: [UInt8]) throws -> YAMLNode? {
        if bytes.isEmpty {
            return nil
        }
        // The parser keeps a pointer to itself for string input, so it lives on the heap
        // rather than in a Swift variable that may move.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        let event = UnsafeMutablePointer<yaml_event_t>.allocate(capacity: 1)
        defer {
            parser.deallocate()
            event.deallocate()
        }
        guard yaml_parser_initialize(parser) != 0 else {
            throw YAMLSyntaxError(line: 0, column: 0, message: "libyaml could not allocate a parser")
        }
        defer { yaml_parser_delete(parser) }

        return try bytes.withUnsafeBufferPointer { buffer throws -> YAMLNode? in
            // libyaml reads the input lazily, so the buffer must outlive every parse call.
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var builder = TreeBuilder()
            while true {
                guard yaml_parser_parse(parser, event) != 0 else {
                    throw syntaxError(parser.pointee, input: buffer)
                }
                defer { yaml_event_delete(event) }
                if try builder.consume(event.pointee) {
                    return builder.root
                }
            }
        }
    }

    /// Converts libyaml's error fields into a positioned message.
    private static func syntaxError(_ parser: yaml_parser_t, input: UnsafeBufferPointer<UInt8>) -> YAMLSyntaxError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        if parser.error == YAML_READER_ERROR {
            // Reader errors (bad encoding) carry a byte offset instead of a mark.
            let (line, column) = position(ofByte: parser.problem_offset, in: input)
            return YAMLSyntaxError(line: line, column: column, message: "invalid YAML: \(problem)")
        }
        var message = "invalid YAML: \(problem)"
        if let context = parser.context {
            let mark = parser.context_mark
            message += " (\(String(cString: context)) at line \(mark.line + 1), column \(mark.column + 1))"
        }
        let mark = parser.problem_mark
        return YAMLSyntaxError(line: Int(mark.line) + 1, column: Int(mark.column) + 1, message: message)
    }

    /// Returns the 1-based line and column of a byte offset, counting columns in characters.
    private static func position(ofByte offset: Int, in input: UnsafeBufferPointer<UInt8>) -> (Int, Int) {
        var line = 1
        var column = 1
        for byte in input.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                // Continuation bytes of a UTF-8 sequence do not start a new character.
                column += 1
            }
        }
        return (line, column)
    }

    fileprivate static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }
}

/// Builds the tree from libyaml's event stream, one event at a time.
private struct TreeBuilder {
    /// A sequence or mapping whose end event has not come yet. A mapping's items alternate
    /// key, value.
    private struct OpenCollection {
        var isMapping: Bool
        var line: Int
        var column: Int
        var anchor: String?
        var items: [YAMLNode] = []
    }

    private(set) var root: YAMLNode?
    private var stack: [OpenCollection] = []
    private var anchors: [String: YAMLNode] = [:]
    private var documentCount = 0

    /// Takes one event; returns true at the end of the stream.
    mutating func consume(_ event: yaml_event_t) throws -> Bool {
        let line = Int(event.start_mark.line) + 1
        let column = Int(event.start_mark.column) + 1
        switch event.type {
        case YAML_STREAM_END_EVENT:
            return true

        case YAML_DOCUMENT_START_EVENT:
            documentCount += 1
            if documentCount > 1 {
                throw YAMLSyntaxError(line: line, column: column,
                                      message: "a config file must contain one YAML document; remove the second one")
            }

        case YAML_ALIAS_EVENT:
            let name = YAMLTree.string(event.data.alias.anchor) ?? ""
            guard var node = anchors[name] else {
                throw YAMLSyntaxError(line: line, column: column, message: "unknown alias '*\(name)'")
            }
            node.line = line
            node.column = column
            add(node)

        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let tag = YAMLTree.string(scalar.tag)
            try checkTag(tag, line: line, column: column)
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let isPlain = scalar.style == YAML_PLAIN_SCALAR_STYLE && tag != YAMLTree.stringTag
            let node = YAMLNode(content: .scalar(text, isPlain: isPlain), line: line, column: column)
            if let anchor = YAMLTree.string(scalar.anchor) {
                anchors[anchor] = node
            }
            add(node)

        case YAML_SEQUENCE_START_EVENT:
            let start = event.data.sequence_start
            try checkTag(YAMLTree.string(start.tag), line: line, column: column)
            try open(OpenCollection(isMapping: false, line: line, column: column, anchor: YAMLTree.string(start.anchor)))

        case YAML_MAPPING_START_EVENT:
            let start = event.data.mapping_start
            try checkTag(YAMLTree.string(start.tag), line: line, column: column)
            try open(OpenCollection(isMapping: true, line: line, column: column, anchor: YAMLTree.string(start.anchor)))

        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            close()

        default:
            // Stream start, document end and the empty placeholder event carry nothing.
            break
        }
        return false
    }

    private func checkTag(_ tag: String?, line: Int, column: Int) throws {
        guard let tag, !tag.hasPrefix(YAMLTree.standardTagPrefix), tag != "!" else { return }
        throw YAMLSyntaxError(line: line, column: column, message: "unsupported YAML tag '\(tag)'")
    }

    private mutating func open(_ collection: OpenCollection) throws {
        guard stack.count < YAMLTree.maximumNestingDepth else {
            throw YAMLSyntaxError(line: collection.line, column: collection.column,
                                  message: "nesting deeper than \(YAMLTree.maximumNestingDepth) levels")
        }
        stack.append(collection)
    }

    private mutating func close() {
        guard let collection = stack.popLast() else { return }
        let content: YAMLNode.Content
        if collection.isMapping {
            // libyaml guarantees an even count: every key event is followed by a value.
            let items = collection.items
            let pairs = stride(from: 0, to: items.count - 1, by: 2).map { (key: items[$0], value: items[$0 + 1]) }
            content = .mapping(pairs)
        } else {
            content = .sequence(collection.items)
        }
        let node = YAMLNode(content: content, line: collection.line, column: collection.column)
        if let anchor = collection.anchor {
            anchors[anchor] = node
        }
        add(node)
    }

    private mutating func add(_ node: YAMLNode) {
        if stack.isEmpty {
            root = node
        } else {
            // Appending through the subscript keeps the array uniquely referenced, so a long
            // sequence is not copied once per item.
            stack[stack.count - 1].items.append(node)
        }
    }
}
