// Tests that a limit of N admits exactly N when many threads race for the last slots, with
// reservations pending, committed and released concurrently.

import Foundation
import Synchronization
import XCTest
@testable import EgressCore

final class RateLimitConcurrencyTests: XCTestCase {
    private typealias T = LimitTesting

    private static let threadCount = 64

    /// Runs `body(threadIndex)` on `threadCount` real threads that all start together, and
    /// waits for every one of them.
    private func race(_ body: @escaping @Sendable (Int) -> Void) {
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for index in 0..<Self.threadCount {
            done.enter()
            let thread = Thread {
                ready.signal()
                go.wait()
                body(index)
                done.leave()
            }
            thread.start()
        }
        for _ in 0..<Self.threadCount {
            ready.wait()
        }
        for _ in 0..<Self.threadCount {
            go.signal()
        }
        done.wait()
    }

    func testSixtyFourThreadsAdmitExactlyTheLimit() throws {
        let limit = 50
        let rules = [
            LimitRule(name: "logins", level: .login, messages: [RateWindow(limit: limit, seconds: 3600)]),
            LimitRule(name: "servers", level: .server, messages: [RateWindow(limit: 1_000_000, seconds: 3600)]),
        ]
        let policy = T.policy(rules)
        let granted = Mutex<[LimitReservation]>([])
        let failures = Mutex(0)

        // Each thread tries five times: 320 attempts race for 50 slots, all pending at once.
        race { index in
            for attempt in 0..<5 {
                do {
                    let decision = try policy.decideLimits(for: T.identity(), path: .smtp, recipientCount: 1,
                                                           now: T.at(Double(index * 5 + attempt) / 1000))
                    if let reservation = decision.reservation {
                        granted.withLock { $0.append(reservation) }
                    }
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, 0)
        let reservations = granted.withLock { $0 }
        XCTAssertEqual(reservations.count, limit)
        XCTAssertEqual(Set(reservations).count, limit)

        // Half the threads commit, the other half release, at the same time as new attempts.
        let released = Mutex(0)
        let regranted = Mutex<[LimitReservation]>([])
        race { index in
            let mine = reservations.indices.filter { $0 % Self.threadCount == index }.map { reservations[$0] }
            for (position, reservation) in mine.enumerated() {
                if (index + position) % 2 == 0 {
                    policy.limiter.commit(reservation)
                } else {
                    policy.limiter.release(reservation)
                    released.withLock { $0 += 1 }
                }
            }
        }
        race { index in
            for attempt in 0..<3 {
                if let decision = try? policy.decideLimits(for: T.identity(), path: .smtp, recipientCount: 1,
                                                          now: T.at(1 + Double(index * 3 + attempt) / 1000)),
                   let reservation = decision.reservation {
                    regranted.withLock { $0.append(reservation) }
                }
            }
        }
        XCTAssertEqual(regranted.withLock { $0.count }, released.withLock { $0 },
                       "exactly the released slots were taken again")
        let after = try policy.decideLimits(for: T.identity(), path: .smtp, recipientCount: 1, now: T.at(2))
        XCTAssertEqual(after.action, .tempfail)
    }
}
