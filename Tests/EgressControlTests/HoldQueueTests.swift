// What release does with held messages: the plan that leaves alone every message that left
// the hold queue or whose queue ID now names another sender's mail, and the actions run by
// stand-in postqueue and postsuper scripts over a queue file, including a postsuper that
// fails. The real Postfix programs are exercised by the integration tests.
import EgressCore
import Foundation
import XCTest

@testable import egressctl

final class HoldQueueTests: XCTestCase {
    private func held(_ queueID: String, sender: String = "alice@shop.example") -> HeldMessage {
        HeldMessage(queueID: queueID, heldAt: Date(timeIntervalSince1970: 1_700_000_000), sender: sender, recipients: 1,
                    reason: "account:alice suspended", identity: "account:alice<server")
    }

    func testPlanActsOnlyOnMessagesStillHeldFromTheSameSender() {
        let queue = [
            QueueEntry(queueName: "hold", queueID: "A1", sender: "Alice@Shop.example"),
            QueueEntry(queueName: "deferred", queueID: "B2", sender: "alice@shop.example"),
            QueueEntry(queueName: "hold", queueID: "C3", sender: "mallory@other.example"),
        ]
        let plans = planHeldMessages([held("A1"), held("B2"), held("C3"), held("D4")], queue: queue)
        XCTAssertEqual(plans.count, 4)
        XCTAssertEqual(plans[0], .act(held("A1")), "senders compare without regard to case")
        guard case .skip(let notHeld) = plans[1], case .skip(let other) = plans[2], case .skip(let missing) = plans[3] else {
            return XCTFail("\(plans)")
        }
        XCTAssertEqual(notHeld.action, .notHeld)
        XCTAssertEqual(other.action, .otherMessage)
        XCTAssertTrue(other.detail?.contains("<mallory@other.example>") ?? false)
        XCTAssertEqual(missing.action, .missing)
    }

    // MARK: Stand-in Postfix programs

    /// Writes postqueue and postsuper scripts that work on a JSON-lines queue file.
    private func standInPrograms(queue: [QueueEntry], postsuperFails: Bool = false) throws -> (HoldQueue, String) {
        let directory = NSTemporaryDirectory() + "egressctl-postfix-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let queueFile = directory + "/queue.jsonl"
        let lines = queue.map { "{\"queue_name\":\"\($0.queueName)\",\"queue_id\":\"\($0.queueID)\",\"sender\":\"\($0.sender)\",\"recipients\":[]}" }
        try (lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")).write(toFile: queueFile, atomically: true, encoding: .utf8)

        let postqueue = """
            #!/bin/sh
            case "$1" in
              -j) cat \(queueFile) ;;
              -i) echo "$2" >> \(directory)/scheduled ;;
            esac
            """
        let postsuper = postsuperFails ? """
            #!/bin/sh
            cat > /dev/null
            echo "postsuper: fatal: use of this command is reserved for the superuser" >&2
            exit 1
            """ : """
            #!/bin/sh
            while read id; do
              if [ "$1" = "-d" ]; then
                grep -v "\\"queue_id\\":\\"$id\\"" \(queueFile) > \(queueFile).new; mv \(queueFile).new \(queueFile)
                echo "postsuper: $id: removed" >&2
              else
                sed -i "/\\"queue_id\\":\\"$id\\"/s/\\"hold\\"/\\"deferred\\"/" \(queueFile)
                echo "postsuper: $id: released from hold" >&2
              fi
            done
            """
        for (name, text) in [("postqueue", postqueue), ("postsuper", postsuper)] {
            let path = directory + "/" + name
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        return (HoldQueue(postqueue: directory + "/postqueue", postsuper: directory + "/postsuper", configDirectory: nil), directory)
    }

    func testDeliverReleasesAndSchedulesEachMessage() throws {
        let (holdQueue, directory) = try standInPrograms(queue: [
            QueueEntry(queueName: "hold", queueID: "A1", sender: "alice@shop.example"),
            QueueEntry(queueName: "hold", queueID: "B2", sender: "alice@shop.example"),
        ])
        let outcomes = try actOnHeldMessages([held("A1"), held("B2"), held("Z9")], mode: .deliver, holdQueue: holdQueue)
        XCTAssertEqual(outcomes.map(\.action), [.delivered, .delivered, .missing])
        XCTAssertEqual(try String(contentsOfFile: directory + "/scheduled", encoding: .utf8), "A1\nB2\n")
        XCTAssertEqual(try holdQueue.entries().map(\.queueName), ["deferred", "deferred"])
    }

    func testDeleteRemovesEachMessage() throws {
        let (holdQueue, _) = try standInPrograms(queue: [
            QueueEntry(queueName: "hold", queueID: "A1", sender: "alice@shop.example"),
            QueueEntry(queueName: "hold", queueID: "C3", sender: "bob@shop.example"),
        ])
        let outcomes = try actOnHeldMessages([held("A1"), held("C3")], mode: .delete, holdQueue: holdQueue)
        XCTAssertEqual(outcomes.map(\.action), [.deleted, .otherMessage])
        XCTAssertEqual(try holdQueue.entries().map(\.queueID), ["C3"], "the other sender's message stays")
    }

    func testFailingPostsuperLeavesMessagesHeld() throws {
        let (holdQueue, _) = try standInPrograms(queue: [QueueEntry(queueName: "hold", queueID: "A1", sender: "alice@shop.example")],
                                                 postsuperFails: true)
        let outcomes = try actOnHeldMessages([held("A1")], mode: .deliver, holdQueue: holdQueue)
        XCTAssertEqual(outcomes.map(\.action), [.failed])
        XCTAssertTrue(outcomes.first?.detail?.contains("reserved for the superuser") ?? false, String(describing: outcomes.first?.detail))
        XCTAssertFalse(outcomes[0].endsRecord)
    }

    func testListingStillOpenAfterExitIsRejected() throws {
        let (_, directory) = try standInPrograms(queue: [QueueEntry(queueName: "hold", queueID: "A1", sender: "alice@shop.example")])
        // A postqueue that leaves a process holding its standard output (and nothing above 2).
        let postqueue = directory + "/postqueue-lingering"
        let script = """
            #!/bin/bash
            linger() {
              for fd in /proc/$BASHPID/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null; fi; done
              exec sleep 5
            }
            linger &
            cat \(directory)/queue.jsonl

            """
        try script.write(toFile: postqueue, atomically: true, encoding: .utf8)
        chmod(postqueue, 0o755)
        let holdQueue = HoldQueue(postqueue: postqueue, postsuper: directory + "/postsuper", configDirectory: nil)
        XCTAssertThrowsError(try holdQueue.entries()) { error in
            XCTAssertTrue("\(error)".contains("the queue listing may be incomplete"), "\(error)")
        }
    }

    func testProgramErrorsKeepTheirWording() {
        XCTAssertThrowsError(try runProgram("/bin/sleep", ["30"], timeoutSeconds: 1)) { error in
            XCTAssertTrue(error is DaemonError, "\(type(of: error))")
            XCTAssertEqual("\(error)", "/bin/sleep 30 did not finish within 1 s")
        }
        let missing = NSTemporaryDirectory() + "egress-no-such-postqueue-\(UUID().uuidString.prefix(8))"
        XCTAssertThrowsError(try runProgram(missing, ["-j"], timeoutSeconds: 30)) { error in
            XCTAssertTrue(error is DaemonError, "\(type(of: error))")
            XCTAssertTrue("\(error)".hasPrefix("cannot run \(missing): "), "\(error)")
        }
    }
}
