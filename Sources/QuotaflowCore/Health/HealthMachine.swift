/// The result of one probe of a resource.
public struct ProbeOutcome: Sendable, Equatable {
    public var ok: Bool
    /// A sentence a person can act on ("401 from upstream: the key was refused").
    public var reason: String
    public var status: Int?
    public var latencyMs: Int64
    /// Upstream limits learned from rate-limit headers.
    public var rateLimits: RateLimitInfo?

    public init(ok: Bool, reason: String, status: Int? = nil, latencyMs: Int64 = 0, rateLimits: RateLimitInfo? = nil) {
        self.ok = ok
        self.reason = reason
        self.status = status
        self.latencyMs = latencyMs
        self.rateLimits = rateLimits
    }
}

/// Probe streaks kept per resource.
public struct HealthCounters: Sendable, Equatable {
    public var consecutiveOK: Int
    public var consecutiveFail: Int

    public init(consecutiveOK: Int = 0, consecutiveFail: Int = 0) {
        self.consecutiveOK = consecutiveOK
        self.consecutiveFail = consecutiveFail
    }
}

/// The health state machine, readable in one place:
///
/// - `pending`/`verifying` → `active` after `admissionProbes` passing probes in a row; any failure
///   → `rejected` with the probe's reason.
/// - `active` → `degraded` on a failed probe; `degraded` → `suspended` after `suspendAfter`
///   failures in a row; a passing probe brings `degraded` or (automatically) `suspended` back to `active`.
/// - `cooling` gets one half-open probe at its reset time: pass → `active`; fail → stays cooling.
/// - A person's suspend (`manualHold`) and `revoked` are never changed by a probe. `rejected` is
///   left alone by scheduled probes; a manual verify that passes starts admission again.
public enum HealthMachine {
    public struct Decision: Sendable, Equatable {
        public var state: ResourceState
        public var counters: HealthCounters
        /// Set when the state changes: the cause written to the resource and the audit log.
        public var cause: String?
    }

    public static func next(
        state: ResourceState, manualHold: Bool, counters: HealthCounters, outcome: ProbeOutcome, admissionProbes: Int, suspendAfter: Int
    ) -> Decision {
        var c = counters
        if outcome.ok {
            c.consecutiveOK += 1
            c.consecutiveFail = 0
        } else {
            c.consecutiveFail += 1
            c.consecutiveOK = 0
        }
        if state == .revoked || manualHold { return Decision(state: state, counters: c, cause: nil) }
        func to(_ s: ResourceState, _ cause: String) -> Decision {
            Decision(state: s, counters: c, cause: s == state ? nil : cause)
        }
        switch state {
        case .revoked:
            return Decision(state: state, counters: c, cause: nil)
        case .pending, .verifying, .rejected:
            if !outcome.ok { return to(.rejected, outcome.reason) }
            if c.consecutiveOK >= admissionProbes { return to(.active, "admitted after \(c.consecutiveOK) passing probes") }
            return to(.verifying, "probe \(c.consecutiveOK) of \(admissionProbes) passed")
        case .active:
            return outcome.ok ? to(.active, "") : to(.degraded, "probe failed: \(outcome.reason)")
        case .degraded:
            if outcome.ok { return to(.active, "probe passed again") }
            if c.consecutiveFail >= suspendAfter {
                return to(.suspended, "\(c.consecutiveFail) probes failed in a row; last: \(outcome.reason)")
            }
            return to(.degraded, "")
        case .suspended:
            return outcome.ok ? to(.active, "probe passed after automatic suspension") : to(.suspended, "")
        case .cooling:
            if outcome.ok { return to(.active, "half-open probe after the cooldown passed") }
            if c.consecutiveFail >= suspendAfter {
                return to(.suspended, "\(c.consecutiveFail) probes failed in a row; last: \(outcome.reason)")
            }
            return to(.cooling, "")
        }
    }
}
