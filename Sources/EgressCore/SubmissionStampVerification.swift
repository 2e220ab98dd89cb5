// Verification of the submission wrapper's stamp on a locally submitted message: one stamp
// header, readable, with a MAC that matches under the key, dated within the allowed age, and
// naming this message's Message-ID.
//
// It must never accept a stamp on partial evidence: any failed check makes the message
// local-unverified. The MAC is checked before the age and the Message-ID. So "expired" is
// reported only for a stamp that was genuine once (a replay), and an altered field shows up
// as a wrong MAC.

import Foundation

/// The reason a stamp did not verify.
public enum StampProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The daemon has no stamp key, so no stamp can verify. A setup problem, not a forgery.
    case missingKey
    /// More than one stamp header; the wrapper writes exactly one and removes the others.
    case duplicated(count: Int)
    /// The header does not have the stamp's layout.
    case malformed(SubmissionStampError)
    /// The MAC does not match: a field was changed, or another key signed it.
    case wrongMAC
    /// Genuine but older than `identity.stamp_max_age`: copied from an earlier message.
    case expired(ageSeconds: Int64)
    /// Dated further in the future than the allowed clock skew.
    case dated(secondsAhead: Int64)
    /// Genuine but made for a message with another Message-ID.
    case messageIDChanged

    /// Whether the problem suggests a forged or replayed stamp (symbol `STAMP_FORGED`).
    public var isForgerySignal: Bool {
        self != .missingKey
    }

    public var description: String {
        switch self {
        case .missingKey: "no stamp key loaded"
        case .duplicated(let count): "\(count) stamp headers"
        case .malformed(let error): "malformed stamp: \(error.message)"
        case .wrongMAC: "stamp MAC does not match"
        case .expired(let age): "stamp is \(age) seconds old"
        case .dated(let ahead): "stamp is dated \(ahead) seconds in the future"
        case .messageIDChanged: "stamp names another Message-ID"
        }
    }
}

/// Checks the stamp header of a message under one key and age limit.
public struct SubmissionStampVerifier: Sendable {
    public let headerName: String
    public let key: StampKey?
    public let maximumAgeSeconds: Int

    public init(headerName: String, key: StampKey?, maximumAgeSeconds: Int) {
        self.headerName = headerName
        self.key = key
        self.maximumAgeSeconds = maximumAgeSeconds
    }

    public init(settings: IdentitySettings) {
        self.init(headerName: settings.stampHeader, key: settings.stampKey,
                  maximumAgeSeconds: settings.stampMaximumAgeSeconds)
    }

    /// Returns nil when the message has no stamp header, else the verified stamp or the
    /// reason it failed.
    public func verify(_ headers: [Header], now: Date) -> Result<SubmissionStamp, StampProblem>? {
        let stamps = headers.filter { $0.name.lowercased() == headerName.lowercased() }
        guard let value = stamps.first?.value else { return nil }
        guard stamps.count == 1 else { return .failure(.duplicated(count: stamps.count)) }
        guard let key else { return .failure(.missingKey) }

        let stamp: SubmissionStamp
        do {
            stamp = try SubmissionStamp(parsing: value)
        } catch {
            return .failure(.malformed(error))
        }
        guard stamp.hasValidMAC(for: key) else { return .failure(.wrongMAC) }

        let nowSeconds = Int64(now.timeIntervalSince1970.rounded(.down))
        let age = nowSeconds - stamp.timestamp
        if age > Int64(maximumAgeSeconds) {
            return .failure(.expired(ageSeconds: age))
        }
        if -age > Int64(IdentitySettings.allowedClockSkewSeconds) {
            return .failure(.dated(secondsAhead: -age))
        }

        // The wrapper always signs a Message-ID, adding one when the message had none.
        let messageID = headers.first { $0.name.lowercased() == "message-id" }
            .map { SubmissionStamper.normalizedMessageID($0.value) }
        guard messageID == stamp.messageID else { return .failure(.messageIDChanged) }
        return .success(stamp)
    }
}
