// Time for the rate limiter across restarts. The core reads no clock: the daemon passes a
// `ClockReading` when it opens the limiter and a steady time with every call, and this file
// decides how much of the downtime between the last checkpoint and the restart the counters
// may drain by.
//
// The rule it must keep: a wall clock that stepped backwards never locks a sender out for
// longer than its windows, and one that stepped forwards never drains more than the downtime
// that provably passed.
//
// What the daemon passes while running: `wall at start + (ContinuousClock now - at start)`,
// a wall-anchored time that cannot step, because ContinuousClock is monotonic (CLOCK_BOOTTIME
// on Linux). If a caller passes the wall clock anyway, a backward step of more than 2 s shifts
// the limiter's timeline so it continues from the newest time seen (no key is frozen), but a
// forward step drains the windows by the step, which only a steady time prevents.

import Foundation

/// The clocks at the moment the limiter opens its state.
public struct ClockReading: Sendable, Equatable {
    /// The wall clock.
    public var wall: Date
    /// The kernel's boot ID (/proc/sys/kernel/random/boot_id on Linux); nil when unknown.
    public var bootID: String?
    /// Time since boot on a clock that counts suspend too (CLOCK_BOOTTIME, which is what
    /// ContinuousClock reads on Linux); nil when unknown.
    public var sinceBoot: Duration?

    public init(wall: Date, bootID: String? = nil, sinceBoot: Duration? = nil) {
        self.wall = wall
        self.bootID = bootID
        self.sinceBoot = sinceBoot
    }
}

/// The clocks as of the last checkpoint, on the limiter's timeline.
struct CheckpointClock: Sendable, Equatable {
    /// The limiter's own time of the checkpoint, in milliseconds.
    var timeline: Int64
    /// The wall clock of the checkpoint, in milliseconds since 1970.
    var wall: Int64
    var bootID: String?
    /// Time since boot at the checkpoint, in milliseconds.
    var sinceBoot: Int64?
}

enum RestartClock {
    /// Returns how many milliseconds of downtime the counters may drain by after a restart:
    /// - same boot (boot IDs equal, both times since boot known): the time-since-boot
    ///   difference, which no wall clock step changes;
    /// - another boot with a known time since boot: the time since this boot, because the
    ///   checkpoint was written before this boot began. The true downtime may be longer, so
    ///   counts may linger up to that much longer than needed; they never drain early;
    /// - nothing known about boots: the wall clock difference, or 0 if it went backwards.
    ///   Only here can a forward step of the wall clock drain counters early.
    static func creditedDowntime(since saved: CheckpointClock, now: ClockReading) -> Int64 {
        let nowSinceBoot = now.sinceBoot.map(milliseconds)
        if let savedBoot = saved.bootID, let nowBoot = now.bootID, let nowSinceBoot {
            if savedBoot == nowBoot, let savedSinceBoot = saved.sinceBoot {
                return max(0, nowSinceBoot - savedSinceBoot)
            }
            if savedBoot != nowBoot {
                return max(0, nowSinceBoot)
            }
        }
        return max(0, milliseconds(now.wall) - saved.wall)
    }

    static func milliseconds(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1000).rounded(.down)
        guard value.isFinite else { return 0 }
        return Int64(max(min(value, 9e15), -9e15))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds &* 1000 &+ attoseconds / 1_000_000_000_000_000
    }
}
