// Counts of admin notifications since the daemon started, for `egressctl status`: notices
// and summaries sent, failed and dropped, and the last failure. Counted in memory by
// the notifier, so a restart starts at zero. Plain data: it never reads the clock or files.

import Foundation

public struct NotificationHealth: Codable, Sendable, Equatable {
    /// Mails and command runs that succeeded (sendmail or the command exited 0).
    public var sent = 0
    /// Mails and command runs that failed: non-zero exit, timeout, or a program that could
    /// not be run.
    public var failed = 0
    /// Notices dropped because the notifier's queue was full.
    public var dropped = 0
    public var lastFailureAt: Date?
    /// The last failure's error line, as logged.
    public var lastFailure: String?

    public init() {}

    /// Characters of an error kept in `lastFailure`.
    public static let maximumFailureCharacters = 500
}
