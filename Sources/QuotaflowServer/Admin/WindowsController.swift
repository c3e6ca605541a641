import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `GET .../seats/windows`: per credential and usage window, utilization over time, the limit hits
/// (count and timeline), and the share of each window that reset unused. For passthrough seats
/// each holder's own plan is a credential of its own, so the report shows how much of each
/// person's plan goes unused.
struct WindowsController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/seats/windows", use: report)
    }

    @Sendable func report(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let q = request.query
        let now = env.now
        let (from, to) = try q.reportRange(now: now)
        let resourceId = try q.string("resource_id", maxLength: 64)
        if let resourceId, env.catalog.current.resource(resourceId, tenantId: tenantId) == nil,
            try await env.reads.read({ conn in try conn.resource(tenantId: tenantId, id: resourceId) }) == nil
        {
            throw ProblemError.notFound("resource '\(resourceId.prefix(64))'")
        }
        let (samples, hits) = try await env.reads.read { conn in
            (
                try conn.windowSamples(tenantId: tenantId, resourceId: resourceId, from: from, to: to),
                try conn.limitHits(tenantId: tenantId, resourceId: resourceId, from: from, to: to)
            )
        }
        let windows = WindowUsage.compute(samples, now: now)
        struct Credential: Hashable {
            var resourceId: String
            var holder: String
        }
        var order: [Credential] = []
        var byCredential: [Credential: [WindowUsage.Window]] = [:]
        for w in windows {
            let c = Credential(resourceId: w.resourceId, holder: w.holder)
            if byCredential[c] == nil { order.append(c) }
            byCredential[c, default: []].append(w)
        }
        var hitsByCredential: [Credential: [WindowUsage.LimitHit]] = [:]
        for h in hits {
            let c = Credential(resourceId: h.resourceId, holder: h.holder)
            if byCredential[c] == nil && hitsByCredential[c] == nil { order.append(c) }
            hitsByCredential[c, default: []].append(h)
        }
        let names = Dictionary(
            (env.catalog.current.resourcesByTenant[tenantId] ?? []).map { ($0.id, $0.resource.name) }, uniquingKeysWith: { a, _ in a })
        let items: [JSONValue] = order.map { c in
            let ws = byCredential[c] ?? []
            let hs = hitsByCredential[c] ?? []
            return .compact([
                ("resource_id", .string(c.resourceId)), ("name", names[c.resourceId].map(JSONValue.string)),
                ("holder", c.holder.isEmpty ? .null : .string(c.holder)),
                ("windows", .array(ws.map(Self.window))),
                ("limit_hits", .int(Int64(hs.count))),
                (
                    "limit_hit_timeline",
                    .array(
                        hs.map {
                            .compact([
                                ("at", .string(Timestamp.format($0.at))), ("until", Rep.time($0.until)),
                                ("windows", .strings($0.windows.split(separator: ",").map(String.init))), ("cause", .string($0.cause)),
                            ])
                        })
                ),
            ])
        }
        return JSONResponse.make([
            "from": .string(Timestamp.format(from)), "to": .string(Timestamp.format(to)), "credentials": .array(items),
            "method": .string(
                "Samples are the utilization each provider reported on its answers, written when a window's status or period changes and "
                    + "otherwise at most every window_persist_ms. A period is one window until its reset; its unused share is 1 minus the highest "
                    + "utilization seen in it, counted once the reset has passed."),
        ])
    }

    static func window(_ w: WindowUsage.Window) -> JSONValue {
        .compact([
            ("window", .string(WindowReading(seconds: w.seconds, scope: w.scope, utilization: 0, resetsAt: nil).label)),
            ("seconds", .int(w.seconds)), ("scope", w.scope.isEmpty ? nil : .string(w.scope)),
            ("unused_share", w.unusedShare.map(JSONValue.double) ?? .null),
            (
                "periods",
                .array(
                    w.periods.map { p in
                        .compact([
                            ("resets_at", .string(Timestamp.format(p.resetsAt))), ("peak_utilization", .double(p.peak)),
                            ("unused_share", p.unusedShare.map(JSONValue.double) ?? .null),
                        ])
                    })
            ),
            ("series", .array(w.series.map { ["at": .string(Timestamp.format($0.0)), "utilization": .double($0.1)] })),
        ])
    }

    /// A credential's latest windows as `GET .../health` and `/v1/quotaflow/usage` show them.
    static func latest(_ set: WindowSet, now: Int64) -> JSONValue {
        .compact([
            ("status", set.status.map(JSONValue.string)), ("observed_at", Rep.time(set.observedAt)),
            (
                "windows",
                .array(
                    set.readings.map { r in
                        .compact([
                            ("window", .string(r.label)), ("seconds", .int(r.seconds)), ("scope", r.scope.isEmpty ? nil : .string(r.scope)),
                            ("utilization", .double(r.utilization(at: now))), ("resets_at", Rep.time(r.resetsAt)),
                            ("limited", .bool(r.refuses(at: now, observedAt: set.observedAt))),
                        ])
                    })
            ),
        ])
    }
}
