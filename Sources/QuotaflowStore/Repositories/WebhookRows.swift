import QuotaflowCore

/// A place alert deliveries go to.
public struct Webhook: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    /// `nil` for tenant-wide webhooks.
    public var projectId: String?
    public var url: String
    public var format: WebhookFormat
    public var secretHint: String
    public var active: Bool
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(
        id: String, tenantId: String, projectId: String?, url: String, format: WebhookFormat, secretHint: String, active: Bool = true,
        createdAt: Int64,
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
    public var status: DeliveryStatus
    public var attempts: Int
    public var nextAttemptAt: Int64
    public var lastStatus: Int?
    public var lastError: String?
    public var createdAt: Int64
    public var deliveredAt: Int64?
}

extension StoreConnection {
    static let webhookColumns = "id, tenant_id, project_id, url, format, secret_hint, active, created_at, updated_at"

    func webhook(from r: Row) throws -> Webhook {
        Webhook(
            id: try r.string("id"), tenantId: try r.string("tenant_id"), projectId: try r.optionalString("project_id"), url: try r.string("url"),
            format: try r.enumeration("format", WebhookFormat.self), secretHint: try r.string("secret_hint"), active: try r.bool("active"),
            createdAt: try r.int("created_at"), updatedAt: try r.int("updated_at"))
    }

    public func insertWebhook(_ w: Webhook, secretCiphertext: [UInt8]) throws {
        try run(
            "INSERT INTO webhooks (\(Self.webhookColumns), secret_ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(w.id), .text(w.tenantId), .text(w.projectId), .text(w.url), .text(w.format.rawValue), .text(w.secretHint), .bool(w.active),
                .int(w.createdAt), .int(w.updatedAt), .blob(secretCiphertext),
            ])
    }

    public func updateWebhook(_ w: Webhook) throws {
        try run(
            "UPDATE webhooks SET url = ?, format = ?, active = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
            [.text(w.url), .text(w.format.rawValue), .bool(w.active), .int(w.updatedAt), .text(w.tenantId), .text(w.id)])
    }

    public func deleteWebhook(tenantId: String, id: String) throws -> Bool {
        try run("DELETE FROM webhooks WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)]) > 0
    }

    public func webhook(tenantId: String, id: String) throws -> Webhook? {
        try queryOne("SELECT \(Self.webhookColumns) FROM webhooks WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
            .map(webhook(from:))
    }

    /// A page of the tenant's webhooks in the order they were made: after position `after`, at most `limit`.
    public func webhooks(tenantId: String, after: Int64?, limit: Int) throws -> [(webhook: Webhook, position: Int64)] {
        try query(
            "SELECT \(Self.webhookColumns), rowid AS position FROM webhooks WHERE tenant_id = ? AND rowid > ? ORDER BY rowid LIMIT ?",
            [.text(tenantId), .int(after ?? 0), .int(Int64(limit))]
        ).map { row in (try webhook(from: row), try row.int("position")) }
    }

    public func webhooks(tenantId: String) throws -> [Webhook] {
        try query("SELECT \(Self.webhookColumns) FROM webhooks WHERE tenant_id = ? ORDER BY created_at, id", [.text(tenantId)]).map(webhook(from:))
    }

    public func webhookSecret(id: String) throws -> [UInt8]? {
        try queryOne("SELECT secret_ciphertext FROM webhooks WHERE id = ?", [.text(id)])?.blob("secret_ciphertext")
    }

    // MARK: outbox

    /// Queues an event for a webhook; the same event id is queued once per webhook.
    public func enqueueDelivery(tenantId: String, webhookId: String, eventId: String, eventType: String, payload: String, at: Int64) throws {
        try run(
            """
            INSERT INTO outbox (tenant_id, webhook_id, event_id, event_type, payload_json, status, attempts, next_attempt_at, created_at) \
            VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING
            """, [.text(tenantId), .text(webhookId), .text(eventId), .text(eventType), .text(payload), .int(at), .int(at)])
    }

    static let deliveryColumns =
        "id, tenant_id, webhook_id, event_id, event_type, payload_json, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at"

    func delivery(from r: Row) throws -> Delivery {
        Delivery(
            id: try r.int("id"), tenantId: try r.string("tenant_id"), webhookId: try r.string("webhook_id"), eventId: try r.string("event_id"),
            eventType: try r.string("event_type"), payload: try r.string("payload_json"), status: try r.enumeration("status", DeliveryStatus.self),
            attempts: Int(try r.int("attempts")), nextAttemptAt: try r.int("next_attempt_at"),
            lastStatus: try r.optionalInt("last_status").map { Int($0) },
            lastError: try r.optionalString("last_error"), createdAt: try r.int("created_at"), deliveredAt: try r.optionalInt("delivered_at"))
    }

    public func dueDeliveries(now: Int64, limit: Int) throws -> [Delivery] {
        try query(
            "SELECT \(Self.deliveryColumns) FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            [.int(now), .int(Int64(limit))]
        ).map(delivery(from:))
    }

    public func nextDeliveryTime() throws -> Int64? {
        try queryOne("SELECT MIN(next_attempt_at) AS next FROM outbox WHERE status = 'pending'")?.optionalInt("next")
    }

    public func recordDelivery(
        id: Int64, status: DeliveryStatus, attempts: Int, nextAttemptAt: Int64, httpStatus: Int?, error: String?, deliveredAt: Int64?
    ) throws {
        try run(
            "UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ? WHERE id = ?",
            [
                .text(status.rawValue), .int(Int64(attempts)), .int(nextAttemptAt), .int(httpStatus.map { Int64($0) }), .text(error),
                .int(deliveredAt),
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
            INSERT INTO alerts_fired (budget_key, period_start, threshold, tenant_id, fired_at, spent_micros, cap_micros) \
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """, [.text(key), .int(periodStart), .int(Int64(threshold)), .text(tenantId), .int(at), .int(spent), .int(cap)]) > 0
    }

    /// Thresholds fired in periods starting at or after `since`, for counters to know what already fired.
    public func firedAlerts(since: Int64) throws -> [FiredAlert] {
        try query("SELECT budget_key, period_start, threshold FROM alerts_fired WHERE period_start >= ?", [.int(since)]).map { r in
            let text = try r.string("budget_key")
            guard let key = BudgetKey(text) else { throw StorageError("budget_key", "is not a budget key: '\(text.prefix(60))'") }
            return FiredAlert(key: key, periodStart: try r.int("period_start"), threshold: Int(try r.int("threshold")))
        }
    }
}

/// A budget threshold that fired in a period.
public struct FiredAlert: Sendable, Equatable {
    public let key: BudgetKey
    public let periodStart: Int64
    public let threshold: Int
}
