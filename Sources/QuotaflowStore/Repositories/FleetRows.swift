import Foundation
import QuotaflowCore

/// The fleet's shared state on PostgreSQL (migration `postgres/0003_fleet.sql`): budget counters,
/// reservations, replicas' heartbeats and the catalog change log.
extension StoreConnection {
    /// The database's clock in milliseconds: heartbeats and leases are compared on one clock.
    public func databaseNowMs() throws -> Int64 {
        try queryOne("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT AS now", []).map { try $0.int("now") } ?? 0
    }

    /// Holds `levels` (sorted here, so every replica locks counters in one order) for reservation
    /// `r`, in one statement: all of them or none. Returns each level's spend (in `levels`' order);
    /// throws `FleetRefusal` naming the first level (in `levels`' order) that does not fit.
    public func fleetHold(_ r: FleetReservation, levels: [FleetLevel], lease: FleetLease? = nil) throws -> [Int64] {
        try run(Self.holdStatement(r, levels: levels, lease: lease))
    }

    /// Adds holds to a reservation still held (a retry moved the request to another resource);
    /// nothing when it is gone.
    public func fleetExtend(
        id: String, replica: String, resourceId: String, overflow: Bool, upstreamWorst: Int64, levels: [FleetLevel], lease: FleetLease? = nil
    ) throws -> [Int64] {
        try run(
            Self.extendStatement(
                id: id, replica: replica, resourceId: resourceId, overflow: overflow, upstreamWorst: upstreamWorst, levels: levels, lease: lease))
    }

    /// Runs a hold (or a take) on this connection.
    func run(_ statement: FleetStatement) throws -> [Int64] {
        do {
            return try statement.result(try query(statement.sql, statement.values))
        } catch let e as PostgresStoreError {
            throw statement.error(e)
        }
    }

    public static func holdStatement(_ r: FleetReservation, levels: [FleetLevel], lease: FleetLease?) -> FleetStatement {
        let order = levels.indices.sorted { (levels[$0].key, levels[$0].periodStart) < (levels[$1].key, levels[$1].periodStart) }
        let sorted = order.map { levels[$0] }
        let w = r.worst
        let values: [SQLValue] = [
            .text(r.id), .text(r.replica), .int(w.at), .text(w.tenantId), .text(w.projectId), .text(w.keyId), .text(w.seatId),
            .text(w.resourceId), .bool(w.overflow), .text(w.overage?.rawValue), .text(w.overageProjectId), .text(r.wireFormat.rawValue),
            .text(r.endpoint), .text(r.model), .int(w.costMicros), .int(w.upstreamCostMicros), .texts(sorted.map(\.key)),
            .ints(sorted.map(\.periodStart)), .ints(sorted.map { $0.limit ?? -1 }), .ints(sorted.map(\.amount)),
            .ints(sorted.map(\.initial)), .text(lease?.resourceId), .text(lease?.holder), .int(lease?.idleMs ?? 0),
            .int(lease?.now ?? 0),
        ]
        return FleetStatement(
            sql: """
                SELECT qf_fleet_reserve(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT[]), CAST(? AS BIGINT[]), \
                CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT), CAST(? AS TEXT), ?, ?) AS spent
                """, values: values, order: order)
    }

    public static func extendStatement(
        id: String, replica: String, resourceId: String, overflow: Bool, upstreamWorst: Int64, levels: [FleetLevel], lease: FleetLease?
    ) -> FleetStatement {
        let order = levels.indices.sorted { (levels[$0].key, levels[$0].periodStart) < (levels[$1].key, levels[$1].periodStart) }
        let sorted = order.map { levels[$0] }
        let keys = SQLValue.texts(sorted.map(\.key))
        let periods = SQLValue.ints(sorted.map(\.periodStart))
        let amounts = SQLValue.ints(sorted.map(\.amount))
        let sql = """
            WITH r AS (UPDATE fleet_reservations SET resource_id = ?, overflow = ?, upstream_worst = ?, \
            hold_keys = hold_keys || CAST(? AS TEXT[]), hold_periods = hold_periods || CAST(? AS BIGINT[]), \
            hold_amounts = hold_amounts || CAST(? AS BIGINT[]), lease_resources = lease_resources || CAST(? AS TEXT[]) \
            WHERE id = ? RETURNING id) \
            SELECT qf_fleet_hold(CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]))::TEXT AS spent\
            \(lease == nil ? "" : ", qf_fleet_lease(?, ?, ?, ?, ?) AS leased") FROM r
            """
        let values: [SQLValue] = [
            .text(resourceId), .bool(overflow), .int(upstreamWorst), keys, periods, amounts,
            .texts(lease.map { [$0.resourceId] } ?? []), .text(id),
            keys, periods, .ints(sorted.map { $0.limit ?? -1 }), amounts,
            .ints(sorted.map(\.initial)),
        ]
        return FleetStatement(sql: sql, values: values + leaseValues(lease, replica: replica), order: order)
    }

