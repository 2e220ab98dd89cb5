// Tests for the limiter's durable state in real SQLite files: checkpoint and restore across a
// reopen, suspensions written before their verdict, wall clock steps across a restart, idle
// key expiry, and failures of the store reported as errors.

import Foundation
import XCTest
@testable import EgressCore

final class LimitStoreTests: XCTestCase {
    private typealias T = LimitTesting

    private let rule = LimitRule(name: "logins", level: .login, messages: [RateWindow(limit: 2, seconds: 600)])
    private let bootID = "6f9e0b52-1c1e-4c36-9a43-000000000001"

    /// The clock readings of a daemon started `seconds` after the test's start, on a machine
    /// booted 1000 s before the test's start.
    private func clock(wall seconds: Double, sinceBoot: Double? = nil, bootID: String? = nil) -> ClockReading {
        ClockReading(wall: T.at(seconds), bootID: bootID ?? self.bootID,
                     sinceBoot: .milliseconds(Int64(((sinceBoot ?? seconds) + 1000) * 1000)))
    }

    private func openLimiter(_ directory: String, _ reading: ClockReading) throws -> RateLimiter {
        try RateLimiter(stateDirectory: directory, clock: reading)
    }

    // MARK: Checkpoint and restore

    func testCountersSurviveACheckpointAndReopen() throws {
        let directory = try T.temporaryDirectory(self)
        let first = try openLimiter(directory, clock(wall: 0))
        let policy = T.policy([rule], limiter: first)
        try T.send(policy, at: 1)
        try T.send(policy, at: 2)
        try first.checkpoint(now: T.at(3))

        let second = try openLimiter(directory, clock(wall: 5))
        XCTAssertEqual(second.trackedKeyCount, 1)
        let restored = T.policy([rule], limiter: second)
        XCTAssertEqual(try T.send(restored, at: 6).action, .tempfail, "both messages still count")
        XCTAssertNil(try T.send(restored, at: 661).action, "and they leave the window on time")
    }

    func testCampaignCountsSurviveReopen() throws {
        var settings = CampaignSettings()
        settings.windowSeconds = 600
        settings.subjectWindowSeconds = 60
        let directory = try T.temporaryDirectory(self)
        let first = try openLimiter(directory, clock(wall: 0))
        _ = first.campaigns.record(content: 7, subject: 9, sender: "login:a", recipients: 20, settings: settings, now: T.at(1))
        _ = first.campaigns.record(content: 7, subject: 9, sender: "login:b\nwith a line break", recipients: 20, settings: settings, now: T.at(2))
        try first.checkpoint(now: T.at(3))

        let second = try openLimiter(directory, clock(wall: 5))
        var counts = second.campaigns.record(content: 7, subject: 9, sender: "login:c", recipients: 20, settings: settings, now: T.at(6))
        XCTAssertEqual(counts, CampaignCounts(recipients: 60, senders: 3, subjectMessages: 1),
                       "the content's counts carry over; the subject key is per sender, so login:c starts at 1")
        counts = second.campaigns.record(content: 7, subject: 9, sender: "login:b\nwith a line break", recipients: 1, settings: settings, now: T.at(7))
        XCTAssertEqual(counts.senders, 3, "a restored sender is recognised")
        XCTAssertEqual(counts.subjectMessages, 2)

        // Past the window, the checkpoint deletes the stored entry, so a third start begins afresh.
        try second.checkpoint(now: T.at(700))
        let third = try openLimiter(directory, clock(wall: 701))
        counts = third.campaigns.record(content: 7, subject: 9, sender: "login:a", recipients: 1, settings: settings, now: T.at(702))
        XCTAssertEqual(counts, CampaignCounts(recipients: 1, senders: 1, subjectMessages: 1))
        XCTAssertEqual(third.campaigns.entryCount, 2)
    }

