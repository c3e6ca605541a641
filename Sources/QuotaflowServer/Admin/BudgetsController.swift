import Foundation
import HashTreeCollections
import Hummingbird
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/budgets`: every budget's cap, spend, holds and alerts, and a
/// reconciliation that recomputes the counters from the ledger.
struct BudgetsController {
    let env: AdminEnvironment
    let engine: AdmissionEngine
    let ledger: LedgerWriter
    let alerts: Alerts

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/budgets", use: budgets)
        admin.post("tenants/{tenant_id}/budgets/reconcile", use: reconcile)
    }

    // MARK: budgets

    /// Every budget of the tenant with its cap, spend, reservations, remaining amount, period and alerts.
    @Sendable func budgets(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let catalog = env.catalog.current
        let now = env.now
        var items: [JSONValue] = []
        for key in Self.budgetKeys(tenantId: tenantId, catalog: catalog) {
            guard let (_, projectId, name, thresholds, cap) = alerts.describe(key, catalog: catalog) else { continue }
            let spec = CounterSpec.of(
                key, catalog: catalog, tenantId: tenantId, projectId: projectId, keyCap: catalog.keysById[Self.keyId(key) ?? ""]?.budgetCapMicros)
            let counter = engine.counterSnapshot(key)
            let period =
                counter.map { $0.period.end > now ? $0.period : BillingPeriod.containing(now, anchor: spec.anchor) }
                ?? BillingPeriod.containing(now, anchor: spec.anchor)
            let current = counter.map { $0.period == period } ?? false
            let spent = current ? counter!.spent : 0
            let reserved = counter?.reserved ?? 0
            let carry = current ? counter!.carry : 0
            let limit = cap.map { $0 + carry }
            items.append(
                .compact([
                    ("budget", .string(key.description)), ("name", .string(name)), ("project_id", .string(projectId)),
                    ("cap_micros", cap.map(JSONValue.int)), ("rollover_micros", .int(carry)), ("spent_micros", .int(spent)),
                    ("reserved_micros", .int(reserved)), ("remaining_micros", limit.map { .int(max(0, $0 - spent - reserved)) }),
                    ("period_start", .string(Timestamp.format(period.start))), ("period_end", .string(Timestamp.format(period.end))),
                    ("thresholds", .array(thresholds.map { .int(Int64($0)) })),
                    ("thresholds_fired", .array((current ? counter!.fired : []).sorted().map { .int(Int64($0)) })),
                ]))
        }
        return JSONResponse.list(items)
    }

    static func keyId(_ key: BudgetKey) -> String? {
        switch key {
        case .key(let id), .seat(let id): return id
        default: return nil
        }
    }

    /// The budgets a tenant has: its own limit, every project (and its fallback and overflow caps),
    /// capped keys and seats, and capped resources.
    static func budgetKeys(tenantId: String, catalog: Catalog) -> [BudgetKey] {
        var keys: [BudgetKey] = [.tenant(tenantId)]
        for p in catalog.projects(ofTenant: tenantId).sorted(by: { $0.name < $1.name }) {
            keys.append(.project(p.id))
            if p.budget.fallback != nil { keys.append(.projectFallback(p.id)) }
            if p.overflowCapMicros != nil { keys.append(.projectOverflow(p.id)) }
        }
        for k in catalog.keys(ofTenant: tenantId).filter({ $0.budgetCapMicros != nil }).sorted(by: { $0.id < $1.id }) {
            keys.append(k.kind == .seat ? .seat(k.id) : .key(k.id))
        }
        for r in catalog.resourcesByTenant[tenantId] ?? [] {
            if r.resource.kind == .overflow {
                keys.append(.overflowCredit(r.id))
            } else if r.resource.limits.monthlySpendCapMicros != nil {
                keys.append(.resource(r.id))
            }
        }
        return keys
    }

    /// Recomputes every counter of the tenant from the ledger and reports the drift (which must be 0).
    @Sendable func reconcile(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let catalog = env.catalog.current
        let now = env.now
        let engine = self.engine
        let report = try await ledger.barrier { conn -> JSONValue in
            var counters = engine.allCounters()
            let computed = try conn.recomputeCounters(catalog: catalog, now: now, known: counters, tenantId: tenantId)
            if conn.dialect == .postgres {
                // A fleet counts every replica's spend on its shared counters: those are what must
                // equal the ledger (this replica's own counters see only what it last read of them).
                let shared = try conn.fleetSpend(keys: counters.keys.map(\.description))
                for (key, c) in counters {
                    if let spent = shared[key.description]?[c.period.start] { counters[key]?.spent = spent }
                }
            }
            var checked = 0
            var drift: [JSONValue] = []
            var keys = Set(computed.spend.keys.filter { Reconciler.belongs($0, to: tenantId, catalog: catalog) })
            for (k, _) in counters where Reconciler.belongs(k, to: tenantId, catalog: catalog) { keys.insert(k) }
            for key in keys.sorted(by: { $0.description < $1.description }) {
                let ledger = computed.spend[key]
                var counter = counters[key]
                counter?.roll(now: now)
                let counted = counter.map { c in ledger.map { c.period == $0.period } ?? true ? c.spent : 0 } ?? 0
                let recomputed = ledger?.spent ?? 0
                checked += 1
                if counted != recomputed {
                    drift.append(["budget": .string(key.description), "counter_micros": .int(counted), "ledger_micros": .int(recomputed)])
                }
            }
            return [
                "checked": .int(Int64(checked)), "drift": .array(drift),
                "drift_micros": .int(
                    drift.compactMap { d in d["counter_micros"]?.int64Value.flatMap { c in d["ledger_micros"]?.int64Value.map { abs(c - $0) } } }
                        .reduce(0, +)),
                "at": .string(Timestamp.format(now)),
            ]
        }
        return JSONResponse.make(report)
    }
}
