/// The one rule that decides what a finished request is charged (README, "What a request is charged").
public enum ChargeRule {
    /// How a request ended, as far as charging goes.
    public struct Ending: Sendable, Equatable {
        public var status: Int
        /// What the upstream reported; for an answer that broke off, possibly only a part
        /// (Anthropic's `message_start` input). `nil` when it reported nothing.
        public var usage: TokenUsage?
        /// Dispatched, but the answer did not run to its end: the client left, the stream stalled,
        /// timed out or was cut, or the upstream sent an error event mid-stream.
        public var brokeOff: Bool
        /// Output the client received, counted from the stream's content events (about a token each).
        public var seenOutput: Int64

        public init(status: Int, usage: TokenUsage?, brokeOff: Bool = false, seenOutput: Int64 = 0) {
            self.status = status
            self.usage = usage
            self.brokeOff = brokeOff
            self.seenOutput = seenOutput
        }
    }

    public struct Charge: Sendable, Equatable {
        /// The tokens recorded on the row: what was reported or seen, never an invented estimate of output.
        public var usage: TokenUsage
        /// Charge the reserved worst case instead of pricing `usage`.
        public var worstCase: Bool
        public var flag: LedgerFlag?
    }

    /// - usage reported for an answer that ran to its end: charged as reported;
    /// - an answer that ran to its end without usage: the reserved worst case, flagged `usage_missing`;
    ///   the token columns keep only what was seen, never the estimate;
    /// - an answer that broke off: the reported parts, else the input estimate, plus the output seen,
    ///   flagged `usage_estimated`;
    /// - a refusal or an error answer without usage: nothing.
    public static func charge(_ e: Ending, estimatedInput: Int64) -> Charge {
        if e.brokeOff {
            var u = e.usage ?? TokenUsage()
            if u.input <= 0 { u.input = estimatedInput }
            u.output = max(u.output, e.seenOutput)
            return Charge(usage: u, worstCase: false, flag: .usageEstimated)
        }
        if let usage = e.usage { return Charge(usage: usage, worstCase: false, flag: nil) }
        if (200..<300).contains(e.status) { return Charge(usage: TokenUsage(output: e.seenOutput), worstCase: true, flag: .usageMissing) }
        return Charge(usage: TokenUsage(), worstCase: false, flag: nil)
    }
}
