import QuotaflowCore
import QuotaflowStore

/// Budgets shared by a fleet of replicas on PostgreSQL.
///
/// Each replica admits in memory first (its own holds, its resource choice), exactly as a single
/// node does; that check is looser than the fleet's, never stricter, since a replica counts only
/// its own holds. Then the fleet's counters decide: one statement holds the worst case on every
/// capped level, in a fixed order, each only if it still fits (`qf_fleet_hold`), and records the
/// reservation with this replica's id. The ledger's batch transaction releases the reservations
/// it settles and adds the charges. A replica that dies leaves its reservations behind; the
/// leader settles them at their worst case (`FleetService`).
struct FleetBudgets: Sendable {
    let db: Database
    let engine: AdmissionEngine
    let replicaId: String

    /// A level the fleet refused, as admission would have described it.
    struct Refused: Error {
        let level: HeldLevel
    }

    /// The exclusive seat chosen is leased to another holder on another replica.
    struct SeatTaken: Error {}

    /// The lease an admission on an exclusive seat takes on the fleet's leases.
    static func lease(_ a: Admission, request r: AdmissionRequest) -> FleetLease? {
        guard a.resource.resource.leaseMode == .exclusive else { return nil }
        return FleetLease(resourceId: a.resource.id, holder: r.holder, idleMs: r.leaseIdleMs, now: r.now)
    }

    /// Holds an admission's capped levels on the fleet's counters, and leases its seat if it is
    /// exclusive; throws `Refused` with the level that does not fit or `SeatTaken` (the local holds
    /// are then the caller's to give back), or a database error (fail closed: nothing is proven).
    /// Marks the admission as holding a reservation row when it made one.
    func hold(_ a: inout Admission, x: Exchange, request r: AdmissionRequest) async throws {
        let capped = a.levels.filter { $0.limit != nil }
        let lease = Self.lease(a, request: r)
        guard !capped.isEmpty || lease != nil else { return }
        let model = r.model
        let f = a.facts
        let reservation = FleetReservation(
            id: reservationId(x.requestId), replica: replicaId,
            worst: LedgerCharge(
                at: x.startedAt, tenantId: f.tenantId, projectId: f.chain.first ?? x.caller.project.id, keyId: f.keyId, seatId: f.seatId,
                resourceId: f.resourceId, overflow: f.overflow, overage: f.overage, overageProjectId: f.overageProjectId, costMicros: a.worstCase,
                upstreamCostMicros: a.upstreamWorstCase),
            wireFormat: x.dialect.family.wireFormat, endpoint: x.dialect.endpoint, model: model)
        let levels = capped.map(Self.level)
        do {
            let spent = try await db.counters(StoreConnection.holdStatement(reservation, levels: levels, lease: lease))
            a.sharedHold = true
            engine.adopt(zip(capped, spent).map { CounterSpend(key: $0.key, periodStart: $0.periodStart, spent: $1) })
        } catch let refusal as FleetRefusal {
            throw Refused(level: capped[refusal.index])
        } catch is FleetLeaseRefusal {
            throw SeatTaken()
        }
    }

    /// Takes the rate limits on the fleet's shared limiters too (this replica's were taken and are
    /// given back when the fleet refuses).
    func take(_ checks: [RateCheck], now: Int64) async throws {
        let shared = checks.map { (key: $0.key.name, limit: $0.limit, cost: $0.cost) }
        do {
            _ = try await db.counters(StoreConnection.takeStatement(shared, now: now))
        } catch let refusal as FleetRateRefusal {
            for c in checks { engine.refundTokens(key: c.key, limit: c.limit, tokens: c.cost) }
            let check = checks[refusal.index]
            let seconds = max(1, (refusal.waitMs + 999) / 1000)
            throw Refusal(
                Denial(.rateLimited, "\(check.what) is reached across the fleet; retry after \(seconds) s", retryAfterSeconds: seconds))
        } catch {
            for c in checks { engine.refundTokens(key: c.key, limit: c.limit, tokens: c.cost) }
            throw Refusal(
                .noCapacity, "the shared rate limiters cannot be reached right now, so this request cannot be admitted", retryAfterSeconds: 1)
        }
    }

