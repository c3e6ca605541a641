import QuotaflowCore

extension StoreConnection {
    static let ledgerColumns = """
        seq, request_id, at, started_at, tenant_id, project_id, key_id, seat_id, user_digest, resource_id, pool_id, overflow, provider, \
        wire_format, endpoint, model_requested, model_served, stream, tokens_in, tokens_out, tokens_cached, tokens_cache_write, \
        cost_micros, upstream_cost_micros, reserved_micros, status, reason, flags, overage, overage_project_id, latency_us, ttfb_us, attempts, \
        tool_calls, tokens_cache_write_1h, tokens_reasoning, response_id, route_reason, session_moved_from
        """

    static let insertLedgerHead = """
        INSERT INTO ledger (request_id, at, started_at, tenant_id, project_id, key_id, seat_id, user_digest, resource_id, pool_id, \
        overflow, provider, wire_format, endpoint, model_requested, model_served, stream, tokens_in, tokens_out, tokens_cached, \
        tokens_cache_write, cost_micros, upstream_cost_micros, reserved_micros, status, reason, flags, overage, overage_project_id, \
        latency_us, ttfb_us, attempts, tool_calls, tokens_cache_write_1h, tokens_reasoning, response_id, route_reason, session_moved_from)
        """
    static let ledgerTuple = "(" + Array(repeating: "?", count: 38).joined(separator: ", ") + ")"
    static let insertLedgerSQL = insertLedgerHead + " VALUES " + ledgerTuple

    public func insertLedger(_ e: LedgerEntry) throws {
        try run(Self.insertLedgerSQL, Self.ledgerValues(e))
    }

    /// Several rows: one statement per 200 on PostgreSQL (a round trip each would hold the batch up),
    /// one prepared statement each on SQLite (already as fast).
    public func insertLedger(_ entries: [LedgerEntry]) throws {
        guard dialect == .postgres, entries.count > 1 else {
            for e in entries { try insertLedger(e) }
            return
        }
        var start = 0
        while start < entries.count {
            let part = entries[start..<min(start + 200, entries.count)]
            try run(
                Self.insertLedgerHead + " VALUES " + Array(repeating: Self.ledgerTuple, count: part.count).joined(separator: ", "),
                part.flatMap(Self.ledgerValues))
            start += part.count
        }
    }

    static func ledgerValues(_ e: LedgerEntry) -> [SQLValue] {
        [
            .text(e.requestId), .int(e.at), .int(e.startedAt), .text(e.tenantId), .text(e.projectId), .text(e.keyId), .text(e.seatId),
            .text(e.userDigest), .text(e.resourceId), .text(e.poolId), .bool(e.overflow), .text(e.provider), .text(e.wireFormat.rawValue),
            .text(e.endpoint), .text(e.modelRequested), .text(e.modelServed), .bool(e.stream), .int(e.usage.input), .int(e.usage.output),
            .int(e.usage.cachedInput), .int(e.usage.cacheWrite), .int(e.costMicros), .int(e.upstreamCostMicros), .int(e.reservedMicros),
            .int(Int64(e.status)), .text(e.reason?.rawValue), .text(e.flags.map(\.rawValue).joined(separator: ",")), .text(e.overage?.rawValue),
            .text(e.overageProjectId), .int(e.latencyUs), .int(e.ttfbUs), .int(Int64(e.attempts)), .int(e.usage.serverToolCalls),
            .int(e.usage.cacheWrite1h), .int(e.usage.reasoning), .text(e.responseId), .text(e.routeReason?.rawValue), .text(e.sessionMovedFrom),
        ]
    }

    func ledgerEntry(from r: Row) throws -> LedgerEntry {
        var e = LedgerEntry(
            requestId: try r.string("request_id"), at: try r.int("at"), startedAt: try r.int("started_at"), tenantId: try r.string("tenant_id"),
            projectId: try r.string("project_id"), wireFormat: try r.enumeration("wire_format", WireFormat.self), endpoint: try r.string("endpoint"),
            modelRequested: try r.string("model_requested"), status: Int(try r.int("status")))
        e.seq = try r.int("seq")
        e.keyId = try r.optionalString("key_id")
        e.seatId = try r.optionalString("seat_id")
        e.userDigest = try r.optionalString("user_digest")
        e.resourceId = try r.optionalString("resource_id")
        e.poolId = try r.optionalString("pool_id")
        e.overflow = try r.bool("overflow")
        e.provider = try r.optionalString("provider")
        e.modelServed = try r.optionalString("model_served")
        e.stream = try r.bool("stream")
        e.usage = TokenUsage(
            input: try r.int("tokens_in"), output: try r.int("tokens_out"), cachedInput: try r.int("tokens_cached"),
            cacheWrite: try r.int("tokens_cache_write"), cacheWrite1h: try r.int("tokens_cache_write_1h"), reasoning: try r.int("tokens_reasoning"),
            serverToolCalls: try r.int("tool_calls"))
        e.costMicros = try r.int("cost_micros")
        e.upstreamCostMicros = try r.int("upstream_cost_micros")
        e.reservedMicros = try r.int("reserved_micros")
        e.reason = try r.optionalEnumeration("reason", ReasonCode.self)
        e.flags = try Self.flags(try r.string("flags"))
        e.overage = try r.optionalEnumeration("overage", OverageKind.self)
        e.overageProjectId = try r.optionalString("overage_project_id")
        e.latencyUs = try r.int("latency_us")
        e.ttfbUs = try r.optionalInt("ttfb_us")
        e.attempts = Int(try r.int("attempts"))
        e.responseId = try r.optionalString("response_id")
        e.routeReason = try r.optionalString("route_reason").flatMap(RouteReason.init(rawValue:))
        e.sessionMovedFrom = try r.optionalString("session_moved_from")
        return e
    }

