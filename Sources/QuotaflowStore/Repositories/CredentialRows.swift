import QuotaflowCore

/// An OAuth credential's secrets (encrypted) and refresh state. `version` is bumped by every write
/// of the secrets; a refresh first claims the row at its version, so two processes never spend one
/// refresh token, and stores its result only if the version and the claim are still its own.
public struct OAuthRow: Sendable, Equatable {
    public var resourceId: String
    public var tenantId: String
    public var version: Int64
    public var refreshCiphertext: [UInt8]?
    public var clientSecretCiphertext: [UInt8]?
    public var accessCiphertext: [UInt8]?
    public var accessExpiresAt: Int64?
    public var claimOwner: String?
    public var claimUntil: Int64?
    public var failures: Int64
    public var nextAttemptAt: Int64?
    public var lastError: String
    public var refreshedAt: Int64?
    public var refreshCount: Int64
    public var updatedAt: Int64

    public init(
        resourceId: String, tenantId: String, version: Int64 = 1, refreshCiphertext: [UInt8]?, clientSecretCiphertext: [UInt8]?,
        accessCiphertext: [UInt8]? = nil, accessExpiresAt: Int64? = nil, claimOwner: String? = nil, claimUntil: Int64? = nil, failures: Int64 = 0,
        nextAttemptAt: Int64? = nil, lastError: String = "", refreshedAt: Int64? = nil, refreshCount: Int64 = 0, updatedAt: Int64
    ) {
        self.resourceId = resourceId
        self.tenantId = tenantId
        self.version = version
        self.refreshCiphertext = refreshCiphertext
        self.clientSecretCiphertext = clientSecretCiphertext
        self.accessCiphertext = accessCiphertext
        self.accessExpiresAt = accessExpiresAt
        self.claimOwner = claimOwner
        self.claimUntil = claimUntil
        self.failures = failures
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.refreshedAt = refreshedAt
        self.refreshCount = refreshCount
        self.updatedAt = updatedAt
    }
}

/// What a refresh obtained.
public struct OAuthRefreshResult: Sendable {
    public var accessCiphertext: [UInt8]
    public var expiresAt: Int64
    /// A rotated refresh token, or `nil` when the endpoint kept the old one.
    public var refreshCiphertext: [UInt8]?

    public init(accessCiphertext: [UInt8], expiresAt: Int64, refreshCiphertext: [UInt8]?) {
        self.accessCiphertext = accessCiphertext
        self.expiresAt = expiresAt
        self.refreshCiphertext = refreshCiphertext
    }
}

extension StoreConnection {
    static let oauthColumns = """
        resource_id, tenant_id, version, refresh_ciphertext, client_secret_ciphertext, access_ciphertext, access_expires_at, claim_owner, \
        claim_until, failures, next_attempt_at, last_error, refreshed_at, refresh_count, updated_at
        """

    func oauthRow(from r: Row) throws -> OAuthRow {
        OAuthRow(
            resourceId: try r.string("resource_id"), tenantId: try r.string("tenant_id"), version: try r.int("version"),
            refreshCiphertext: try r.blob("refresh_ciphertext"), clientSecretCiphertext: try r.blob("client_secret_ciphertext"),
            accessCiphertext: try r.blob("access_ciphertext"), accessExpiresAt: try r.optionalInt("access_expires_at"),
            claimOwner: try r.optionalString("claim_owner"), claimUntil: try r.optionalInt("claim_until"), failures: try r.int("failures"),
            nextAttemptAt: try r.optionalInt("next_attempt_at"), lastError: try r.string("last_error"),
            refreshedAt: try r.optionalInt("refreshed_at"),
            refreshCount: try r.int("refresh_count"), updatedAt: try r.int("updated_at"))
    }

