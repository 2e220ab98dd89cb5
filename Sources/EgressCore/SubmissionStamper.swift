// The stamping step of the submission wrapper, kept in the core so it can be tested without
// running the wrapper: given the message bytes, the submitting process's facts and the key,
// it returns the bytes to hand to the real sendmail.
//
// It must never lose or refuse a message: without a key it still removes smuggled stamp
// headers and returns the message unstamped, and the daemon then counts it as
// local-unverified. It never reads files, the clock or the environment; the wrapper passes in
// what it found.

import Foundation

/// Facts about the process that submitted a message, as the wrapper found them.
public struct Submitter: Sendable, Equatable {
    /// Real uid of the process (not the effective one, which the setgid bit leaves alone anyway).
    public var uid: UInt32
    /// Name of `uid` in the passwd database; empty when there is none.
    public var account: String
    /// Working directory; empty when it could not be read. PHP's web SAPIs change into the
    /// directory of the requested script before running it.
    public var workingDirectory: String
    /// The `SCRIPT_FILENAME` environment variable; nil when unset or empty. CGI and suEXEC
    /// set it; PHP-FPM and mod_php keep it in `$_SERVER` only, so there it is nil.
    public var scriptFilename: String?
    /// The `-f` or `-r` argument; empty when the command line had none.
    public var envelopeSender: String
    /// Host name for a Message-ID that the wrapper has to add.
    public var hostname: String

    public init(uid: UInt32, account: String, workingDirectory: String, scriptFilename: String?,
                envelopeSender: String, hostname: String) {
        self.uid = uid
        self.account = account
        self.workingDirectory = workingDirectory
        self.scriptFilename = scriptFilename
        self.envelopeSender = envelopeSender
        self.hostname = hostname
    }
}

/// The outcome of stamping one message.
public struct StampingResult: Sendable, Equatable {
    /// The message to pass to the real sendmail.
    public var message: [UInt8]
    /// Stamp headers found in the input and removed.
    public var removedStampCount: Int
    /// The stamp added; nil when there was no key.
    public var stamp: SubmissionStamp?
    /// Whether a Message-ID header was added because the message had none.
    public var addedMessageID: Bool
}

public enum SubmissionStamper {
    /// Name of PHP's header that names the mailing script.
    public static let phpScriptHeader = "X-PHP-Originating-Script"

    /// Removes every `headerName` field from `message` and, when `key` is set, adds a
    /// Message-ID if missing and one stamp signed with `key`.
    public static func stamp(_ message: [UInt8], headerName: String, key: StampKey?, submitter: Submitter,
                             timestamp: Int64, nonce: [UInt8]) -> StampingResult {
        var raw = RawMessage(message)
        let removed = raw.removeFields(named: headerName)
        guard let key else {
            return StampingResult(message: raw.bytes, removedStampCount: removed, stamp: nil, addedMessageID: false)
        }

        // Sign the Message-ID so that a stamp copied into another message fails. A message
        // without one gets one now instead of from the MTA.
        var addedMessageID = false
        let messageID: String
        if let existing = raw.values(named: "Message-ID").first {
            messageID = normalizedMessageID(existing)
        } else {
            messageID = normalizedMessageID(Array("<\(timestamp).\(StampEncoding.hex(nonce)).egress@\(submitter.hostname.isEmpty ? "localhost" : submitter.hostname)>".utf8))
            raw.insertFieldAtTop(name: "Message-ID", value: messageID)
            addedMessageID = true
        }

        let (script, source) = script(for: submitter, phpHeaders: raw.values(named: phpScriptHeader))
        var stamp = SubmissionStamp(
            uid: submitter.uid,
            account: truncated(submitter.account),
            workingDirectory: truncated(submitter.workingDirectory),
            script: truncated(script),
            scriptSource: source,
            timestamp: timestamp,
            nonce: nonce,
            messageID: messageID,
            envelopeSender: truncated(submitter.envelopeSender))
        stamp.sign(with: key)
        raw.insertFieldAtTop(name: headerName, value: stamp.headerValue(nameLength: headerName.utf8.count, lineEnding: raw.lineEnding))
        return StampingResult(message: raw.bytes, removedStampCount: removed, stamp: stamp, addedMessageID: addedMessageID)
    }

    /// Returns the script path and where it came from: `SCRIPT_FILENAME` when set (relative
    /// paths joined to the working directory), else the file of the first
    /// `X-PHP-Originating-Script` header whose uid is the submitter's, joined to the working
    /// directory. PHP writes only the base name of the file that called mail(). That file is
    /// often the requested script. A mailer library included from elsewhere gives its own
    /// name, though, and the join then names a file that need not exist. Either way the
    /// path is stable for one script, which is what limits need.
    static func script(for submitter: Submitter, phpHeaders: [[UInt8]]) -> (String, ScriptSource) {
        if let filename = submitter.scriptFilename, !filename.isEmpty {
            return (joined(submitter.workingDirectory, filename), .environment)
        }
        for value in phpHeaders {
            if let header = PHPOriginatingScript(value), header.uid == submitter.uid {
                return (joined(submitter.workingDirectory, header.file), .phpHeader)
            }
        }
        return ("", .none)
    }

    /// Returns a Message-ID value as the stamp records it: without whitespace (folding),
    /// decoded as UTF-8 and cut to the field limit. The daemon applies the same function to
    /// the header it receives, so both sides compare equal strings.
    public static func normalizedMessageID(_ value: [UInt8]) -> String {
        let compact = value.filter { ![0x20, 0x09, 0x0D, 0x0A].contains($0) }
        return truncated(String(decoding: compact, as: UTF8.self))
    }

    static func joined(_ directory: String, _ path: String) -> String {
        if path.hasPrefix("/") || directory.isEmpty {
            return path
        }
        return directory.hasSuffix("/") ? directory + path : directory + "/" + path
    }

    /// Cuts `text` to `SubmissionStamp.maximumFieldBytes` bytes of UTF-8 at a scalar boundary.
    static func truncated(_ text: String) -> String {
        guard text.utf8.count > SubmissionStamp.maximumFieldBytes else { return text }
        var result = String.UnicodeScalarView()
        var byteCount = 0
        for scalar in text.unicodeScalars {
            let size = String(scalar).utf8.count
            guard byteCount + size <= SubmissionStamp.maximumFieldBytes else { break }
            result.append(scalar)
            byteCount += size
        }
        return String(result)
    }
}

/// PHP's `X-PHP-Originating-Script: UID:FILE` header (php.ini `mail.add_x_header`). UID is the
/// owner of the main script (PHP's getmyuid()), FILE the base name of the file that called
/// mail(). Any program can write this header, so it is a claim, never proof.
public struct PHPOriginatingScript: Sendable, Equatable {
    public var uid: UInt32
    public var file: String

    /// Parses "1001:x.php"; nil when the value does not have that form.
    public init?(_ value: [UInt8]) {
        guard let colon = value.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let uidText = String(decoding: value[..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        let file = String(decoding: value[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        guard let uid = UInt32(uidText), uidText.allSatisfy(\.isASCII), !file.isEmpty else { return nil }
        self.uid = uid
        self.file = file
    }
}
