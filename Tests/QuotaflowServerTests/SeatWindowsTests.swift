import Foundation
import HTTPTypes
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Testing

@testable import QuotaflowServer

/// Subscription seats within their terms, over real HTTP against stubs that send the providers'
/// real window headers: routing that follows the windows, exact window cooldowns, headers stripped
/// from pooled answers, windows kept across a restart, sessions that stick and move, passthrough
/// of a holder's own token, the holder's usage endpoint and the windows report.
extension JSONValue {
    /// The `i`th item of an array, or `nil`.
    func item(_ i: Int) -> JSONValue? {
        guard let a = arrayValue, i < a.count else { return nil }
        return a[i]
    }

    /// A number, whether written as an integer or not.
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
}

@Suite(.scoped) struct SeatWindowsTests {
    static let start = Timestamp.parse("2026-11-30T09:00:00Z")!
    static let hour: Int64 = 3_600_000
    static let pricing: JSONValue = [
        "entries": [["model": "claude-haiku-4-5", "input_per_mtok_micros": 1_000_000, "output_per_mtok_micros": 5_000_000]]
    ]

    struct Setup {
        let server: TestServer
        let t: TenantFixture
        let stub: SeatStub
        let upstreamURL: String
        let key: String
        let keyId: String
        let project: String
    }

    /// A tenant with Anthropic-shaped organisation seats `names` (credential `cred-<name>`), pooled.
    func setup(
        clock: ManualClock, seats names: [String], passthrough: Bool = false, keyExtra: [(String, JSONValue)] = [],
        _ configure: @escaping @Sendable (inout AppConfig) -> Void = { _ in }
    ) async throws
        -> (Setup, [String: String])
    {
        let server = try await TestServer.start(clock: clock) { c in
            c.windowPersistMs = 100
            configure(&c)
        }
        let stub = SeatStub()
        let upstream = try await stub.start()
        let t = try await TenantFixture.make(server)
        try await t.call(.PUT, "/pricing", Self.pricing)
        var ids: [String: String] = [:]
        for name in names {
            ids[name] = try await t.resource(
                name: name, kind: "seat", provider: "anthropic", baseURL: upstream.url, credential: "cred-\(name)", models: stub.models,
                extra: [
                    ("lease_mode", "pooled"), ("plan", ["kind": "organization", "name": "Claude Team premium", "weight": 1]),
                    ("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 150_000_000]),
                ])
        }
        if passthrough {
            ids["mine"] = try await t.resource(
                name: "personal-plans", kind: "seat", provider: "anthropic", baseURL: upstream.url, credential: "", models: stub.models,
                extra: [("plan", ["kind": "personal", "name": "Claude Max 5x", "weight": 5]), ("credential", .null)])
        }
        let p = try await t.project()
        let key = try await t.key(project: p, extra: keyExtra)
        return (Setup(server: server, t: t, stub: stub, upstreamURL: upstream.url, key: key.secret, keyId: key.id, project: p), ids)
    }

    @Test func routingFollowsTheWindowsAndPooledAnswersCarryNoneOfThem() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let (s, ids) = try await setup(clock: clock, seats: ["a", "b"])
        let now = Self.start
        // a has more of its week left per hour, but its 5-hour window is at 92%; b has room.
        s.stub.set(
            "cred-a",
            headers: SeatStub.unified(fiveHour: 0.92, fiveHourReset: now + 2 * Self.hour, sevenDay: 0.1, sevenDayReset: now + 24 * Self.hour))
        s.stub.set(
            "cred-b", headers: SeatStub.unified(fiveHour: 0.5, fiveHourReset: now + 3 * Self.hour, sevenDay: 0.5, sevenDayReset: now + 96 * Self.hour)
        )
        // Until both have answered once, routing has no window data for them.
        var warm = 0
        while Set(s.stub.credentialsSeen).count < 2 && warm < 10 {
            #expect((try await s.server.messages(key: s.key)).status == 200)
            warm += 1
        }
        let before = s.stub.recorder.count
        for _ in 0..<6 {
            let r = try await s.server.messages(key: s.key)
            #expect(r.status == 200)
            // The pool's windows are nobody's own: none of the window headers reach the client.
            #expect(!r.headers.contains { $0.name.lowercased().hasPrefix("anthropic-ratelimit") })
        }
        #expect(s.stub.credentialsSeen.dropFirst(before).allSatisfy { $0 == "cred-b" })
        let rows = try await s.server.ledger(s.t.id)
        #expect(rows.suffix(6).allSatisfy { $0.resourceId == ids["b"] && $0.routeReason == .windows })
        // Health shows what the provider reported.
        let health = try await s.t.call(.GET, "/resources/\(ids["a"]!)/health")
        let windows = try #require(health["usage_windows"]?.arrayValue?.first?["windows"]?.arrayValue)
        #expect(windows.map { $0["window"] } == ["5h", "7d"] && windows[0]["utilization"] == .double(0.92))
        #expect(windows[0]["resets_at"] == .string(Timestamp.format(now + 2 * Self.hour)))
        // Metrics count the reasons.
        let metrics = try await s.server.request(.GET, "/metrics", token: s.server.operatorToken)
        #expect(metrics.text.contains("quotaflow_route_reasons_total{reason=\"windows\"}"))
    }

