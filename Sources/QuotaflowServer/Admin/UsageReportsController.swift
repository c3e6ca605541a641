import Foundation
import HTTPTypes
import HashTreeCollections
import Hummingbird
import NIOCore
import QuotaflowCore
import QuotaflowStore

/// `GET .../usage` (JSON or CSV) and `GET .../ledger/export`: what was used, from the ledger.
struct UsageReportsController {
    let env: AdminEnvironment
    let ledger: LedgerWriter

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/usage", use: usage)
        admin.get("tenants/{tenant_id}/ledger/export", use: exportLedger)
    }

    // MARK: usage

    @Sendable func usage(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let q = request.query
        let (from, to) = try q.reportRange(now: env.now)
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
        await ledger.flush()
        let groupBy = dims
        let groups = try await env.reads.read { conn in try conn.usage(tenantId: tenantId, from: from, to: to, groupBy: groupBy) }
        let catalog = env.catalog.current
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
            var csv = CSV.line(
                dims.map(\.rawValue) + [
                    "cost_center", "requests", "succeeded", "tokens_in", "tokens_out", "tokens_cached", "cost_micros", "upstream_cost_micros",
                    "overflow_charge_micros",
                ])
            for g in groups {
                csv += CSV.line(
                    zip(dims, g.keys).map { label($0, $1) ?? "" } + [costCenter(g) ?? ""]
                        + [
                            g.requests, g.succeeded, g.tokensIn, g.tokensOut, g.tokensCached, g.costMicros, g.upstreamCostMicros,
                            g.overflowChargeMicros,
                        ].map(String.init))
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
        try await env.reads.read { conn in try conn.seatHolders(tenantId: tenantId) }
    }

    /// Raw ledger rows as CSV, streamed a page at a time, so any size works.
    @Sendable func exportLedger(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let (from, to) = try request.query.reportRange(now: env.now)
        await ledger.flush()
        let db = env.reads
        let catalog = env.catalog.current
        let header = CSV.line([
            "seq", "request_id", "at", "tenant_id", "project_id", "cost_center", "key_id", "seat_id", "user_digest", "resource_id", "pool_id",
            "overflow", "provider", "endpoint", "model_requested", "model_served", "stream", "tokens_in", "tokens_out", "tokens_cached",
            "tokens_cache_write", "tokens_cache_write_1h", "tokens_reasoning", "cost_micros", "upstream_cost_micros", "overflow_charge_micros",
            "status", "reason", "flags", "latency_us", "attempts",
        ])
        return Response(
            status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"ledger.csv\""],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: header))
                var after: Int64 = 0
                while true {
                    let cursor = after
                    let page = try await db.read { conn in try conn.ledgerPage(tenantId: tenantId, from: from, to: to, afterSeq: cursor, limit: 2000)
                    }
                    guard let last = page.last else { break }
                    var text = ""
                    for e in page {
                        text += CSV.line([
                            String(e.seq), e.requestId, Timestamp.format(e.at), e.tenantId, e.projectId,
                            catalog.projects[e.projectId]?.attributes["cost_center"] ?? "", e.keyId ?? "", e.seatId ?? "", e.userDigest ?? "",
                            e.resourceId ?? "", e.poolId ?? "", e.overflow ? "true" : "false", e.provider ?? "", e.endpoint, e.modelRequested,
                            e.modelServed ?? "", e.stream ? "true" : "false", String(e.usage.input), String(e.usage.output),
                            String(e.usage.cachedInput), String(e.usage.cacheWrite), String(e.usage.cacheWrite1h), String(e.usage.reasoning),
                            String(e.costMicros), String(e.upstreamCostMicros), String(e.overflowChargeMicros),
                            String(e.status), e.reason?.rawValue ?? "", e.flags.map(\.rawValue).joined(separator: ";"), String(e.latencyUs),
                            String(e.attempts),
                        ])
                    }
                    try await writer.write(ByteBuffer(string: text))
                    after = last.seq
                }
                try await writer.finish(nil)
            })
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
