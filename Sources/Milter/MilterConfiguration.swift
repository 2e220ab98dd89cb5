// Settings of a MilterServer, with their defaults in one place. This is plain data; checking
// it against libmilter's rules happens in MilterServer.open().

/// The settings a MilterServer uses to register with libmilter, listen and negotiate.
public struct MilterConfiguration: Sendable {
    /// The name libmilter registers and logs.
    public var name: String
    /// The listening address in libmilter syntax: "unix:/path" (also "local:/path"),
    /// "inet:PORT@HOST", "inet6:PORT@HOST", or "fd:N" for a socket that is already listening.
    /// For inet and inet6 the server creates the socket itself with TCP_NODELAY.
    public var listen: String
    /// Modifications to request from the MTA; those the MTA does not offer are dropped with
    /// a warning, and the matching EndOfMessage calls then throw.
    public var actions: MilterActions
    /// Stages the session handles. The MTA is asked not to send the others, and libmilter
    /// replies `continue` itself if it sends them anyway.
    public var stages: Set<ProtocolStage>
    /// Stages whose session methods always return `.continue`, so the MTA need not wait for
    /// a reply (protocol version 6, SMFIP_NR_* bits). Each must also be in `stages`;
    /// `endOfMessage` cannot be one, because the MTA always waits for its reply.
    ///
    /// The contract for a session method of such a stage:
    /// - It returns `.continue`. A `.skip` from `body` counts as `.continue`.
    /// - When it throws or returns any other reply, the server cannot reply at that stage.
    ///   It logs the failure at error level with the stage, once until the failure reply is
    ///   sent. From then on every stage that replies gets `failureReply`, without a call to
    ///   the session, up to and including the next end of message. There the server calls
    ///   the session's `abort(macros:)` instead of `endOfMessage`, so the session resets the
    ///   message and counts nothing. The session still receives the no-reply stages in between.
    /// - An abort from the MTA clears a failure at MAIL FROM or later. A failure at connect
    ///   or helo belongs to the connection, so it is kept through an abort.
    ///
    /// libmilter offers every SMFIP_NR_* bit at negotiation, including those the MTA lacks,
    /// and sends "continue" itself to an MTA without them. So the contract above holds for
    /// both kinds of MTA. Empty by default: every stage gets a reply.
    public var noReplyStages: Set<ProtocolStage>
    /// Macros to request per stage with smfi_setsymlist, by name as in "{auth_authen}" or "i".
    /// Only connect, helo, envelopeFrom, envelopeRecipient, data, endOfHeaders and
    /// endOfMessage can have a list. A stage without an entry keeps the MTA's own list.
    public var macros: [ProtocolStage: [String]]
    /// Seconds libmilter waits for the MTA to send or read (smfi_settimeout).
    public var timeoutSeconds: Int
    /// Pending connections the listening socket queues (smfi_setbacklog, listen(2)).
    public var backlog: Int32
    /// Whether open() removes a unix socket file left behind by an earlier run.
    public var removeStaleSocket: Bool
    /// Permission bits for a unix socket, for example 0o660, set after it is created.
    public var socketMode: UInt32?
    /// Group id for a unix socket, set after it is created (the MTA's group).
    public var socketGroup: UInt32?
    /// The reply sent when a session method throws or a custom reply is invalid, and at the
    /// next stage that replies after a no-reply stage failed (see `noReplyStages`).
    public var failureReply: Reply
    /// libmilter's debug level (smfi_setdbg); 0 is off.
    public var debugLevel: Int32

    public init(name: String, listen: String) {
        self.name = name
        self.listen = listen
        actions = []
        stages = Set(ProtocolStage.allCases)
        noReplyStages = []
        macros = [:]
        timeoutSeconds = 300
        backlog = 128
        removeStaleSocket = true
        socketMode = nil
        socketGroup = nil
        failureReply = .tempfail
        debugLevel = 0
    }
}
