// The protocol stages and modification actions a milter negotiates with the MTA, and their
// libmilter bit values. This file only maps names to numbers; it must never call libmilter.
import CMilter

/// A step of the SMTP conversation that the MTA reports to the milter.
public enum ProtocolStage: String, Sendable, CaseIterable, Hashable {
    case connect, helo, envelopeFrom, envelopeRecipient, data, header, endOfHeaders, body, endOfMessage, unknown
}

/// Modifications the milter may make to a message, requested from the MTA at negotiation.
/// Each maps to one SMFIF_* flag of libmilter.
public struct MilterActions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt

    public init(rawValue: UInt) {
        self.rawValue = rawValue
    }

    public static let addHeaders = MilterActions(rawValue: UInt(SMFIF_ADDHDRS))
    public static let changeHeaders = MilterActions(rawValue: UInt(SMFIF_CHGHDRS))
    public static let quarantine = MilterActions(rawValue: UInt(SMFIF_QUARANTINE))
    public static let changeBody = MilterActions(rawValue: UInt(SMFIF_CHGBODY))
    public static let addRecipients = MilterActions(rawValue: UInt(SMFIF_ADDRCPT))
    public static let deleteRecipients = MilterActions(rawValue: UInt(SMFIF_DELRCPT))
    public static let changeFrom = MilterActions(rawValue: UInt(SMFIF_CHGFROM))
    /// Lets the milter choose which macros the MTA sends at each stage (smfi_setsymlist).
    public static let setMacroList = MilterActions(rawValue: UInt(SMFIF_SETSYMLIST))
}

extension ProtocolStage {
    /// The SMFIP_NO* bit that asks the MTA not to send this stage at all, or nil for
    /// end of message, which the MTA always sends.
    var skipProtocolBit: UInt? {
        switch self {
        case .connect: UInt(SMFIP_NOCONNECT)
        case .helo: UInt(SMFIP_NOHELO)
        case .envelopeFrom: UInt(SMFIP_NOMAIL)
        case .envelopeRecipient: UInt(SMFIP_NORCPT)
        case .data: UInt(SMFIP_NODATA)
        case .header: UInt(SMFIP_NOHDRS)
        case .endOfHeaders: UInt(SMFIP_NOEOH)
        case .body: UInt(SMFIP_NOBODY)
        case .unknown: UInt(SMFIP_NOUNKNOWN)
        case .endOfMessage: nil
        }
    }

    /// The SMFIP_NR_* bit that tells the MTA not to wait for a reply to this stage, or nil
    /// for end of message, which always gets one.
    var noReplyProtocolBit: UInt? {
        switch self {
        case .connect: UInt(SMFIP_NR_CONN)
        case .helo: UInt(SMFIP_NR_HELO)
        case .envelopeFrom: UInt(SMFIP_NR_MAIL)
        case .envelopeRecipient: UInt(SMFIP_NR_RCPT)
        case .data: UInt(SMFIP_NR_DATA)
        case .header: UInt(SMFIP_NR_HDR)
        case .endOfHeaders: UInt(SMFIP_NR_EOH)
        case .body: UInt(SMFIP_NR_BODY)
        case .unknown: UInt(SMFIP_NR_UNKN)
        case .endOfMessage: nil
        }
    }

    /// Whether the stage belongs to the connection rather than to one message: connect and
    /// helo come before MAIL FROM, and an abort of a message does not undo them.
    var isConnectionStage: Bool {
        self == .connect || self == .helo
    }

    /// The SMFIM_* index that smfi_setsymlist takes, or nil for stages whose macro list
    /// cannot be chosen (header, body, unknown).
    var macroListIndex: Int32? {
        switch self {
        case .connect: SMFIM_CONNECT
        case .helo: SMFIM_HELO
        case .envelopeFrom: SMFIM_ENVFROM
        case .envelopeRecipient: SMFIM_ENVRCPT
        case .data: SMFIM_DATA
        case .endOfHeaders: SMFIM_EOH
        case .endOfMessage: SMFIM_EOM
        case .header, .body, .unknown: nil
        }
    }
}
