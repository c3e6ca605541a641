import Foundation
import Logging
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// What settles requests: frees resource slots and rate-limit tokens, records metrics and the
/// access log, and hands rows to the ledger.
struct Settler: Sendable {
    let engine: AdmissionEngine
    let ledger: LedgerWriter
    let metrics: Metrics
    let accessLog: AccessLog
    let clock: any WallClock
    let logger: Logger
    /// In a fleet, the shared limiters get unused tokens back too.
    var fleet: FleetBudgets? = nil
}

/// One data-plane request from admission to its ledger row. Finishing is idempotent: whichever
/// path ends the request (success, error, disconnect, timeout) settles it exactly once, and a
/// request dropped without finishing is settled as abandoned when the exchange is released.
final class Exchange: Sendable {
    struct State {
        var admission: Admission?
        var plan: RequestPlan
        var listPrice: TokenPrice
        var flags: [LedgerFlag] = []
        var overage: (kind: OverageKind, projectId: String)?
        var attempts = 0
        var ttfbUs: Int64?
        var finished = false
        var rateCharged: [(key: LimiterKey, limit: Int64, tokens: Int64)] = []
        /// Secrets sent upstream besides the resource's stored credential (an OAuth access token,
        /// a passthrough holder's own token): removed from whatever is relayed back.
        var secrets: [String] = []
    }

    let settler: Settler
    let dialect: any Dialect
    let caller: Caller
    let parsed: ParsedRequest
    let requestId: String
    let userDigest: String?
    let startedAt: Int64
    let startNanos: UInt64
    /// The resource holding the stored response this request continues; only it may serve.
    let pinnedResourceId: String?
    let state: Mutex<State>

    init(
        settler: Settler, dialect: any Dialect, caller: Caller, parsed: ParsedRequest, plan: RequestPlan, listPrice: TokenPrice, requestId: String,
        userDigest: String?, startedAt: Int64, startNanos: UInt64, pinnedResourceId: String? = nil
    ) {
        self.settler = settler
        self.dialect = dialect
        self.caller = caller
        self.parsed = parsed
        self.requestId = requestId
        self.userDigest = userDigest
        self.startedAt = startedAt
        self.startNanos = startNanos
        self.pinnedResourceId = pinnedResourceId
        self.state = Mutex(State(plan: plan, listPrice: listPrice))
    }

    deinit {
        let abandoned = state.withLock { s -> Bool in
            let open = !s.finished && s.admission != nil
            s.finished = true
            return open
        }
        if abandoned {
            let (item, release) = makeItem(Outcome(status: 499, reason: .clientClosed, extraFlags: [.abandoned], brokeOff: true))
            release()
            settler.ledger.appendDetached(item)
        }
    }

    var admission: Admission? { state.withLock { $0.admission } }
    var plan: RequestPlan { state.withLock { $0.plan } }
    var snapshot: State { state.withLock { $0 } }

    // MARK: what admission and forwarding record

    /// Rate-limit checks passed: the token charges (given back when usage comes in lower) and audit flags.
    func rateLimited(charges: [(key: LimiterKey, limit: Int64, tokens: Int64)], flags: [LedgerFlag]) {
        state.withLock { s in
            s.rateCharged = charges
            s.flags = flags
        }
    }

    /// Admitted, with the plan and price that were admitted (an overage policy may have changed them).
    func admitted(_ a: Admission, plan: RequestPlan, listPrice: TokenPrice, overage: (kind: OverageKind, projectId: String)?) {
        state.withLock { s in
            s.admission = a
            s.plan = plan
            s.listPrice = listPrice
            s.overage = overage
            s.flags += a.flags
            if overage?.kind == .fallback { s.flags.append(.fallback) }
        }
    }

    /// A secret this request sends upstream, to be redacted from the answer.
    func useSecret(_ secret: String) { state.withLock { if !$0.secrets.contains(secret) { $0.secrets.append(secret) } } }

    /// What to remove from relayed answers: the resource's credential and this request's other secrets.
    var redactor: SecretRedactor {
        let (secrets, resource) = state.withLock { ($0.secrets, $0.admission?.resource) }
        guard !secrets.isEmpty else { return resource?.redactor ?? .none }
        return SecretRedactor(secrets: secrets + (resource.map { [$0.credential] } ?? []))
    }

    /// The admission after a reselection.
    func replace(_ a: Admission) { state.withLock { $0.admission = a } }

    /// Counts an attempt and returns its number (1 for the first).
    func nextAttempt() -> Int {
        state.withLock { s in
            s.attempts += 1
            return s.attempts
        }
    }

    func elapsedMicros() -> Int64 { Int64((DispatchTime.now().uptimeNanoseconds - startNanos) / 1000) }

    func markFirstByte() {
        let us = elapsedMicros()
        state.withLock { if $0.ttfbUs == nil { $0.ttfbUs = us } }
    }

    // MARK: ending