    @Test func a429WithAWindowResetCoolsUntilExactlyThatResetAndOneWithoutIsItsOwnCause() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let (s, ids) = try await setup(clock: clock, seats: ["a", "b"])
        let now = Self.start
        // b's weekly window is used up and resets in three days: far beyond max_cooldown_ms (6 h).
        let weekly = now + 72 * Self.hour
        s.stub.set(
            "cred-b", status: 429,
            headers: SeatStub.unified(fiveHour: 0.4, fiveHourReset: now + Self.hour, sevenDay: 1.0, sevenDayReset: weekly, rejected: true)
                + [("retry-after", "120")])
        s.stub.set("cred-a", status: 429, headers: [])
        let r = try await s.server.messages(key: s.key)
        // Both refused: the client is told to wait, nothing reached it from either seat.
        #expect(r.status == 503 || r.status == 429)
        try await s.t.waitState(ids["b"]!, "cooling")
        let b = try await s.t.call(.GET, "/resources/\(ids["b"]!)")
        #expect(b["cooling_until"] == .string(Timestamp.format(weekly)))
        #expect(b["state_reason"]?.stringValue?.contains("usage window 7d is used up") == true)
        let a = try await s.t.call(.GET, "/resources/\(ids["a"]!)")
        #expect(a["cooling_until"] == .string(Timestamp.format(now + AppConfig().defaultCooldownMs)))
        #expect(a["state_reason"]?.stringValue?.contains("429 without reset headers") == true)
        // Both hits are in the windows report, each with its cause.
        try await s.server.eventually("the limit hits to be written") {
            (try await s.t.get("/seats/windows")).json["credentials"]?.arrayValue?.count == 2
        }
        let report = try await s.t.call(.GET, "/seats/windows")
        let hits = try #require(report["credentials"]?.arrayValue)
        let forB = try #require(hits.first { $0["resource_id"] == .string(ids["b"]!) })
        #expect(forB["limit_hits"] == 1 && forB["limit_hit_timeline"]?.item(0)?["until"] == .string(Timestamp.format(weekly)))
        #expect(forB["limit_hit_timeline"]?.item(0)?["windows"] == ["7d"])
        let forA = try #require(hits.first { $0["resource_id"] == .string(ids["a"]!) })
        #expect(forA["limit_hit_timeline"]?.item(0)?["cause"]?.stringValue?.contains("not taken for a window limit") == true)
    }

    @Test func windowsAreWrittenCoalescedAndSurviveARestart() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let (s, ids) = try await setup(clock: clock, seats: ["a"]) { c in c.windowPersistMs = 60_000 }
        let now = Self.start
        // Ten answers, utilization creeping up within one period: one write, then none until the interval.
        for i in 0..<10 {
            s.stub.set(
                "cred-a",
                headers: SeatStub.unified(
                    fiveHour: 0.5 + Double(i) / 100, fiveHourReset: now + 2 * Self.hour, sevenDay: 0.3, sevenDayReset: now + 50 * Self.hour))
            #expect((try await s.server.messages(key: s.key)).status == 200)
        }
        let samples = {
            try await s.server.state.db.read { conn in try conn.windowSamples(tenantId: s.t.id, resourceId: nil, from: 0, to: Int64.max) }
        }
        try await s.server.eventually("the first write") { try await samples().count == 2 }
        #expect(try await samples().count == 2)
        // A new period (the window reset) is written at once.
        s.stub.set(
            "cred-a",
            headers: SeatStub.unified(fiveHour: 0.05, fiveHourReset: now + 7 * Self.hour, sevenDay: 0.3, sevenDayReset: now + 50 * Self.hour))
        #expect((try await s.server.messages(key: s.key)).status == 200)
        try await s.server.eventually("the new period") { try await samples().count == 4 }
        // Utilization alone waits; a graceful stop writes what was pending, and a new process reads it back.
        s.stub.set(
            "cred-a",
            headers: SeatStub.unified(fiveHour: 0.3, fiveHourReset: now + 7 * Self.hour, sevenDay: 0.35, sevenDayReset: now + 50 * Self.hour))
        #expect((try await s.server.messages(key: s.key)).status == 200)
        #expect(try await samples().count == 4)
        await s.server.stop(removeFiles: false)
        let again = try await TestServer.start(clock: clock, dir: s.server.dir, operatorToken: s.server.operatorToken)
        let restored = try #require(again.gateway.engine.windows(resourceId: ids["a"]!, holder: ""))
        #expect(restored.readings.map(\.utilization) == [0.3, 0.35])
        let health = try await again.admin(.GET, "/tenants/\(s.t.id)/resources/\(ids["a"]!)/health")
        #expect(health["usage_windows"]?.item(0)?["windows"]?.item(0)?["utilization"] == .double(0.3))
    }

    @Test func aSessionSticksThenMovesWhenItsResourceCools() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let (s, ids) = try await setup(clock: clock, seats: ["a", "b"])
        // Claude Code's metadata.user_id, in its JSON form: one device, one session.
        let userId = #"{"device_id":"0862a1c739","account_uuid":"","session_id":"cf5f0515-0000-4000-8000-000000000001"}"#
        let extra: [(String, JSONValue)] = [("metadata", ["user_id": .string(userId)])]
        for _ in 0..<5 { #expect((try await s.server.messages(key: s.key, extra: extra)).status == 200) }
        var rows = try await s.server.ledger(s.t.id)
        let bound = try #require(rows.first?.resourceId)
        #expect(rows.allSatisfy { $0.resourceId == bound })
        #expect(rows.dropFirst().allSatisfy { $0.routeReason == .session })
        // The user part (the device) is the end user, whatever the session.
        #expect(Set(rows.map(\.userDigest)).count == 1)
        // The bound seat hits its limit: the conversation moves, and the ledger says from where.
        s.stub.set(bound == ids["a"] ? "cred-a" : "cred-b", status: 429, headers: [("retry-after", "600")])
        #expect((try await s.server.messages(key: s.key, extra: extra)).status == 200)
        rows = try await s.server.ledger(s.t.id)
        let moved = try #require(rows.last)
        #expect(moved.resourceId != bound && moved.routeReason == .sessionMoved && moved.sessionMovedFrom == bound)
        #expect(moved.attempts == 2)
        #expect((try await s.server.messages(key: s.key, extra: extra)).status == 200)
        #expect(try await s.server.ledger(s.t.id).last?.routeReason == .session)
        // Codex's session_id header binds the same way.
        let codex = try await s.server.request(
            .POST, "/v1/messages", body: ["model": "claude-haiku-4-5", "max_tokens": 8, "messages": [["role": "user", "content": "hi"]]],
            headers: [("x-api-key", s.key), ("anthropic-version", "2023-06-01"), ("session_id", "codex-session-1")])
        #expect(codex.status == 200)
        #expect(Sessions.claudeUserId("user_abc123_account_u-1_session_s-9") == ("user_abc123", "s-9"))
        #expect(Sessions.claudeUserId("plain-user") == ("plain-user", nil))
    }

    @Test func passthroughForwardsTheHoldersOwnTokenAndHeadersOnlyForThem() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let (s, ids) = try await setup(clock: clock, seats: ["org"], passthrough: true)
        let now = Self.start
        let mine = try #require(ids["mine"])
        let resource = try await s.t.call(.GET, "/resources/\(mine)")
        #expect(resource["lease_mode"] == "passthrough" && resource["plan"]?["kind"] == "personal" && resource["credential_hint"] == "passthrough")
        s.stub.set(
            "sk-ant-oat01-holder-one",
            headers: SeatStub.unified(fiveHour: 0.25, fiveHourReset: now + Self.hour, sevenDay: 0.4, sevenDayReset: now + 40 * Self.hour))
        let body: JSONValue = ["model": "claude-haiku-4-5", "max_tokens": 16, "messages": [["role": "user", "content": "hi"]]]
        let clientHeaders = [
            ("x-quotaflow-key", s.key), ("authorization", "Bearer sk-ant-oat01-holder-one"), ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "oauth-2025-04-20,claude-code-20250219"), ("user-agent", "claude-cli/2.1.332 (external, cli)"),
            ("x-app", "cli"),
        ]
        let r = try await s.server.request(.POST, "/v1/messages", body: body, headers: clientHeaders)
        #expect(r.status == 200)
        // The holder's own windows come back to them.
        #expect(r.header("anthropic-ratelimit-unified-5h-utilization") == "0.25")
        let seen = try #require(s.stub.recorder.all.last)
        #expect(seen.headers[.authorization] == "Bearer sk-ant-oat01-holder-one")
        #expect(seen.headers[.userAgent] == "claude-cli/2.1.332 (external, cli)")
        #expect(seen.headers[HTTPField.Name("anthropic-beta")!] == "oauth-2025-04-20,claude-code-20250219")
        #expect(seen.headers[HTTPField.Name("x-app")!] == "cli")
        #expect(seen.headers[HTTPField.Name("x-quotaflow-key")!] == nil && seen.headers[HTTPField.Name("x-api-key")!] == nil)
        // The body went as the client sent it.
        #expect(seen.body == body)
        let row = try #require(try await s.server.ledger(s.t.id).last)
        #expect(row.resourceId == mine && row.routeReason == .passthrough && row.status == 200)
        // A plain request (the Quotaflow key as the credential) never reaches the passthrough seat.
        for _ in 0..<3 { #expect((try await s.server.messages(key: s.key)).status == 200) }
        #expect(try await s.server.ledger(s.t.id).suffix(3).allSatisfy { $0.resourceId == ids["org"] })
        #expect(s.stub.credentialsSeen.suffix(3).allSatisfy { $0 == "cred-org" })
        // Without its token a passthrough request is refused, clearly.
        let noToken = try await s.server.request(
            .POST, "/v1/messages", body: body, headers: [("x-quotaflow-key", s.key), ("anthropic-version", "2023-06-01")])
        #expect(noToken.status == 401 && noToken.text.contains("subscription"))
        let badKey = try await s.server.request(
            .POST, "/v1/messages", body: body, headers: [("x-quotaflow-key", "qf_sk_nope"), ("authorization", "Bearer sk-ant-oat01-holder-one")])
        #expect(badKey.status == 401)
        #expect(!noToken.text.contains("sk-ant-oat01") && !badKey.text.contains("sk-ant-oat01"))
        // A Quotaflow key in the provider's own headers would go upstream: refused.
        for misplaced in [[("authorization", "Bearer \(s.key)")], [("authorization", "Bearer sk-ant-oat01-holder-one"), ("x-api-key", s.key)]] {
            let r = try await s.server.request(.POST, "/v1/messages", body: body, headers: [("x-quotaflow-key", s.key)] + misplaced)
            #expect(r.status == 400 && r.text.contains("x-quotaflow-key only"), "\(r.text)")
        }
        // The holder's plan hits its limit: they get the provider's own answer, and only they wait.
        s.stub.set(
            "sk-ant-oat01-holder-one", status: 429,
            headers: SeatStub.unified(
                fiveHour: 1.0, fiveHourReset: now + Self.hour, sevenDay: 0.5, sevenDayReset: now + 40 * Self.hour, rejected: true))
        let limited = try await s.server.request(.POST, "/v1/messages", body: body, headers: clientHeaders)
        #expect(limited.status == 429 && limited.header("anthropic-ratelimit-unified-5h-status") == "rejected")
        let other = try await s.t.key(project: s.project)
        s.stub.set(
            "sk-ant-oat01-holder-two",
            headers: SeatStub.unified(fiveHour: 0.1, fiveHourReset: now + Self.hour, sevenDay: 0.1, sevenDayReset: now + 40 * Self.hour))
        let two = try await s.server.request(
            .POST, "/v1/messages", body: body,
            headers: [("x-quotaflow-key", other.secret), ("authorization", "Bearer sk-ant-oat01-holder-two"), ("anthropic-version", "2023-06-01")])
        #expect(two.status == 200 && s.stub.credentialsSeen.last == "sk-ant-oat01-holder-two")
        #expect(try await s.t.call(.GET, "/resources/\(mine)")["state"] == "active")
        // Each holder sees their own windows, never another's.
        let usage = try await s.server.request(.GET, "/v1/quotaflow/usage", token: s.key)
        #expect(usage.status == 200)
        let own = try #require(usage.json["passthrough_windows"]?.arrayValue)
        #expect(own.count == 1 && own[0]["windows"]?.item(0)?["utilization"]?.number == 1.0, "\(usage.text)")
        let theirs = try await s.server.request(.GET, "/v1/quotaflow/usage", headers: [("x-quotaflow-key", other.secret)])
        #expect(theirs.json["passthrough_windows"]?.item(0)?["windows"]?.item(0)?["utilization"] == .double(0.1))
        // Health keeps them per holder.
        try await s.server.eventually("both holders' windows to be written") {
            let health = try await s.t.get("/resources/\(mine)/health")
            return Set(health.json["usage_windows"]?.arrayValue?.compactMap { $0["holder"]?.stringValue } ?? []) == [s.keyId, other.id]
        }
    }

    @Test func plansDecideWhichModesAreAllowed() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let (s, _) = try await setup(clock: clock, seats: [])
        let base: [(String, JSONValue)] = [
            ("pool_id", .string(s.t.poolId)), ("kind", "seat"), ("provider", "anthropic"), ("base_url", .string(s.upstreamURL)),
            ("models", ["claude-haiku-4-5"]),
        ]
        func create(_ extra: [(String, JSONValue)]) async throws -> TestResponse {
            try await s.server.request(
                .POST, "/admin/v1/tenants/\(s.t.id)/resources", body: .object(base + [("name", .string("seat-\(Identifier.random(6))"))] + extra),
                token: s.t.adminKey)
        }
        let shared = try await create([
            ("plan", ["kind": "personal"]), ("lease_mode", "pooled"), ("credential", "sk-x"), ("attestation", TenantFixture.attestation),
        ])
        #expect(shared.status == 422 && shared.json["field"] == "lease_mode" && shared.text.contains("personal plan"))
        let handed = try await create([
            ("plan", ["kind": "personal"]), ("lease_mode", "exclusive"), ("credential", "sk-x"), ("attestation", TenantFixture.attestation),
        ])
        #expect(handed.status == 422)
        let stored = try await create([("plan", ["kind": "personal"]), ("credential", "sk-x")])
        #expect(stored.status == 422 && stored.json["field"] == "credential")
        let unattested = try await create([("lease_mode", "exclusive"), ("credential", "sk-x")])
        #expect(unattested.status == 422 && unattested.json["field"] == "attestation")
        let badWeight = try await create([
            ("plan", ["kind": "organization", "weight": -1]), ("credential", "sk-x"), ("attestation", TenantFixture.attestation),
        ])
        #expect(badWeight.status == 422 && badWeight.json["field"] == "plan.weight")
        let badPlan = try await create([("plan", ["kind": "gray-market"]), ("credential", "sk-x")])
        #expect(badPlan.status == 422)
        // The old name for pooled is still understood.
        let legacy = try await create([("lease_mode", "shared"), ("credential", "sk-x"), ("attestation", TenantFixture.attestation)])
        #expect(legacy.status == 201 && legacy.json["lease_mode"] == "pooled")
        // A personal plan is passthrough by default, with nothing stored.
        let personal = try await create([("plan", ["kind": "personal", "name": "Claude Pro"])])
        #expect(personal.status == 201 && personal.json["lease_mode"] == "passthrough", "\(personal.text)")
        let id = try #require(personal.json["id"]?.stringValue)
        let rotate = try await s.server.request(
            .POST, "/admin/v1/tenants/\(s.t.id)/resources/\(id)/rotate-credential", body: ["credential": "sk-y"], token: s.t.adminKey)
        #expect(rotate.status == 409)
    }

    @Test func theHoldersUsageMatchesTheLedgerAndTheWindowsReportWhatTheStubsSaid() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let (s, ids) = try await setup(clock: clock, seats: ["a"], keyExtra: [("budget_cap_micros", 10_000)])
        let now = Self.start
        // Two periods of the 5-hour window: the first reaches 35% and resets; the second 60%, still open.
        let steps: [(Double, Int64)] = [(0.2, now + Self.hour), (0.35, now + Self.hour), (0.6, now + 6 * Self.hour)]
        for (u, reset) in steps {
            s.stub.set("cred-a", headers: SeatStub.unified(fiveHour: u, fiveHourReset: reset, sevenDay: u / 2, sevenDayReset: now + 100 * Self.hour))
            #expect((try await s.server.messages(key: s.key)).status == 200)
            clock.advance(byMs: 2_000)
        }
        clock.set(nowMs: now + 2 * Self.hour)
        let rows = try await s.server.ledger(s.t.id)
        let spent = rows.reduce(Int64(0)) { $0 + $1.costMicros }
        #expect(spent == 3 * 35)
        let usage = try await s.server.request(.GET, "/v1/quotaflow/usage", token: s.key)
        #expect(usage.status == 200)
        #expect(usage.json["budget"]?["spent_micros"] == .int(spent) && usage.json["budget"]?["cap_micros"] == 10_000)
        #expect(usage.json["budget"]?["remaining_micros"] == .int(10_000 - spent))
        #expect(usage.json["project_budget"]?["spent_micros"] == .int(spent))
        #expect(usage.json["budget"]?["period_end"] == "2026-12-01T00:00:00Z")
        // Bad keys get a clear 401.
        #expect((try await s.server.request(.GET, "/v1/quotaflow/usage")).status == 401)
        #expect((try await s.server.request(.GET, "/v1/quotaflow/usage", token: "qf_sk_unknown")).status == 401)
        try await s.server.eventually("the samples to be written") {
            (try await s.t.get("/seats/windows")).json["credentials"]?.item(0)?["windows"]?.item(0)?["series"]?.arrayValue?.count == 3
        }
        let report = try await s.t.call(.GET, "/seats/windows?resource_id=\(ids["a"]!)")
        let fiveHour = try #require(report["credentials"]?.item(0)?["windows"]?.item(0))
        #expect(fiveHour["window"] == "5h")
        #expect(fiveHour["series"]?.arrayValue?.map { $0["utilization"] } == [.double(0.2), .double(0.35), .double(0.6)])
        let periods = try #require(fiveHour["periods"]?.arrayValue)
        #expect(periods.count == 2)
        #expect(periods[0]["peak_utilization"] == .double(0.35) && periods[0]["unused_share"] == .double(0.65))
        #expect(periods[1]["peak_utilization"] == .double(0.6) && periods[1]["unused_share"] == .null)
        #expect(fiveHour["unused_share"] == .double(0.65))
        // The utilization and savings reports use them: 65% of that seat's plan went unused.
        let utilization = try await s.t.call(.GET, "/utilization")
        #expect(utilization["resources"]?.arrayValue?.first { $0["resource_id"] == .string(ids["a"]!) }?["window_unused_share"] == .double(0.65))
        let savings = try await s.t.call(.GET, "/savings?from=2026-11-30T00:00:00Z&to=2026-12-01T00:00:00Z")
        let plan = try #require(savings["unused_plan_capacity"]?.item(0))
        #expect(plan["resource_id"] == .string(ids["a"]!) && plan["unused_share"] == .double(0.65) && plan["window"] == "5h")
        // 150 USD a month over one day of a 30-day month, 65% unused.
        #expect(plan["unused_fee_micros"] == .int(Int64((5_000_000.0 * 0.65).rounded(.down))))
        #expect(savings["plan_fees_unused_micros"] == plan["unused_fee_micros"])
        let other = try await s.t.get("/seats/windows?resource_id=res_nope")
        #expect(other.status == 404)
    }
}
