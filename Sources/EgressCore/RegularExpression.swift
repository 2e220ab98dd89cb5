// A thin wrapper over PCRE2 (8-bit code units, libpcre2-8): compile with JIT, match with a
// match limit, a depth limit and a heap limit, so that no pattern on any message can stall
// the thread that scores it.
//
// Every pcre2_* call and every pointer PCRE2 hands out stays in this file. A compiled
// expression is immutable, so one instance is shared by all threads; each match allocates
// its own match data. Subjects are Swift strings, which are valid UTF-8, so matching skips
// PCRE2's UTF check.

import CPCRE2

/// A compiled PCRE2 pattern. Thread-safe: matching never changes it.
public final class RegularExpression: @unchecked Sendable {
    /// Compile options of a pattern.
    public struct Options: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        public static let caseless = Options(rawValue: PCRE2_CASELESS)
        /// \b, \w and \d use Unicode properties, so word boundaries work in any script.
        public static let unicodeProperties = Options(rawValue: PCRE2_UCP)
        public static let multiline = Options(rawValue: PCRE2_MULTILINE)
    }

    /// A pattern PCRE2 rejected: its message and the offset in the pattern, in code units.
    public struct CompileError: Error, CustomStringConvertible, Sendable {
        public var offset: Int
        public var message: String

        public var description: String {
            "\(message) at offset \(offset)"
        }
    }

    /// The outcome of a match.
    public enum Match: Equatable, Sendable {
        /// The first match, as a range of UTF-8 offsets into the subject.
        case found(Range<Int>)
        case notFound
        /// The match gave up at the match, depth, heap or JIT stack limit.
        case limitExceeded
    }

    public let pattern: String
    private let code: OpaquePointer
    private let matchContext: OpaquePointer

    /// Default match limit: calls of PCRE2's internal match function per match attempt.
    public static let defaultMatchLimit: UInt32 = 100_000
    /// Default depth limit: backtracking depth of the interpreter, which the JIT ignores.
    public static let defaultDepthLimit: UInt32 = 1_000
    /// Heap memory a match may use, in KiB.
    public static let heapLimitKibibytes: UInt32 = 4096

    /// Compiles `pattern` as UTF-8 with JIT; throws `CompileError` when PCRE2 rejects it.
    public init(_ pattern: String, options: Options = [], matchLimit: UInt32 = defaultMatchLimit,
                depthLimit: UInt32 = defaultDepthLimit) throws {
        var errorCode: Int32 = 0
        var errorOffset = 0
        let compiled = pattern.utf8CString.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            buffer.withMemoryRebound(to: UInt8.self) { bytes in
                pcre2_compile_8(bytes.baseAddress, bytes.count - 1, PCRE2_UTF | options.rawValue,
                                &errorCode, &errorOffset, nil)
            }
        }
        guard let compiled else {
            throw CompileError(offset: errorOffset, message: Self.errorMessage(errorCode))
        }
        guard let context = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(compiled)
            throw CompileError(offset: 0, message: "out of memory creating the match context")
        }
        // Without JIT support (another CPU, SELinux denying executable memory) the interpreter
        // runs instead, under the same limits.
        _ = pcre2_jit_compile_8(compiled, PCRE2_JIT_COMPLETE)
        pcre2_set_match_limit_8(context, matchLimit)
        pcre2_set_depth_limit_8(context, depthLimit)
        pcre2_set_heap_limit_8(context, Self.heapLimitKibibytes)
        self.pattern = pattern
        self.code = compiled
        self.matchContext = context
    }

    deinit {
        pcre2_code_free_8(code)
        pcre2_match_context_free_8(matchContext)
    }

    /// Returns the first match in `subject` at or after the UTF-8 offset `start`.
    public func firstMatch(in subject: String, from start: Int = 0) -> Match {
        var copy = subject
        return copy.withUTF8 { firstMatch(in: $0, from: start) }
    }

    /// Returns the first match in UTF-8 bytes that are known to be valid UTF-8.
    func firstMatch(in subject: UnsafeBufferPointer<UInt8>, from start: Int) -> Match {
        guard start <= subject.count else { return .notFound }
        guard let base = subject.baseAddress else {
            // An empty buffer may have no address, and PCRE2 needs one.
            let placeholder: [UInt8] = [0]
            return placeholder.withUnsafeBufferPointer { match(at: $0.baseAddress!, count: 0, from: 0) }
        }
        return match(at: base, count: subject.count, from: start)
    }

    private func match(at base: UnsafePointer<UInt8>, count: Int, from start: Int) -> Match {
        guard let matchData = pcre2_match_data_create_8(1, nil) else { return .limitExceeded }
        defer { pcre2_match_data_free_8(matchData) }

        let result = pcre2_match_8(code, base, count, start, PCRE2_NO_UTF_CHECK, matchData, matchContext)
        if result == PCRE2_ERROR_NOMATCH {
            return .notFound
        }
        guard result >= 0, let vector = pcre2_get_ovector_pointer_8(matchData) else {
            return .limitExceeded
        }
        let lower = vector[0]
        let upper = max(vector[1], lower)
        return .found(lower..<upper)
    }

    /// Returns whether the pattern matches anywhere in `subject`; a limit counts as no match.
    public func matches(_ subject: String) -> Bool {
        if case .found = firstMatch(in: subject) {
            return true
        }
        return false
    }

    private static func errorMessage(_ code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let length = buffer.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        guard length > 0 else { return "PCRE2 error \(code)" }
        return String(decoding: buffer[..<Int(length)], as: UTF8.self)
    }
}
