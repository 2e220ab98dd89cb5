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
    ///   - noReplyStages: stages whose replies the MTA is told not to wait for. Only those
    ///     that are also in `stages` count. For a stage without callback libmilter returns
    ///     "continue", which at a no-reply stage it logs as an error on every packet.
    ///   - offeredActions: f0, the actions the MTA offers.
    ///   - offeredSteps: f1, the protocol steps the MTA offers. libmilter (st_optionneg in
    ///     engine.c, 8.17) adds every SMFIP_NR_* bit to the MTA's real offer, because it
    ///     can send "continue" itself to an MTA that lacks one. It leaves those bits out of
    ///     the reply it sends to the MTA.
    ///   - proposedSteps: *pf1 as libmilter filled it in before the callback. It already
    ///     contains "do not send" bits for callbacks left NULL, so it is extended, never replaced.
    init(wantedActions: MilterActions, stages: Set<ProtocolStage>, noReplyStages: Set<ProtocolStage> = [],
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
        for stage in noReplyStages.intersection(stages) {
            if let bit = stage.noReplyProtocolBit {
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

    /// Stages whose SMFIP_NR_* bit was requested. libmilter sends no reply at these stages,
    /// whatever status the callback returns, so the callback must return SMFIS_NOREPLY.
    var noReplyStages: Set<ProtocolStage> {
        Set(ProtocolStage.allCases.filter { stage in
            stage.noReplyProtocolBit.map { steps & $0 != 0 } ?? false
        })
    }
}
