import AsyncHTTPClient
import Crypto
import Foundation
import HashTreeCollections
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle

/// Fires budget threshold alerts (once per period each) into the durable outbox.
final class Alerts: Sendable {
    let state: AppState
    let engine: AdmissionEngine
    let metrics: Metrics
    let wake = Wakeup()

    init(state: AppState, engine: AdmissionEngine, metrics: Metrics) {
        self.state = state
        self.engine = engine
        self.metrics = metrics
    }

    struct Fired {
        let key: BudgetKey
        let tenantId: String
        let projectId: String?
        let name: String
        let threshold: Int
        let spent: Int64
        let limit: Int64
        let period: BillingPeriod
    }

    /// Called on the ledger thread after counters moved: fires the thresholds newly crossed.
    func check(_ settled: [(BudgetKey, BudgetCounter)]) {
        let catalog = state.catalog
        var fired: [Fired] = []
        for (key, counter) in settled {
            guard let (tenantId, projectId, name, thresholds, cap) = describe(key, catalog: catalog), let cap, cap + counter.carry > 0 else {
                continue
            }
            let limit = cap + counter.carry
            let percent = counter.spent * 100 / limit
            for t in thresholds where Int64(t) <= percent && !counter.fired.contains(t) {
                if engine.markFired(key, threshold: t, periodStart: counter.period.start) {
                    fired.append(
                        Fired(
                            key: key, tenantId: tenantId, projectId: projectId, name: name, threshold: t, spent: counter.spent, limit: limit,
                            period: counter.period))
                }
            }
        }
        guard !fired.isEmpty else { return }
        let now = state.clock.nowMs()
        do {
            try state.db.writeSync { conn in
                try conn.transaction {
                    for f in fired {
                        guard
                            try conn.recordAlert(
                                key: f.key.description, periodStart: f.period.start, threshold: f.threshold, tenantId: f.tenantId, at: now,
                                spent: f.spent,
                                cap: f.limit)
                        else { continue }
                        let eventId = "evt_" + String(SecretDigest.of("\(f.key)|\(f.period.start)|\(f.threshold)").prefix(24))
                        let data: JSONValue = [
                            "budget": .string(f.key.description), "name": .string(f.name), "threshold_percent": .int(Int64(f.threshold)),
                            "spent_micros": .int(f.spent), "limit_micros": .int(f.limit), "period_start": .string(Timestamp.format(f.period.start)),
                            "period_end": .string(Timestamp.format(f.period.end)), "project_id": .string(f.projectId),
                        ]
                        let text =
                            "Quotaflow: \(f.name) has used \(f.threshold)% of its budget (\(Money.format(f.spent)) of \(Money.format(f.limit))) this period."
                        try Self.enqueue(
                            conn, tenantId: f.tenantId, projectId: f.projectId, eventId: eventId, type: "budget.threshold", data: data, text: text,
                            at: now)
                    }
                }
            }
        } catch {
            state.logger.error("could not record fired alerts", metadata: ["error": "\(error)"])
        }
        wake.poke()
    }

    /// Queues an approval-requested event for the tenant's and the project's webhooks.
    /// Queues an approval-requested event for the tenant's and the project's webhooks, in the
    /// transaction that opens the request (poke `wake` once it commits).
    func approvalOpened(_ a: Approval, conn: StoreConnection) throws {
        let projectName = state.catalog.projects[a.projectId]?.name ?? a.projectId
        try Self.enqueue(
            conn, tenantId: a.tenantId, projectId: a.projectId, eventId: "evt_" + a.id, type: "approval.requested",
            data: ["approval_id": .string(a.id), "project_id": .string(a.projectId), "detail": .string(a.detail), "model": .string(a.model)],
            text: "Quotaflow: an approval was requested for project '\(projectName)': \(a.detail)", at: a.requestedAt)
    }

    static func enqueue(
        _ conn: StoreConnection, tenantId: String, projectId: String?, eventId: String, type: String, data: JSONValue, text: String, at: Int64
    ) throws {
        for w in try conn.webhooks(tenantId: tenantId) where w.active && (w.projectId == nil || w.projectId == projectId) {
            let payload: JSONValue
            if w.format == .slack {
                payload = ["text": .string(text)]
            } else {
                payload = [
                    "id": .string(eventId), "type": .string(type), "created_at": .string(Timestamp.format(at)), "tenant_id": .string(tenantId),
                    "data": data,
                ]
            }
            try conn.enqueueDelivery(tenantId: tenantId, webhookId: w.id, eventId: eventId, eventType: type, payload: payload.text, at: at)
        }
    }

    /// Name, thresholds and cap of the budget behind a counter.
    func describe(_ key: BudgetKey, catalog: Catalog) -> (String, String?, String, [Int], Int64?)? {
        switch key {
        case .tenant(let id):
            guard let t = catalog.tenants[id] else { return nil }
            return (id, nil, "tenant '\(t.name)'", t.settings.alertThresholds, t.settings.monthlyLimitMicros)
        case .project(let id):
            guard let p = catalog.projects[id] else { return nil }
            let grants = (catalog.approvals[id] ?? []).filter { $0.isActive(at: state.clock.nowMs()) }.compactMap(\.grantMicros).reduce(0, +)
            return (p.tenantId, id, "project '\(p.name)'", p.budget.alertThresholds, p.budget.monthlyCapMicros.map { $0 + grants })
        case .projectFallback(let id):
            guard let p = catalog.projects[id] else { return nil }
            return (p.tenantId, id, "the fallback budget of project '\(p.name)'", p.budget.alertThresholds, p.budget.fallback?.capMicros)
        case .projectOverflow(let id):
            guard let p = catalog.projects[id] else { return nil }
            return (p.tenantId, id, "the overflow cap of project '\(p.name)'", p.budget.alertThresholds, p.overflowCapMicros)
        case .key(let id), .seat(let id):
            guard let k = catalog.keysById[id] else { return nil }
            let what = k.kind == .seat ? "seat '\(k.name)'" : "key '\(k.name)'"
            return (k.tenantId, k.projectId, what, Budget.defaultThresholds, k.budgetCapMicros)
        case .resource(let id), .overflowCredit(let id):
            guard let r = catalog.resourcesById[id] else { return nil }
            let cap = r.resource.kind == .overflow ? r.resource.creditCapMicros : r.resource.limits.monthlySpendCapMicros
            return (r.resource.tenantId, nil, "resource '\(r.resource.name)'", Budget.defaultThresholds, cap)
        }
    }
}