    func testCountsAfterTheLastCheckpointAreLost() throws {
        // What a crash costs: the messages since the last checkpoint.
        let directory = try T.temporaryDirectory(self)
        let first = try openLimiter(directory, clock(wall: 0))
        let policy = T.policy([rule], limiter: first)
        try T.send(policy, at: 1)
        try first.checkpoint(now: T.at(2))
        try T.send(policy, at: 3)

        let restored = T.policy([rule], limiter: try openLimiter(directory, clock(wall: 5)))
        XCTAssertNil(try T.send(restored, at: 6).action)
        XCTAssertEqual(try T.send(restored, at: 6).action, .tempfail)
    }

    func testDatabaseUsesWriteAheadLogging() throws {
        let directory = try T.temporaryDirectory(self)
        let limiter = try openLimiter(directory, clock(wall: 0))
        XCTAssertEqual(limiter.storePath, directory + "/limits.sqlite")
        let database = try SQLiteDatabase(path: directory + "/limits.sqlite")
        XCTAssertEqual(try database.singleText("PRAGMA journal_mode"), "wal")
    }

    func testOnlyChangedKeysAreWritten() throws {
        let directory = try T.temporaryDirectory(self)
        let limiter = try openLimiter(directory, clock(wall: 0))
        let policy = T.policy([rule], limiter: limiter)
        try T.send(policy, T.identity(login: "a"), at: 1)
        try T.send(policy, T.identity(login: "b"), at: 1)
        try limiter.checkpoint(now: T.at(2))
        let database = try SQLiteDatabase(path: directory + "/limits.sqlite")
        XCTAssertEqual(try database.singleText("SELECT count(*) FROM counters"), "2")

        // Change the stored row behind the limiter's back: an unchanged key is not rewritten.
        try database.execute("UPDATE counters SET latest = 42 WHERE key = 'login:a'", operation: "test")
        try T.send(policy, T.identity(login: "b"), at: 3)
        try limiter.checkpoint(now: T.at(4))
        XCTAssertEqual(try database.singleText("SELECT latest FROM counters WHERE key = 'login:a'"), "42")
        XCTAssertEqual(try database.singleText("SELECT latest FROM counters WHERE key = 'login:b'"),
                       "\(Int64(T.start.timeIntervalSince1970 + 3) * 1000)")
    }

    // MARK: Suspensions

    func testSuspensionIsDurableBeforeTheVerdictReturns() throws {
        let directory = try T.temporaryDirectory(self)
        let limiter = try openLimiter(directory, clock(wall: 0))
        let hard = LimitRule(name: "accounts", level: .login, messages: [T.window("1/1d hard")])
        let policy = T.policy([hard], limiter: limiter)
        try T.send(policy, at: 1)
        XCTAssertEqual(try T.send(policy, at: 2).action, .hold)

        // No checkpoint: a crash right after the verdict still leaves the suspension.
        let reopened = try openLimiter(directory, clock(wall: 10))
        let expected = Suspension(key: "login:alice", reason: "limit accounts: hard limit 1/1d exceeded (2)", since: T.at(2), rule: "accounts")
        XCTAssertEqual(reopened.suspensions(), [expected])
        let verdict = try T.policy([hard], limiter: reopened).evaluate(T.smtpFacts(login: "alice"), now: T.at(11))
        XCTAssertEqual(verdict.action, .hold)
        XCTAssertEqual(verdict.quarantineReason, "login:alice suspended: limit accounts: hard limit 1/1d exceeded (2)")
    }

    func testSuspensionByTripsSurvivesReopen() throws {
        let directory = try T.temporaryDirectory(self)
        let counted = LimitRule(name: "logins", level: .login, messages: [T.window("1/1h")],
                                suspendAfter: SuspensionThreshold(trips: 3, seconds: 3600))
        let first = try openLimiter(directory, clock(wall: 0))
        let policy = T.policy([counted], limiter: first)
        try T.send(policy, at: 1)
        try T.send(policy, at: 2)
        try T.send(policy, at: 3)
        try first.checkpoint(now: T.at(4))

        // The two trip times were checkpointed; the third trip after the reopen suspends.
        let second = try openLimiter(directory, clock(wall: 5))
        let reopened = T.policy([counted], limiter: second)
        XCTAssertEqual(try T.send(reopened, at: 6).action, .hold)
        XCTAssertEqual(second.suspensions().map(\.key), ["login:alice"])
    }

