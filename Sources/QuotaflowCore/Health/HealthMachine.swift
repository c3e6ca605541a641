/// The result of one probe of a resource.
public struct ProbeOutcome: Sendable, Equatable {
    public var ok: Bool
    /// A sentence a person can act on ("401 from upstream: the key was refused").
    public var reason: String
    public var status: Int?
    public var latencyMs: Int64
    /// Upstream limits learned from rate-limit headers.
    public var rateLimits: RateLimitInfo?
    /// The provider refused the credential (401/403): the resource cannot serve anyone.
    public var credentialRefused: Bool
    /// The provider answered 429: the credential works but is rate limited until this time.
    public var rateLimitedUntil: Int64?

    public init(
        ok: Bool, reason: String, status: Int? = nil, latencyMs: Int64 = 0, rateLimits: RateLimitInfo? = nil, credentialRefused: Bool = false,
        rateLimitedUntil: Int64? = nil
    ) {
        self.ok = ok
        self.reason = reason
        self.status = status
        self.latencyMs = latencyMs
        self.rateLimits = rateLimits
        self.credentialRefused = credentialRefused
        self.rateLimitedUntil = rateLimitedUntil
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
/// - A probe answered 429 proves the credential works: it counts as neither pass nor failure. An
///   admission waits (the state stays) and tries again at the reset; a resource in service cools until it.
/// - A refused credential (401/403) suspends a resource in service at once; it is not a request-specific
///   refusal, since probes ask for nothing but the models list or a 1-token completion.
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
        if let until = outcome.rateLimitedUntil, !outcome.ok {
            if state == .revoked || manualHold { return Decision(state: state, counters: c, cause: nil) }
            switch state {
            case .pending, .verifying, .rejected:
                let s: ResourceState = state == .rejected ? .pending : state
                return Decision(
                    state: s, counters: c, cause: "rate limited by the upstream during admission; trying again at \(Timestamp.format(until))")
            case .active, .degraded, .suspended, .cooling:
                return Decision(
                    state: .cooling, counters: c, cause: state == .cooling ? nil : "rate limited by the upstream until \(Timestamp.format(until))")
            case .revoked:
                return Decision(state: state, counters: c, cause: nil)
            }
        }
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
            if outcome.ok { return to(.active, "") }
            if outcome.credentialRefused { return to(.suspended, "the provider refused the credential: \(outcome.reason)") }
            return to(.degraded, "probe failed: \(outcome.reason)")
        case .degraded:
            if outcome.ok { return to(.active, "probe passed again") }
            if outcome.credentialRefused { return to(.suspended, "the provider refused the credential: \(outcome.reason)") }
            if c.consecutiveFail >= suspendAfter {
                return to(.suspended, "\(c.consecutiveFail) probes failed in a row; last: \(outcome.reason)")
            }
            return to(.degraded, "")
        case .suspended:
            return outcome.ok ? to(.active, "probe passed after automatic suspension") : to(.suspended, "")
        case .cooling:
            if outcome.ok { return to(.active, "half-open probe after the cooldown passed") }
            if outcome.credentialRefused { return to(.suspended, "the provider refused the credential: \(outcome.reason)") }
            if c.consecutiveFail >= suspendAfter {
                return to(.suspended, "\(c.consecutiveFail) probes failed in a row; last: \(outcome.reason)")
            }
            return to(.cooling, "")
        }
    }
}
