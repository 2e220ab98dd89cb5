// The time the daemon gives the rate limiter: the wall clock at start-up plus the time elapsed
// on the monotonic clock since then. A step of the system clock while the daemon runs (NTP, an
// admin's `date -s`) therefore neither empties the windows early nor locks a sender out.
// Submission stamps are dated with the real wall clock instead, because the wrapper writes
// them with it.
import Foundation
import Glibc

struct DaemonClock: Sendable {
    private let wallAtStart: Date
    private let start: ContinuousClock.Instant

    init() {
        wallAtStart = Date()
        start = .now
    }

    /// Returns the steady time: the start-up wall clock plus the monotonic time elapsed.
    func now() -> Date {
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return wallAtStart.addingTimeInterval(seconds)
    }

    /// Returns what the limiter needs to check its stored stamps after a restart: the wall
    /// clock, the kernel's boot ID and the time since boot (CLOCK_BOOTTIME, which counts
    /// suspend too).
    static func restartReading() -> ClockReadingValues {
        let bootID = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var time = timespec()
        var sinceBoot: Duration?
        if clock_gettime(CLOCK_BOOTTIME, &time) == 0 {
            sinceBoot = .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
        }
        return ClockReadingValues(wall: Date(), bootID: bootID?.isEmpty == false ? bootID : nil, sinceBoot: sinceBoot)
    }
}

/// The values of the core's ClockReading, read from the system.
struct ClockReadingValues {
    var wall: Date
    var bootID: String?
    var sinceBoot: Duration?
}