    func testAdminSuspendAndReleaseAreDurable() throws {
        let directory = try T.temporaryDirectory(self)
        let limiter = try openLimiter(directory, clock(wall: 0))
        try limiter.suspend("login:mallory", reason: "phishing kit found", now: T.at(1))
        try limiter.suspend("ip:198.51.100.9", reason: "open proxy", now: T.at(2))
        XCTAssertEqual(try openLimiter(directory, clock(wall: 3)).suspensions().map(\.key), ["login:mallory", "ip:198.51.100.9"])

        XCTAssertTrue(try limiter.release("login:mallory", now: T.at(4)))
        let reopened = try openLimiter(directory, clock(wall: 5))
        XCTAssertEqual(reopened.suspensions(), [Suspension(key: "ip:198.51.100.9", reason: "open proxy", since: T.at(2))])
    }

    func testAdminUIDOfSuspensionIsStored() throws {
        let directory = try T.temporaryDirectory(self)
        let limiter = try openLimiter(directory, clock(wall: 0))
        try limiter.suspend("login:mallory", reason: "phishing kit found", now: T.at(1), adminUID: 1000)
        let reopened = try openLimiter(directory, clock(wall: 2))
        XCTAssertEqual(reopened.suspensions().first?.adminUID, 1000)
    }

    func testStoreWithoutAdminUIDColumnGainsIt() throws {
        let directory = try T.temporaryDirectory(self)
        let limiter = try openLimiter(directory, clock(wall: 0))
        try limiter.suspend("login:old", reason: "from an older release", now: T.at(1))

        // Rebuild the table as an older release created it, without the column.
        let database = try SQLiteDatabase(path: directory + "/limits.sqlite")
        try database.execute("""
            CREATE TABLE old_suspensions AS SELECT key, reason, since, rule FROM suspensions;
            DROP TABLE suspensions;
            CREATE TABLE suspensions (key TEXT PRIMARY KEY, reason TEXT NOT NULL, since REAL NOT NULL, rule TEXT) WITHOUT ROWID;
            INSERT INTO suspensions SELECT * FROM old_suspensions;
            DROP TABLE old_suspensions;
            """, operation: "downgrade")
        XCTAssertNil(try? database.prepare("SELECT admin_uid FROM suspensions"), "the column is gone")

        let reopened = try openLimiter(directory, clock(wall: 2))
        XCTAssertEqual(reopened.suspensions().map(\.key), ["login:old"])
        XCTAssertNil(reopened.suspensions().first?.adminUID)
        try reopened.suspend("login:new", reason: "by hand", now: T.at(3), adminUID: 0)
        XCTAssertEqual(try openLimiter(directory, clock(wall: 4)).suspension(of: "login:new")?.adminUID, 0)
    }

    // MARK: Clock steps across a restart

    private func fillAndReopen(at reading: ClockReading) throws -> Policy {
        let directory = try T.temporaryDirectory(self)
        let first = try openLimiter(directory, clock(wall: 0))
        let policy = T.policy([rule], limiter: first)
        try T.send(policy, at: 100)
        try T.send(policy, at: 100)
        try first.checkpoint(now: T.at(101))
        return T.policy([rule], limiter: try openLimiter(directory, reading))
    }

    // The two messages at 100 s lie in the 60 s bucket [60 s, 120 s) of the 10-minute window,
    // so on the limiter's timeline they count until 720 s.

    func testWallClockStepBackwardsDoesNotLockOut() throws {
        // Restarted 9 s later on the boot clock, but the wall clock now reads a day earlier:
        // the timeline continues at 110 s, so wall time W is timeline W + 1 d.
        let policy = try fillAndReopen(at: clock(wall: -86_400 + 110, sinceBoot: 110))
        XCTAssertEqual(try T.send(policy, at: -86_400 + 111).action, .tempfail, "the full window still counts")
        XCTAssertEqual(try T.send(policy, at: -86_400 + 719).action, .tempfail)
        XCTAssertNil(try T.send(policy, at: -86_400 + 720).action, "not locked out beyond the window")
    }

