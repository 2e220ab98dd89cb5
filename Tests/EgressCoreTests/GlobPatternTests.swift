// Tests for glob matching and for the typo suggestions of configuration errors.

import XCTest
@testable import EgressCore

final class GlobPatternTests: XCTestCase {
    func testMatching() {
        let cases: [(pattern: String, text: String, matches: Bool)] = [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything:at@all", true),
            ("?", "", false),
            ("?", "x", true),
            ("?", "xy", false),
            ("a*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abcd", false),
            ("a*c*", "abcd", true),
            ("*c", "abcabc", true),
            ("*b*c", "aXbYbZc", true),
            ("*b*c", "aXcYb", false),
            ("**", "x", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("sender:*@shop.example", "sender:alice@shop.example", true),
            ("sender:*@shop.example", "sender:alice@shop.example.org", false),
            ("SENDER:*@Shop.Example", "sender:Alice@shop.example", true),
            ("domain:ü*", "domain:Übung.example", true),
            ("*a*a*a*a*a*a*a*a*b", String(repeating: "a", count: 200), false),
            ("[a]", "[a]", true),
            ("[a]", "a", false),
        ]
        for (pattern, text, matches) in cases {
            XCTAssertEqual(GlobPattern(pattern).matches(text), matches, "'\(pattern)' against '\(text)'")
        }
    }

    func testSuggestions() {
        let keys = ConfigurationKeys.top
        let cases: [(typed: String, suggestion: String?)] = [
            ("listn", "listen"),
            ("Listen", "listen"),
            ("fail-action", "fail_action"),
            ("loglevel", "log_level"),
            ("sendres", "senders"),
            ("timout", "timeout"),
            ("socekt", "socket"),
            ("xyz", nil),
            ("password", nil),
            ("", nil),
        ]
        for (typed, suggestion) in cases {
            XCTAssertEqual(Suggestion.nearest(to: typed, among: keys), suggestion, typed)
        }
    }

    func testEditDistance() {
        let cases: [(String, String, Int)] = [
            ("", "", 0), ("abc", "", 3), ("", "ab", 2), ("acton", "action", 1),
            ("ab", "ba", 1), ("kitten", "sitting", 3), ("same", "same", 0),
        ]
        for (a, b, distance) in cases {
            XCTAssertEqual(Suggestion.editDistance(Array(a.unicodeScalars), Array(b.unicodeScalars)), distance, "\(a) / \(b)")
        }
    }
}