    public func insertOAuth(_ o: OAuthRow) throws {
        try run(
            "INSERT INTO resource_oauth (\(Self.oauthColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(o.resourceId), .text(o.tenantId), .int(o.version), o.refreshCiphertext.map { .blob($0) } ?? .null,
                o.clientSecretCiphertext.map { .blob($0) } ?? .null, o.accessCiphertext.map { .blob($0) } ?? .null, .int(o.accessExpiresAt),
                .text(o.claimOwner), .int(o.claimUntil), .int(o.failures), .int(o.nextAttemptAt), .text(o.lastError), .int(o.refreshedAt),
                .int(o.refreshCount), .int(o.updatedAt),
            ])
    }

    public func oauth(resourceId: String) throws -> OAuthRow? {
        try queryOne("SELECT \(Self.oauthColumns) FROM resource_oauth WHERE resource_id = ?", [.text(resourceId)]).map(oauthRow(from:))
    }

    public func allOAuth() throws -> [OAuthRow] {
        try query("SELECT \(Self.oauthColumns) FROM resource_oauth").map(oauthRow(from:))
    }

    /// Claims the right to spend the refresh token of `version` until `until`; `false` when the
    /// version moved on or another process holds an unexpired claim.
    public func claimOAuthRefresh(resourceId: String, version: Int64, owner: String, until: Int64, now: Int64) throws -> Bool {
        try run(
            """
            UPDATE resource_oauth SET claim_owner = ?, claim_until = ? WHERE resource_id = ? AND version = ? \
            AND (claim_owner IS NULL OR claim_until < ? OR claim_owner = ?)
            """, [.text(owner), .int(until), .text(resourceId), .int(version), .int(now), .text(owner)]) == 1
    }

    /// Stores a refresh's result and bumps the version, if the row is still at `version` and
    /// claimed by `owner` (or, with `owner` nil, claimed by nobody); `false` otherwise (nothing is written).
    public func storeOAuthRefresh(resourceId: String, version: Int64, owner: String?, result: OAuthRefreshResult, now: Int64) throws -> Bool {
        try run(
            """
            UPDATE resource_oauth SET version = version + 1, access_ciphertext = ?, access_expires_at = ?, \
            refresh_ciphertext = COALESCE(?, refresh_ciphertext), claim_owner = NULL, claim_until = NULL, failures = 0, \
            next_attempt_at = NULL, last_error = '', refreshed_at = ?, refresh_count = refresh_count + 1, updated_at = ? \
            WHERE resource_id = ? AND version = ? AND (claim_owner = ? OR (CAST(? AS TEXT) IS NULL AND (claim_owner IS NULL OR claim_until < ?)))
            """,
            [
                .blob(result.accessCiphertext), .int(result.expiresAt), result.refreshCiphertext.map { .blob($0) } ?? .null, .int(now), .int(now),
                .text(resourceId), .int(version), .text(owner), .text(owner), .int(now),
            ]) == 1
    }

    /// Records a failed refresh and releases the claim; the next attempt waits until `nextAttemptAt`.
    public func failOAuthRefresh(resourceId: String, version: Int64, owner: String, error: String, nextAttemptAt: Int64, now: Int64) throws {
        try run(
            """
            UPDATE resource_oauth SET claim_owner = NULL, claim_until = NULL, failures = failures + 1, next_attempt_at = ?, last_error = ?, \
            updated_at = ? WHERE resource_id = ? AND version = ? AND claim_owner = ?
            """, [.int(nextAttemptAt), .text(String(error.prefix(500))), .int(now), .text(resourceId), .int(version), .text(owner)])
    }

    /// An admin's new secrets: the version moves on, the access token and failures are cleared.
    public func replaceOAuthSecrets(resourceId: String, refreshCiphertext: [UInt8]?, clientSecretCiphertext: [UInt8]?, now: Int64) throws {
        try run(
            """
            UPDATE resource_oauth SET version = version + 1, refresh_ciphertext = COALESCE(?, refresh_ciphertext), \
            client_secret_ciphertext = COALESCE(?, client_secret_ciphertext), access_ciphertext = NULL, access_expires_at = NULL, \
            claim_owner = NULL, claim_until = NULL, failures = 0, next_attempt_at = NULL, last_error = '', updated_at = ? WHERE resource_id = ?
            """,
            [refreshCiphertext.map { .blob($0) } ?? .null, clientSecretCiphertext.map { .blob($0) } ?? .null, .int(now), .text(resourceId)])
    }

    // MARK: usage windows

    /// The latest windows of one credential (`holder` `""` for the resource's own).
    public func saveWindows(tenantId: String, resourceId: String, holder: String, set: WindowSet, sample: Bool) throws {
        try run(
            """
            INSERT INTO credential_windows (resource_id, holder, tenant_id, readings_json, status, observed_at) VALUES (?, ?, ?, ?, ?, ?) \
            ON CONFLICT (resource_id, holder) DO UPDATE SET readings_json = excluded.readings_json, status = excluded.status, \
            observed_at = excluded.observed_at
            """,
            [.text(resourceId), .text(holder), .text(tenantId), .text(set.storedText), .text(set.status), .int(set.observedAt)])
        guard sample else { return }
        for r in set.readings {
            try run(
                """
                INSERT INTO window_samples (tenant_id, resource_id, holder, window_seconds, scope, utilization, resets_at, rejected, observed_at) \
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(tenantId), .text(resourceId), .text(holder), .int(r.seconds), .text(r.scope), .double(r.utilization), .int(r.resetsAt),
                    .bool(r.rejected), .int(set.observedAt),
                ])
        }
    }

    /// Every credential's latest windows, to restore at start.
    public func allWindows() throws -> [(tenantId: String, resourceId: String, holder: String, set: WindowSet)] {
        try query("SELECT tenant_id, resource_id, holder, readings_json, status, observed_at FROM credential_windows").map { row in
            var set = try WindowSet.decode(try row.json("readings_json"), column: "readings_json")
            set.status = try row.optionalString("status")
            set.observedAt = try row.int("observed_at")
            return (try row.string("tenant_id"), try row.string("resource_id"), try row.string("holder"), set)
        }
    }

    public func windows(resourceId: String) throws -> [(holder: String, set: WindowSet)] {
        try query(
            "SELECT holder, readings_json, status, observed_at FROM credential_windows WHERE resource_id = ? ORDER BY holder", [.text(resourceId)]
        ).map { row in
            var set = try WindowSet.decode(try row.json("readings_json"), column: "readings_json")
            set.status = try row.optionalString("status")
            set.observedAt = try row.int("observed_at")
            return (try row.string("holder"), set)
        }
    }

    public func appendLimitHit(tenantId: String, resourceId: String, holder: String, at: Int64, until: Int64?, windows: String, cause: String) throws
    {
        try run(
            "INSERT INTO limit_hits (tenant_id, resource_id, holder, at, until, windows, cause) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(tenantId), .text(resourceId), .text(holder), .int(at), .int(until), .text(windows), .text(cause)])
    }
}

/// Stored as an array of readings (the status and time have columns of their own).
extension WindowSet {
    var storedText: String { JSONWriter.string(stored) }

    var stored: JSONValue {
        .array(
            readings.map {
                .compact([
                    ("seconds", .int($0.seconds)), ("scope", .string($0.scope)), ("utilization", .double($0.utilization)),
                    ("resets_at", $0.resetsAt.map(JSONValue.int)), ("rejected", .bool($0.rejected)),
                ])
            })
    }

    static func decode(_ value: JSONValue, column: String) throws(StorageError) -> WindowSet {
        guard case .array(let items) = value else { throw StorageError(column, "must be an array") }
        var readings: [WindowReading] = []
        for (i, item) in items.enumerated() {
            let r = try StoredReader(item, path: "\(column)[\(i)]")
            readings.append(
                WindowReading(
                    seconds: try r.required("seconds", Stored.nonNegative), scope: try r.required("scope", Stored.string),
                    utilization: try r.required("utilization", Stored.double), resetsAt: try r.optional("resets_at", Stored.int),
                    rejected: try r.required("rejected", Stored.bool)))
        }
        return WindowSet(readings: readings)
    }
}

extension StoreConnection {
    /// Window samples of a tenant in `[from, to)`, optionally of one resource (the index on
    /// tenant, resource and time serves both).
    public func windowSamples(tenantId: String, resourceId: String?, from: Int64, to: Int64) throws -> [WindowUsage.Sample] {
        var sql = """
            SELECT resource_id, holder, window_seconds, scope, utilization, resets_at, rejected, observed_at FROM window_samples \
            WHERE tenant_id = ? AND observed_at >= ? AND observed_at < ?
            """
        var args: [SQLValue] = [.text(tenantId), .int(from), .int(to)]
        if let resourceId {
            sql += " AND resource_id = ?"
            args.append(.text(resourceId))
        }
        return try query(sql, args).map(windowSample(from:))
    }

    /// Each window period's peak in `[from, to)`: one row per credential, window and reset, for the
    /// reports that need only the peaks (utilization, savings), aggregated by SQLite.
    public func windowPeaks(tenantId: String, from: Int64, to: Int64) throws -> [WindowUsage.Sample] {
        try query(
            """
            SELECT resource_id, holder, window_seconds, scope, resets_at, MAX(utilization) AS utilization, MAX(rejected) AS rejected, \
            MAX(observed_at) AS observed_at FROM window_samples WHERE tenant_id = ? AND observed_at >= ? AND observed_at < ? \
            AND resets_at IS NOT NULL GROUP BY resource_id, holder, window_seconds, scope, resets_at
            """, [.text(tenantId), .int(from), .int(to)]
        ).map(windowSample(from:))
    }

    func windowSample(from r: Row) throws -> WindowUsage.Sample {
        let u: Double
        switch try r.value("utilization") {
        case .double(let d): u = d
        case .int(let i): u = Double(i)
        default: throw StorageError("utilization", "must be a number")
        }
        return WindowUsage.Sample(
            resourceId: try r.string("resource_id"), holder: try r.string("holder"), seconds: try r.int("window_seconds"),
            scope: try r.string("scope"),
            utilization: u, resetsAt: try r.optionalInt("resets_at"), rejected: try r.bool("rejected"), at: try r.int("observed_at"))
    }

    /// Deletes window samples and limit hits older than `before`, at most `batch` of each.
    public func pruneWindowHistory(before: Int64, batch: Int) throws {
        try run(
            "DELETE FROM window_samples WHERE id IN (SELECT id FROM window_samples WHERE observed_at < ? LIMIT ?)",
            [.int(before), .int(Int64(batch))])
        try run("DELETE FROM limit_hits WHERE id IN (SELECT id FROM limit_hits WHERE at < ? LIMIT ?)", [.int(before), .int(Int64(batch))])
    }

    public func limitHits(tenantId: String, resourceId: String?, from: Int64, to: Int64) throws -> [WindowUsage.LimitHit] {
        var sql = "SELECT resource_id, holder, at, until, windows, cause FROM limit_hits WHERE tenant_id = ? AND at >= ? AND at < ?"
        var args: [SQLValue] = [.text(tenantId), .int(from), .int(to)]
        if let resourceId {
            sql += " AND resource_id = ?"
            args.append(.text(resourceId))
        }
        return try query(sql + " ORDER BY at", args).map { r in
            WindowUsage.LimitHit(
                resourceId: try r.string("resource_id"), holder: try r.string("holder"), at: try r.int("at"), until: try r.optionalInt("until"),
                windows: try r.string("windows"), cause: try r.string("cause"))
        }
    }
}