    func testWallClockStepForwardsDoesNotDrainTheWindow() throws {
        // Restarted 9 s later on the boot clock, but the wall clock jumped a day ahead.
        let policy = try fillAndReopen(at: clock(wall: 86_400 + 110, sinceBoot: 110))
        XCTAssertEqual(try T.send(policy, at: 86_400 + 111).action, .tempfail, "a day of downtime was not credited")
        XCTAssertEqual(try T.send(policy, at: 86_400 + 719).action, .tempfail)
        XCTAssertNil(try T.send(policy, at: 86_400 + 720).action)
    }

    func testRebootCreditsOnlyTheTimeSinceBoot() throws {
        // Another boot, 30 s ago; the wall clock claims a day passed, which may be a wrong
        // clock. The timeline continues at 101 s + 30 s = 131 s, so wall 1 d is timeline 131 s.
        let policy = try fillAndReopen(at: clock(wall: 86_400, sinceBoot: -1000 + 30, bootID: "another-boot"))
        XCTAssertEqual(try T.send(policy, at: 86_400 + 588).action, .tempfail)
        XCTAssertNil(try T.send(policy, at: 86_400 + 589).action)
    }

    func testUnknownBootTrustsTheWallClockButNotBackwards() throws {
        // Without boot information a backward step credits nothing: wall -500 s is timeline 101 s.
        let back = try fillAndReopen(at: ClockReading(wall: T.at(-500)))
        XCTAssertEqual(try T.send(back, at: -499).action, .tempfail)
        XCTAssertEqual(try T.send(back, at: 118).action, .tempfail)
        XCTAssertNil(try T.send(back, at: 119).action)

        let forward = try fillAndReopen(at: ClockReading(wall: T.at(5000)))
        XCTAssertNil(try T.send(forward, at: 5001).action, "without boot information the wall clock is all there is")
    }

    func testBackwardStepWhileRunningDoesNotFreezeKeys() throws {
        // A caller passing the wall clock, which steps back an hour after two messages.
        let policy = T.policy([rule])
        try T.send(policy, at: 100)
        try T.send(policy, at: 100)
        XCTAssertEqual(try T.send(policy, at: -3500).action, .tempfail, "the step does not reopen the window")
        // The timeline continued at 100 s when the clock read -3500 s, so the messages leave
        // the window (at 720 s on the timeline) at -3500 s + 620 s.
        XCTAssertEqual(try T.send(policy, at: -3500 + 619).action, .tempfail)
        XCTAssertNil(try T.send(policy, at: -3500 + 620).action, "not frozen for the hour of the step")
    }

    func testSmallBackwardJitterIsNotAStep() throws {
        let policy = T.policy([rule])
        try T.send(policy, at: 100)
        try T.send(policy, at: 99)
        // Both count in the bucket of 100 s, so the window frees at 720 s, not 1 s earlier.
        XCTAssertEqual(try T.send(policy, at: 719).action, .tempfail)
        XCTAssertNil(try T.send(policy, at: 720).action)
    }

    // MARK: Idle keys

    func testIdleKeysExpireAndLeaveTheStore() throws {
        let directory = try T.temporaryDirectory(self)
        let short = LimitRule(name: "logins", level: .login, messages: [T.window("5/10s")])
        let limiter = try openLimiter(directory, clock(wall: 0))
        let policy = T.policy([short], limiter: limiter)
        for login in ["a", "b", "c"] {
            try T.send(policy, T.identity(login: login), at: 1)
        }
        try limiter.suspend("login:b", reason: "manual", now: T.at(1))
        try limiter.checkpoint(now: T.at(5))
        XCTAssertEqual(limiter.trackedKeyCount, 3)

        try T.send(policy, T.identity(login: "c"), at: 60)
        try limiter.checkpoint(now: T.at(70))
        XCTAssertEqual(limiter.trackedKeyCount, 1, "a and b drained; c sent again at 60 s")
        XCTAssertEqual(limiter.suspensions().map(\.key), ["login:b"], "a suspension does not expire")

        let database = try SQLiteDatabase(path: directory + "/limits.sqlite")
        XCTAssertEqual(try database.singleText("SELECT group_concat(key) FROM counters"), "login:c")
        XCTAssertEqual(try openLimiter(directory, clock(wall: 71)).trackedKeyCount, 1)
    }

