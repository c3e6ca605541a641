import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `GET .../usage/projects` (spend against caps and the month-end forecast), `GET .../utilization`
/// and `GET .../savings`. The store reads the aggregates; `Forecast`, `Utilization` and `Savings`
/// in the core compute the reports from them.
struct CapacityReportsController {
    let env: AdminEnvironment
    let engine: AdmissionEngine
    let ledger: LedgerWriter

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/usage/projects", use: projects)
        admin.get("tenants/{tenant_id}/utilization", use: utilization)
        admin.get("tenants/{tenant_id}/savings", use: savings)
    }

    /// Each active project's spend this period (its subtree's) against its cap, with a month-end
    /// forecast from the trailing daily average and the date the cap would be reached. Two grouped
    /// queries per distinct budget period, whatever the number of projects.
    @Sendable func projects(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let now = env.now
        let catalog = env.catalog.current
        await ledger.flush()
        let all = catalog.projects(ofTenant: tenantId)
        let parents = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0.parentId) })
        var spendByAnchor: [PeriodAnchor: (spent: [String: Int64], recent: [String: Int64])] = [:]
        for anchor in Set(all.map(\.budget.period)) {
            let period = BillingPeriod.containing(now, anchor: anchor)
            let windowStart = max(period.start, now - 7 * Forecast.dayMs)
            let (spent, recent) = try await env.reads.read { conn in
                (
                    try conn.spendByProject(tenantId: tenantId, from: period.start, to: now + 1),
                    try conn.spendByProject(tenantId: tenantId, from: windowStart, to: now + 1)
                )
            }
            spendByAnchor[anchor] = (Forecast.subtreeSpend(spent, parents: parents), Forecast.subtreeSpend(recent, parents: parents))
        }
        var items: [JSONValue] = []
        for p in all.filter({ $0.status == .active }).sorted(by: { $0.name < $1.name }) {
            let period = BillingPeriod.containing(now, anchor: p.budget.period)
            let counter = engine.counterSnapshot(.project(p.id))
            let carry = counter.map { $0.period == period ? $0.carry : 0 } ?? 0
            let spent = spendByAnchor[p.budget.period]?.spent[p.id] ?? 0
            let recent = spendByAnchor[p.budget.period]?.recent[p.id] ?? 0
            let cap = p.budget.monthlyCapMicros.map { $0 + carry }
            let f = Forecast.project(
                spent: spent, recent: recent, windowStart: max(period.start, now - 7 * Forecast.dayMs), period: period, cap: cap, now: now)
            items.append(
                .compact([
                    ("project_id", .string(p.id)), ("name", .string(p.name)), ("parent_id", .string(p.parentId)),
                    ("cost_center", .string(p.attributes["cost_center"])),
                    ("period_start", .string(Timestamp.format(period.start))), ("period_end", .string(Timestamp.format(period.end))),
                    ("cap_micros", cap.map(JSONValue.int)), ("spent_micros", .int(spent)), ("daily_average_micros", .int(f.dailyAverage)),
                    ("forecast_micros", .int(f.forecast)), ("on_course_to_exceed", .bool(f.onCourseToExceed)),
                    ("cap_reached_at", Rep.time(f.capReachedAt)),
                ]))
        }
        return JSONResponse.list(items)
    }

    @Sendable func utilization(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let q = request.query
        let now = env.now
        let (from, to) = try q.reportRange(now: now)
        let idleDays = try q.int("idle_days", range: 1...365) ?? 7
        let limitEvents = try q.int("limit_events", range: 1...100_000) ?? 3
        await ledger.flush()
        let (resources, pools, uses, transitions, minutes, lastUse) = try await env.reads.read { conn in
            (
                try conn.resources(tenantId: tenantId).filter { $0.state != .revoked || $0.updatedAt >= from }, try conn.pools(tenantId: tenantId),
                try conn.resourceTimeline(tenantId: tenantId, from: from, to: to), try conn.stateTransitions(tenantId: tenantId, until: to),
                try conn.minuteCounts(tenantId: tenantId, from: from, to: to), try conn.lastUse(tenantId: tenantId)
            )
        }
        let unused = WindowUsage.planUnused(
            WindowUsage.compute(
                try await env.reads.read { conn in try conn.windowPeaks(tenantId: tenantId, from: from, to: to) }, now: now))
        var unusedByResource: [String: [Double]] = [:]
        for u in unused { unusedByResource[u.resourceId, default: []].append(u.unusedShare) }
        let (items, totals) = Utilization.compute(
            resources: resources.map { .init(id: $0.id, poolId: $0.poolId, kind: $0.kind, limits: $0.limits, createdAt: $0.createdAt) },
            uses: uses, transitions: transitions, minutes: minutes, lastUse: lastUse, from: from, to: to, now: now, idleDays: idleDays)
        let byId = Dictionary(uniqueKeysWithValues: resources.map { ($0.id, $0) })
        let rows: [JSONValue] = items.compactMap { i in
            guard let r = byId[i.resourceId] else { return nil }
            return .compact([
                ("resource_id", .string(r.id)), ("name", .string(r.name)), ("pool_id", .string(r.poolId)), ("kind", .string(r.kind.rawValue)),
                ("state", .string(r.state.rawValue)), ("requests", .int(i.requests)), ("tokens", .int(i.tokens)),
                ("capacity_share", i.capacityShare.map(JSONValue.double)), ("cooling_ms", .int(i.stateMs["cooling"] ?? 0)),
                ("degraded_ms", .int(i.stateMs["degraded"] ?? 0)), ("suspended_ms", .int(i.stateMs["suspended"] ?? 0)),
                ("cooldowns", .int(Int64(i.cooldowns))), ("at_limit_minutes", .int(i.atLimitMinutes)),
                ("lease_count", r.kind == .seat ? .int(Int64(i.leases)) : nil), ("idle_ms", .int(i.idleMs)), ("last_used_at", Rep.time(i.lastUsedAt)),
                ("window_unused_share", unusedByResource[r.id].map { .double($0.reduce(0, +) / Double($0.count)) }),
            ])
        }
        let idle: [JSONValue] = items.filter(\.isIdle).compactMap { i in
            byId[i.resourceId].map { ["resource_id": .string($0.id), "name": .string($0.name), "last_used_at": Rep.time(i.lastUsedAt)] }
        }
        let busy: [JSONValue] = items.filter { $0.atLimitMinutes + Int64($0.cooldowns) >= limitEvents }.compactMap { i in
            byId[i.resourceId].map {
                [
                    "resource_id": .string($0.id), "name": .string($0.name), "at_limit_minutes": .int(i.atLimitMinutes),
                    "cooldowns": .int(Int64(i.cooldowns)),
                ]
            }
        }
        let totalsById = Dictionary(uniqueKeysWithValues: totals.map { ($0.poolId, $0) })
        let poolItems: [JSONValue] = pools.map { p in
            let t = totalsById[p.id] ?? Utilization.PoolTotal(poolId: p.id)
            return .compact([
                ("pool_id", .string(p.id)), ("name", .string(p.name)), ("resources", .int(Int64(t.resources))), ("requests", .int(t.requests)),
                ("tokens", .int(t.tokens)), ("capacity_share", t.capacityShare.map(JSONValue.double)),
            ])
        }
        return JSONResponse.make([
            "from": .string(Timestamp.format(from)), "to": .string(Timestamp.format(to)), "resources": .array(rows), "pools": .array(poolItems),
            "idle_resources": .array(idle), "often_at_limit": .array(busy), "idle_days": .int(idleDays),
        ])
    }

    @Sendable func savings(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let (from, to) = try request.query.reportRange(now: env.now)
        await ledger.flush()
        let (totals, holders, resources) = try await env.reads.read { conn in
            (
                try conn.usage(tenantId: tenantId, from: from, to: to, groupBy: []).first,
                try conn.activeHolders(tenantId: tenantId, from: from, to: to),
                try conn.resources(tenantId: tenantId)
            )
        }
        let seatFees: [Int64] = resources.compactMap { r in
            guard r.kind == .seat, r.createdAt < to, r.state != .revoked || r.updatedAt > from, case .flatMonthly(let fee) = r.costBasis else {
                return nil
            }
            return fee
        }
        let s = Savings.compute(
            metered: totals?.upstreamCostMicros ?? 0, listPrice: totals?.costMicros ?? 0, seatFees: seatFees, activeHolders: holders, span: to - from)
        // Plan capacity that reset unused, per seat credential (each passthrough holder's own plan): what
        // resizing the plans at the provider would save.
        let samples = try await env.reads.read { conn in try conn.windowPeaks(tenantId: tenantId, from: from, to: to) }
        let byId = Dictionary(uniqueKeysWithValues: resources.map { ($0.id, $0) })
        var unusedTotal: Int64 = 0
        let unusedPlans: [JSONValue] = WindowUsage.planUnused(WindowUsage.compute(samples, now: env.now)).compactMap { u in
            guard let r = byId[u.resourceId], r.kind == .seat, case .flatMonthly(let fee) = r.costBasis else { return nil }
            let value = WindowUsage.unusedFee(monthly: fee, span: to - from, unusedShare: u.unusedShare)
            unusedTotal += value
            return .compact([
                ("resource_id", .string(r.id)), ("name", .string(r.name)), ("holder", u.holder.isEmpty ? .null : .string(u.holder)),
                ("plan", r.plan.json()), ("window", .string(WindowReading(seconds: u.window, utilization: 0, resetsAt: nil).label)),
                ("unused_share", .double(u.unusedShare)), ("monthly_fee_micros", .int(fee)), ("unused_fee_micros", .int(value)),
            ])
        }
        return JSONResponse.make([
            "from": .string(Timestamp.format(from)), "to": .string(Timestamp.format(to)),
            "actual_cost_micros": .int(s.actualCost), "metered_cost_micros": .int(s.meteredCost), "seat_fees_micros": .int(s.seatFees),
            "list_price_baseline_micros": .int(s.listPriceBaseline), "saved_vs_list_price_micros": .int(s.listPriceBaseline - s.actualCost),
            "saved_vs_list_price_percent": Savings.percent(saved: s.actualCost, of: s.listPriceBaseline).map(JSONValue.double) ?? .null,
            "active_holders": .int(holders), "seat_price_micros": .int(s.averageSeatPrice),
            "unused_plan_capacity": .array(unusedPlans), "plan_fees_unused_micros": .int(unusedTotal),
            "individual_seats_baseline_micros": .int(s.individualSeatsBaseline),
            "saved_vs_individual_seats_micros": .int(s.individualSeatsBaseline.map { $0 - s.actualCost }),
            "saved_vs_individual_seats_percent": Savings.percent(saved: s.actualCost, of: s.individualSeatsBaseline).map(JSONValue.double) ?? .null,
            "method": .string(
                "Actual cost is the marginal cost recorded in the ledger (per-token keys, relays and overflow at their own prices) plus the "
                    + "monthly fees of the tenant's seats, prorated over the period with a month counted as 30 days. The list-price baseline is the "
                    + "ledger's tokens priced at the tenant's pricing table, as if every request had gone through a metered API key. The "
                    + "individual-seat baseline gives every active holder (each seat, and each end user of a project key, or the key itself "
                    + "when it names no user) a seat at the average monthly fee of the tenant's seats, prorated the same way. Percentages are "
                    + "(baseline - actual) / baseline. Unused plan capacity is, per seat credential (each passthrough holder's own plan), "
                    + "the share of its longest usage window that reset unused, times its monthly fee prorated over the period."),
        ])
    }
}
