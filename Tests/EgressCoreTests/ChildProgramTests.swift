// Tests for running a child program: input on standard input, the two outputs kept apart,
// the caller's or a fixed environment, and outputs cut at the byte limit. Then the failures:
// a hanging program killed at the timeout, a program that cannot start, one that exits
// without reading its input, and a grandchild that keeps an output pipe open. Last, the
// bounded error detail. Every case runs real programs from /bin and /usr/bin.

import EgressCore
import Foundation
import XCTest

final class ChildProgramTests: XCTestCase {
    private let limit = 16 * 1024

    func testInputReachesProgramAndOutputsStayApart() throws {
        let result = try ChildProgram.run("/bin/sh", ["-c", "cat; echo 'bad thing' >&2; exit 3"], environment: nil,
                                          input: Array("hello\n".utf8), timeoutSeconds: 30, maximumOutputBytes: limit)
        XCTAssertEqual(result.status, 3)
        XCTAssertEqual(String(decoding: result.standardOutput, as: UTF8.self), "hello\n")
        XCTAssertEqual(result.standardErrorText, "bad thing\n")
        XCTAssertTrue(result.outputIsComplete)
        XCTAssertEqual(result.outputText, "hello | bad thing")
        XCTAssertEqual(result.failureDetail, "bad thing")
    }

    func testBaseEnvironmentReplacesCallerEnvironment() throws {
        let result = try ChildProgram.run("/usr/bin/env", [], environment: ChildProgram.baseEnvironment, input: [],
                                          timeoutSeconds: 30, maximumOutputBytes: limit)
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(String(decoding: result.standardOutput, as: UTF8.self), "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n")
    }

    func testNilEnvironmentPassesCallerEnvironment() throws {
        let path = try XCTUnwrap(ProcessInfo.processInfo.environment["PATH"])
        let result = try ChildProgram.run("/usr/bin/env", [], environment: nil, input: [],
                                          timeoutSeconds: 30, maximumOutputBytes: .max)
        let lines = String(decoding: result.standardOutput, as: UTF8.self).split(separator: "\n")
        XCTAssertTrue(lines.contains { $0 == "PATH=\(path)" }, "\(lines)")
    }

    func testOutputBeyondLimitIsCut() throws {
        let result = try ChildProgram.run("/bin/sh", ["-c", "head -c 100000 /dev/zero"], environment: nil, input: [],
                                          timeoutSeconds: 30, maximumOutputBytes: 1000)
        XCTAssertEqual(result.status, 0, "the program must not block on a full pipe")
        XCTAssertEqual(result.standardOutput.count, 1000)
        XCTAssertFalse(result.outputIsComplete)
    }

    func testHangingProgramIsKilled() {
        XCTAssertThrowsError(try ChildProgram.run("/bin/sleep", ["30"], environment: nil, input: [],
                                                  timeoutSeconds: 1, maximumOutputBytes: limit)) { error in
            XCTAssertEqual(error as? ChildProgramError, .timedOut(program: "/bin/sleep", timeoutSeconds: 1))
            XCTAssertEqual("\(error)", "/bin/sleep did not finish within 1 s and was killed")
        }
    }

    func testMissingProgramFailsToLaunch() {
        let program = NSTemporaryDirectory() + "egress-no-such-program-\(UUID().uuidString.prefix(8))"
        XCTAssertThrowsError(try ChildProgram.run(program, [], environment: nil, input: [],
                                                  timeoutSeconds: 30, maximumOutputBytes: limit)) { error in
            guard case .launchFailed(let failed, _) = error as? ChildProgramError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(failed, program)
            XCTAssertTrue("\(error)".hasPrefix("cannot run \(program): "), "\(error)")
        }
    }

    func testProgramIgnoringLargeInputReportsItsStatus() throws {
        // Far more than a pipe holds, so the write meets a closed pipe (EPIPE, not SIGPIPE).
        let input = [UInt8](repeating: 0x61, count: 1 << 20)
        let result = try ChildProgram.run("/bin/sh", ["-c", "exit 4"], environment: nil, input: input,
                                          timeoutSeconds: 30, maximumOutputBytes: limit)
        XCTAssertEqual(result.status, 4)
    }

    func testGrandchildHoldingPipeDoesNotBlock() throws {
        // The background sleep keeps standard output open after bash exits, but closes the
        // descriptors above 2, among them the socket Foundation watches for the child's exit.
        let script = """
            linger() {
              for fd in /proc/$BASHPID/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null; fi; done
              exec sleep 5
            }
            linger &
            echo started
            """
        let result = try ChildProgram.run("/bin/bash", ["-c", script], environment: nil, input: [],
                                          timeoutSeconds: 30, maximumOutputBytes: limit)
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(String(decoding: result.standardOutput, as: UTF8.self), "started\n")
        XCTAssertFalse(result.outputIsComplete)
    }

    func testFailureDetailIsBounded() {
        let detail = ChildProgram.Result.detail(of: Array(String(repeating: "x", count: 1000).utf8))
        XCTAssertLessThanOrEqual(detail.utf8.count, ChildProgram.Result.maximumDetailBytes + 3)
        XCTAssertTrue(detail.hasSuffix("..."))
        XCTAssertEqual(ChildProgram.Result.detail(of: Array("\n\n  \n".utf8)), "")
    }
}
