import Foundation
import Hummingbird
import QuotaflowCore

/// The overview: spend against cap for every project (as a tree), the month-end forecast, alerts
/// fired, approvals waiting, pool use and savings. Its live part is re-fetched every few seconds.
extension ConsoleController {
    func registerOverview(on console: RouterGroup<AppRequestContext>) {
        console.get("overview") { request, context in
            let (session, tenant) = try await signedIn(request)
            let live = try await overview(session: session, tenant: tenant, context: context)
            return page("overview", title: "Overview", session: session, tenant: tenant, data: ["live": live])
        }
        // Polled by the page every few seconds: unchanged since the last poll answers 304 without a body.
        console.get("overview/live") { request, context in
            let (session, tenant) = try await signedIn(request)
            let html = view.render("overview_live", ["live": try await overview(session: session, tenant: tenant, context: context)])
            let etag = "\"" + String(SecretDigest.of(html).prefix(24)) + "\""
            if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
            var response = ConsoleView.html(html)
            response.headers[.eTag] = etag
            return response
        }
    }

    func overview(session: ConsoleSession, tenant: String, context: AppRequestContext) async throws -> [String: Any] {
        let forecast = try await get("/usage/projects", session: session, tenant: tenant, context: context)
        let budgets = try await get("/budgets", session: session, tenant: tenant, context: context)
        let approvals = try await get("/approvals", [("status", "open"), ("limit", "20")], session: session, tenant: tenant, context: context)
        let utilization = try await get("/utilization", session: session, tenant: tenant, context: context)
        let savings = try await get("/savings", session: session, tenant: tenant, context: context)

        let rows = TemplateData.list(forecast)
        let ordered = Self.tree(rows, id: "project_id", parent: "parent_id")
        let bars = ordered.map { row, depth in
            SVGChart.CapBar(
                label: row["name"] as? String ?? "", depth: depth, spent: row["spent_micros"] as? Int64 ?? 0, cap: row["cap_micros"] as? Int64,
                id: row["project_id"] as? String ?? "")
        }
        var alerts: [[String: Any]] = []
        for b in TemplateData.list(budgets) {
            for t in b["thresholds_fired"] as? [Any] ?? [] {
                alerts.append(["name": b["name"] ?? "", "threshold": t, "spent_usd": b["spent_usd"] ?? "", "cap_usd": b["cap_usd"] ?? ""])
            }
        }
        // A root's spend covers its subtree, so the totals add the roots of the tree as drawn (a project whose
        // parent is archived is a root here too).
        let roots = ordered.filter { $0.1 == 0 }.map(\.0)
        let totalSpent = roots.reduce(Int64(0)) { $0 + ($1["spent_micros"] as? Int64 ?? 0) }
        let totalForecast = roots.reduce(Int64(0)) { $0 + ($1["forecast_micros"] as? Int64 ?? 0) }
        let waiting = TemplateData.list(approvals)
        var saved = TemplateData.object(savings)
        for key in ["saved_vs_list_price_percent", "saved_vs_individual_seats_percent"] {
            if let v = saved[key] as? Double { saved[key] = String(format: "%.1f", v) }
        }
        return [
            "bars": SVGChart.capBars(bars), "projects": ordered.map { row, depth in row.merging(["depth": depth, "indent": depth > 0]) { $1 } },
            "has_projects": !rows.isEmpty, "total_spent_usd": ConsoleText.display(totalSpent),
            "total_forecast_usd": ConsoleText.display(totalForecast),
            "alerts": alerts, "alerts_count": alerts.count, "has_alerts": !alerts.isEmpty, "approvals": waiting,
            "approvals_count": approvals["next_cursor"]?.stringValue == nil ? String(waiting.count) : "\(waiting.count)+",
            "pools": TemplateData.list(utilization, "pools"), "resources": TemplateData.list(utilization, "resources"),
            "savings": saved, "updated_text": ConsoleText.time(state.clock.nowMs()),
        ]
    }

    /// Rows in tree order (each parent before its children), with their depth. Rows whose parent
    /// is not listed are roots.
    static func tree(_ rows: [[String: Any]], id: String, parent: String) -> [([String: Any], Int)] {
        let ids = Set(rows.compactMap { $0[id] as? String })
        var children: [String: [[String: Any]]] = [:]
        var roots: [[String: Any]] = []
        for r in rows {
            if let p = r[parent] as? String, ids.contains(p) { children[p, default: []].append(r) } else { roots.append(r) }
        }
        var out: [([String: Any], Int)] = []
        var seen = Set<String>()
        func walk(_ r: [String: Any], _ depth: Int) {
            guard let rid = r[id] as? String, seen.insert(rid).inserted else { return }
            out.append((r, depth))
            for c in children[rid] ?? [] { walk(c, depth + 1) }
        }
        for r in roots { walk(r, 0) }
        return out
    }
}
