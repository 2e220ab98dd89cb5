// Tests for HTML reduction: visible text, links with their shown text kept apart, hidden
// elements, character references, forms, and broken markup.

import XCTest
@testable import EgressCore

final class HTMLTextTests: XCTestCase {
    func testVisibleText() {
        let cases: [(String, String)] = [
            ("<p>Hello <b>world</b></p>", "Hello world"),
            ("<div>one</div><div>two</div>", "one\ntwo"),
            ("a<br>b<br/>c", "a\nb\nc"),
            ("<style>p { color: red }</style>shown<script>if (a < b) alert(1)</script>", "shown"),
            ("<title>tab title</title><body>body</body>", "body"),
            ("<!-- hidden comment -->text", "text"),
            ("<!-- unterminated comment hides the rest", ""),
            ("caf&eacute; &amp; &lt;tag&gt; &#8364;&#x20AC; &nbsp;x", "café & <tag> €€ \u{A0}x"),
            ("&unknown; &#xD800; &#0;", "&unknown; \u{FFFD} \u{FFFD}"),
            ("a < b and c > d", "a < b and c > d"),
            ("<table><tr><td>x</td><td>y</td></tr></table>", "x y"),
            ("   lots \n\n of   space  ", "lots of space"),
            ("<head><meta charset=utf-8>open head keeps text", "open head keeps text"),
            ("<a href=\"x\"", ""),
        ]
        for (html, expected) in cases {
            XCTAssertEqual(HTMLText.extract(html, maximumLinks: 100).text.trimmingWhitespace(), expected, html)
        }
    }

    func testLinksKeepTargetAndTextApart() {
        let html = """
            <a href="https://evil.example/login?a=1&amp;b=2">https://www.bank.example/</a>
            <A HREF='http://192.0.2.7/x'>click <b>here</b></A>
            <a href=http://bit.ly/abc>short</a>
            <a name="anchor-without-href">not a link</a>
            <area href="https://map.example/">
            <form method=post action="https://collect.example/submit"><input type="PASSWORD"></form>
            <img src="cid:logo"><img src="https://img.example/pixel.gif">
            """
        let extraction = HTMLText.extract(html, maximumLinks: 100)
        XCTAssertEqual(extraction.links, [
            Link(target: "https://evil.example/login?a=1&b=2", text: "https://www.bank.example/", source: .anchor),
            Link(target: "http://192.0.2.7/x", text: "click here", source: .anchor),
            Link(target: "http://bit.ly/abc", text: "short", source: .anchor),
            Link(target: "https://map.example/", source: .anchor),
            Link(target: "https://collect.example/submit", source: .form),
            Link(target: "cid:logo", source: .image),
            Link(target: "https://img.example/pixel.gif", source: .image),
        ])
        XCTAssertEqual(extraction.imageCount, 2)
        XCTAssertTrue(extraction.hasForm)
        XCTAssertTrue(extraction.hasPasswordField)
    }

    func testLinkLimit() {
        let html = String(repeating: "<a href=\"https://x.example/\">x</a>", count: 50)
        XCTAssertEqual(HTMLText.extract(html, maximumLinks: 10).links.count, 10)
    }

    func testUnclosedAnchorEndsAtNextAnchor() {
        let extraction = HTMLText.extract("<a href=a>first<a href=b>second", maximumLinks: 10)
        XCTAssertEqual(extraction.links, [Link(target: "a", text: "first", source: .anchor), Link(target: "b", text: "second", source: .anchor)])
    }
}

final class ContentSnifferTests: XCTestCase {
    func testSignatures() {
        let cases: [([UInt8], SniffedType)] = [
            ([], .empty),
            ([0x4D, 0x5A, 0x90, 0x00], .windowsExecutable),
            ([0x7F, 0x45, 0x4C, 0x46, 2, 1], .elf),
            ([0xCF, 0xFA, 0xED, 0xFE], .machO),
            ([0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 2], .machO),
            ([0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 52], .javaClass),
            (Array("#!/bin/sh\nrm -rf".utf8), .shebangScript),
            ([0x4C, 0x00, 0x00, 0x00, 0x01, 0x14, 0x02, 0x00], .windowsShortcut),
            ([0x50, 0x4B, 0x03, 0x04], .zip),
            (Array("Rar!".utf8) + [0x1A, 0x07, 0x00], .rar),
            ([0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C], .sevenZip),
            ([0x1F, 0x8B, 0x08], .gzip),
            (Array("MSCF".utf8), .cabinet),
            (Array("junk%PDF-1.7".utf8), .pdf),
            ([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1], .compoundFile),
            (Array("{\\rtf1".utf8), .rtf),
            ([0x89, 0x50, 0x4E, 0x47], .png),
            ([0xFF, 0xD8, 0xFF, 0xE0], .jpeg),
            (Array("GIF89a".utf8), .gif),
            (Array("  <!DOCTYPE html><html>".utf8), .html),
            (Array("Dear customer, thanks.".utf8), .text),
            ([0x00, 0x01, 0x02, 0x03, 0x04], .unknown),
        ]
        for (bytes, expected) in cases {
            XCTAssertEqual(ContentSniffer.sniff(bytes), expected, "\(bytes.prefix(8))")
        }
        var iso = [UInt8](repeating: 0, count: 0x8010)
        iso.replaceSubrange(0x8001..<0x8006, with: Array("CD001".utf8))
        XCTAssertEqual(ContentSniffer.sniff(iso), .diskImage)
    }

    func testZipEntriesAndEncryption() {
        var archive = zipWithEntries(["a.txt", "b/c.js"])
        XCTAssertEqual(ContentSniffer.zipEntries(archive, maximumEntries: 10).names, ["a.txt", "b/c.js"])
        XCTAssertFalse(ContentSniffer.zipEntries(archive, maximumEntries: 10).encrypted)
        XCTAssertEqual(ContentSniffer.zipEntries(archive, maximumEntries: 1).names, ["a.txt"])

        archive[6] = 1
        XCTAssertTrue(ContentSniffer.zipEntries(archive, maximumEntries: 10).encrypted)

        // A header whose name runs past the end of the data is ignored.
        let truncated = Array(zipWithEntries(["long-name.exe"]).dropLast(3))
        XCTAssertEqual(ContentSniffer.zipEntries(truncated, maximumEntries: 10).names, [])
    }
}