    static func flags(_ text: String) throws(StorageError) -> [LedgerFlag] {
        var out: [LedgerFlag] = []
        for part in text.split(separator: ",") {
            guard let flag = LedgerFlag(rawValue: String(part)) else { throw StorageError("flags", "has the unknown flag '\(part.prefix(40))'") }
            out.append(flag)
        }
        return out
    }

    public struct LedgerFilter: Sendable {
        public var projectId: String?
        public var keyId: String?
        public var seatId: String?
        public var resourceId: String?
        public var model: String?
        public var status: Int?
        public var reason: String?
        public var from: Int64?
        public var to: Int64?

        public init() {}
    }

    func ledgerWhere(tenantId: String, _ f: LedgerFilter) -> (String, [SQLValue]) {
        var sql = "tenant_id = ?"
        var args: [SQLValue] = [.text(tenantId)]
        func add(_ clause: String, _ v: SQLValue?) {
            guard let v, v != .null else { return }
            sql += " AND \(clause)"
            args.append(v)
        }
        add("project_id = ?", .text(f.projectId))
        add("key_id = ?", .text(f.keyId))
        add("seat_id = ?", .text(f.seatId))
        add("resource_id = ?", .text(f.resourceId))
        if let m = f.model {
            sql += " AND (model_requested = ? OR model_served = ?)"
            args += [.text(m), .text(m)]
        }
        add("status = ?", f.status.map { .int(Int64($0)) })
        add("reason = ?", .text(f.reason))
        add("at >= ?", .int(f.from))
        add("at < ?", .int(f.to))
        return (sql, args)
    }

    /// Newest first, after the `before` sequence number.
    public func ledger(tenantId: String, filter: LedgerFilter, before: Int64?, limit: Int) throws -> [LedgerEntry] {
        let (clause, args) = ledgerWhere(tenantId: tenantId, filter)
        return try query(
            "SELECT \(Self.ledgerColumns) FROM ledger WHERE \(clause) AND seq < ? ORDER BY seq DESC LIMIT ?",
            args + [.int(before ?? Int64.max), .int(Int64(limit))]
        ).map(ledgerEntry(from:))
    }

    public func ledgerEntry(requestId: String) throws -> LedgerEntry? {
        try queryOne("SELECT \(Self.ledgerColumns) FROM ledger WHERE request_id = ?", [.text(requestId)]).map(ledgerEntry(from:))
    }

    /// Ledger rows after `seq` in order, a page at a time (for streamed exports).
    public func ledgerPage(tenantId: String, from: Int64, to: Int64, afterSeq: Int64, limit: Int) throws -> [LedgerEntry] {
        try query(
            "SELECT \(Self.ledgerColumns) FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ? AND seq > ? ORDER BY seq LIMIT ?",
            [.text(tenantId), .int(from), .int(to), .int(afterSeq), .int(Int64(limit))]
        ).map(ledgerEntry(from:))
    }

    /// The rows that counters are recomputed from, since `since` (one tenant's or all), oldest first.
    public func forEachCharge(since: Int64, tenantId: String?, _ body: (LedgerCharge) throws -> Void) throws {
        var sql = """
            SELECT at, tenant_id, project_id, key_id, seat_id, resource_id, overflow, overage, overage_project_id, cost_micros, \
            upstream_cost_micros FROM ledger WHERE at >= ?
            """
        var args: [SQLValue] = [.int(since)]
        if let tenantId {
            sql += " AND tenant_id = ?"
            args.append(.text(tenantId))
        }
        try forEach(sql, args) { r in
            try body(
                LedgerCharge(
                    at: try r.int("at"), tenantId: try r.string("tenant_id"), projectId: try r.string("project_id"),
                    keyId: try r.optionalString("key_id"),
                    seatId: try r.optionalString("seat_id"), resourceId: try r.optionalString("resource_id"), overflow: try r.bool("overflow"),
                    overage: try r.optionalEnumeration("overage", OverageKind.self), overageProjectId: try r.optionalString("overage_project_id"),
                    costMicros: try r.int("cost_micros"), upstreamCostMicros: try r.int("upstream_cost_micros")))
        }
    }
}

extension StoreConnection {
    /// Who holds a stored response: the resource that created it for this tenant and key (or seat),
    /// and the model it was asked for. `nil` for an unknown id, and for one another tenant or key
    /// created (the caller cannot tell those apart).
    public func responseOwner(responseId: String, tenantId: String, keyId: String?, seatId: String?) throws -> (resourceId: String, model: String)? {
        let rows = try query(
            """
            SELECT resource_id, model_requested FROM ledger WHERE response_id = ? AND tenant_id = ? \
            AND COALESCE(key_id, '') = ? AND COALESCE(seat_id, '') = ? AND resource_id IS NOT NULL ORDER BY seq LIMIT 1
            """, [.text(responseId), .text(tenantId), .text(keyId ?? ""), .text(seatId ?? "")])
        guard let row = rows.first else { return nil }
        return (try row.string("resource_id"), try row.string("model_requested"))
    }
}
