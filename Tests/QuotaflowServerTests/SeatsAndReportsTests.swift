import Foundation
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Testing

@testable import QuotaflowServer

@Suite(.scoped) struct SeatsAndReportsTests {
    static let start = Timestamp.parse("2026-11-02T09:00:00Z")!

    @Test func seatLifecycleWithExpiryRevokeAndRotation() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let server = try await TestServer.start(clock: clock)
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream, settings: ["max_seat_duration_seconds": 864_000])
        let p = try await t.project(extra: [("allowed_models", ["exact-model", "gpt-4.1*"])])
        let tooLong = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/projects/\(p)/seats", body: ["holder": "Ada (contractor)", "duration_seconds": 2_592_000],
            token: t.adminKey)
        #expect(tooLong.status == 422 && tooLong.json["field"] == "expires_at")
        let outside = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/projects/\(p)/seats",
            body: ["holder": "Ada", "duration_seconds": 86_400, "allowed_models": ["claude-opus-4-5"]], token: t.adminKey)
        #expect(outside.status == 422 && outside.json["field"] == "allowed_models[0]")
        let seat = try await t.call(
            .POST, "/projects/\(p)/seats",
            ["holder": "Ada (contractor)", "contact": "ada@example.com", "duration_seconds": 172_800, "note": "sprint 42"])
        let seatId = try #require(seat["id"]?.stringValue)
        let secret = try #require(seat["key"]?.stringValue)
        #expect(secret.hasPrefix("qf_sk_") && seat["state"] == "active")
        #expect((try await t.get("/projects/\(p)/seats")).json["data"]?.arrayValue?.first?["key"] == nil)
        #expect((try await server.ask(secret)).status == 200)
        let listed = try await t.call(.GET, "/projects/\(p)/seats/\(seatId)")
        #expect(listed["requests"] == .int(1) && listed["total_spent_micros"] == .int(100) && listed["last_used_at"]?.stringValue != nil)
        // Expiry: refused at once, marked by the sweep, audited.
        clock.advance(byMs: 2 * 86_400_000)
        let expired = try await server.ask(secret)
        #expect(expired.status == 401 && expired.json["error"]?["code"] == "key_expired" && !expired.text.contains(secret))
        // The background sweep may already have run on the advanced clock; running it again is harmless.
        _ = try await MaintenanceService(
            state: server.state, engine: server.gateway.engine, writer: server.gateway.writer, clients: server.gateway.clients
        ).expireSeats(now: clock.nowMs())
        #expect((try await t.call(.GET, "/projects/\(p)/seats/\(seatId)"))["state"] == "expired")
        #expect((try await t.call(.GET, "/audit?action=seat.expire"))["data"]?.arrayValue?.count == 1)
        // Extending brings it back.
        let extended = try await t.call(.PATCH, "/projects/\(p)/seats/\(seatId)", ["duration_seconds": 86_400])
        #expect(extended["state"] == "active" && extended["expired_at"] == .null)
        #expect((try await server.ask(secret)).status == 200)
        // Rotation: both keys work during the grace period, then only the new one.
        let rotated = try await t.call(.POST, "/projects/\(p)/seats/\(seatId)/rotate", ["grace_seconds": 60])
        let fresh = try #require(rotated["key"]?.stringValue)
        #expect(fresh != secret)
        #expect((try await server.ask(secret)).status == 200)
        #expect((try await server.ask(fresh)).status == 200)
        clock.advance(byMs: 61_000)
        let old = try await server.ask(secret)
        #expect(old.status == 401 && old.json["error"]?["code"] == "key_expired")
        #expect((try await server.ask(fresh)).status == 200)
        // Revoke is immediate.
        try await t.call(.POST, "/projects/\(p)/seats/\(seatId)/revoke")
        let revoked = try await server.ask(fresh)
        #expect(revoked.status == 401 && revoked.json["error"]?["code"] == "key_revoked")
        #expect(
            (try await server.request(.PATCH, "/admin/v1/tenants/\(t.id)/projects/\(p)/seats/\(seatId)", body: ["note": "x"], token: t.adminKey))
                .status == 409)
        let actions = (try await t.call(.GET, "/audit?target_id=\(seatId)"))["data"]?.arrayValue?.compactMap { $0["action"]?.stringValue } ?? []
        #expect(Set(actions) == ["seat.issue", "seat.expire", "seat.extend", "seat.rotate", "seat.revoke"])
        let rows = try await server.ledger(t.id).filter { $0.status == 200 }
        #expect(!rows.isEmpty && rows.allSatisfy { $0.seatId == seatId && $0.keyId == nil })
    }

    @Test func aSeatStaysWithinItsOwnCapsAndModels() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [("budget", ["monthly_cap_micros": 100_000])])
        let seat = try await t.call(
            .POST, "/projects/\(p)/seats",
            ["holder": "Intern", "duration_seconds": 86_400, "budget_cap_micros": 250, "allowed_models": ["exact-model"], "rpm": 100])
        let key = try #require(seat["key"]?.stringValue)
        #expect((try await server.ask(key)).status == 200)
        #expect((try await server.ask(key)).status == 200)
        let over = try await server.ask(key)
        #expect(over.status == 429 && over.json["error"]?["message"]?.stringValue?.contains("seat's budget") == true)
        let model = try await server.ask(key, tokens: 10, model: "gpt-4.1-mini")
        #expect(model.status == 403 && model.json["error"]?["code"] == "model_not_allowed")
        #expect((try await t.call(.GET, "/projects/\(p)/seats/\(seat["id"]!.stringValue!)"))["spent_micros"] == .int(200))
    }

    /// Mixed traffic: two projects, keys with users, a seat, two models.
    func traffic(_ server: TestServer, _ t: TenantFixture) async throws -> (String, String) {
        let a = try await t.project(name: "alpha", extra: [("attributes", ["cost_center": "CC-100"])])
        let b = try await t.project(name: "beta", extra: [("attributes", ["cost_center": "CC-200"])])
        let ka = try await t.key(project: a)
        let kb = try await t.key(project: b)
        let seat = try await t.call(.POST, "/projects/\(b)/seats", ["holder": "Grace H.", "duration_seconds": 86_400])
        let sk = try #require(seat["key"]?.stringValue)
        for i in 0..<5 { #expect((try await server.ask(ka.secret, tokens: Int64(10 + i), user: i % 2 == 0 ? "u1" : "u2")).status == 200) }
        for i in 0..<3 { #expect((try await server.ask(kb.secret, tokens: Int64(20 * (i + 1)), model: "gpt-4.1-mini")).status == 200) }
        for _ in 0..<2 { #expect((try await server.ask(sk, tokens: 7)).status == 200) }
        return (a, b)
    }

    @Test func usageAggregatesEqualTheLedgerAndCSVParsesBack() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let (alpha, _) = try await traffic(server, t)
        let rows = try await server.ledger(t.id)
        let totalCost = rows.map(\.costMicros).reduce(0, +)
        let totalOut = rows.map(\.usage.output).reduce(0, +)
        for groupBy in ["project,model,day", "key", "holder", "provider,resource", "month", ""] {
            let r = try await t.call(.GET, "/usage?group_by=\(groupBy)")
            let data = r["data"]?.arrayValue ?? []
            #expect(data.compactMap { $0["cost_micros"]?.int64Value }.reduce(0, +) == totalCost, "\(groupBy)")
            #expect(data.compactMap { $0["tokens_out"]?.int64Value }.reduce(0, +) == totalOut, "\(groupBy)")
            #expect(data.compactMap { $0["requests"]?.int64Value }.reduce(0, +) == Int64(rows.count), "\(groupBy)")
        }
        let byProject = try await t.call(.GET, "/usage?group_by=project")
        let alphaRow = byProject["data"]?.arrayValue?.first { $0["project"] == .string(alpha) }
        #expect(alphaRow?["cost_center"] == "CC-100")
        #expect(alphaRow?["cost_micros"]?.int64Value == rows.filter { $0.projectId == alpha }.map(\.costMicros).reduce(0, +))
        let holders = try await t.call(.GET, "/usage?group_by=holder")
        let names = holders["data"]?.arrayValue?.compactMap { $0["holder"]?.stringValue } ?? []
        #expect(names.contains("seat:Grace H."))
        #expect(names.filter { $0.hasPrefix("user:u_") }.count == 2)
        // CSV of the same report parses back to the same totals.
        let csv = try await t.get("/usage?group_by=project,model&format=csv")
        #expect(csv.header("content-type")?.hasPrefix("text/csv") == true)
        let table = CSVReader.parse(csv.text)
        let header = try #require(table.first)
        let costIndex = try #require(header.firstIndex(of: "cost_micros"))
        #expect(header.contains("cost_center"))
        #expect(table.dropFirst().compactMap { Int64($0[costIndex]) }.reduce(0, +) == totalCost)
        // Raw ledger rows, streamed.
        let raw = try await t.get("/ledger/export")
        let lines = CSVReader.parse(raw.text)
        #expect(lines.count == rows.count + 1)
        let rawCost = try #require(lines.first?.firstIndex(of: "cost_micros"))
        #expect(lines.dropFirst().compactMap { Int64($0[rawCost]) }.reduce(0, +) == totalCost)
        let cc = try #require(lines.first?.firstIndex(of: "cost_center"))
        #expect(Set(lines.dropFirst().map { $0[cc] }) == ["CC-100", "CC-200"])
        #expect((try await t.get("/usage?group_by=colour")).status == 400)
    }

    @Test func forecastFlagsProjectsOnCourseToExceed() async throws {
        let clock = ManualClock(nowMs: Timestamp.parse("2026-11-01T00:00:00Z")!)
        let server = try await TestServer.start(clock: clock)
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let hot = try await t.project(name: "hot", extra: [("budget", ["monthly_cap_micros": 3_000])])
        let calm = try await t.project(name: "calm", extra: [("budget", ["monthly_cap_micros": 100_000])])
        let kh = try await t.key(project: hot)
        let kc = try await t.key(project: calm)
        // Four days at 200 a day (hot) and 100 a day (calm).
        for _ in 0..<4 {
            clock.advance(byMs: 3_600_000)
            #expect((try await server.ask(kh.secret, tokens: 200)).status == 200)
            #expect((try await server.ask(kc.secret, tokens: 100)).status == 200)
            clock.advance(byMs: 86_400_000 - 3_600_000)
        }
        let report = try await t.call(.GET, "/usage/projects")
        let h = try #require(report["data"]?.arrayValue?.first { $0["name"] == "hot" })
        let c = try #require(report["data"]?.arrayValue?.first { $0["name"] == "calm" })
        #expect(h["spent_micros"] == .int(800) && h["daily_average_micros"] == .int(200))
        // 800 + 200 a day for the 26 days left = 6000 > 3000; 3000 is reached 11 days from now.
        #expect(h["forecast_micros"] == .int(6_000))
        #expect(h["on_course_to_exceed"] == .bool(true))
        #expect(h["cap_reached_at"] == "2026-11-16T00:00:00Z")
        #expect(c["on_course_to_exceed"] == .bool(false) && c["cap_reached_at"] == .null)
    }

    @Test func utilizationOnAScriptedLoad() async throws {
        let clock = ManualClock(nowMs: Timestamp.parse("2026-11-10T00:00:00Z")!)
        let server = try await TestServer.start(clock: clock)
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.make(server)
        try await t.call(.PUT, "/pricing", exactPricing)
        let busy = try await t.resource(
            name: "busy", kind: "seat", baseURL: upstream.url + "/v1", models: ["exact-model"],
            extra: [
                ("limits", ["rpm": 5]), ("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 1]),
            ])
        let spare = try await t.resource(name: "spare", baseURL: upstream.url + "/v1", models: ["fallback-model"])
        let p = try await t.project()
        let k1 = try await t.key(project: p)
        let k2 = try await t.key(project: p)
        // Five requests in one minute reach the seat's rpm: one minute at its limit.
        for _ in 0..<5 { #expect((try await server.ask(k1.secret, tokens: 10)).status == 200) }
        clock.advance(byMs: 3_600_000)
        #expect((try await server.ask(k2.secret, tokens: 10)).status == 200)
        clock.advance(byMs: 3_600_000)
        try await t.call(.POST, "/resources/\(busy)/suspend")
        clock.advance(byMs: 1_800_000)
        try await t.call(.POST, "/resources/\(busy)/resume")
        clock.advance(byMs: 3 * 86_400_000)
        let r = try await t.call(.GET, "/utilization?from=2026-11-10T00:00:00Z&to=2026-11-10T12:00:00Z&idle_days=2&limit_events=1")
        let b = try #require(r["resources"]?.arrayValue?.first { $0["resource_id"] == .string(busy) })
        #expect(b["requests"] == .int(6))
        #expect(b["at_limit_minutes"] == .int(1))
        #expect(b["suspended_ms"] == .int(1_800_000))
        #expect(b["lease_count"] == .int(2))
        // 6 requests against 5 per minute over 12 hours.
        #expect(b["capacity_share"] == .double(0.0017))
        #expect(r["often_at_limit"]?.arrayValue?.first?["resource_id"] == .string(busy))
        let idle = r["idle_resources"]?.arrayValue?.compactMap { $0["resource_id"]?.stringValue } ?? []
        #expect(idle.contains(spare) && idle.contains(busy))
        #expect(r["pools"]?.arrayValue?.first?["requests"] == .int(6))
    }

    @Test func savingsOnAHandComputedExample() async throws {
        let clock = ManualClock(nowMs: Timestamp.parse("2026-11-01T00:00:00Z")!)
        let server = try await TestServer.start(clock: clock)
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.make(server)
        try await t.call(.PUT, "/pricing", exactPricing)
        // One seat at $30/month and one metered key at half the list price.
        try await t.resource(
            name: "seat", kind: "seat", baseURL: upstream.url + "/v1", models: ["exact-model"],
            extra: [
                ("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 30_000_000]), ("limits", ["max_concurrency": 1]),
            ])
        try await t.resource(
            name: "key", baseURL: upstream.url + "/v1", models: ["exact-model"],
            extra: [
                ("cost_basis", ["type": "per_token", "input_per_mtok_micros": 0, "output_per_mtok_micros": 500_000])
            ])
        let p = try await t.project()
        let keys = [try await t.key(project: p), try await t.key(project: p), try await t.key(project: p)]
        // Three holders; the seat is leased by the first, so the others go to the metered key.
        for k in keys { for _ in 0..<2 { #expect((try await server.ask(k.secret, tokens: 1_000_000)).status == 200) } }
        clock.set(nowMs: Timestamp.parse("2026-11-16T00:00:00Z")!)
        let s = try await t.call(.GET, "/savings?from=2026-11-01T00:00:00Z&to=2026-11-16T00:00:00Z")
        // List price: 6 requests x 1M output tokens x $1 = $6.
        #expect(s["list_price_baseline_micros"] == .int(6_000_000))
        // Metered: 4 requests on the key at $0.50 = $2; seat fee for 15 of 30 days = $15.
        #expect(s["metered_cost_micros"] == .int(2_000_000))
        #expect(s["seat_fees_micros"] == .int(15_000_000))
        #expect(s["actual_cost_micros"] == .int(17_000_000))
        // Three holders x $30 x 15/30 = $45 with individual seats.
        #expect(s["active_holders"] == .int(3))
        #expect(s["individual_seats_baseline_micros"] == .int(45_000_000))
        #expect(s["saved_vs_individual_seats_micros"] == .int(28_000_000))
        #expect(s["saved_vs_individual_seats_percent"] == .double(62.2))
        #expect(s["saved_vs_list_price_percent"] == .double(-183.3))
        #expect(s["method"]?.stringValue?.contains("30 days") == true)
    }

    @Test func otherTenantsSeatsAndUsageAreInvisible() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let a = try await TenantFixture.exact(server, upstream: upstream)
        let b = try await TenantFixture.exact(server, upstream: upstream)
        let pb = try await b.project()
        let seat = try await b.call(.POST, "/projects/\(pb)/seats", ["holder": "Secret Contractor", "duration_seconds": 86_400])
        let seatId = try #require(seat["id"]?.stringValue)
        #expect((try await server.ask(seat["key"]!.stringValue!)).status == 200)
        for path in [
            "/tenants/\(b.id)/projects/\(pb)/seats", "/tenants/\(b.id)/projects/\(pb)/seats/\(seatId)", "/tenants/\(a.id)/projects/\(pb)/seats",
            "/tenants/\(b.id)/usage", "/tenants/\(b.id)/usage/projects", "/tenants/\(b.id)/ledger/export", "/tenants/\(b.id)/utilization",
            "/tenants/\(b.id)/savings", "/tenants/\(b.id)/budgets", "/tenants/\(b.id)/webhooks", "/tenants/\(b.id)/approvals",
        ] {
            let r = try await server.request(.GET, "/admin/v1" + path, token: a.adminKey)
            #expect(r.status == 404, "\(path) -> \(r.status)")
        }
        for (method, path) in [(HTTPMethod.POST, "/projects/\(pb)/seats/\(seatId)/revoke"), (.POST, "/projects/\(pb)/seats/\(seatId)/rotate")] {
            #expect((try await server.request(method, "/admin/v1/tenants/\(a.id)" + path, token: a.adminKey)).status == 404)
        }
        let mine = try await a.call(.GET, "/usage?group_by=holder")
        #expect(mine["data"]?.arrayValue?.isEmpty == true)
        #expect(!(try await a.get("/ledger/export")).text.contains(seatId))
    }

    @Test func endUsersAreDigestsUnlessTheTenantSaysOtherwise() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let hashed = try await TenantFixture.exact(server, upstream: upstream)
        let plain = try await TenantFixture.exact(server, upstream: upstream, settings: ["hash_end_users": false])
        let kh = try await hashed.key(project: try await hashed.project())
        let kp = try await plain.key(project: try await plain.project())
        #expect((try await server.ask(kh.secret, user: "alice@example.com")).status == 200)
        #expect((try await server.ask(kh.secret, user: "alice@example.com")).status == 200)
        #expect((try await server.ask(kp.secret, user: "bob@example.com")).status == 200)
        let digests = try await server.ledger(hashed.id).compactMap(\.userDigest)
        #expect(digests.count == 2 && Set(digests).count == 1 && !digests[0].contains("alice"))
        #expect(try await server.ledger(plain.id).first?.userDigest == "bob@example.com")
        // The same user in another tenant gets another digest.
        let third = try await TenantFixture.exact(server, upstream: upstream)
        let kt = try await third.key(project: try await third.project())
        #expect((try await server.ask(kt.secret, user: "alice@example.com")).status == 200)
        #expect(try await server.ledger(third.id).first?.userDigest != digests[0])
        // No prompt content is stored anywhere in the database.
        let dump = try await server.state.db.read { conn in
            try conn.query("SELECT * FROM ledger").map { "\($0.values)" }.joined()
                + (try conn.query("SELECT * FROM audit_log").map { "\($0.values)" }.joined())
        }
        #expect(!dump.contains("Hello"))
    }
}

/// A small RFC 4180 reader for the tests.
enum CSVReader {
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var cell = ""
        var quoted = false
        var chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count && chars[i + 1] == "\"" {
                        cell.append("\"")
                        i += 1
                    } else {
                        quoted = false
                    }
                } else {
                    cell.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(cell)
                cell = ""
            } else if c == "\n" || c == "\r\n" {
                row.append(cell)
                rows.append(row)
                row = []
                cell = ""
            } else if c != "\r" {
                cell.append(c)
            }
            i += 1
        }
        if !cell.isEmpty || !row.isEmpty {
            row.append(cell)
            rows.append(row)
        }
        chars.removeAll()
        return rows
    }
}
