// Shell-style glob matching for sender rules: `*` matches any run of characters (also none,
// also ':' and '@'), `?` matches exactly one, everything else matches itself ignoring case.
// There are no character classes and no escapes.
//
// Matching must never take exponential time on a hostile pattern such as "*a*a*a*a*b": the
// greedy algorithm below backtracks only to the most recent `*`, which bounds it by
// pattern length times text length.

/// A compiled glob pattern. "Character" here means a Unicode scalar.
struct GlobPattern: Sendable, Equatable {
    private let scalars: [Unicode.Scalar]

    init(_ pattern: String) {
        scalars = Array(pattern.lowercased().unicodeScalars)
    }

    func matches(_ text: String) -> Bool {
        let text = Array(text.lowercased().unicodeScalars)
        var patternIndex = 0
        var textIndex = 0
        // Position of the last `*` seen, and the text position it currently absorbs up to.
        var starIndex: Int?
        var starTextIndex = 0

        while textIndex < text.count {
            if patternIndex < scalars.count, scalars[patternIndex] == "*" {
                starIndex = patternIndex
                starTextIndex = textIndex
                patternIndex += 1
            } else if patternIndex < scalars.count, scalars[patternIndex] == "?" || scalars[patternIndex] == text[textIndex] {
                patternIndex += 1
                textIndex += 1
            } else if let star = starIndex {
                // Let the last `*` absorb one more character and retry from there.
                patternIndex = star + 1
                starTextIndex += 1
                textIndex = starTextIndex
            } else {
                return false
            }
        }
        while patternIndex < scalars.count, scalars[patternIndex] == "*" {
            patternIndex += 1
        }
        return patternIndex == scalars.count
    }
}
