// Tests that every kind of invalid configuration fails with the exact file, line, column,
// key path and message, including the "did you mean" suggestion for typos.

import XCTest
@testable import EgressCore

final class ConfigurationErrorTests: XCTestCase {
    private struct Case {
        var yaml: String
        var line: Int
        var column: Int
        var key: String
        var message: String
    }

    private static let file = "egress-milter.yaml"

    private func check(_ cases: [Case], file: StaticString = #filePath, line: UInt = #line) {
        for item in cases {
            let context = "YAML: \(item.yaml.debugDescription)"
            do {
                let configuration = try Configuration.parse(item.yaml, file: Self.file)
                XCTFail("expected an error, got \(configuration); \(context)", file: file, line: line)
            } catch let error as ConfigurationError {
                XCTAssertEqual(error.file, Self.file, context, file: file, line: line)
                XCTAssertEqual(error.line, item.line, context, file: file, line: line)
                XCTAssertEqual(error.column, item.column, context, file: file, line: line)
                XCTAssertEqual(error.key, item.key, context, file: file, line: line)
                XCTAssertEqual(error.message, item.message, context, file: file, line: line)
            } catch {
                XCTFail("expected ConfigurationError, got \(error); \(context)", file: file, line: line)
            }
        }
    }

    func testDescriptionFormat() {
        let error = ConfigurationError(file: "/etc/x.yaml", line: 12, column: 3, key: "senders[0].acton",
                                       message: "unknown key; did you mean 'action'?")
        XCTAssertEqual(error.description, "/etc/x.yaml:12:3: senders[0].acton: unknown key; did you mean 'action'?")
        let withoutKey = ConfigurationError(file: "/etc/x.yaml", line: 2, column: 1, key: "", message: "invalid YAML: oops")
        XCTAssertEqual(withoutKey.description, "/etc/x.yaml:2:1: invalid YAML: oops")
        let withoutPosition = ConfigurationError(file: "/etc/x.yaml", line: 0, column: 0, key: "", message: "not a regular file")
        XCTAssertEqual(withoutPosition.description, "/etc/x.yaml: not a regular file")
    }

    func testTypoInNestedKeyNamesPathAndSuggestion() throws {
        let yaml = """
            # comment line 1
            listen: unix:/run/egress/milter.sock
            senders:
              - match: "sender:*@blocked.example"
                acton: reject
            """
        XCTAssertThrowsError(try Configuration.parse(yaml, file: Self.file)) { error in
            XCTAssertEqual("\(error)", "egress-milter.yaml:5:5: senders[0].acton: unknown key; did you mean 'action'?")
        }
    }

    func testUnknownKeys() {
        check([
            Case(yaml: "listn: unix:/x\n", line: 1, column: 1, key: "listn",
                 message: "unknown key; did you mean 'listen'?"),
            Case(yaml: "fail-action: accept\n", line: 1, column: 1, key: "fail-action",
                 message: "unknown key; did you mean 'fail_action'?"),
            Case(yaml: "user: a\nstatedirectory: /x\n", line: 2, column: 1, key: "statedirectory",
                 message: "unknown key; did you mean 'state_directory'?"),
            Case(yaml: "socket:\n  permissions: 1\n", line: 2, column: 3, key: "socket.permissions",
                 message: "unknown key; valid keys here: mode, group"),
            Case(yaml: "replies:\n  tempfail:\n    txt: hi\n", line: 3, column: 5, key: "replies.tempfail.txt",
                 message: "unknown key; did you mean 'text'?"),
            Case(yaml: "replies:\n  bounce: {}\n", line: 2, column: 3, key: "replies.bounce",
                 message: "unknown key; valid keys here: tempfail, reject"),
            Case(yaml: "senders:\n  - match: server\n    action: hold\n  - match: server\n    reson: x\n", line: 5, column: 5,
                 key: "senders[1].reson", message: "unknown key; did you mean 'reason'?"),
            Case(yaml: "? [a]\n: b\n", line: 1, column: 3, key: "",
                 message: "a key must be a plain word, found a sequence"),
        ])
    }

    func testDuplicateKeys() {
        check([
            Case(yaml: "user: a\nuser: b\n", line: 2, column: 1, key: "user",
                 message: "duplicate key; first set at line 1, column 1"),
            Case(yaml: "senders:\n  - match: server\n    action: hold\n    match: login:x\n", line: 4, column: 5,
                 key: "senders[0].match", message: "duplicate key; first set at line 2, column 5"),
            Case(yaml: "socket: {mode: \"0660\", mode: \"0600\"}\n", line: 1, column: 24, key: "socket.mode",
                 message: "duplicate key; first set at line 1, column 10"),
        ])
    }

