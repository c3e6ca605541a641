import Foundation
import Hummingbird
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore

/// Budgets (status and reconciliation), approvals, and alert webhooks.
struct BudgetsController {
    let kit: AdminKit
    let engine: AdmissionEngine
    let ledger: LedgerWriter
    let alerts: Alerts
    let clients: UpstreamClients
    var state: AppState { kit.state }

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/budgets", use: budgets)
        admin.post("tenants/{tenant_id}/budgets/reconcile", use: reconcile)
        admin.get("tenants/{tenant_id}/approvals", use: listApprovals)
        admin.post("tenants/{tenant_id}/approvals", use: grant)
        admin.get("tenants/{tenant_id}/approvals/{approval_id}", use: getApproval)
        admin.post("tenants/{tenant_id}/approvals/{approval_id}/approve", use: approve)
        admin.post("tenants/{tenant_id}/approvals/{approval_id}/deny", use: deny)
        admin.post("tenants/{tenant_id}/webhooks", use: createWebhook)
        admin.get("tenants/{tenant_id}/webhooks", use: listWebhooks)
        admin.get("tenants/{tenant_id}/webhooks/{webhook_id}", use: getWebhook)
        admin.patch("tenants/{tenant_id}/webhooks/{webhook_id}", use: updateWebhook)
        admin.delete("tenants/{tenant_id}/webhooks/{webhook_id}", use: deleteWebhook)
        admin.post("tenants/{tenant_id}/webhooks/{webhook_id}/test", use: testWebhook)
        admin.get("tenants/{tenant_id}/webhooks/{webhook_id}/deliveries", use: deliveries)
    }

    // MARK: budgets

    /// Every budget of the tenant with its cap, spend, reservations, remaining amount, period and alerts.
    @Sendable func budgets(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let catalog = state.catalog
        let now = state.clock.nowMs()
        var items: [JSONValue] = []
        for key in Self.budgetKeys(tenantId: tenantId, catalog: catalog) {
            guard let (_, projectId, name, thresholds, cap) = alerts.describe(key, catalog: catalog) else { continue }
            let spec = CounterSpec.of(key, catalog: catalog, tenantId: tenantId, projectId: projectId, keyCap: catalog.keysById[Self.keyId(key) ?? ""]?.budgetCapMicros)
            let counter = engine.counterSnapshot(key)
            let period = counter.map { $0.period.end > now ? $0.period : BillingPeriod.containing(now, anchor: spec.anchor) }
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
        for p in catalog.projects.values.filter({ $0.tenantId == tenantId }).sorted(by: { $0.name < $1.name }) {
            keys.append(.project(p.id))
            if p.budget.fallback != nil { keys.append(.projectFallback(p.id)) }
            if p.overflowCapMicros != nil { keys.append(.projectOverflow(p.id)) }
        }
        for k in catalog.keysById.values.filter({ $0.tenantId == tenantId && $0.budgetCapMicros != nil }).sorted(by: { $0.id < $1.id }) {
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
        let tenantId = try context.tenantScope(state)
        let catalog = state.catalog
        let now = state.clock.nowMs()
        let engine = self.engine
        let report = try await ledger.barrier { conn -> JSONValue in
            let counters = engine.allCounters()
            let computed = try conn.recomputeCounters(catalog: catalog, now: now, known: counters, tenantId: tenantId)
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
                "checked": .int(Int64(checked)), "drift": .array(drift), "drift_micros": .int(
                    drift.compactMap { d in d["counter_micros"]?.int64Value.flatMap { c in d["ledger_micros"]?.int64Value.map { abs(c - $0) } } }
                        .reduce(0, +)),
                "at": .string(Timestamp.format(now)),
            ]
        }
        return JSONResponse.make(report)
    }

    // MARK: approvals

    static func rep(_ a: Approval) -> JSONValue {
        [
            "id": .string(a.id), "tenant_id": .string(a.tenantId), "project_id": .string(a.projectId), "key_id": .string(a.keyId),
            "requested_by": .string(a.requestedBy), "model": .string(a.model), "detail": .string(a.detail), "status": .string(a.status.rawValue),
            "requested_at": Rep.time(a.requestedAt), "decided_at": Rep.time(a.decidedAt), "decided_by": .string(a.decidedBy),
            "grant_micros": .int(a.grantMicros), "grant_model": .string(a.grantModel), "grant_until": Rep.time(a.grantUntil), "note": .string(a.note),
        ]
    }

    @Sendable func listApprovals(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let status = try request.query.enumeration("status", Approval.Status.self)
        let list = try await state.db.read { conn in try conn.approvals(tenantId: tenantId, status: status) }
        return JSONResponse.list(list.map(Self.rep))
    }

    @Sendable func getApproval(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        return JSONResponse.make(Self.rep(try await loadApproval(tenantId, try context.parameters.require("approval_id"))))
    }

    func loadApproval(_ tenantId: String, _ id: String) async throws -> Approval {
        guard let a = try await state.db.read({ conn in try conn.approval(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("approval '\(id.prefix(64))'")
        }
        return a
    }

    /// Reads what a grant gives and until when (at most 90 days).
    func readGrant(_ b: ObjectReader, now: Int64) throws -> (micros: Int64?, model: String?, until: Int64, note: String) {
        let micros = try b.optional("grant_micros", Field.micros)
        let model = try b.optional("model", Field.string(maxLength: 200))
        if micros == nil && model == nil { throw FieldError("grant_micros", "give grant_micros, model, or both") }
        if let model, !ModelPattern.isValid(model) { throw FieldError("model", "must be a model name or pattern") }
        let until: Int64
        if let at = try b.optional("until", Field.timestamp) {
            until = at
        } else if let seconds = try b.optional("duration_seconds", Field.int(60...(90 * 86_400))) {
            until = now + seconds * 1000
        } else {
            throw FieldError("until", "give until (a time) or duration_seconds")
        }
        guard until > now, until <= now + 90 * 86_400_000 else { throw FieldError("until", "must be in the next 90 days") }
        return (micros, model, until, try b.optional("note", Field.text) ?? "")
    }

    @Sendable func approve(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        var a = try await loadApproval(tenantId, try context.parameters.require("approval_id"))
        guard a.status == .open else { throw ProblemError.conflict("the approval was already \(a.status.rawValue)") }
        let body = try await kit.body(request)
        let now = kit.now
        let g = try validating {
            try body.rejectUnknown(["grant_micros", "model", "until", "duration_seconds", "note"])
            return try readGrant(body, now: now)
        }
        let who = try context.admin
        a.status = .approved
        a.decidedAt = now
        a.decidedBy = who.actor
        a.grantMicros = g.micros
        a.grantModel = g.model
        a.grantUntil = g.until
        a.note = g.note
        try await state.mutate { [a] conn in
            try conn.updateApproval(a)
            try kit.audit(conn, who, tenant: tenantId, "approval.approve", "approval", a.id, Self.rep(a))
        }
        return JSONResponse.make(Self.rep(a))
    }

    @Sendable func deny(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        var a = try await loadApproval(tenantId, try context.parameters.require("approval_id"))
        guard a.status == .open else { throw ProblemError.conflict("the approval was already \(a.status.rawValue)") }
        let b = try await kit.optionalBody(request)
        let note = try validating { () throws -> String in
            try b?.rejectUnknown(["note"])
            return try b?.optional("note", Field.text) ?? ""
        }
        let who = try context.admin
        a.status = .denied
        a.decidedAt = kit.now
        a.decidedBy = who.actor
        a.note = note
        try await state.mutate { [a] conn in
            try conn.updateApproval(a)
            try kit.audit(conn, who, tenant: tenantId, "approval.deny", "approval", a.id, ["note": .string(note)])
        }
        return JSONResponse.make(Self.rep(a))
    }

    /// An admin grants a temporary increase or model directly, without a request.
    @Sendable func grant(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let body = try await kit.body(request)
        let now = kit.now
        let who = try context.admin
        let (projectId, g) = try validating {
            try body.rejectUnknown(["project_id", "grant_micros", "model", "until", "duration_seconds", "note"])
            let projectId = try body.required("project_id", Field.string(maxLength: 64))
            guard state.catalog.projects[projectId]?.tenantId == tenantId else { throw FieldError("project_id", "no project '\(projectId)' in this tenant") }
            return (projectId, try readGrant(body, now: now))
        }
        let a = Approval(
            id: Identifier.make("apr"), tenantId: tenantId, projectId: projectId, requestedBy: who.actor, detail: "granted directly",
            status: .approved, requestedAt: now, decidedAt: now, decidedBy: who.actor, grantMicros: g.micros, grantModel: g.model,
            grantUntil: g.until, note: g.note)
        try await state.mutate { conn in
            try conn.insertApproval(a)
            try kit.audit(conn, who, tenant: tenantId, "approval.grant", "approval", a.id, Self.rep(a))
        }
        return JSONResponse.make(Self.rep(a), status: .created)
    }

    // MARK: webhooks

    static func rep(_ w: Webhook, secret: String? = nil) -> JSONValue {
        .compact([
            ("id", .string(w.id)), ("tenant_id", .string(w.tenantId)), ("project_id", .string(w.projectId)), ("url", .string(w.url)),
            ("format", .string(w.format.rawValue)), ("secret", secret.map(JSONValue.string)), ("secret_hint", .string(w.secretHint)),
            ("active", .bool(w.active)), ("created_at", Rep.time(w.createdAt)), ("updated_at", Rep.time(w.updatedAt)),
        ])
    }

    static let formatField: FieldConverter<WebhookFormat> = Field.enumeration(WebhookFormat.self)

    @Sendable func createWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let body = try await kit.body(request)
        let now = kit.now
        let secret = "whsec_" + Identifier.random(32)
        let w = try validating { () throws -> Webhook in
            try body.rejectUnknown(["url", "format", "project_id"])
            let projectId = try body.optional("project_id", Field.string(maxLength: 64))
            if let projectId, state.catalog.projects[projectId]?.tenantId != tenantId {
                throw FieldError("project_id", "no project '\(projectId)' in this tenant")
            }
            return Webhook(
                id: Identifier.make("wh"), tenantId: tenantId, projectId: projectId, url: try body.required("url", Field.url),
                format: try body.optional("format", Self.formatField) ?? .json, secretHint: "…" + secret.suffix(4), createdAt: now, updatedAt: now)
        }
        let ciphertext = try state.cipher.seal(secret, context: "webhook:\(w.id)")
        let who = try context.admin
        try await checkEgress(w.url)
        try await state.mutate { conn in
            try conn.insertWebhook(w, secretCiphertext: ciphertext)
            try kit.audit(conn, who, tenant: tenantId, "webhook.create", "webhook", w.id, Self.rep(w))
        }
        return JSONResponse.make(Self.rep(w, secret: secret), status: .created)
    }

    /// Webhook URLs are tenant-set: they must not point at an address the egress policy refuses
    /// (it is checked again on every delivery).
    func checkEgress(_ url: String) async throws {
        do { try await clients.validate(url) } catch {
            throw ProblemError.invalid("url", "\(error.description); webhooks must use a public address")
        }
    }

    @Sendable func listWebhooks(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        return JSONResponse.list(try await state.db.read { conn in try conn.webhooks(tenantId: tenantId) }.map { Self.rep($0) })
    }

    func loadWebhook(_ tenantId: String, _ context: AppRequestContext) async throws -> Webhook {
        let id = try context.parameters.require("webhook_id")
        guard let w = try await state.db.read({ conn in try conn.webhook(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("webhook '\(id.prefix(64))'")
        }
        return w
    }

    @Sendable func getWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        return JSONResponse.make(Self.rep(try await loadWebhook(tenantId, context)))
    }

    @Sendable func updateWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let current = try await loadWebhook(tenantId, context)
        let body = try await kit.body(request)
        var w = current
        try validating {
            let merged = try ObjectReader(
                JSONMergePatch.apply(.object(body.members), to: ["url": .string(current.url), "format": .string(current.format.rawValue), "active": .bool(current.active)]))
            try merged.rejectUnknown(["url", "format", "active"])
            w.url = try merged.required("url", Field.url)
            w.format = try merged.optional("format", Self.formatField) ?? .json
            w.active = try merged.optional("active", Field.bool) ?? true
        }
        w.updatedAt = kit.now
        let who = try context.admin
        if w.url != current.url { try await checkEgress(w.url) }
        try await state.mutate { [w] conn in
            try conn.updateWebhook(w)
            try kit.audit(conn, who, tenant: tenantId, "webhook.update", "webhook", w.id, Rep.diff(Self.rep(current), Self.rep(w)))
        }
        return JSONResponse.make(Self.rep(w))
    }

    @Sendable func deleteWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let w = try await loadWebhook(tenantId, context)
        let who = try context.admin
        try await state.mutate { conn in
            _ = try conn.deleteWebhook(tenantId: tenantId, id: w.id)
            try kit.audit(conn, who, tenant: tenantId, "webhook.delete", "webhook", w.id)
        }
        return Response(status: .noContent)
    }

    @Sendable func testWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let w = try await loadWebhook(tenantId, context)
        let now = kit.now
        let eventId = Identifier.make("evt")
        let payload: JSONValue =
            w.format == .slack
            ? ["text": "Quotaflow: test delivery"]
            : ["id": .string(eventId), "type": "webhook.test", "created_at": .string(Timestamp.format(now)), "tenant_id": .string(tenantId), "data": [:]]
        try await state.db.write { conn in
            try conn.enqueueDelivery(tenantId: tenantId, webhookId: w.id, eventId: eventId, eventType: "webhook.test", payload: payload.text, at: now)
        }
        alerts.wake.poke()
        return JSONResponse.make(["event_id": .string(eventId)], status: .accepted)
    }

    static func rep(_ d: Delivery) -> JSONValue {
        [
            "id": .int(d.id), "webhook_id": .string(d.webhookId), "event_id": .string(d.eventId), "event_type": .string(d.eventType),
            "status": .string(d.status.rawValue), "attempts": .int(Int64(d.attempts)), "next_attempt_at": Rep.time(d.status == .pending ? d.nextAttemptAt : nil),
            "last_status": .int(d.lastStatus.map { Int64($0) }), "last_error": .string(d.lastError), "created_at": Rep.time(d.createdAt),
            "delivered_at": Rep.time(d.deliveredAt), "payload": .stored(d.payload),
        ]
    }

    @Sendable func deliveries(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let w = try await loadWebhook(tenantId, context)
        let limit = try request.query.limit
        let before = try request.query.cursor()
        let rows = try await state.db.read { conn in try conn.deliveries(tenantId: tenantId, webhookId: w.id, before: before, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map(Self.rep), nextCursor: rows.count > limit ? page.last.map { String($0.id) } : nil)
    }
}

extension JSONValue {
    static func stored(_ text: String) -> JSONValue { (try? JSONParser.parse(Array(text.utf8))) ?? .string(text) }
}
