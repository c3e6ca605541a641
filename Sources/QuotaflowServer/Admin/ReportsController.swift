import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore
import QuotaflowStore

/// Usage, forecasts, utilization and savings, all computed from the ledger.
struct ReportsController {
    let kit: AdminKit
    let runtime: Runtime
    var state: AppState { kit.state }

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/usage", use: usage)
        admin.get("tenants/{tenant_id}/usage/projects", use: projects)
        admin.get("tenants/{tenant_id}/ledger/export", use: exportLedger)
        admin.get("tenants/{tenant_id}/utilization", use: utilization)
        admin.get("tenants/{tenant_id}/savings", use: savings)
    }

    static let day: Int64 = 86_400_000

    /// `from`/`to` from the query; by default the current calendar month (UTC) up to now.
    func range(_ q: Query) throws -> (Int64, Int64) {
        let now = state.clock.nowMs()
        let monthStart = BillingPeriod.containing(now, anchor: PeriodAnchor()).start
        let from = try q.time("from") ?? monthStart
        let to = try q.time("to") ?? now + 1
        guard to > from else { throw ProblemError(.badRequest, code: "invalid_parameter", "'to' must be after 'from'", field: "to") }
        guard to - from <= 3660 * Self.day else { throw ProblemError(.badRequest, code: "invalid_parameter", "the range may span at most ten years", field: "from") }
        return (from, to)
    }

    // MARK: usage

    @Sendable func usage(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let q = request.query
        let (from, to) = try range(q)
        var dims: [UsageDimension] = []
        for name in (try q.string("group_by", maxLength: 200) ?? "").split(separator: ",") {
            guard let d = UsageDimension(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ProblemError(
                    .badRequest, code: "invalid_parameter",
                    "group_by takes a comma list of \(UsageDimension.allCases.map(\.rawValue).joined(separator: ", "))", field: "group_by")
            }
            if !dims.contains(d) { dims.append(d) }
        }
        if dims.contains(.day) && dims.contains(.month) {
            throw ProblemError(.badRequest, code: "invalid_parameter", "group by day or by month, not both", field: "group_by")
        }
        let format = try q.string("format", maxLength: 10) ?? "json"
        guard format == "json" || format == "csv" else {
            throw ProblemError(.badRequest, code: "invalid_parameter", "format must be json or csv", field: "format")
        }
        await runtime.ledger.flush()
        let groupBy = dims
        let groups = try await state.db.read { conn in try conn.usage(tenantId: tenantId, from: from, to: to, groupBy: groupBy) }
        let catalog = state.catalog
        let names = try await holderNames(tenantId)
        func label(_ d: UsageDimension, _ v: String?) -> String? {
            guard let v, d == .holder, v.hasPrefix("seat:") else { return v }
            return "seat:" + (names[String(v.dropFirst(5))] ?? String(v.dropFirst(5)))
        }
        func costCenter(_ g: UsageGroup) -> String? {
            guard let i = dims.firstIndex(of: .project), let id = g.keys[i] else { return nil }
            return catalog.projects[id]?.attributes["cost_center"]
        }
        if format == "csv" {
            var csv = CSV.line(dims.map(\.rawValue) + ["cost_center", "requests", "succeeded", "tokens_in", "tokens_out", "tokens_cached", "cost_micros", "upstream_cost_micros", "overflow_charge_micros"])
            for g in groups {
                csv += CSV.line(
                    zip(dims, g.keys).map { label($0, $1) ?? "" } + [costCenter(g) ?? ""]
                        + [g.requests, g.succeeded, g.tokensIn, g.tokensOut, g.tokensCached, g.costMicros, g.upstreamCostMicros, g.overflowChargeMicros].map(String.init))
            }
            return Response(
                status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"usage.csv\""],
                body: .init(byteBuffer: ByteBuffer(string: csv)))
        }
        let rows: [JSONValue] = groups.map { g in
            var members: [(String, JSONValue)] = zip(dims, g.keys).map { ($0.rawValue, .string(label($0, $1))) }
            if dims.contains(.project) { members.append(("cost_center", .string(costCenter(g)))) }
            members += [
                ("requests", .int(g.requests)), ("succeeded", .int(g.succeeded)), ("tokens_in", .int(g.tokensIn)), ("tokens_out", .int(g.tokensOut)),
                ("tokens_cached", .int(g.tokensCached)), ("cost_micros", .int(g.costMicros)), ("upstream_cost_micros", .int(g.upstreamCostMicros)),
                ("overflow_charge_micros", .int(g.overflowChargeMicros)),
            ]
            return .object(members)
        }
        return JSONResponse.make([
            "from": .string(Timestamp.format(from)), "to": .string(Timestamp.format(to)), "group_by": .strings(dims.map(\.rawValue)),
            "data": .array(rows),
        ])
    }

    func holderNames(_ tenantId: String) async throws -> [String: String] {
        try await state.db.read { conn in
            var out: [String: String] = [:]
            for row in try conn.query("SELECT id, holder FROM seats WHERE tenant_id = ?", [.text(tenantId)]) { out[row.string(0)] = row.string(1) }
            return out
        }
    }

    /// Raw ledger rows as CSV, streamed a page at a time, so any size works.
    @Sendable func exportLedger(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let (from, to) = try range(request.query)
        await runtime.ledger.flush()
        let db = state.db
        let catalog = state.catalog
        let header = CSV.line([
            "seq", "request_id", "at", "tenant_id", "project_id", "cost_center", "key_id", "seat_id", "user_digest", "resource_id", "pool_id",
            "overflow", "provider", "endpoint", "model_requested", "model_served", "stream", "tokens_in", "tokens_out", "tokens_cached",
            "cost_micros", "upstream_cost_micros", "overflow_charge_micros", "status", "reason", "flags", "latency_us", "attempts",
        ])
        return Response(
            status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"ledger.csv\""],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: header))
                var after: Int64 = 0
                while true {
                    let cursor = after
                    let page = try await db.read { conn in try conn.ledgerPage(tenantId: tenantId, from: from, to: to, afterSeq: cursor, limit: 2000) }
                    guard let last = page.last else { break }
                    var text = ""
                    for e in page {
                        text += CSV.line([
                            String(e.seq), e.requestId, Timestamp.format(e.at), e.tenantId, e.projectId,
                            catalog.projects[e.projectId]?.attributes["cost_center"] ?? "", e.keyId ?? "", e.seatId ?? "", e.userDigest ?? "",
                            e.resourceId ?? "", e.poolId ?? "", e.overflow ? "true" : "false", e.provider ?? "", e.endpoint, e.modelRequested,
                            e.modelServed ?? "", e.stream ? "true" : "false", String(e.usage.input), String(e.usage.output),
                            String(e.usage.cachedInput), String(e.costMicros), String(e.upstreamCostMicros), String(e.overflowChargeMicros),
                            String(e.status), e.reason ?? "", e.flags.joined(separator: ";"), String(e.latencyUs), String(e.attempts),
                        ])
                    }
                    try await writer.write(ByteBuffer(string: text))
                    after = last.seq
                }
                try await writer.finish(nil)
            })
    }

    // MARK: forecast

    /// Each project's spend this period against its cap, with a month-end forecast from the trailing
    /// daily average (the last 7 days, or the days elapsed if fewer), and the date the cap would be reached.
    @Sendable func projects(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let now = state.clock.nowMs()
        let catalog = state.catalog
        await runtime.ledger.flush()
        var items: [JSONValue] = []
        for p in catalog.projects.values.filter({ $0.tenantId == tenantId && $0.status == .active }).sorted(by: { $0.name < $1.name }) {
            let subtree = catalog.projects.values.filter { catalog.projectChain($0.id).contains { $0.id == p.id } }.map(\.id)
            let period = BillingPeriod.containing(now, anchor: p.budget.period)
            let counter = runtime.engine.counterSnapshot(.project(p.id))
            let carry = counter.map { $0.period == period ? $0.carry : 0 } ?? 0
            let windowStart = max(period.start, now - 7 * Self.day)
            let (spent, recent) = try await state.db.read { conn in
                (try conn.spend(tenantId: tenantId, projectIds: subtree, from: period.start, to: now + 1),
                 try conn.spend(tenantId: tenantId, projectIds: subtree, from: windowStart, to: now + 1))
            }
            let days = max(1.0, Double(now - windowStart) / Double(Self.day))
            let perDay = Double(recent) / days
            let remainingDays = Double(period.end - now) / Double(Self.day)
            let forecast = spent + Int64((perDay * remainingDays).rounded())
            let cap = p.budget.monthlyCapMicros.map { $0 + carry }
            var reaches: JSONValue = .null
            var flagged = false
            if let cap {
                if spent >= cap {
                    flagged = true
                    reaches = .string(Timestamp.format(now))
                } else if perDay > 0 {
                    let at = now + Int64(Double(cap - spent) / perDay * Double(Self.day))
                    if at < period.end {
                        flagged = true
                        reaches = .string(Timestamp.format(at))
                    }
                }
            }
            items.append(
                .compact([
                    ("project_id", .string(p.id)), ("name", .string(p.name)), ("cost_center", .string(p.attributes["cost_center"])),
                    ("period_start", .string(Timestamp.format(period.start))), ("period_end", .string(Timestamp.format(period.end))),
                    ("cap_micros", cap.map(JSONValue.int)), ("spent_micros", .int(spent)), ("daily_average_micros", .int(Int64(perDay.rounded()))),
                    ("forecast_micros", .int(forecast)), ("on_course_to_exceed", .bool(flagged)), ("cap_reached_at", reaches),
                ]))
        }
        return JSONResponse.list(items)
    }

    // MARK: utilization

    @Sendable func utilization(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let q = request.query
        let (from, to) = try range(q)
        let idleDays = try q.int("idle_days", range: 1...365) ?? 7
        let limitEvents = try q.int("limit_events", range: 1...100_000) ?? 3
        let now = state.clock.nowMs()
        await runtime.ledger.flush()
        let resources = try await state.db.read { conn in try conn.resources(tenantId: tenantId) }.filter { $0.state != .revoked || $0.updatedAt >= from }
        let pools = try await state.db.read { conn in try conn.pools(tenantId: tenantId) }
        let (timeline, transitions, lastUse) = try await state.db.read { conn in
            (try conn.resourceTimeline(tenantId: tenantId, from: from, to: to), try conn.stateTransitions(tenantId: tenantId, until: to),
             try conn.lastUse(tenantId: tenantId))
        }
        let window = Double(to - from)
        var items: [JSONValue] = []
        var idle: [JSONValue] = []
        var busy: [JSONValue] = []
        var poolTotals: [String: (requests: Int64, tokens: Int64, resources: Int, shares: [Double])] = [:]
        for r in resources {
            let rows = timeline.filter { $0.0 == r.id }
            let requests = Int64(rows.count)
            let tokens = rows.map(\.3).reduce(0, +)
            // Share of capacity: the highest of requests and tokens against each limit over the window.
            let minutes = window / 60_000
            var shares: [Double] = []
            if let rpm = r.limits.rpm { shares.append(Double(requests) / (Double(rpm) * minutes)) }
            if let tpm = r.limits.tpm { shares.append(Double(tokens) / (Double(tpm) * minutes)) }
            for w in r.limits.windows {
                let windows = window / Double(w.windowSeconds * 1000)
                if let n = w.requests { shares.append(Double(requests) / (Double(n) * windows)) }
                if let n = w.tokens { shares.append(Double(tokens) / (Double(n) * windows)) }
            }
            let share = shares.max()
            // Time in each state, from the audit trail.
            var stateMs: [String: Int64] = [:]
            var current = "pending"
            var since = r.createdAt
            for t in transitions where t.0 == r.id {
                let start = max(since, from), end = min(t.1, to)
                if end > start { stateMs[current, default: 0] += end - start }
                current = t.3
                since = t.1
            }
            if to > max(since, from) { stateMs[current, default: 0] += to - max(since, from) }
            let cooldowns = transitions.filter { $0.0 == r.id && $0.3 == "cooling" && $0.1 >= from && $0.1 < to }.count
            // Seat leases (holder changes) and idle time (no request in flight).
            var leases = 0
            var lastHolder: String?
            var busyMs: Int64 = 0
            var coveredUntil = from
            for row in rows.sorted(by: { $0.1 < $1.1 }) {
                if row.4 != lastHolder {
                    leases += 1
                    lastHolder = row.4
                }
                let s = max(row.1, coveredUntil), e = min(max(row.2, row.1), to)
                if e > s { busyMs += e - s }
                coveredUntil = max(coveredUntil, e)
            }
            var atLimitMinutes: Int64 = 0
            if let rpm = r.limits.rpm {
                let id = r.id
                atLimitMinutes = try await state.db.read { conn in try conn.busyMinutes(tenantId: tenantId, resourceId: id, from: from, to: to, threshold: rpm) }
            }
            let last = lastUse[r.id]
            let isIdle = (last ?? 0) < now - idleDays * Self.day
            let item: JSONValue = .compact([
                ("resource_id", .string(r.id)), ("name", .string(r.name)), ("pool_id", .string(r.poolId)), ("kind", .string(r.kind.rawValue)),
                ("state", .string(r.state.rawValue)), ("requests", .int(requests)), ("tokens", .int(tokens)),
                ("capacity_share", share.map { .double(($0 * 10_000).rounded() / 10_000) }),
                ("cooling_ms", .int(stateMs["cooling"] ?? 0)), ("degraded_ms", .int(stateMs["degraded"] ?? 0)),
                ("suspended_ms", .int(stateMs["suspended"] ?? 0)), ("cooldowns", .int(Int64(cooldowns))), ("at_limit_minutes", .int(atLimitMinutes)),
                ("lease_count", r.kind == .seat ? .int(Int64(leases)) : nil), ("idle_ms", .int(max(0, to - from - busyMs))),
                ("last_used_at", Rep.time(last)),
            ])
            items.append(item)
            if isIdle { idle.append(["resource_id": .string(r.id), "name": .string(r.name), "last_used_at": Rep.time(last)]) }
            if atLimitMinutes + Int64(cooldowns) >= limitEvents {
                busy.append(["resource_id": .string(r.id), "name": .string(r.name), "at_limit_minutes": .int(atLimitMinutes), "cooldowns": .int(Int64(cooldowns))])
            }
            var totals = poolTotals[r.poolId] ?? (0, 0, 0, [])
            totals.requests += requests
            totals.tokens += tokens
            totals.resources += 1
            if let share { totals.shares.append(share) }
            poolTotals[r.poolId] = totals
        }
        let poolItems: [JSONValue] = pools.map { p in
            let t = poolTotals[p.id] ?? (0, 0, 0, [])
            return .compact([
                ("pool_id", .string(p.id)), ("name", .string(p.name)), ("resources", .int(Int64(t.resources))), ("requests", .int(t.requests)),
                ("tokens", .int(t.tokens)),
                ("capacity_share", t.shares.isEmpty ? nil : .double((t.shares.reduce(0, +) / Double(t.shares.count) * 10_000).rounded() / 10_000)),
            ])
        }
        return JSONResponse.make([
            "from": .string(Timestamp.format(from)), "to": .string(Timestamp.format(to)), "resources": .array(items), "pools": .array(poolItems),
            "idle_resources": .array(idle), "often_at_limit": .array(busy), "idle_days": .int(idleDays),
        ])
    }

    // MARK: savings

    @Sendable func savings(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let (from, to) = try range(request.query)
        await runtime.ledger.flush()
        let (totals, holders, resources) = try await state.db.read { conn in
            (try conn.usage(tenantId: tenantId, from: from, to: to, groupBy: []).first, try conn.activeHolders(tenantId: tenantId, from: from, to: to),
             try conn.resources(tenantId: tenantId))
        }
        let month = 30 * Self.day
        let span = to - from
        let seatFees: [Int64] = resources.compactMap { r in
            guard r.kind == .seat, r.createdAt < to, r.state != .revoked || r.updatedAt > from, case .flatMonthly(let fee) = r.costBasis else { return nil }
            return fee
        }
        // Fees of the pool's seats over the period (a month counted as 30 days).
        let seatCost = seatFees.map { Self.prorate($0, span: span, month: month) }.reduce(0, +)
        let metered = totals?.upstreamCostMicros ?? 0
        let actual = metered + seatCost
        let listPrice = totals?.costMicros ?? 0
        let averageSeat = seatFees.isEmpty ? nil : seatFees.reduce(0, +) / Int64(seatFees.count)
        let individualSeats = averageSeat.map { Self.prorate($0 * holders, span: span, month: month) }
        func percent(_ baseline: Int64?) -> JSONValue {
            guard let baseline, baseline > 0 else { return .null }
            return .double((Double(baseline - actual) / Double(baseline) * 1000).rounded() / 10)
        }
        return JSONResponse.make([
            "from": .string(Timestamp.format(from)), "to": .string(Timestamp.format(to)),
            "actual_cost_micros": .int(actual), "metered_cost_micros": .int(metered), "seat_fees_micros": .int(seatCost),
            "list_price_baseline_micros": .int(listPrice), "saved_vs_list_price_micros": .int(listPrice - actual),
            "saved_vs_list_price_percent": percent(listPrice), "active_holders": .int(holders),
            "seat_price_micros": .int(averageSeat), "individual_seats_baseline_micros": .int(individualSeats),
            "saved_vs_individual_seats_micros": .int(individualSeats.map { $0 - actual }),
            "saved_vs_individual_seats_percent": percent(individualSeats),
            "method": .string(
                "Actual cost is the marginal cost recorded in the ledger (per-token keys, relays and overflow at their own prices) plus the "
                    + "monthly fees of the tenant's seats, prorated over the period with a month counted as 30 days. The list-price baseline is the "
                    + "ledger's tokens priced at the tenant's pricing table, as if every request had gone through a metered API key. The "
                    + "individual-seat baseline gives every active holder (each seat, and each end user of a project key, or the key itself "
                    + "when it names no user) a seat at the average monthly fee of the tenant's seats, prorated the same way. Percentages are "
                    + "(baseline - actual) / baseline."),
        ])
    }

    static func prorate(_ monthly: Int64, span: Int64, month: Int64) -> Int64 {
        // monthly * span / month without overflowing, rounded up.
        let whole = monthly / month * span
        let rest = monthly % month * span
        return whole + rest / month + (rest % month == 0 ? 0 : 1)
    }
}

/// RFC 4180 CSV, with spreadsheet formula characters neutralised in text cells.
enum CSV {
    static func cell(_ s: String) -> String {
        var v = s
        if let first = v.first, "=+-@".contains(first), Int64(v) == nil { v = "'" + v }
        if v.contains(",") || v.contains("\"") || v.contains("\n") || v.contains("\r") {
            return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return v
    }

    static func line(_ cells: [String]) -> String { cells.map(cell).joined(separator: ",") + "\r\n" }
}