    func testWrongTypes() {
        check([
            Case(yaml: "- a\n- b\n", line: 1, column: 1, key: "",
                 message: "expected a mapping of settings such as 'listen: unix:/path', found a sequence"),
            Case(yaml: "listen: [a, b]\n", line: 1, column: 9, key: "listen",
                 message: "expected a string, found a sequence"),
            Case(yaml: "user:\n", line: 1, column: 6, key: "user",
                 message: "expected a string, found null"),
            Case(yaml: "socket: 0660\n", line: 1, column: 9, key: "socket",
                 message: "expected a mapping with the keys mode, group, found '0660'"),
            Case(yaml: "senders:\n  match: x\n", line: 2, column: 3, key: "senders",
                 message: "expected a sequence of rules ('- match: ...'), found a mapping"),
            Case(yaml: "senders:\n  - server\n", line: 2, column: 5, key: "senders[0]",
                 message: "expected a rule with the keys match, action and reason, found 'server'"),
            Case(yaml: "replies:\n  tempfail:\n    code: abc\n", line: 3, column: 11, key: "replies.tempfail.code",
                 message: "expected an integer, found 'abc'"),
            Case(yaml: "replies:\n  tempfail:\n    code: \"451\"\n", line: 3, column: 11, key: "replies.tempfail.code",
                 message: "expected an integer, found the string \"451\""),
            Case(yaml: "paths:\n  local_daemon_names: egress-local\n", line: 2, column: 23, key: "paths.local_daemon_names",
                 message: "expected a sequence of strings such as [egress-local], found 'egress-local'"),
            Case(yaml: "paths:\n  local_daemon_names: [a, {b: c}]\n", line: 2, column: 27, key: "paths.local_daemon_names[1]",
                 message: "expected a string, found a mapping"),
            Case(yaml: "headers: [X-Egress-Milter]\n", line: 1, column: 10, key: "headers",
                 message: "expected a mapping with the keys status, found a sequence"),
        ])
    }

    func testReplyCodes() {
        check([
            Case(yaml: "replies:\n  tempfail:\n    code: 550\n", line: 3, column: 11, key: "replies.tempfail.code",
                 message: "tempfail code must be 4xx (400 to 499), not 550"),
            Case(yaml: "replies:\n  reject:\n    code: 451\n", line: 3, column: 11, key: "replies.reject.code",
                 message: "reject code must be 5xx (500 to 599), not 451"),
            Case(yaml: "replies:\n  reject:\n    code: 5500\n", line: 3, column: 11, key: "replies.reject.code",
                 message: "reject code must be 5xx (500 to 599), not 5500"),
            Case(yaml: "replies:\n  reject:\n    status: 4.7.1\n", line: 3, column: 13, key: "replies.reject.status",
                 message: "enhanced status class 4 does not match the reply code 550; use 5.x.x"),
            Case(yaml: "replies:\n  tempfail:\n    code: 452\n    status: 5.2.2\n", line: 4, column: 13, key: "replies.tempfail.status",
                 message: "enhanced status class 5 does not match the reply code 452; use 4.x.x"),
            Case(yaml: "replies:\n  tempfail:\n    status: \"4.7\"\n", line: 3, column: 13, key: "replies.tempfail.status",
                 message: "invalid enhanced status code '4.7'; expected CLASS.SUBJECT.DETAIL such as 4.7.1"),
            Case(yaml: "replies:\n  tempfail:\n    status: 4.07.1\n", line: 3, column: 13, key: "replies.tempfail.status",
                 message: "invalid enhanced status code '4.07.1'; expected CLASS.SUBJECT.DETAIL such as 4.7.1"),
        ])
    }

    func testReplyTexts() {
        let thirtyThreeLines = Array(repeating: "x", count: 33).joined(separator: "\\n")
        let longLine = String(repeating: "y", count: 981)
        check([
            Case(yaml: "replies:\n  reject:\n    text: \"\"\n", line: 3, column: 11, key: "replies.reject.text",
                 message: "must not be empty"),
            Case(yaml: "replies:\n  reject:\n    text: \"Trop de m\u{E9}l\"\n", line: 3, column: 11, key: "replies.reject.text",
                 message: "contains 'é' in line 1; reply text must be printable ASCII"),
            Case(yaml: "replies:\n  reject:\n    text: \"ok\\nbad\\rline\"\n", line: 3, column: 11, key: "replies.reject.text",
                 message: "contains 0x0D in line 2; reply text must be printable ASCII"),
            Case(yaml: "replies:\n  reject:\n    text: \"\(thirtyThreeLines)\"\n", line: 3, column: 11, key: "replies.reject.text",
                 message: "has 33 lines; the maximum is 32"),
            Case(yaml: "replies:\n  reject:\n    text: \(longLine)\n", line: 3, column: 11, key: "replies.reject.text",
                 message: "line 1 is 981 bytes long; the maximum is 980"),
        ])
    }

