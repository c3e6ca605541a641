import QuotaflowCore

/// A place alert deliveries go to.
public struct Webhook: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    /// `nil` for tenant-wide webhooks.
    public var projectId: String?
    public var url: String
    /// `json` (generic) or `slack` (a Slack-compatible `text` payload).
    public var format: String
    public var secretHint: String
    public var active: Bool
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(
        id: String, tenantId: String, projectId: String?, url: String, format: String, secretHint: String, active: Bool = true, createdAt: Int64,
        updatedAt: Int64
    ) {
        self.id = id
        self.tenantId = tenantId
        self.projectId = projectId
        self.url = url
        self.format = format
        self.secretHint = secretHint
        self.active = active
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One queued or finished delivery.
public struct Delivery: Sendable, Equatable {
    public var id: Int64
    public var tenantId: String
    public var webhookId: String
    public var eventId: String
    public var eventType: String
    public var payload: String
    public var status: String
    public var attempts: Int
    public var nextAttemptAt: Int64
    public var lastStatus: Int?
    public var lastError: String?
    public var createdAt: Int64
    public var deliveredAt: Int64?
}

extension SQLiteConnection {
    static let webhookColumns = "id, tenant_id, project_id, url, format, secret_hint, active, created_at, updated_at"

    func webhook(from r: Row) -> Webhook {
        Webhook(
            id: r.string(0), tenantId: r.string(1), projectId: r.optionalString(2), url: r.string(3), format: r.string(4), secretHint: r.string(5),
            active: r.bool(6), createdAt: r.int(7), updatedAt: r.int(8))
    }

    public func insertWebhook(_ w: Webhook, secretCiphertext: [UInt8]) throws {
        try run(
            "INSERT INTO webhooks (\(Self.webhookColumns), secret_ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(w.id), .text(w.tenantId), .text(w.projectId), .text(w.url), .text(w.format), .text(w.secretHint), .bool(w.active),
                .int(w.createdAt), .int(w.updatedAt), .blob(secretCiphertext),
            ])
    }

    public func updateWebhook(_ w: Webhook) throws {
        try run(
            "UPDATE webhooks SET url = ?, format = ?, active = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
            [.text(w.url), .text(w.format), .bool(w.active), .int(w.updatedAt), .text(w.tenantId), .text(w.id)])
    }

    public func deleteWebhook(tenantId: String, id: String) throws -> Bool {
        try run("DELETE FROM webhooks WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)]) > 0
    }

    public func webhook(tenantId: String, id: String) throws -> Webhook? {
        try queryOne("SELECT \(Self.webhookColumns) FROM webhooks WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
            .map(webhook(from:))
    }

    public func webhooks(tenantId: String) throws -> [Webhook] {
        try query("SELECT \(Self.webhookColumns) FROM webhooks WHERE tenant_id = ? ORDER BY created_at, id", [.text(tenantId)]).map(webhook(from:))
    }

    public func webhookSecret(id: String) throws -> [UInt8]? {
        try queryOne("SELECT secret_ciphertext FROM webhooks WHERE id = ?", [.text(id)])?.blob(0)
    }

    // MARK: outbox

    /// Queues an event for a webhook; the same event id is queued once per webhook.
    public func enqueueDelivery(tenantId: String, webhookId: String, eventId: String, eventType: String, payload: String, at: Int64) throws {
        try run(
            """
            INSERT OR IGNORE INTO outbox (tenant_id, webhook_id, event_id, event_type, payload_json, status, attempts, next_attempt_at, created_at) \
            VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
            """, [.text(tenantId), .text(webhookId), .text(eventId), .text(eventType), .text(payload), .int(at), .int(at)])
    }

    static let deliveryColumns =
        "id, tenant_id, webhook_id, event_id, event_type, payload_json, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at"

    func delivery(from r: Row) -> Delivery {
        Delivery(
            id: r.int(0), tenantId: r.string(1), webhookId: r.string(2), eventId: r.string(3), eventType: r.string(4), payload: r.string(5),
            status: r.string(6), attempts: Int(r.int(7)), nextAttemptAt: r.int(8), lastStatus: r.optionalInt(9).map { Int($0) },
            lastError: r.optionalString(10), createdAt: r.int(11), deliveredAt: r.optionalInt(12))
    }

    public func dueDeliveries(now: Int64, limit: Int) throws -> [Delivery] {
        try query(
            "SELECT \(Self.deliveryColumns) FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            [.int(now), .int(Int64(limit))]
        ).map(delivery(from:))
    }

    public func nextDeliveryTime() throws -> Int64? {
        try queryOne("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'")?.optionalInt(0)
    }

    public func recordDelivery(id: Int64, status: String, attempts: Int, nextAttemptAt: Int64, httpStatus: Int?, error: String?, deliveredAt: Int64?) throws {
        try run(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ? WHERE id = ?",
            [
                .text(status), .int(Int64(attempts)), .int(nextAttemptAt), .int(httpStatus.map { Int64($0) }), .text(error), .int(deliveredAt),
                .int(id),
            ])
    }

    public func deliveries(tenantId: String, webhookId: String?, before: Int64?, limit: Int) throws -> [Delivery] {
        var sql = "SELECT \(Self.deliveryColumns) FROM outbox WHERE tenant_id = ? AND id < ?"
        var args: [SQLValue] = [.text(tenantId), .int(before ?? Int64.max)]
        if let webhookId {
            sql += " AND webhook_id = ?"
            args.append(.text(webhookId))
        }
        return try query(sql + " ORDER BY id DESC LIMIT ?", args + [.int(Int64(limit))]).map(delivery(from:))
    }

    // MARK: fired alerts

    /// Records that a threshold fired for a period; `false` if it already had.
    public func recordAlert(key: String, periodStart: Int64, threshold: Int, tenantId: String, at: Int64, spent: Int64, cap: Int64) throws -> Bool {
        try run(
            """
            INSERT OR IGNORE INTO alerts_fired (budget_key, period_start, threshold, tenant_id, fired_at, spent_micros, cap_micros) \
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [.text(key), .int(periodStart), .int(Int64(threshold)), .text(tenantId), .int(at), .int(spent), .int(cap)]) > 0
    }

    public func firedAlerts(tenantId: String, since: Int64) throws -> [(String, Int64, Int, Int64)] {
        try query(
            "SELECT budget_key, period_start, threshold, fired_at FROM alerts_fired WHERE tenant_id = ? AND period_start >= ? ORDER BY fired_at",
            [.text(tenantId), .int(since)]
        ).map { ($0.string(0), $0.int(1), Int($0.int(2)), $0.int(3)) }
    }
}
