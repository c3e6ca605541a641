import Foundation
import Logging
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// One data-plane request from admission to its ledger row. Finishing is idempotent: whichever
/// path ends the request (success, error, disconnect, timeout) settles it exactly once, and a
/// request dropped without finishing is settled as abandoned when the exchange is released.
final class Exchange: Sendable {
    struct Mutable {
        var admission: Admission?
        var plan: RequestPlan
        var listPrice: TokenPrice
        var flags: [LedgerFlag] = []
        var overage: (kind: OverageKind, projectId: String)?
        var attempts = 0
        var ttfbUs: Int64?
        var finished = false
        var rateCharged: [(key: LimiterKey, limit: Int64, tokens: Int64)] = []
    }

    let runtime: Runtime
    let caller: Caller
    let parsed: ParsedRequest
    let requestId: String
    let endpoint: String
    let userDigest: String?
    let startedAt: Int64
    let startNanos: UInt64
    let mutable: Mutex<Mutable>

    init(
        runtime: Runtime, caller: Caller, parsed: ParsedRequest, plan: RequestPlan, listPrice: TokenPrice, requestId: String, endpoint: String,
        userDigest: String?, startedAt: Int64, startNanos: UInt64
    ) {
        self.runtime = runtime
        self.caller = caller
        self.parsed = parsed
        self.requestId = requestId
        self.endpoint = endpoint
        self.userDigest = userDigest
        self.startedAt = startedAt
        self.startNanos = startNanos
        self.mutable = Mutex(Mutable(plan: plan, listPrice: listPrice))
    }

    deinit {
        let abandoned = mutable.withLock { m -> Bool in
            let open = !m.finished && m.admission != nil
            m.finished = true
            return open
        }
        if abandoned {
            let outcome = Outcome(status: 499, reason: .clientClosed, usage: nil, servedModel: nil, extraFlags: [.abandoned], brokeOff: true)
            let (item, release) = makeItem(outcome)
            release()
            runtime.ledger.appendDetached(item)
        }
    }

    var admission: Admission? { mutable.withLock { $0.admission } }
    var plan: RequestPlan { mutable.withLock { $0.plan } }

    func elapsedMicros() -> Int64 { Int64((DispatchTime.now().uptimeNanoseconds - startNanos) / 1000) }

    func markFirstByte() {
        let us = elapsedMicros()
        mutable.withLock { if $0.ttfbUs == nil { $0.ttfbUs = us } }
    }

    /// How the request ended.
    struct Outcome {
        var status: Int
        var reason: ReasonCode?
        /// What the upstream reported; for an answer that broke off, possibly only a part (Anthropic's
        /// `message_start` input). `nil` when it reported nothing.
        var usage: TokenUsage?
        var servedModel: String?
        var extraFlags: [LedgerFlag] = []
        /// The request was dispatched but its answer did not run to its end: the client left, the
        /// stream stalled, timed out or was cut, or the upstream sent an error event mid-stream.
        var brokeOff = false
        /// Output the client received, counted from the stream's content events (about a token each).
        var seenOutput: Int64 = 0
    }

    /// One rule charges every request (README, "What a request is charged"):
    /// - usage reported for an answer that ran to its end: charged as reported;
    /// - an answer that ran to its end without usage: the reserved worst case, flagged `usage_missing`;
    ///   the token columns keep only what was seen, never the estimate;
    /// - an answer that broke off: the reported parts, else the input estimate, plus the output seen,
    ///   flagged `usage_estimated` with its cause;
    /// - a refusal or an error answer without usage: nothing.
    static func charged(_ o: Outcome, estimatedInput: Int64) -> (usage: TokenUsage, worstCase: Bool, flag: LedgerFlag?) {
        if o.brokeOff {
            let reported = o.usage ?? TokenUsage()
            var u = reported
            if reported.input <= 0 { u.input = estimatedInput }
            u.output = max(reported.output, o.seenOutput)
            return (u, false, .usageEstimated)
        }
        if let usage = o.usage { return (usage, false, nil) }
        if (200..<300).contains(o.status) { return (TokenUsage(output: o.seenOutput), true, .usageMissing) }
        return (TokenUsage(), false, nil)
    }