    /// How the request ended.
    struct Outcome {
        var status: Int
        var reason: ReasonCode?
        var usage: TokenUsage?
        var servedModel: String?
        var extraFlags: [LedgerFlag] = []
        /// See `ChargeRule.Ending`.
        var brokeOff = false
        var seenOutput: Int64 = 0
        /// The response the request created (Responses API).
        var responseId: String? = nil
    }

    /// Builds the ledger row and settlement, and a closure that frees the resource slot.
    func makeItem(_ o: Outcome) -> (LedgerWriter.Item, () -> Void) {
        let s = snapshot
        let now = settler.clock.nowMs()
        var e = LedgerEntry(
            requestId: requestId, at: now, startedAt: startedAt, tenantId: caller.tenant.id, projectId: caller.project.id,
            wireFormat: dialect.family.wireFormat, endpoint: dialect.endpoint, modelRequested: parsed.model, status: o.status)
        e.keyId = caller.key.kind == .projectKey ? caller.key.id : nil
        e.seatId = caller.key.kind == .seat ? caller.key.id : nil
        e.userDigest = userDigest
        e.stream = parsed.stream
        e.reason = o.reason
        e.flags = s.flags + o.extraFlags
        e.latencyUs = elapsedMicros()
        e.ttfbUs = s.ttfbUs
        e.attempts = s.attempts
        e.overage = s.overage?.kind
        e.overageProjectId = s.overage?.projectId
        // Only a successful answer created the response that follow-ups may name.
        if (200..<300).contains(o.status), !dialect.isFree { e.responseId = o.responseId }
        guard let a = s.admission else { return (LedgerWriter.Item(entry: e, settlement: nil), {}) }
        let resource = a.facts.resourceId != nil ? a.resource : nil
        e.resourceId = resource?.id
        e.poolId = resource?.resource.poolId
        e.overflow = a.facts.overflow
        e.provider = resource?.resource.provider.rawValue
        e.modelServed = o.servedModel ?? (resource != nil ? s.plan.model : nil)
        e.reservedMicros = a.worstCase
        if resource != nil {
            e.routeReason = a.routeReason
            e.sessionMovedFrom = a.movedFrom
        }
        var release: () -> Void = {}
        var actual: Int64?
        if let resource, dialect.isFree {
            // Token counting and stored-response calls cost nothing and hold nothing.
            actual = 0
            let engine = settler.engine
            release = { engine.release(resourceId: resource.id, estimatedTokens: 0, actualTokens: 0, now: now) }
        } else if let resource {
            let charge = ChargeRule.charge(
                .init(status: o.status, usage: o.usage, brokeOff: o.brokeOff, seenOutput: o.seenOutput), estimatedInput: parsed.estimatedInput)
            e.usage = charge.usage
            if let flag = charge.flag { e.flags.append(flag) }
            if charge.worstCase {
                e.costMicros = a.worstCase
                e.upstreamCostMicros = a.upstreamWorstCase
            } else {
                e.costMicros = Money.cost(charge.usage, at: s.listPrice)
                e.upstreamCostMicros =
                    resource.resource.costBasis.marginalCost(charge.usage) ?? Money.cost(charge.usage, at: resource.price ?? s.listPrice)
                actual = charge.usage.total
            }
            let estimated = s.plan.shape.worstTokens
            let engine = settler.engine
            release = { [actual] in engine.release(resourceId: resource.id, estimatedTokens: estimated, actualTokens: actual, now: now) }
        }
        // Give back rate-limit tokens charged for the worst case but not used.
        if let actual {
            for charge in s.rateCharged where charge.tokens > actual {
                settler.engine.refundTokens(key: charge.key, limit: charge.limit, tokens: charge.tokens - actual)
                settler.fleet?.refund(key: charge.key, limit: charge.limit, tokens: charge.tokens - actual)
            }
        }
        let settlement = Settlement(
            reservation: a.reservation, charges: Charging.charges(a.facts, cost: e.costMicros, upstream: e.upstreamCostMicros))
        return (LedgerWriter.Item(entry: e, settlement: settlement), release)
    }

    /// Marks the exchange finished; `false` if it already was.
    func claimFinish() -> Bool {
        state.withLock { s -> Bool in
            if s.finished { return false }
            s.finished = true
            return true
        }
    }

    /// Settles the request once: frees its resource slot, writes its row and waits for the commit.
    /// Returns `false` if it had already finished.
    @discardableResult
    func finish(_ o: Outcome) async -> Bool {
        guard claimFinish() else { return false }
        let (item, release) = makeItem(o)
        release()
        settler.metrics.recordRequest(item.entry)
        settler.accessLog.record(item.entry)
        if !(await settler.ledger.append(item)) {
            settler.logger.error("ledger row could not be committed", metadata: ["request_id": "\(requestId)"])
        }
        return true
    }

    /// Records a refusal after authentication (no reservation, nothing delivered).
    func refuse(_ r: Refusal) {
        guard claimFinish() else { return }
        let (item, release) = makeItem(Outcome(status: r.status, reason: r.reason))
        release()
        settler.metrics.recordRequest(item.entry)
        settler.accessLog.record(item.entry)
        settler.ledger.appendDetached(item)
    }
}