    func testChoices() {
        check([
            Case(yaml: "senders:\n  - match: server\n    action: rejct\n", line: 3, column: 13, key: "senders[0].action",
                 message: "invalid value 'rejct'; did you mean 'reject'? (expected one of: accept, tag, hold, reject, tempfail)"),
            Case(yaml: "fail_action: hold\n", line: 1, column: 14, key: "fail_action",
                 message: "invalid value 'hold' (expected one of: tempfail, accept, reject)"),
            Case(yaml: "log_level: verbose\n", line: 1, column: 12, key: "log_level",
                 message: "invalid value 'verbose' (expected one of: debug, info, notice, warning, error)"),
            Case(yaml: "log_level: NOTICE\n", line: 1, column: 12, key: "log_level",
                 message: "invalid value 'NOTICE'; did you mean 'notice'? (expected one of: debug, info, notice, warning, error)"),
        ])
    }

    func testSocketModes() {
        check([
            Case(yaml: "socket:\n  mode: \"0999\"\n", line: 2, column: 9, key: "socket.mode",
                 message: "invalid mode '0999'; expected octal permission bits such as \"0660\""),
            Case(yaml: "socket:\n  mode: rw-rw----\n", line: 2, column: 9, key: "socket.mode",
                 message: "invalid mode 'rw-rw----'; expected octal permission bits such as \"0660\""),
            Case(yaml: "socket:\n  mode: \"4660\"\n", line: 2, column: 9, key: "socket.mode",
                 message: "invalid mode '4660'; setuid, setgid and sticky bits mean nothing on a socket"),
            Case(yaml: "socket:\n  mode: \"0666\"\n", line: 2, column: 9, key: "socket.mode",
                 message: "mode '0666' lets every local user connect, and libmilter trusts whoever connects; use \"0660\" with the MTA's group"),
        ])
    }

    func testTimeouts() {
        check([
            Case(yaml: "timeout: -5s\n", line: 1, column: 10, key: "timeout",
                 message: "must not be negative: '-5s'"),
            Case(yaml: "timeout: -300\n", line: 1, column: 10, key: "timeout",
                 message: "must not be negative: '-300'"),
            Case(yaml: "timeout: 0\n", line: 1, column: 10, key: "timeout",
                 message: "must be at least 1 second"),
            Case(yaml: "timeout: 5 minutes\n", line: 1, column: 10, key: "timeout",
                 message: "invalid duration '5 minutes'; expected seconds, or a number with the unit s, m, h or d, such as 30s, 5m or 1h"),
            Case(yaml: "timeout: 1.5m\n", line: 1, column: 10, key: "timeout",
                 message: "invalid duration '1.5m'; expected seconds, or a number with the unit s, m, h or d, such as 30s, 5m or 1h"),
            Case(yaml: "timeout: 99999999999999999999999s\n", line: 1, column: 10, key: "timeout",
                 message: "duration '99999999999999999999999s' is too large; the maximum is 2147483647 seconds"),
            Case(yaml: "timeout: 30000d\n", line: 1, column: 10, key: "timeout",
                 message: "duration '30000d' is too large; the maximum is 2147483647 seconds"),
        ])
    }

    func testListenSpecs() {
        let longPath = "/" + String(repeating: "p", count: 107)
        check([
            Case(yaml: "listen: \"\"\n", line: 1, column: 9, key: "listen",
                 message: "must not be empty; expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST"),
            Case(yaml: "listen: /run/x.sock\n", line: 1, column: 9, key: "listen",
                 message: "invalid listen spec '/run/x.sock'; expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST"),
            Case(yaml: "listen: local:/run/x.sock\n", line: 1, column: 9, key: "listen",
                 message: "unsupported listen type 'local:'; expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST"),
            Case(yaml: "listen: tcp:8891@127.0.0.1\n", line: 1, column: 9, key: "listen",
                 message: "unsupported listen type 'tcp:'; expected unix:/PATH, inet:PORT@HOST or inet6:PORT@HOST"),
            Case(yaml: "listen: \"unix:\"\n", line: 1, column: 9, key: "listen",
                 message: "the unix socket path must be absolute, as in unix:/run/egress-milter/milter.sock"),
            Case(yaml: "listen: unix:\(longPath)\n", line: 1, column: 9, key: "listen",
                 message: "the unix socket path is 108 bytes long; the maximum is 107"),
            Case(yaml: "listen: inet:smtp@127.0.0.1\n", line: 1, column: 9, key: "listen",
                 message: "invalid port 'smtp'; expected inet:PORT@HOST with PORT from 1 to 65535"),
            Case(yaml: "listen: inet:0\n", line: 1, column: 9, key: "listen",
                 message: "invalid port '0'; expected inet:PORT@HOST with PORT from 1 to 65535"),
            Case(yaml: "listen: \"inet6:8891@\"\n", line: 1, column: 9, key: "listen",
                 message: "invalid host ''; expected inet6:8891@HOST, for example inet6:8891@[::1]"),
        ])
    }