    static func leaseValues(_ lease: FleetLease?, replica: String) -> [SQLValue] {
        guard let lease else { return [] }
        return [.text(lease.resourceId), .text(lease.holder), .text(replica), .int(lease.idleMs), .int(lease.now)]
    }

    /// Inside the ledger's transaction: releases what the named reservations still hold and adds
    /// `charges`; returns each changed counter's spend.
    /// `now` (the caller's clock) is when the settled requests left the seats they leased.
    public func fleetApply(
        settling ids: [String], charges: [FleetLevel], now: Int64
    ) throws -> [(key: String, periodStart: Int64, spentMicros: Int64)] {
        try query(
            """
            SELECT key, period_start, spent FROM qf_fleet_apply(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), \
            CAST(? AS BIGINT[]), ?)
            """,
            [
                .texts(ids), .texts(charges.map(\.key)), .ints(charges.map(\.periodStart)),
                .ints(charges.map(\.amount)), .ints(charges.map(\.initial)), .int(now),
            ]
        ).map { (try $0.string("key"), try $0.int("period_start"), try $0.int("spent")) }
    }

    /// The spend the fleet counted on `keys`, by (key, period start).
    public func fleetSpend(keys: [String]) throws -> [String: [Int64: Int64]] {
        var out: [String: [Int64: Int64]] = [:]
        for row in try query("SELECT key, period_start, spent FROM fleet_counters WHERE key = ANY(CAST(? AS TEXT[]))", [.texts(keys)]) {
            out[try row.string("key"), default: [:]][try row.int("period_start")] = try row.int("spent")
        }
        return out
    }

    // MARK: rate limits

    /// Takes every limit (`cost` units of `limit` per minute) or none, on the fleet's shared
    /// limiters; throws `FleetRateRefusal` for the first exhausted (in `checks`' order).
    public func fleetTake(_ checks: [(key: String, limit: Int64, cost: Int64)], now: Int64) throws {
        _ = try run(Self.takeStatement(checks, now: now))
    }

    public static func takeStatement(_ checks: [(key: String, limit: Int64, cost: Int64)], now: Int64) -> FleetStatement {
        let order = checks.indices.sorted { checks[$0].key < checks[$1].key }
        let sorted = order.map { checks[$0] }
        return FleetStatement(
            sql: "SELECT qf_fleet_take(CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), ?)::TEXT AS done",
            values: [.texts(sorted.map(\.key)), .ints(sorted.map(\.limit)), .ints(sorted.map(\.cost)), .int(now)],
            order: order)
    }

    /// Gives back `cost` units of a shared limiter (an over-estimate of tokens).
    public static func refundStatement(key: String, limit: Int64, cost: Int64) -> FleetStatement {
        FleetStatement(
            sql: "UPDATE fleet_limiters SET tat = tat - ? WHERE key = ?",
            values: [.double(60_000.0 / Double(max(limit, 1)) * Double(max(cost, 0))), .text(key)], order: [])
    }

    /// Drops shared limiters with no debt left (the leader's maintenance).
    public func pruneFleetLimiters(now: Int64) throws {
        try run("DELETE FROM fleet_limiters WHERE tat <= ?", [.double(Double(now))])
    }

    // MARK: replicas and stranded reservations

    /// Says this replica is alive (on the database's clock).
    public func fleetHeartbeat(replica: String) throws {
        try run(
            """
            INSERT INTO fleet_replicas (id, started_at, heartbeat_at) VALUES (?, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, \
            (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT) ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
            """, [.text(replica)])
    }

    /// A replica that stopped cleanly (its reservations are all settled).
    public func fleetDepart(replica: String) throws {
        try run("DELETE FROM fleet_replicas WHERE id = ?", [.text(replica)])
    }

    /// Replicas that heartbeated within `leaseMs`, by id.
    public func fleetReplicas(leaseMs: Int64) throws -> [String] {
        try query(
            "SELECT id FROM fleet_replicas WHERE heartbeat_at >= (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - ? ORDER BY id",
            [.int(leaseMs)]
        ).map { try $0.string("id") }
    }

