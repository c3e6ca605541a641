import HTTPTypes
import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `GET /v1/quotaflow/usage`: a holder's own allowance, read with their own key (project key or
/// virtual seat, as `Authorization: Bearer`, `x-api-key` or `x-quotaflow-key`): the key's budget and
/// spend this period and when it ends, the project's, the rate limits and what is left of them,
/// and for passthrough seats the holder's own usage windows as their provider reported them.
/// Quotaflow never forges provider rate-limit headers; a status line reads this instead.
struct HolderUsage: Sendable {
    let catalog: any CatalogHolder
    let engine: AdmissionEngine
    let clock: any WallClock
    let ledger: LedgerWriter

    func register(on router: Router<AppRequestContext>) {
        router.get("v1/quotaflow/usage") { request, context in
            do { return try await usage(request) } catch let refusal as Refusal {
                return ChatCompletions().response(for: refusal)
            }
        }
    }

    func usage(_ request: Request) async throws -> Response {
        let now = clock.nowMs()
        let catalog = self.catalog.current
        let caller = try Caller.authenticate(request, catalog: catalog, now: now, passthroughToken: false)
        // Spend moves after each ledger commit: wait for the rows already queued.
        await ledger.flush()
        let key = caller.key
        let keyCounter: BudgetKey = key.kind == .seat ? .seat(key.id) : .key(key.id)
        func budget(_ counter: BudgetKey, cap: Int64?, anchor: PeriodAnchor) -> JSONValue {
            // A counter of an ended period holds nothing of this one.
            let c = engine.counterSnapshot(counter).flatMap { $0.period.contains(now) ? $0 : nil }
            let period = c?.period ?? BillingPeriod.containing(now, anchor: anchor)
            let (spent, reserved) = (c?.spent ?? 0, c?.reserved ?? 0)
            return .compact([
                ("cap_micros", cap.map(JSONValue.int) ?? .null), ("spent_micros", .int(spent)), ("in_flight_micros", .int(reserved)),
                ("remaining_micros", cap.map { .int(max(0, $0 - spent - reserved)) } ?? .null),
                ("period_start", .string(Timestamp.format(period.start))), ("period_end", .string(Timestamp.format(period.end))),
            ])
        }
        let project = caller.project
        var limits: [JSONValue] = []
        if let rpm = key.rpm ?? project.rateLimits.rpmPerKey {
            limits.append(["scope": "key", "rpm": .int(rpm), "remaining": .int(engine.remaining(limiter: .key(key.id), limit: rpm, now: now))])
        }
        for p in caller.chain {
            if let rpm = p.rateLimits.rpm {
                limits.append([
                    "scope": "project", "project_id": .string(p.id), "rpm": .int(rpm),
                    "remaining": .int(engine.remaining(limiter: .project(p.id), limit: rpm, now: now)),
                ])
            }
        }
        // The holder's own windows, on each passthrough seat their project can reach.
        var windows: [JSONValue] = []
        for r in catalog.resourcesByTenant[caller.tenant.id] ?? [] where r.resource.leaseMode == .passthrough {
            guard project.poolIds.contains(r.resource.poolId), let set = engine.windows(resourceId: r.id, holder: key.id) else { continue }
            var v = WindowsController.latest(set, now: now).objectMembers ?? []
            v.insert(contentsOf: [("resource_id", .string(r.id)), ("name", .string(r.resource.name))], at: 0)
            windows.append(.object(v))
        }
        let body: JSONValue = [
            "key_id": .string(key.id), "kind": .string(key.kind == .seat ? "seat" : "project_key"), "name": .string(key.name),
            "project_id": .string(project.id), "expires_at": Rep.time(key.expiresAt),
            "budget": budget(keyCounter, cap: key.budgetCapMicros, anchor: project.budget.period),
            "project_budget": budget(.project(project.id), cap: project.budget.monthlyCapMicros, anchor: project.budget.period),
            "rate_limits": .array(limits), "passthrough_windows": .array(windows),
        ]
        return JSONResponse.make(body)
    }
}
