import AsyncHTTPClient
import Crypto
import Foundation
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
            guard let (tenantId, projectId, name, thresholds, cap) = describe(key, catalog: catalog), let cap, cap + counter.carry > 0 else { continue }
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
                        guard try conn.recordAlert(
                            key: f.key.description, periodStart: f.period.start, threshold: f.threshold, tenantId: f.tenantId, at: now, spent: f.spent,
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
    func approvalOpened(_ a: Approval) async throws {
        let now = state.clock.nowMs()
        let projectName = state.catalog.projects[a.projectId]?.name ?? a.projectId
        try await state.db.write { conn in
            try Self.enqueue(
                conn, tenantId: a.tenantId, projectId: a.projectId, eventId: "evt_" + a.id, type: "approval.requested",
                data: ["approval_id": .string(a.id), "project_id": .string(a.projectId), "detail": .string(a.detail), "model": .string(a.model)],
                text: "Quotaflow: an approval was requested for project '\(projectName)': \(a.detail)", at: now)
        }
        wake.poke()
    }

    static func enqueue(
        _ conn: SQLiteConnection, tenantId: String, projectId: String?, eventId: String, type: String, data: JSONValue, text: String, at: Int64
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

/// Delivers queued webhook events with retries and backoff. Deliveries are signed with
/// HMAC-SHA256 over "<timestamp>.<body>" and carry the event id for idempotency.
struct OutboxService: Service {
    let runtime: Runtime

    static let maxAttempts = 10

    static func backoffMs(attempts: Int) -> Int64 { min(3_600_000, 5_000 * (Int64(1) << Int64(min(attempts, 20)))) }

    static func signature(secret: String, timestamp: Int64, body: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).\(body)".utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return "t=\(timestamp),v1=" + SecretDigest.hex(mac)
    }

    func run() async throws {
        let state = runtime.state
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let now = state.clock.nowMs()
                var next: Int64?
                do {
                    let due = try await state.db.read { conn in try conn.dueDeliveries(now: now, limit: 20) }
                    for d in due { await deliver(d) }
                    if due.count == 20 { continue }
                    next = try await state.db.read { conn in try conn.nextDeliveryTime() }
                } catch {
                    state.logger.error("outbox failed", metadata: ["error": "\(error)"])
                }
                let deadline = min(next ?? now + 60_000, now + 60_000)
                if deadline > now || next == nil { await runtime.alerts.wake.wait(untilMs: deadline, clock: state.clock) }
            }
        } onGracefulShutdown: {
            runtime.alerts.wake.poke()
        }
    }

    func deliver(_ d: Delivery) async {
        let state = runtime.state
        let now = state.clock.nowMs()
        var httpStatus: Int?
        var failure: String?
        do {
            guard let webhook = try await state.db.read({ conn in try conn.webhook(tenantId: d.tenantId, id: d.webhookId) }), webhook.active,
                let ciphertext = try await state.db.read({ conn in try conn.webhookSecret(id: d.webhookId) })
            else {
                try await state.db.write { conn in
                    try conn.recordDelivery(
                        id: d.id, status: .failed, attempts: d.attempts, nextAttemptAt: now, httpStatus: nil, error: "the webhook was removed",
                        deliveredAt: nil)
                }
                return
            }
            let secret = try state.cipher.open(ciphertext, context: "webhook:\(webhook.id)")
            let timestamp = now / 1000
            var request = HTTPClientRequest(url: webhook.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "quotaflow-webhooks")
            request.headers.add(name: "x-quotaflow-event-id", value: d.eventId)
            request.headers.add(name: "idempotency-key", value: d.eventId)
            request.headers.add(name: "x-quotaflow-event-type", value: d.eventType)
            request.headers.add(name: "x-quotaflow-signature", value: Self.signature(secret: secret, timestamp: timestamp, body: d.payload))
            request.body = .bytes(ByteBuffer(string: d.payload))
            let http = try await runtime.clients.client(for: URLTarget(webhook.url), checked: true, use: .whole)
            let response = try await http.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            httpStatus = Int(response.status.code)
            if !(200..<300).contains(response.status.code) { failure = "the endpoint answered \(response.status.code)" }
        } catch {
            // A short message: URLs can carry secrets.
            failure = "the endpoint could not be reached"
        }
        let attempts = d.attempts + 1
        let ok = failure == nil
        runtime.metrics.webhook(ok ? "delivered" : (attempts >= Self.maxAttempts ? "failed" : "retry"))
        let status: DeliveryStatus = ok ? .delivered : (attempts >= Self.maxAttempts ? .failed : .pending)
        let next = ok ? now : now + Self.backoffMs(attempts: attempts - 1)
        let (code, message) = (httpStatus, failure)
        do {
            try await state.db.write { conn in
                try conn.recordDelivery(
                    id: d.id, status: status, attempts: attempts, nextAttemptAt: next, httpStatus: code, error: message, deliveredAt: ok ? now : nil)
            }
        } catch {
            state.logger.error("could not record a delivery", metadata: ["error": "\(error)"])
        }
    }
}