    /// Reservations whose replica has not heartbeated within `leaseMs` (at most `limit`).
    public func fleetStranded(leaseMs: Int64, limit: Int = 100) throws -> [FleetReservation] {
        try query(
            """
            SELECT * FROM fleet_reservations r WHERE NOT EXISTS (SELECT 1 FROM fleet_replicas p WHERE p.id = r.replica AND \
            p.heartbeat_at >= (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - ?) \
            AND r.created_at < (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - ? ORDER BY r.created_at LIMIT ?
            """, [.int(leaseMs), .int(leaseMs), .int(Int64(limit))]
        ).map { row in
            FleetReservation(
                id: try row.string("id"), replica: try row.string("replica"),
                worst: LedgerCharge(
                    at: try row.int("started_at"), tenantId: try row.string("tenant_id"), projectId: try row.string("project_id"),
                    keyId: try row.optionalString("key_id"), seatId: try row.optionalString("seat_id"),
                    resourceId: try row.optionalString("resource_id"), overflow: try row.bool("overflow"),
                    overage: try row.optionalEnumeration("overage", OverageKind.self), overageProjectId: try row.optionalString("overage_project_id"),
                    costMicros: try row.int("worst_micros"), upstreamCostMicros: try row.int("upstream_worst")),
                wireFormat: try row.enumeration("wire_format", WireFormat.self), endpoint: try row.string("endpoint"), model: try row.string("model"))
        }
    }

    /// Forgets what replicas silent for `leaseMs` had in flight on exclusive seats (their
    /// reservations are settled first), and replicas gone for a day.
    public func fleetForgetGone(leaseMs: Int64) throws {
        try run(
            """
            DELETE FROM fleet_lease_uses u WHERE NOT EXISTS (SELECT 1 FROM fleet_replicas p WHERE p.id = u.replica AND \
            p.heartbeat_at >= (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - ?) \
            AND NOT EXISTS (SELECT 1 FROM fleet_reservations r WHERE r.replica = u.replica)
            """, [.int(leaseMs)])
        try run("DELETE FROM fleet_replicas WHERE heartbeat_at < (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - 86400000")
    }

    /// Settles one stranded reservation with `entry` (its worst case, flagged), in one transaction;
    /// `false` when someone settled it first.
    public func fleetRecover(_ id: String, entry: LedgerEntry, charges: [FleetLevel]) throws -> Bool {
        try transaction(isolation: .readCommitted) {
            guard try queryOne("SELECT id FROM fleet_reservations WHERE id = ? FOR UPDATE", [.text(id)]) != nil else { return false }
            try insertLedger(entry)
            _ = try fleetApply(settling: [id], charges: charges, now: entry.at)
            return true
        }
    }

    // MARK: catalog change log

    /// The last catalog change's number (0 when none).
    public func catalogLogHead() throws -> Int64 {
        try queryOne("SELECT coalesce(max(seq), 0) AS head FROM catalog_log", []).map { try $0.int("head") } ?? 0
    }

    /// Catalog changes numbered after `seq` but for those in `skipping` (this replica's own, already
    /// published), and the last number read.
    public func catalogLog(after seq: Int64, skipping: Set<Int64> = [], limit: Int = 10_000) throws -> (changes: CatalogChanges, head: Int64) {
        var c = CatalogChanges()
        var head = seq
        for row in try query("SELECT seq, kind, id FROM catalog_log WHERE seq > ? ORDER BY seq LIMIT ?", [.int(seq), .int(Int64(limit))]) {
            head = try row.int("seq")
            if skipping.contains(head) { continue }
            c.insert(kind: try row.string("kind"), id: try row.string("id"))
        }
        return (c, head)
    }

    /// The numbers of the catalog changes this transaction made (inside it).
    public func catalogLogOwn() throws -> [Int64] {
        try query("SELECT seq FROM catalog_log WHERE xmin = pg_current_xact_id()::xid", []).map { try $0.int("seq") }
    }

    /// A `BIGINT[]` the fleet's functions return as text (`{1,2,3}`).
    static func parseIntArray(_ text: String) throws -> [Int64] {
        let inner = text.trimmingCharacters(in: CharacterSet(charactersIn: "{}"))
        if inner.isEmpty { return [] }
        return inner.split(separator: ",").compactMap { Int64($0) }
    }
}