    // MARK: Failures

    func testMissingStateDirectoryFailsWithSQLiteMessage() {
        let directory = NSTemporaryDirectory() + "egress-missing-\(UUID().uuidString)"
        XCTAssertThrowsError(try openLimiter(directory, clock(wall: 0))) { error in
            guard let storeError = error as? StateStoreError else {
                return XCTFail("expected StateStoreError, got \(error)")
            }
            XCTAssertEqual(storeError.operation, "open")
            XCTAssertEqual(storeError.path, directory + "/limits.sqlite")
            XCTAssertEqual(storeError.message, "unable to open database file")
        }
    }

    func testLockedStoreFailsWithoutLosingState() throws {
        let directory = try T.temporaryDirectory(self)
        let limiter = try RateLimiter(stateDirectory: directory, clock: clock(wall: 0), busyTimeoutMilliseconds: 50)
        let hard = LimitRule(name: "accounts", level: .login, messages: [T.window("1/1d hard")])
        var configuration = T.configuration([hard])
        configuration.failAction = .tempfail
        let policy = Policy(configuration: configuration, limiter: limiter, overrides: .empty)
        try T.send(policy, at: 1)

        // Another connection holds the write lock, as a stuck admin tool could.
        let blocker = try SQLiteDatabase(path: directory + "/limits.sqlite")
        try blocker.execute("BEGIN EXCLUSIVE", operation: "test")

        XCTAssertThrowsError(try limiter.checkpoint(now: T.at(2))) { error in
            XCTAssertEqual((error as? StateStoreError)?.code, 5, "SQLITE_BUSY")
        }
        XCTAssertThrowsError(try policy.evaluate(T.smtpFacts(), now: T.at(3))) { error in
            XCTAssertTrue(error is StateStoreError, "\(error)")
        }
        let verdict = policy.decide(T.smtpFacts(), now: T.at(4))
        XCTAssertEqual(verdict.action, .hold, "the suspension is in force in memory")
        XCTAssertEqual(limiter.suspensions().map(\.key), ["login:alice"])

        // Once the lock is gone the next checkpoint writes what failed before.
        try blocker.execute("ROLLBACK", operation: "test")
        try limiter.checkpoint(now: T.at(5))
        let reopened = try openLimiter(directory, clock(wall: 6))
        XCTAssertEqual(reopened.suspensions().map(\.key), ["login:alice"])
        XCTAssertEqual(reopened.trackedKeyCount, 1)
    }

    func testStoreFailureGivesTheFailActionVerdict() throws {
        let directory = try T.temporaryDirectory(self)
        let limiter = try RateLimiter(stateDirectory: directory, clock: clock(wall: 0), busyTimeoutMilliseconds: 50)
        let hard = LimitRule(name: "accounts", level: .login, messages: [T.window("1/1d hard")])
        var configuration = T.configuration([hard])
        configuration.failAction = .reject
        let policy = Policy(configuration: configuration, limiter: limiter, overrides: .empty)
        try T.send(policy, at: 1)
        let blocker = try SQLiteDatabase(path: directory + "/limits.sqlite")
        try blocker.execute("BEGIN EXCLUSIVE", operation: "test")
        defer { try? blocker.execute("ROLLBACK", operation: "test") }

        let verdict = policy.decide(T.smtpFacts(), now: T.at(2))
        XCTAssertEqual(verdict.action, .reject)
        XCTAssertTrue(verdict.reason.hasPrefix("state store failed: \(directory)/limits.sqlite: write a suspension failed: database is locked"), verdict.reason)
        XCTAssertNil(verdict.reservation)
    }
}
