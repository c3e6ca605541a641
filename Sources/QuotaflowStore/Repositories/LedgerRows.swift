import QuotaflowCore

extension SQLiteConnection {
    static let ledgerColumns = """
        seq, request_id, at, started_at, tenant_id, project_id, key_id, seat_id, user_digest, resource_id, pool_id, overflow, provider, \
        wire_format, endpoint, model_requested, model_served, stream, tokens_in, tokens_out, tokens_cached, tokens_cache_write, \
        cost_micros, upstream_cost_micros, reserved_micros, status, reason, flags, overage, overage_project_id, latency_us, ttfb_us, attempts, \
        tool_calls
        """

    static let insertLedgerSQL = """
        INSERT INTO ledger (request_id, at, started_at, tenant_id, project_id, key_id, seat_id, user_digest, resource_id, pool_id, \
        overflow, provider, wire_format, endpoint, model_requested, model_served, stream, tokens_in, tokens_out, tokens_cached, \
        tokens_cache_write, cost_micros, upstream_cost_micros, reserved_micros, status, reason, flags, overage, overage_project_id, \
        latency_us, ttfb_us, attempts, tool_calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
        ?, ?, ?)
        """

    public func insertLedger(_ e: LedgerEntry) throws {
        let statement = try prepare(Self.insertLedgerSQL)
        try statement.bind([
            .text(e.requestId), .int(e.at), .int(e.startedAt), .text(e.tenantId), .text(e.projectId), .text(e.keyId), .text(e.seatId),
            .text(e.userDigest), .text(e.resourceId), .text(e.poolId), .bool(e.overflow), .text(e.provider), .text(e.wireFormat.rawValue),
            .text(e.endpoint), .text(e.modelRequested), .text(e.modelServed), .bool(e.stream), .int(e.usage.input), .int(e.usage.output),
            .int(e.usage.cachedInput), .int(e.usage.cacheWrite), .int(e.costMicros), .int(e.upstreamCostMicros), .int(e.reservedMicros),
            .int(Int64(e.status)), .text(e.reason), .text(e.flags.joined(separator: ",")), .text(e.overage), .text(e.overageProjectId),
            .int(e.latencyUs), .int(e.ttfbUs), .int(Int64(e.attempts)), .int(e.usage.serverToolCalls),
        ])
        while try statement.step() {}
    }

    func ledgerEntry(from r: Row) -> LedgerEntry {
        var e = LedgerEntry(
            requestId: r.string(1), at: r.int(2), startedAt: r.int(3), tenantId: r.string(4), projectId: r.string(5),
            wireFormat: WireFormat(rawValue: r.string(13)) ?? .openai, endpoint: r.string(14), modelRequested: r.string(15),
            status: Int(r.int(25)))
        e.seq = r.int(0)
        e.keyId = r.optionalString(6)
        e.seatId = r.optionalString(7)
        e.userDigest = r.optionalString(8)
        e.resourceId = r.optionalString(9)
        e.poolId = r.optionalString(10)
        e.overflow = r.bool(11)
        e.provider = r.optionalString(12)
        e.modelServed = r.optionalString(16)
        e.stream = r.bool(17)
        e.usage = TokenUsage(input: r.int(18), output: r.int(19), cachedInput: r.int(20), cacheWrite: r.int(21), serverToolCalls: r.int(33))
        e.costMicros = r.int(22)
        e.upstreamCostMicros = r.int(23)
        e.reservedMicros = r.int(24)
        e.reason = r.optionalString(26)
        e.flags = r.string(27).split(separator: ",").map(String.init)
        e.overage = r.optionalString(28)
        e.overageProjectId = r.optionalString(29)
        e.latencyUs = r.int(30)
        e.ttfbUs = r.optionalInt(31)
        e.attempts = Int(r.int(32))
        return e
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

    /// Oldest first, streaming, for exports of any size.
    public func forEachLedger(tenantId: String, filter: LedgerFilter, _ body: (LedgerEntry) throws -> Void) throws {
        let (clause, args) = ledgerWhere(tenantId: tenantId, filter)
        try forEach("SELECT \(Self.ledgerColumns) FROM ledger WHERE \(clause) ORDER BY seq", args) { try body(ledgerEntry(from: $0)) }
    }

    public func ledgerEntry(requestId: String) throws -> LedgerEntry? {
        try queryOne("SELECT \(Self.ledgerColumns) FROM ledger WHERE request_id = ?", [.text(requestId)]).map(ledgerEntry(from:))
    }
}
