// Every malformed message of the shared mail corpus (broken MIME, odd line endings, huge or
// empty headers, nested parts) sent through Postfix and the daemon over SMTP. The daemon must
// stay up and decide each message: each one is either delivered to the sink exactly once or
// rejected with a 5xx reply, and nothing is deferred, which would mean the milter failed.
//
// The corpus lies beside the checkout, in ../shared/corpus/<source>/malformed/; without it the
// test is skipped. Messages go in sessions of several transactions, so the daemon's reset
// between messages of one connection is exercised too.
import Foundation
import XCTest

final class MalformedCorpusTests: IntegrationTestCase {
    /// Transactions per SMTP connection.
    static let messagesPerSession = 10

    func testMalformedMessagesAllDecided() throws {
        let files = try Self.malformedCorpusFiles()
        let port = environment.postfix.smtpPort

        var results: [(file: String, recipient: String, result: SMTPDeliveryResult)] = []
        var connection: SMTPConnection?
        var transactionsOnConnection = 0
        for (index, file) in files.enumerated() {
            if connection == nil || transactionsOnConnection == Self.messagesPerSession {
                connection?.quit()
                connection = try SMTPConnection(port: port)
                _ = try connection?.command("EHLO client.egress.test")
                transactionsOnConnection = 0
            }
            let content = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
            let recipient = "corpus-\(index)@remote.example"
            let result = connection!.send(from: "corpus@shop.example", to: [recipient], content: content)
            results.append((file, recipient, result))
            transactionsOnConnection += 1
            if result.outcome == .connectionFailed {
                connection = nil
            }
        }
        connection?.quit()

        XCTAssertTrue(environment.daemon.isRunning, "the daemon died: \(environment.daemon.log().suffix(3000))")
        let accepted = results.filter { $0.result.outcome == .accepted }
        let rejected = results.filter { $0.result.outcome == .rejected }
        let failed = results.filter { $0.result.outcome == .deferred || $0.result.outcome == .connectionFailed }
        print("malformed corpus: \(files.count) messages sent, \(accepted.count) accepted, \(rejected.count) rejected, \(failed.count) deferred or failed")
        XCTAssertEqual(failed.count, 0, failed.prefix(10).map { "\($0.file): \($0.result)" }.joined(separator: "\n"))
        XCTAssertEqual(accepted.count + rejected.count, files.count)

        // Content scoring may hold a message: it then waits in the hold queue instead of the
        // sink, and either way it is there exactly once.
        let actions = Dictionary(
            environment.daemon.decisions().map { ($0.queueID, $0.action ?? "") }, uniquingKeysWith: { first, _ in first })
        let heldCount = accepted.filter { actions[$0.result.queueID ?? ""] == "hold" }.count
        let arrived = waitUntil(timeoutSeconds: 180, pollSeconds: 0.2) {
            environment.postfix.sink.fileCount() >= accepted.count - heldCount
        }
        XCTAssertTrue(arrived && environment.postfix.waitForOnlyHeldMessages(timeoutSeconds: 180), environment.diagnostics())
        let held = Set(try environment.postfix.queueEntries().filter { $0.queueName == "hold" }.map(\.queueID))
        var copies: [String: Int] = [:]
        for message in environment.postfix.sink.messages() {
            for recipient in message.recipients {
                copies[recipient, default: 0] += 1
            }
        }
        for item in accepted {
            let queueID = item.result.queueID ?? ""
            if actions[queueID] == "hold" {
                XCTAssertTrue(held.contains(queueID), "\(item.file) (\(queueID)) was held by the milter but is not in the hold queue")
                XCTAssertNil(copies[item.recipient], "\(item.file) (\(queueID)) was held but reached the sink")
            } else {
                XCTAssertEqual(copies[item.recipient], 1, "\(item.file) (\(item.recipient)) reached the sink \(copies[item.recipient] ?? 0) times")
            }
        }
        print("malformed corpus: \(heldCount) of the accepted messages held by content scoring")
        for item in rejected {
            XCTAssertNil(copies[item.recipient], "\(item.file) was rejected with \(String(describing: item.result.reply)) but delivered")
        }

        // The daemon logged a decision for every accepted message, under its queue ID.
        let decided = Set(environment.daemon.decisions().map(\.queueID))
        for item in accepted {
            let queueID = try XCTUnwrap(item.result.queueID, "\(item.file): no queue ID in \(String(describing: item.result.reply))")
            XCTAssertTrue(decided.contains(queueID), "\(item.file): no decision logged for \(queueID)")
        }

        // The daemon still accepts mail after the whole corpus.
        let token = uniqueToken("after-corpus")
        let last = SMTPConnection.sendOne(
            port: port, from: "\(token)@shop.example", to: ["friend@remote.example"],
            content: testMessage(from: "\(token)@shop.example", to: "friend@remote.example", token: token))
        XCTAssertEqual(last.outcome, .accepted, "reply: \(String(describing: last.reply))")
        XCTAssertTrue(environment.daemon.isRunning)
    }

    /// Paths of all files in <repository>/../shared/corpus/*/malformed/, sorted. Throws XCTSkip
    /// when the corpus is not there.
    static func malformedCorpusFiles() throws -> [String] {
        let corpus = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus").path
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: corpus, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw XCTSkip("mail corpus not found at \(corpus); the malformed-message test needs it beside the checkout")
        }

        var files: [String] = []
        for source in try fileManager.contentsOfDirectory(atPath: corpus).sorted() {
            let folder = corpus + "/" + source + "/malformed"
            guard let names = try? fileManager.contentsOfDirectory(atPath: folder) else { continue }
            files += names.sorted().map { folder + "/" + $0 }
        }
        guard !files.isEmpty else {
            throw XCTSkip("no malformed messages under \(corpus)/*/malformed")
        }
        return files
    }
}
