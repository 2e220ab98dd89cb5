// End-to-end tests of the built `egress-sendmail` binary: each test runs it with a temporary
// config file and key, and with a shell script in place of the real sendmail that records
// its arguments, its standard input and its ids. The forwarded message is then checked with
// the core's own stamp verification.

import Foundation
import XCTest
@testable import EgressCore

final class SubmissionWrapperTests: XCTestCase {
    private static let stampHeader = "X-Egress-Submitter"

    /// What one run of the wrapper produced.
    private struct Run {
        var status: Int32
        var standardError: String
        /// Arguments the fake sendmail received; nil when it did not run.
        var arguments: [String]?
        /// Standard input the fake sendmail received.
        var message: [UInt8]
        /// `id` output and the Gid lines of /proc/PID/status of the fake sendmail and of its
        /// parent, the waiting wrapper. The parent's line matters most, because a shell drops
        /// a setgid group by itself at start.
        var ids: String
    }

    private var directory = ""
    private var keyPath = ""
    private var configurationPath = ""
    private var fakeSendmailPath = ""
    private let key = Array("0123456789abcdef0123456789abcdef".utf8)

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "egress-sendmail-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        let path = directory
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }

        keyPath = directory + "/submit.key"
        try writeFile(keyPath, key, mode: 0o640)
        configurationPath = directory + "/egress-milter.yaml"
        try writeConfiguration(keyFile: keyPath)

        // Arguments are written NUL-separated, so arguments with spaces or newlines survive.
        fakeSendmailPath = directory + "/fake-sendmail"
        let script = """
            #!/bin/sh
            out="$(dirname "$0")"
            for argument in "$@"; do printf '%s\\0' "$argument"; done > "$out/arguments"
            cat > "$out/message"
            { id; grep '^Gid:' /proc/self/status; grep '^Gid:' "/proc/$PPID/status"; } > "$out/ids"
            exit "${FAKE_SENDMAIL_STATUS:-0}"

            """
        try writeFile(fakeSendmailPath, Array(script.utf8), mode: 0o755)
    }

    // MARK: Helpers

    private func writeFile(_ path: String, _ bytes: [UInt8], mode: Int) throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)), path)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    private func writeConfiguration(keyFile: String) throws {
        let yaml = "identity:\n  stamp_key_file: \"\(keyFile)\"\n  stamp_header: \(Self.stampHeader)\n"
        try writeFile(configurationPath, Array(yaml.utf8), mode: 0o644)
    }

    /// The built wrapper: SwiftPM puts executables next to the test bundle.
    private func wrapperPath() throws -> String {
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent())
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL)
        for candidate in candidates {
            let path = candidate.appendingPathComponent("egress-sendmail").path
            if FileManager.default.isExecutableFile(atPath: path) {
                return path
            }
        }
        XCTFail("egress-sendmail not found next to the test bundle in \(candidates.map(\.path)); run the tests with swift test, which builds it")
        throw XCTSkip("no wrapper binary")
    }

    private func run(_ arguments: [String], input: String, environment extra: [String: String] = [:],
                     executable: String? = nil, prefix: [String] = []) throws -> Run {
        for name in ["arguments", "message", "ids"] {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")
        }
        let process = Process()
        let wrapper = try executable ?? wrapperPath()
        process.executableURL = URL(fileURLWithPath: prefix.first ?? wrapper)
        process.arguments = prefix.isEmpty ? arguments : Array(prefix.dropFirst()) + [wrapper] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var environment = ["PATH": "/usr/bin:/bin", "EGRESS_MILTER_CONFIG": configurationPath,
                           "EGRESS_REAL_SENDMAIL": fakeSendmailPath]
        environment.merge(extra) { $1 }
        process.environment = environment

        let standardInput = Pipe()
        let standardError = Pipe()
        process.standardInput = standardInput
        process.standardError = standardError
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try standardInput.fileHandleForWriting.write(contentsOf: Data(input.utf8))
        try standardInput.fileHandleForWriting.close()
        let errorOutput = standardError.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()

        let argumentsData = FileManager.default.contents(atPath: "\(directory)/arguments")
        return Run(
            status: process.terminationStatus,
            standardError: String(decoding: errorOutput, as: UTF8.self),
            arguments: argumentsData.map { data in
                data.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
            },
            message: FileManager.default.contents(atPath: "\(directory)/message").map { Array($0) } ?? [],
            ids: FileManager.default.contents(atPath: "\(directory)/ids").map { String(decoding: $0, as: UTF8.self) } ?? "")
    }

    /// Resolves the forwarded message on the local path the way the daemon would.
    private func resolve(_ message: [UInt8], sender: String = "<alice@shop.example>") throws -> IdentityResolution {
        let raw = RawMessage(message)
        var headers = raw.values(named: Self.stampHeader).map { Header(name: Self.stampHeader, value: $0) }
        headers += raw.values(named: "Message-ID").map { Header(name: "Message-ID", value: $0) }
        headers += raw.values(named: "X-PHP-Originating-Script").map { Header(name: "X-PHP-Originating-Script", value: $0) }

        var settings = IdentitySettings()
        settings.stampKey = try StampKey(bytes: key)
        let accounts = AccountTable([getuid(): "tester"])
        let facts = MessageFacts(path: .local, envelopeSender: sender, headers: headers)
        return IdentityResolver(settings: settings, accounts: accounts).resolve(facts, now: Date())
    }

    private let forgedStamp = "X-Egress-Submitter: v=1; uid=4242; account=mallory; cwd=/; script=; source=none; time=1; nonce=00; msgid=x; from=; mac=00\n"

    // MARK: Tests

    func testWrapperStampsAndForwardsUnchangedArguments() throws {
        let arguments = ["-t", "-i", "-f", "alice@shop.example", "-F", "Alice Example", "-oi", "bob@example.net", "two words"]
        let input = forgedStamp + "X-PHP-Originating-Script: \(getuid()):send.php\nTo: bob@example.net\nSubject: hi\nMessage-ID: <w1@shop.example>\n\nHello\n.\nBye\n"
        let run = try run(arguments, input: input)

        XCTAssertEqual(run.status, 0, run.standardError)
        XCTAssertEqual(run.arguments, arguments)
        let output = String(decoding: run.message, as: UTF8.self)
        XCTAssertTrue(output.hasSuffix("X-PHP-Originating-Script: \(getuid()):send.php\nTo: bob@example.net\nSubject: hi\nMessage-ID: <w1@shop.example>\n\nHello\n.\nBye\n"), output)
        XCTAssertFalse(output.contains("account=mallory"), output)
        XCTAssertEqual(RawMessage(run.message).values(named: Self.stampHeader).count, 1)
        XCTAssertTrue(run.standardError.contains("removed 1 X-Egress-Submitter header(s)"), run.standardError)

        let resolution = try resolve(run.message)
        let stamp = try XCTUnwrap(resolution.stamp, "stamp did not verify: \(String(describing: resolution.stampProblem))")
        let workingDirectory = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        XCTAssertEqual(stamp.uid, getuid())
        XCTAssertEqual(stamp.workingDirectory, workingDirectory)
        XCTAssertEqual(stamp.script, workingDirectory + "/send.php")
        XCTAssertEqual(stamp.scriptSource, .phpHeader)
        XCTAssertEqual(stamp.envelopeSender, "alice@shop.example")
        XCTAssertEqual(stamp.messageID, "<w1@shop.example>")
        XCTAssertEqual(resolution.identity.description,
                       "script:tester:\(workingDirectory)/send.php<account:tester<sender:alice@shop.example<domain:shop.example<server")
        XCTAssertEqual(resolution.symbols, [])
    }

    func testWrapperRecordsScriptFilenameFromEnvironment() throws {
        let run = try run(["-t", "-i"], input: "To: bob@example.net\n\nHi\n",
                          environment: ["SCRIPT_FILENAME": "/home/alice/public_html/contact.php"])
        XCTAssertEqual(run.status, 0, run.standardError)
        let stamp = try XCTUnwrap(try resolve(run.message).stamp)
        XCTAssertEqual(stamp.script, "/home/alice/public_html/contact.php")
        XCTAssertEqual(stamp.scriptSource, .environment)
        XCTAssertEqual(RawMessage(run.message).values(named: "Message-ID").count, 1, "a Message-ID is added")
    }

    func testWrapperPropagatesExitStatus() throws {
        for status: Int32 in [0, 1, 67, 75] {
            let run = try run(["-t", "-i"], input: "To: bob@example.net\n\nHi\n", environment: ["FAKE_SENDMAIL_STATUS": "\(status)"])
            XCTAssertEqual(run.status, status)
            XCTAssertNotNil(try resolve(run.message).stamp, "the message was still passed on")
        }
    }

    func testWrapperWithoutUsableKeySubmitsUnstamped() throws {
        let worldReadable = directory + "/world-readable.key"
        try writeFile(worldReadable, key, mode: 0o644)
        let keyFiles = [(directory + "/missing.key", "No such file or directory"),
                        (worldReadable, "every user may read or write the stamp key file")]
        for (keyFile, reason) in keyFiles {
            try writeConfiguration(keyFile: keyFile)
            let input = forgedStamp + "To: bob@example.net\nSubject: hi\n\nHello\n"
            let run = try run(["-t", "-i"], input: input)

            XCTAssertEqual(run.status, 0, run.standardError)
            XCTAssertEqual(run.arguments, ["-t", "-i"])
            XCTAssertEqual(String(decoding: run.message, as: UTF8.self), "To: bob@example.net\nSubject: hi\n\nHello\n")
            XCTAssertTrue(run.standardError.contains("submitting without a stamp: \(keyFile): "), run.standardError)
            XCTAssertTrue(run.standardError.contains(reason), run.standardError)

            let resolution = try resolve(run.message)
            XCTAssertNil(resolution.stamp)
            XCTAssertTrue(resolution.identity.keys.contains(.localUnverified))
        }
    }

    func testWrapperPassesNonSubmissionCommandsThrough() throws {
        let input = forgedStamp + "not a message\n"
        for arguments in [["-bp"], ["-q"], ["-bs"], ["-I"], ["-qIABC123"]] {
            let run = try run(arguments, input: input)
            XCTAssertEqual(run.status, 0, run.standardError)
            XCTAssertEqual(run.arguments, arguments)
            XCTAssertEqual(String(decoding: run.message, as: UTF8.self), input, "standard input is left to the real sendmail")
        }
    }

    func testHelpAndVersionAreAnsweredByTheWrapper() throws {
        for (argument, expected) in [("--help", "Usage: egress-sendmail"), ("--version", "egress-sendmail \(egressMilterVersion)")] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try wrapperPath())
            process.arguments = [argument]
            process.environment = ["PATH": "/usr/bin:/bin", "EGRESS_REAL_SENDMAIL": fakeSendmailPath]
            let output = Pipe()
            process.standardOutput = output
            process.standardInput = FileHandle.nullDevice
            try? FileManager.default.removeItem(atPath: "\(directory)/arguments")
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, argument)
            XCTAssertTrue(text.hasPrefix(expected), text)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(directory)/arguments"), "\(argument) must not reach the real sendmail")
        }
    }

    func testWrapperReportsMissingRealSendmail() throws {
        let run = try run(["-t"], input: "To: bob@example.net\n\nHi\n",
                          environment: ["EGRESS_REAL_SENDMAIL": directory + "/no-such-sendmail"])
        XCTAssertEqual(run.status, 75)
        XCTAssertTrue(run.standardError.contains("cannot run \(directory)/no-such-sendmail: No such file or directory"), run.standardError)
    }

    /// Installs a copy of the wrapper setgid to a group that the user nobody is not in, and
    /// runs it as nobody. The wrapper and the real sendmail must end up without the group.
    /// The environment must not redirect a privileged wrapper to another config or key.
    func testSetgidWrapperDropsGroupAndIgnoresEnvironment() throws {
        guard getuid() == 0 else {
            throw XCTSkip("needs root to install a setgid copy and to run it as another user")
        }
        guard let nobody = getpwnam("nobody")?.pointee.pw_uid, let group = getgrnam("postdrop")?.pointee.gr_gid else {
            throw XCTSkip("needs the user nobody and the group postdrop")
        }
        guard !FileManager.default.fileExists(atPath: "/etc/egress-milter/submit.key") else {
            throw XCTSkip("a real stamp key is installed in /etc/egress-milter; this test expects none")
        }

        let installed = directory + "/egress-sendmail"
        try FileManager.default.copyItem(atPath: try wrapperPath(), toPath: installed)
        XCTAssertEqual(chown(installed, 0, group), 0)
        XCTAssertEqual(chmod(installed, 0o2755), 0)
        XCTAssertEqual(chown(keyPath, 0, group), 0)
        // The fake sendmail runs as the user nobody and writes its records into the directory.
        XCTAssertEqual(chmod(directory, 0o777), 0)

        let setpriv = ["/usr/bin/setpriv", "--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups"]
        let run = try run(["-t", "-i"], input: forgedStamp + "To: bob@example.net\n\nHi\n", executable: installed, prefix: setpriv)

        XCTAssertEqual(run.status, 0, run.standardError)
        XCTAssertTrue(run.standardError.contains("/etc/egress-milter/submit.key"),
                      "the privileged wrapper must use the built-in config path: \(run.standardError)")
        XCTAssertEqual(String(decoding: run.message, as: UTF8.self), "To: bob@example.net\n\nHi\n")
        XCTAssertFalse(run.ids.isEmpty, "the fake sendmail did not record its ids")
        XCTAssertFalse(run.ids.contains("postdrop"), run.ids)
        XCTAssertFalse(run.ids.contains("\(group)"), run.ids)
        let unprivileged = "Gid:\t\(nobody)\t\(nobody)\t\(nobody)\t\(nobody)"
        XCTAssertEqual(run.ids.components(separatedBy: unprivileged).count - 1, 2, "wrapper and real sendmail: \(run.ids)")
    }
}