    func testOtherValues() {
        check([
            Case(yaml: "user: \"\"\n", line: 1, column: 7, key: "user",
                 message: "must not be empty"),
            Case(yaml: "state_directory: var/lib/egress\n", line: 1, column: 18, key: "state_directory",
                 message: "must be an absolute path, such as /var/lib/egress-milter"),
            Case(yaml: "headers:\n  status: \"X-Bad: yes\"\n", line: 2, column: 11, key: "headers.status",
                 message: "invalid header name 'X-Bad: yes'; use letters, digits and '-', without ':' or spaces"),
            Case(yaml: "paths:\n  local_daemon_names: [\"\"]\n", line: 2, column: 24, key: "paths.local_daemon_names[0]",
                 message: "must not be empty"),
        ])
    }

    func testSenderRules() {
        check([
            Case(yaml: "senders:\n  - action: hold\n", line: 2, column: 5, key: "senders[0].match",
                 message: "missing key; every sender rule needs a match pattern"),
            Case(yaml: "senders:\n  - match: server\n    action: tag\n  - match: login:x\n", line: 4, column: 5, key: "senders[1].action",
                 message: "missing key; every sender rule needs an action"),
            Case(yaml: "senders:\n  - match: \"sendr:*@x.example\"\n    action: hold\n", line: 2, column: 12, key: "senders[0].match",
                 message: "unknown identity level 'sendr'; did you mean 'sender'? (levels: script, account, login, sender, domain, ip, local-unverified, server)"),
            Case(yaml: "senders:\n  - match: alice\n    action: hold\n", line: 2, column: 12, key: "senders[0].match",
                 message: "pattern 'alice' matches no identity key; start it with a level and a colon, such as login: or account:, or write local-unverified or server"),
            Case(yaml: "senders:\n  - match: \"server:x\"\n    action: hold\n", line: 2, column: 12, key: "senders[0].match",
                 message: "the server key has no value; write just 'server'"),
            Case(yaml: "senders:\n  - match: ip:192.0.2.0/24\n    action: hold\n", line: 2, column: 12, key: "senders[0].match",
                 message: "pattern 'ip:192.0.2.0/24' never matches: IPv4 keys have no prefix length and IPv6 keys end in /64 (identity.ipv6_prefix); match ranges with a glob such as ip:192.0.2.*"),
            Case(yaml: "senders:\n  - match: \"\"\n    action: hold\n", line: 2, column: 12, key: "senders[0].match",
                 message: "must not be empty; write a pattern such as sender:*@example.com"),
            Case(yaml: "senders:\n  - match: server\n    action: hold\n    reason: \"two\\nlines\"\n", line: 4, column: 13,
                 key: "senders[0].reason", message: "must be a single line without control characters"),
        ])
    }

    func testYAMLSyntaxErrors() {
        check([
            Case(yaml: "user: \"unterminated\n", line: 2, column: 1, key: "",
                 message: "invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line 1, column 7)"),
            Case(yaml: "socket:\n  mode: \"0660\"\n group: mail\n", line: 3, column: 2, key: "",
                 message: "invalid YAML: did not find expected key (while parsing a block mapping at line 1, column 1)"),
            Case(yaml: "socket:\n\tmode: \"0660\"\n", line: 2, column: 1, key: "",
                 message: "invalid YAML: found character that cannot start any token (while scanning for the next token at line 2, column 1)"),
            Case(yaml: "listen: [a, b\n", line: 2, column: 1, key: "",
                 message: "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 9)"),
        ])
    }

    func testUnsupportedYAMLFeatures() {
        check([
            Case(yaml: "user: a\n---\nuser: b\n", line: 2, column: 1, key: "",
                 message: "a config file must contain one YAML document; remove the second one"),
            Case(yaml: "user: *nothing\n", line: 1, column: 7, key: "",
                 message: "unknown alias '*nothing'"),
            Case(yaml: "user: !custom x\n", line: 1, column: 7, key: "",
                 message: "unsupported YAML tag '!custom'"),
            Case(yaml: "listen: " + String(repeating: "[", count: 70) + "\n", line: 1, column: 72, key: "",
                 message: "nesting deeper than 64 levels"),
        ])
    }

    func testInvalidUTF8NamesPosition() {
        var bytes = Array("user: ok\nsocket:\n  group: m".utf8)
        bytes.append(0xFF)
        bytes.append(contentsOf: Array("il\n".utf8))
        XCTAssertThrowsError(try Configuration.parse(bytes: bytes, file: Self.file)) { error in
            XCTAssertEqual("\(error)", "egress-milter.yaml:3:11: invalid YAML: invalid leading UTF-8 octet")
        }
    }
}