    /// Builds the ledger row and settlement, and a closure that frees the resource slot.
    func makeItem(_ o: Outcome) -> (LedgerWriter.Item, () -> Void) {
        let m = mutable.withLock { $0 }
        let now = runtime.state.clock.nowMs()
        var e = LedgerEntry(
            requestId: requestId, at: now, startedAt: startedAt, tenantId: caller.tenant.id, projectId: caller.project.id, wireFormat: parsed.format,
            endpoint: endpoint, modelRequested: parsed.model, status: o.status)
        e.keyId = caller.key.kind == .projectKey ? caller.key.id : nil
        e.seatId = caller.key.kind == .seat ? caller.key.id : nil
        e.userDigest = userDigest
        e.stream = parsed.stream
        e.reason = o.reason
        e.flags = m.flags + o.extraFlags
        e.latencyUs = elapsedMicros()
        e.ttfbUs = m.ttfbUs
        e.attempts = m.attempts
        e.overage = m.overage?.kind
        e.overageProjectId = m.overage?.projectId
        var release: () -> Void = {}
        guard let a = m.admission else {
            return (LedgerWriter.Item(entry: e, settlement: nil), release)
        }
        let resource = a.facts.resourceId != nil ? a.resource : nil
        e.resourceId = resource?.id
        e.poolId = resource?.resource.poolId
        e.overflow = a.facts.overflow
        e.provider = resource?.resource.provider.rawValue
        e.modelServed = o.servedModel ?? (resource != nil ? m.plan.model : nil)
        e.reservedMicros = a.worstCase
        let (usage, worstCase, flag) = resource == nil ? (TokenUsage(), false, nil) : Self.charged(o, estimatedInput: parsed.estimatedInput)
        e.usage = usage
        if let flag { e.flags.append(flag) }
        if worstCase {
            e.costMicros = a.worstCase
            e.upstreamCostMicros = a.upstreamWorstCase
        } else if let resource {
            e.costMicros = Money.cost(usage, at: m.listPrice)
            e.upstreamCostMicros = resource.resource.costBasis.marginalCost(usage) ?? Money.cost(usage, at: resource.price ?? m.listPrice)
        }
        let charges = Charging.charges(a.facts, cost: e.costMicros, upstream: e.upstreamCostMicros)
        let settlement = Settlement(reservation: a.reservation, charges: charges)
        let actual = worstCase ? nil : usage.total
        if let resource {
            let estimated = m.plan.shape.worstTokens
            let engine = runtime.engine
            release = { engine.release(resourceId: resource.id, estimatedTokens: estimated, actualTokens: actual, now: now) }
        }
        // Give back rate-limit tokens charged for the worst case but not used.
        if let actual {
            for charge in m.rateCharged where charge.tokens > actual {
                runtime.engine.refundTokens(key: charge.key, limit: charge.limit, tokens: charge.tokens - actual)
            }
        }
        return (LedgerWriter.Item(entry: e, settlement: settlement), release)
    }

    /// Settles the request once: frees its resource slot, writes its row and waits for the commit.
    /// Returns `false` if it had already finished.
    @discardableResult
    func finish(_ o: Outcome) async -> Bool {
        let first = mutable.withLock { m -> Bool in
            if m.finished { return false }
            m.finished = true
            return true
        }
        guard first else { return false }
        let (item, release) = makeItem(o)
        release()
        runtime.metrics.recordRequest(item.entry)
        runtime.logRequest(item.entry)
        let committed = await runtime.ledger.append(item)
        if !committed { runtime.state.logger.error("ledger row could not be committed", metadata: ["request_id": "\(requestId)"]) }
        return true
    }

    /// Records a refusal after authentication (no reservation, nothing delivered).
    func refuse(_ r: Refusal) {
        let already = mutable.withLock { m -> Bool in
            let was = m.finished
            m.finished = true
            return was
        }
        guard !already else { return }
        let (item, release) = makeItem(Outcome(status: r.status, reason: r.reason, usage: nil, servedModel: nil))
        release()
        runtime.metrics.recordRequest(item.entry)
        runtime.logRequest(item.entry)
        runtime.ledger.appendDetached(item)
    }
}
