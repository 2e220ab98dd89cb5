// The milter's request to the MTA in xxfi_negotiate, computed as plain numbers so that it
// can be tested without libmilter. It must never ask for an action or protocol step the MTA
// did not offer, because libmilter then aborts the session.
import CMilter

/// The milter's reply to the MTA's offer of actions and protocol steps.
struct Negotiation: Equatable {
    /// SMFIF_* bits to request (*pf0).
    var actions: UInt
    /// SMFIP_* bits to request (*pf1).
    var steps: UInt
    /// Requested actions the MTA did not offer; the milter runs without them.
    var missingActions: MilterActions
    /// Whether the per-stage macro lists can be sent with smfi_setsymlist.
    var canSetMacroLists: Bool

    /// Computes the request.
    /// - Parameters:
    ///   - wantedActions: the actions the session needs (registration flags).
    ///   - stages: the stages the session wants; the MTA is asked to skip the others.
    ///   - offeredActions: f0, the actions the MTA offers.
    ///   - offeredSteps: f1, the protocol steps the MTA offers.
    ///   - proposedSteps: *pf1 as libmilter filled it in before the callback. It already
    ///     contains "do not send" bits for callbacks left NULL, so it is extended, never replaced.
    init(wantedActions: MilterActions, stages: Set<ProtocolStage>,
         offeredActions: UInt, offeredSteps: UInt, proposedSteps: UInt) {
        actions = wantedActions.rawValue & offeredActions
        missingActions = MilterActions(rawValue: wantedActions.rawValue & ~offeredActions)
        canSetMacroLists = actions & UInt(SMFIF_SETSYMLIST) != 0

        var steps = proposedSteps
        for stage in ProtocolStage.allCases where !stages.contains(stage) {
            if let bit = stage.skipProtocolBit {
                steps |= bit
            }
        }
        // Without SMFIP_SKIP the MTA does not understand a "skip" reply to a body chunk.
        if stages.contains(.body) {
            steps |= UInt(SMFIP_SKIP)
        }
        // libmilter proposes "do not send" bits even for steps an older MTA does not offer,
        // and then rejects its own proposal, so everything is limited to the offer.
        self.steps = steps & offeredSteps
    }
}

/// The outcome of negotiation that the callbacks of one connection need later.
struct NegotiatedOptions: Equatable {
    /// Actions granted to the milter; EndOfMessage checks them before calling libmilter.
    var actions: MilterActions
    /// Protocol steps requested, limited to the MTA's offer.
    var steps: UInt

    /// Whether the MTA understands a "skip" reply to a body chunk (SMFIP_SKIP).
    var allowsSkip: Bool {
        steps & UInt(SMFIP_SKIP) != 0
    }
}
