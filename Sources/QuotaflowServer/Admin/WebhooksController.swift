import Foundation
import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/webhooks`: where alerts are delivered (signed JSON or Slack), with
/// test deliveries and the delivery log.
struct WebhooksController {
    let env: AdminEnvironment
    let cipher: CredentialCipher
    let alerts: Alerts
    let clients: UpstreamClients

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/webhooks", use: createWebhook)
        admin.get("tenants/{tenant_id}/webhooks", use: listWebhooks)
        admin.get("tenants/{tenant_id}/webhooks/{webhook_id}", use: getWebhook)
        admin.patch("tenants/{tenant_id}/webhooks/{webhook_id}", use: updateWebhook)
        admin.delete("tenants/{tenant_id}/webhooks/{webhook_id}", use: deleteWebhook)
        admin.post("tenants/{tenant_id}/webhooks/{webhook_id}/test", use: testWebhook)
        admin.get("tenants/{tenant_id}/webhooks/{webhook_id}/deliveries", use: deliveries)
    }

    static func rep(_ w: Webhook, secret: String? = nil) -> JSONValue {
        .compact([
            ("id", .string(w.id)), ("tenant_id", .string(w.tenantId)), ("project_id", .string(w.projectId)), ("url", .string(w.url)),
            ("format", .string(w.format.rawValue)), ("secret", secret.map(JSONValue.string)), ("secret_hint", .string(w.secretHint)),
            ("active", .bool(w.active)), ("created_at", Rep.time(w.createdAt)), ("updated_at", Rep.time(w.updatedAt)),
        ])
    }

    static let formatField: FieldConverter<WebhookFormat> = Field.enumeration(WebhookFormat.self)

    @Sendable func createWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let body = try await env.body(request)
        let now = env.now
        let secret = "whsec_" + Identifier.random(32)
        let w = try validating { () throws -> Webhook in
            try body.rejectUnknown(["url", "format", "project_id"])
            let projectId = try body.optional("project_id", Field.string(maxLength: 64))
            if let projectId, env.catalog.current.projects[projectId]?.tenantId != tenantId {
                throw FieldError("project_id", "no project '\(projectId)' in this tenant")
            }
            return Webhook(
                id: Identifier.make("wh"), tenantId: tenantId, projectId: projectId, url: try body.required("url", Field.url),
                format: try body.optional("format", Self.formatField) ?? .json, secretHint: "…" + secret.suffix(4), createdAt: now, updatedAt: now)
        }
        let ciphertext = try cipher.seal(secret, context: "webhook:\(w.id)")
        let who = try context.admin
        try await checkEgress(w.url)
        try await env.changes.write { conn in
            try conn.insertWebhook(w, secretCiphertext: ciphertext)
            try env.audit(conn, who, tenant: tenantId, "webhook.create", "webhook", w.id, Self.rep(w))
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
        let tenantId = try context.tenantScope(env.catalog)
        let (limit, after) = (try request.query.limit, try request.query.cursor())
        let rows = try await env.reads.read { conn in try conn.webhooks(tenantId: tenantId, after: after, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map { Self.rep($0.webhook) }, nextCursor: rows.count > limit ? page.last.map { String($0.position) } : nil)
    }

    func loadWebhook(_ tenantId: String, _ context: AppRequestContext) async throws -> Webhook {
        let id = try context.parameters.require("webhook_id")
        guard let w = try await env.reads.read({ conn in try conn.webhook(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("webhook '\(id.prefix(64))'")
        }
        return w
    }

    @Sendable func getWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        return JSONResponse.make(Self.rep(try await loadWebhook(tenantId, context)))
    }

    @Sendable func updateWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let current = try await loadWebhook(tenantId, context)
        let body = try await env.body(request)
        var w = current
        try validating {
            let merged = try ObjectReader(
                JSONMergePatch.apply(
                    .object(body.members),
                    to: ["url": .string(current.url), "format": .string(current.format.rawValue), "active": .bool(current.active)]))
            try merged.rejectUnknown(["url", "format", "active"])
            w.url = try merged.required("url", Field.url)
            w.format = try merged.optional("format", Self.formatField) ?? .json
            w.active = try merged.optional("active", Field.bool) ?? true
        }
        w.updatedAt = env.now
        let who = try context.admin
        if w.url != current.url { try await checkEgress(w.url) }
        try await env.changes.write { [w] conn in
            try conn.updateWebhook(w)
            try env.audit(conn, who, tenant: tenantId, "webhook.update", "webhook", w.id, Rep.diff(Self.rep(current), Self.rep(w)))
        }
        return JSONResponse.make(Self.rep(w))
    }

    @Sendable func deleteWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let w = try await loadWebhook(tenantId, context)
        let who = try context.admin
        try await env.changes.write { conn in
            _ = try conn.deleteWebhook(tenantId: tenantId, id: w.id)
            try env.audit(conn, who, tenant: tenantId, "webhook.delete", "webhook", w.id)
        }
        return Response(status: .noContent)
    }

    @Sendable func testWebhook(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let w = try await loadWebhook(tenantId, context)
        let now = env.now
        let eventId = Identifier.make("evt")
        let payload: JSONValue =
            w.format == .slack
            ? ["text": "Quotaflow: test delivery"]
            : [
                "id": .string(eventId), "type": "webhook.test", "created_at": .string(Timestamp.format(now)), "tenant_id": .string(tenantId),
                "data": [:],
            ]
        try await env.reads.write { conn in
            try conn.enqueueDelivery(tenantId: tenantId, webhookId: w.id, eventId: eventId, eventType: "webhook.test", payload: payload.text, at: now)
        }
        alerts.wake.poke()
        return JSONResponse.make(["event_id": .string(eventId)], status: .accepted)
    }

    static func rep(_ d: Delivery) -> JSONValue {
        [
            "id": .int(d.id), "webhook_id": .string(d.webhookId), "event_id": .string(d.eventId), "event_type": .string(d.eventType),
            "status": .string(d.status.rawValue), "attempts": .int(Int64(d.attempts)),
            "next_attempt_at": Rep.time(d.status == .pending ? d.nextAttemptAt : nil),
            "last_status": .int(d.lastStatus.map { Int64($0) }), "last_error": .string(d.lastError), "created_at": Rep.time(d.createdAt),
            "delivered_at": Rep.time(d.deliveredAt), "payload": .stored(d.payload),
        ]
    }

    @Sendable func deliveries(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let w = try await loadWebhook(tenantId, context)
        let limit = try request.query.limit
        let before = try request.query.cursor()
        let rows = try await env.reads.read { conn in try conn.deliveries(tenantId: tenantId, webhookId: w.id, before: before, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map(Self.rep), nextCursor: rows.count > limit ? page.last.map { String($0.id) } : nil)
    }
}

extension JSONValue {
    static func stored(_ text: String) -> JSONValue { (try? JSONParser.parse(Array(text.utf8))) ?? .string(text) }
}
