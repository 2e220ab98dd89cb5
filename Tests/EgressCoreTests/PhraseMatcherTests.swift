// Tests for the phrase matcher (expansion of the phrase syntax, word boundaries, case
// folding, scripts without spaces) and for the PCRE2 wrapper (compile errors, limits).

import XCTest
@testable import EgressCore

final class PhraseMatcherTests: XCTestCase {
    func testExpansion() {
        let cases: [(String, [String])] = [
            ("free", ["free"]),
            ("e-?mail", ["email", "e-mail"]),
            ("(?:verify|confirm) your account", ["verify your account", "confirm your account"]),
            ("(?:your )?account", ["account", "your account"]),
            ("unauthori[sz]ed", ["unauthorised", "unauthorized"]),
            ("c\\*ck", ["c*ck"]),
            ("ПАРОЛЬ", ["пароль"]),
        ]
        for (phrase, expected) in cases {
            XCTAssertEqual(Set(PhraseExpander.expand(phrase).map { String(decoding: $0.bytes, as: UTF8.self) }), Set(expected), phrase)
            XCTAssertTrue(PhraseExpander.expand(phrase).allSatisfy { !$0.isPrefix }, phrase)
        }
        XCTAssertEqual(PhraseExpander.expand("porn\\w*").map(\.isPrefix), [true])
    }

    func testEveryBuiltInCategoryBuilds() {
        let matcher = PhraseMatcher(categories: PhrasePatterns.Category.allCases.map(PhrasePatterns.phrases(of:)))
        XCTAssertEqual(matcher.categoryCount, PhrasePatterns.Category.allCases.count)
    }

    private func matches(_ text: String, words: [String], unspaced: [String] = []) -> [String] {
        let matcher = PhraseMatcher(categories: [PhrasePatterns.PhraseList(words: words, unspaced: unspaced)])
        return matcher.matches(in: text, maximumMatches: 100, maximumPerCategory: 10)[0]
    }

    func testWordBoundariesAndCase() {
        XCTAssertEqual(matches("Click HERE now", words: ["click here"]), ["Click HERE"])
        XCTAssertEqual(matches("clickhere", words: ["click here"]), [])
        XCTAssertEqual(matches("freedom and free", words: ["free"]), ["free"])
        XCTAssertEqual(matches("“free”", words: ["free"]), ["free"])
        XCTAssertEqual(matches("PORNOGRAPHIC", words: ["porn\\w*"]), ["PORNOGRAPHIC"])
        XCTAssertEqual(matches("СКИДКИ сегодня", words: ["скидк\\w*"]), ["СКИДКИ"])
        XCTAssertEqual(matches("Zoë and ZOË", words: ["zoë"]), ["Zoë"])
    }

    func testDistinctPhrasesOnly() {
        XCTAssertEqual(matches("free FREE Free gratis", words: ["free", "gratis"]), ["free", "gratis"])
    }

    func testOverlappingPhrasesCountOnce() {
        let words = ["limited time(?: only)?", "time only", "free", "free trial"]
        XCTAssertEqual(matches("Limited time only: a free trial", words: words), ["Limited time only", "free trial"])
        XCTAssertEqual(matches("limited time, time only", words: words), ["limited time", "time only"])
        XCTAssertEqual(matches("期間限定で", words: [], unspaced: ["期間限定", "限定"]), ["期間限定"])
    }

    func testScriptsWithoutSpaces() {
        XCTAssertEqual(matches("今すぐ無料で登録", words: [], unspaced: ["無料"]), ["無料"])
        XCTAssertEqual(matches("免费发票", words: [], unspaced: ["发票"]), ["发票"])
    }

    func testMatchLimitStopsEarly() {
        let matcher = PhraseMatcher(categories: [PhrasePatterns.PhraseList(words: ["a"])])
        let found = matcher.matches(in: String(repeating: "a ", count: 1000), maximumMatches: 5, maximumPerCategory: 10)
        XCTAssertEqual(found[0], ["a"])
    }
}

final class RegularExpressionTests: XCTestCase {
    func testCompileErrorHasMessageAndOffset() {
        XCTAssertThrowsError(try RegularExpression("ab(c")) { error in
            let problem = error as? RegularExpression.CompileError
            XCTAssertEqual(problem?.offset, 4)
            XCTAssertEqual(problem?.message, "missing closing parenthesis")
        }
    }

    func testMatchesReturnUTF8Ranges() throws {
        let expression = try RegularExpression("(?i)café", options: [])
        XCTAssertEqual(expression.firstMatch(in: "Un CAFÉ noir"), .found(3..<8))
        XCTAssertEqual(expression.firstMatch(in: "thé"), .notFound)
        XCTAssertEqual(expression.firstMatch(in: ""), .notFound)
        XCTAssertTrue(try RegularExpression("^$").matches(""))
    }

    func testMatchLimitGivesUpInsteadOfStalling() throws {
        let expression = try RegularExpression("(a+)+$", matchLimit: 1000)
        XCTAssertEqual(expression.firstMatch(in: String(repeating: "a", count: 40) + "!"), .limitExceeded)
        XCTAssertEqual(expression.firstMatch(in: "aaa"), .found(0..<3))
    }
}
