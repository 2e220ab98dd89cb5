// The limits of the content scanner, with their units and defaults, all in one place.
//
// Every limit bounds the work or the memory spent on one message, so a hostile message costs
// at most a fixed amount however it is built. When the scanner stops at a limit it records
// that in `ScanResult.anomalies`, and scoring turns that into a symbol; it must never stop
// silently or fail the message because of a limit.

/// Limits of the content scanner for one message.
public struct ScanLimits: Sendable, Equatable {
    /// Body bytes decoded per message (the `scoring.scan_limit` setting). The bytes past it
    /// are counted but not decoded, and the message is scored on what was read.
    public var scanLimitBytes = 1_048_576

    /// Deepest nesting of multipart and message/rfc822 entities that is decoded (the
    /// `scoring.max_nesting` setting). The message itself is depth 0; an entity at the cap
    /// is kept as an opaque part.
    public var maximumNestingDepth = 16

    /// Most MIME entities (the message and each part) decoded per message; later parts are
    /// skipped.
    public var maximumParts = 512

    /// Bytes of top-level header fields kept, names and values together; the fields past it
    /// are not decoded.
    public var maximumHeaderBytes = 256 * 1024

    /// Bytes of header fields kept per MIME part.
    public var maximumPartHeaderBytes = 16 * 1024

    /// Longest line, in bytes, that boundary detection and quoted-printable decoding see
    /// whole. Longer lines are handled in pieces of this size, and no boundary is looked for
    /// inside them, because a boundary line is at most 76 bytes.
    public var maximumLineBytes = 16 * 1024

    /// Bytes of decoded UTF-8 text kept per message, plain text and the visible text of HTML
    /// counted together.
    public var maximumTextBytes = 1_048_576

    /// Most links kept per message, from HTML and plain text together.
    public var maximumLinks = 1000

    /// Most attachments recorded per message.
    public var maximumAttachments = 256

    /// Leading bytes of each attachment kept for type sniffing and for listing the entries
    /// of an archive; the rest is counted only.
    public var attachmentInspectBytes = 64 * 1024

    /// Most entry names listed per archive attachment.
    public var maximumArchiveEntries = 256

    /// The built-in defaults.
    public init() {}

    public static let defaults = ScanLimits()
}