    /// Gives back unused tokens on a shared limiter, in the background.
    func refund(key: LimiterKey, limit: Int64, tokens: Int64) {
        let db = self.db
        guard limit > 0, tokens > 0 else { return }
        Task { _ = try? await db.counters(StoreConnection.refundStatement(key: key.name, limit: limit, cost: tokens)) }
    }

    /// A retry moved the request to another resource: holds that resource's capped counters too,
    /// and leases it if it is an exclusive seat. Nothing when the request held nothing shared (no
    /// reservation row): then it is held now, in full.
    func extend(_ a: inout Admission, added: [HeldLevel], x: Exchange, request r: AdmissionRequest) async throws {
        guard a.sharedHold else { return try await hold(&a, x: x, request: r) }
        let capped = added.filter { $0.limit != nil }
        let lease = Self.lease(a, request: r)
        guard !capped.isEmpty || lease != nil, let resourceId = a.facts.resourceId else { return }
        let levels = capped.map(Self.level)
        let (id, replica) = (reservationId(x.requestId), replicaId)
        let (overflow, upstreamWorst) = (a.facts.overflow, a.upstreamWorstCase)
        do {
            let spent = try await db.counters(
                StoreConnection.extendStatement(
                    id: id, replica: replica, resourceId: resourceId, overflow: overflow, upstreamWorst: upstreamWorst, levels: levels,
                    lease: lease))
            engine.adopt(zip(capped, spent).map { CounterSpend(key: $0.key, periodStart: $0.periodStart, spent: $1) })
        } catch let refusal as FleetRefusal {
            throw Refused(level: capped[refusal.index])
        } catch is FleetLeaseRefusal {
            throw SeatTaken()
        }
    }

    /// Request ids are unique within a process; the replica's id makes them unique in the fleet.
    func reservationId(_ requestId: String) -> String { replicaId + "/" + requestId }

    static func level(_ l: HeldLevel) -> FleetLevel {
        FleetLevel(key: l.key.description, periodStart: l.periodStart, limit: l.limit, amount: l.amount, initial: l.spent)
    }

    /// Inside the ledger's batch transaction: releases the batch's reservations and adds its
    /// charges, each to the period of the counter holding the row's time.
    func settle(_ conn: StoreConnection, _ items: [LedgerWriter.Item]) throws -> [CounterSpend] {
        var ids: [String] = []
        var charges: [FleetLevel] = []
        for item in items {
            guard let settlement = item.settlement else { continue }
            ids.append(reservationId(item.entry.requestId))
            charges += Self.charges(
                settlement.charges, at: item.entry.at, engine: engine, catalog: nil, tenantId: item.entry.tenantId, projectId: item.entry.projectId)
        }
        guard !ids.isEmpty || !charges.isEmpty else { return [] }
        let now = items.map(\.entry.at).max() ?? 0
        return try conn.fleetApply(settling: ids, charges: charges, now: now).compactMap { row in
            BudgetKey(row.key).map { CounterSpend(key: $0, periodStart: row.periodStart, spent: row.spentMicros) }
        }
    }

    /// Charges on the fleet's counters, in the periods this replica's counters place `at` in (or,
    /// for a counter it has never held, the period its definition in `catalog` gives).
    static func charges(
        _ charges: [(BudgetKey, Int64)], at: Int64, engine: AdmissionEngine, catalog: Catalog?, tenantId: String, projectId: String
    ) -> [FleetLevel] {
        charges.compactMap { key, amount in
            guard amount != 0 else { return nil }
            if let c = engine.counterSnapshot(key) {
                let period = c.period.contains(at) ? c.period : BillingPeriod.containing(at, anchor: c.anchor)
                return FleetLevel(key: key.description, periodStart: period.start, amount: amount, initial: c.period == period ? c.spent : 0)
            }
            guard let catalog else { return nil }
            let anchor = CounterSpec.of(key, catalog: catalog, tenantId: tenantId, projectId: projectId, keyCap: nil).anchor
            return FleetLevel(key: key.description, periodStart: BillingPeriod.containing(at, anchor: anchor).start, amount: amount, initial: 0)
        }
    }
}
