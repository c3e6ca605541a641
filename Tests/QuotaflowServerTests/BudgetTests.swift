import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Synchronization
import Testing

@testable import QuotaflowServer

@Suite(.scoped) struct BudgetTests {
    /// Fires `n` requests at once, holds every admitted one upstream until all 200 are decided,
    /// and returns the statuses. A refusal while budget remained would leave fewer than k admitted.
    func burst(_ server: TestServer, keys: [String], n: Int, admitted k: Int, gate: AsyncGate) async throws -> [TestResponse] {
        let done = Counter()
        return try await withThrowingTaskGroup(of: TestResponse.self) { group in
            for i in 0..<n {
                let key = keys[i % keys.count]
                group.addTask {
                    var extra: [(String, JSONValue)] = []
                    extra.append(("max_tokens", 100))
                    let r = try await server.chat(key: key, model: "exact-model", extra: extra)
                    done.add()
                    return r
                }
            }
            try await server.eventually("every refusal to be answered and \(k) requests held", timeout: .seconds(30)) {
                done.value == n - k
                    && server.gateway.engine.resourceSnapshot().values.map(\.inFlight).reduce(0, +) == Int64(k)
            }
            await gate.open()
            var out: [TestResponse] = []
            for try await r in group { out.append(r) }
            return out
        }
    }

    /// The admitted requests wait upstream until every refusal is answered; on a loaded machine (the whole suite
    /// runs in parallel on two cores) that can outlast the tests' usual 5 s first-byte limit.
    let heldUpstream: (inout AppConfig) -> Void = { $0.firstByteTimeoutMs = 60_000 }

    @Test func twoHundredConcurrentRequestsFitExactlyK() async throws {
        let server = try await TestServer.start(heldUpstream)
        let gate = AsyncGate()
        let upstream = try await exactUpstream(gate: gate)
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let k = 37
        let p = try await t.project(extra: [("budget", ["monthly_cap_micros": .int(Int64(k) * 100)])])
        let key = try await t.key(project: p)
        let results = try await burst(server, keys: [key.secret], n: 200, admitted: k, gate: gate)
        #expect(results.filter { $0.status == 200 }.count == k)
        let refusals = results.filter { $0.status != 200 }
        #expect(refusals.count == 200 - k)
        #expect(refusals.allSatisfy { $0.status == 429 && $0.json["error"]?["code"] == "quota_exceeded" })
        let rows = try await server.ledger(t.id)
        #expect(rows.filter { $0.status == 200 }.map(\.costMicros).reduce(0, +) == Int64(k) * 100)
        let budgets = try await t.call(.GET, "/budgets")
        let project = budgets["data"]?.arrayValue?.first { $0["budget"] == .string("project:\(p)") }
        #expect(project?["spent_micros"] == .int(Int64(k) * 100))
        #expect(project?["reserved_micros"] == .int(0))
        #expect(project?["remaining_micros"] == .int(0))
        #expect((try await t.call(.POST, "/budgets/reconcile"))["drift"]?.arrayValue?.isEmpty == true)
    }

    @Test func aDivisionCapBoundsTheSumOfItsTeams() async throws {
        let server = try await TestServer.start(heldUpstream)
        let gate = AsyncGate()
        let upstream = try await exactUpstream(gate: gate)
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let division = try await t.project(name: "division", extra: [("budget", ["monthly_cap_micros": 4_100])])
        let teamA = try await t.project(name: "team-a", extra: [("parent_id", .string(division)), ("budget", ["monthly_cap_micros": 3_000])])
        let teamB = try await t.project(name: "team-b", extra: [("parent_id", .string(division)), ("budget", ["monthly_cap_micros": 3_000])])
        let a = try await t.key(project: teamA)
        let b = try await t.key(project: teamB)
        // 41 fit the division; each team alone could take 30.
        let results = try await burst(server, keys: [a.secret, b.secret], n: 200, admitted: 41, gate: gate)
        #expect(results.filter { $0.status == 200 }.count == 41)
        let rows = try await server.ledger(t.id).filter { $0.status == 200 }
        let spentA = rows.filter { $0.projectId == teamA }.map(\.costMicros).reduce(0, +)
        let spentB = rows.filter { $0.projectId == teamB }.map(\.costMicros).reduce(0, +)
        #expect(spentA + spentB == 4_100)
        #expect(spentA <= 3_000 && spentB <= 3_000)
        #expect((try await t.call(.POST, "/budgets/reconcile"))["drift"]?.arrayValue?.isEmpty == true)
    }

    @Test func rejectNamesTheLimitUseAndPeriodEnd() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(name: "marketing", extra: [("budget", ["monthly_cap_micros": 250, "period": ["day": 1, "time_zone": "UTC"]])])
        let key = try await t.key(project: p)
        #expect((try await server.ask(key.secret)).status == 200)
        let ok = try await server.ask(key.secret)
        #expect(ok.status == 200 && ok.header("x-quotaflow-budget-remaining-micros") == "50")
        let refused = try await server.ask(key.secret)
        #expect(refused.status == 429 && refused.json["error"]?["code"] == "quota_exceeded")
        let message = refused.json["error"]?["message"]?.stringValue ?? ""
        let periodEnd = Timestamp.format(BillingPeriod.containing(SystemClock().nowMs(), anchor: PeriodAnchor()).end)
        // Money is left, but not enough for this request's worst case: the message says so and how to fix it.
        #expect(
            message.contains("marketing") && message.contains("worst case ($0.000100") && message.contains("$0.000050 left")
                && message.contains("ends \(periodEnd)") && message.contains("max_tokens"), "\(message)")
        // No Retry-After (SDKs would sleep until the period ends): the reset time and "don't retry" instead.
        #expect(refused.header("retry-after") == nil)
        #expect(refused.header("x-should-retry") == "false")
        #expect(refused.header("x-quotaflow-budget-resets-at") == periodEnd)
        #expect(refused.json["error"]?["resets_at"]?.stringValue == periodEnd)
        // A smaller request that fits is still admitted.
        #expect((try await server.ask(key.secret, tokens: 50)).status == 200)
    }

    @Test func fallbackModelHasItsOwnCap() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        let upstream = try await exactUpstream(recorder: recorder)
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [
            (
                "budget",
                [
                    "monthly_cap_micros": 100, "overage_policy": "fallback_model",
                    "fallback": ["model": "fallback-model", "max_output_tokens": 20, "cap_micros": 5],
                ]
            )
        ])
        let key = try await t.key(project: p)
        #expect((try await server.ask(key.secret)).status == 200)
        // Over budget: rewritten to the cheaper model with its own output cap (20 tokens at 0.1 micro each = 2 micros).
        let fallback = try await server.ask(key.secret)
        #expect(fallback.status == 200)
        #expect(recorder.all.last?.body["model"] == "fallback-model")
        #expect(recorder.all.last?.body["max_tokens"] == .int(20))
        #expect((try await server.ask(key.secret)).status == 200)
        // The fallback's own cap (5 micros) is now used up.
        let refused = try await server.ask(key.secret)
        #expect(refused.status == 429 && refused.json["error"]?["code"] == "quota_exceeded")
        let rows = try await server.ledger(t.id).filter { $0.status == 200 }
        #expect(rows.map(\.overage) == [nil, .fallback, .fallback])
        #expect(rows[1].flags.contains(.fallback) && rows[1].modelRequested == "exact-model" && rows[1].modelServed == "fallback-model")
        let budgets = try await t.call(.GET, "/budgets")
        let fb = budgets["data"]?.arrayValue?.first { $0["budget"] == .string("project_fallback:\(p)") }
        #expect(fb?["spent_micros"] == .int(4))
        let main = budgets["data"]?.arrayValue?.first { $0["budget"] == .string("project:\(p)") }
        #expect(main?["spent_micros"] == .int(100))
        #expect((try await t.call(.POST, "/budgets/reconcile"))["drift"]?.arrayValue?.isEmpty == true)
    }

    @Test func overflowPolicyUsesMeteredCreditOnlyThroughItsCaps() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let platform = Recorder()
        let platformUpstream = try await exactUpstream(recorder: platform)
        let offer = try await server.admin(
            .POST, "/overflow-offers",
            [
                "name": "overflow-exact", "provider": "openai", "base_url": .string(platformUpstream.url + "/v1"),
                "credential": "sk-upstream-test-credential",
                "models": ["exact-model"], "price": ["input_per_mtok_micros": 0, "output_per_mtok_micros": 2_000_000],
            ])
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let credit = try await t.call(
            .POST, "/resources",
            ["pool_id": .string(t.poolId), "name": "credit", "kind": "overflow", "offer_id": offer["id"]!, "credit_cap_micros": 450])
        try await t.waitState(credit["id"]!.stringValue!, "active")
        let p = try await t.project(extra: [("overflow_allowed", true), ("budget", ["monthly_cap_micros": 100, "overage_policy": "overflow"])])
        let key = try await t.key(project: p)
        #expect((try await server.ask(key.secret)).status == 200)
        #expect(platform.count(path: "chat") == 0)
        #expect((try await server.ask(key.secret)).status == 200)
        #expect((try await server.ask(key.secret)).status == 200)
        #expect(platform.count(path: "chat") == 2)
        // Credit cap 450 at 200 per request: the third overflow request does not fit.
        let refused = try await server.ask(key.secret)
        #expect(refused.status == 503 || refused.status == 429)
        let rows = try await server.ledger(t.id).filter { $0.status == 200 }
        #expect(rows.filter(\.overflow).map(\.overflowChargeMicros) == [200, 200])
        let budgets = try await t.call(.GET, "/budgets")
        #expect(budgets["data"]?.arrayValue?.first { $0["budget"] == .string("project:\(p)") }?["spent_micros"] == .int(100))
        #expect(
            budgets["data"]?.arrayValue?.first { $0["budget"] == .string("overflow_credit:\(credit["id"]!.stringValue!)") }?["spent_micros"]
                == .int(400))
        #expect((try await t.call(.POST, "/budgets/reconcile"))["drift"]?.arrayValue?.isEmpty == true)
    }

    @Test func approvalRoundTrip() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [("budget", ["monthly_cap_micros": 100, "overage_policy": "approval"])])
        let key = try await t.key(project: p)
        #expect((try await server.ask(key.secret)).status == 200)
        let refused = try await server.ask(key.secret)
        #expect(refused.status == 403 && refused.json["error"]?["code"] == "approval_required")
        // Asking again does not open a second request.
        _ = try await server.ask(key.secret)
        try await server.eventually("the approval request") { (try await t.call(.GET, "/approvals?status=open"))["data"]?.arrayValue?.count == 1 }
        let open = try #require((try await t.call(.GET, "/approvals?status=open"))["data"]?.arrayValue?.first)
        #expect(open["project_id"] == .string(p) && open["key_id"] == .string(key.id))
        let id = try #require(open["id"]?.stringValue)
        let bad = try await server.request(.POST, "/admin/v1/tenants/\(t.id)/approvals/\(id)/approve", body: ["grant_micros": 500], token: t.adminKey)
        #expect(bad.status == 422 && bad.json["field"] == "until")
        let approved = try await t.call(.POST, "/approvals/\(id)/approve", ["grant_micros": 200, "duration_seconds": 3600, "note": "launch week"])
        #expect(approved["status"] == "approved")
        #expect((try await server.ask(key.secret)).status == 200)
        #expect((try await server.ask(key.secret)).status == 200)
        #expect((try await server.ask(key.secret)).status == 403)
        let twice = try await server.request(.POST, "/admin/v1/tenants/\(t.id)/approvals/\(id)/deny", token: t.adminKey)
        #expect(twice.status == 409)
        // The grant is used up: a new request is opened, and the answered one stays answered.
        try await server.eventually("a second request") { (try await t.call(.GET, "/approvals?status=open"))["data"]?.arrayValue?.count == 1 }
        let audit = try await t.call(.GET, "/audit?action=approval.*")
        #expect(
            audit["data"]?.arrayValue?.compactMap { $0["action"]?.stringValue }.sorted() == ["approval.approve", "approval.open", "approval.open"])
    }

    @Test func modelGrantsExpire() async throws {
        let clock = ManualClock(nowMs: Timestamp.parse("2026-11-21T10:00:00Z")!)
        let server = try await TestServer.start(clock: clock)
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [("allowed_models", ["exact-model"])])
        let key = try await t.key(project: p)
        #expect((try await server.ask(key.secret, model: "gpt-4.1-mini")).status == 403)
        try await t.call(.POST, "/approvals", ["project_id": .string(p), "model": "gpt-4.1-mini", "duration_seconds": 3600])
        #expect((try await server.ask(key.secret, model: "gpt-4.1-mini")).status == 200)
        clock.advance(byMs: 3_601_000)
        #expect((try await server.ask(key.secret, model: "gpt-4.1-mini")).status == 403)
    }

    @Test func rolloverAcrossThePeriodBoundaryWithAnchorAndTimeZone() async throws {
        // 2026-11-14 23:30 UTC is 2026-11-15 00:30 in Berlin: already the new period there.
        let clock = ManualClock(nowMs: Timestamp.parse("2026-11-10T12:00:00Z")!)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qf-roll-\(Identifier.random(6))").path
        let token = SecretKind.operatorToken.generate()
        let server = try await TestServer.start(clock: clock, dir: dir, operatorToken: token)
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [
            ("budget", ["monthly_cap_micros": 1000, "rollover_percent": 25, "period": ["day": 15, "time_zone": "Europe/Berlin"]])
        ])
        let key = try await t.key(project: p)
        for _ in 0..<4 { #expect((try await server.ask(key.secret)).status == 200) }
        func budget() async throws -> JSONValue? {
            (try await t.call(.GET, "/budgets"))["data"]?.arrayValue?.first { $0["budget"] == .string("project:\(p)") }
        }
        #expect(try await budget()?["period_start"] == "2026-10-14T22:00:00Z")
        #expect(try await budget()?["spent_micros"] == .int(400))
        clock.set(nowMs: Timestamp.parse("2026-11-14T23:30:00Z")!)
        // Unused 600, capped at 25% of 1000: 250 carried.
        let r = try await server.ask(key.secret)
        #expect(r.status == 200)
        let after = try await budget()
        #expect(after?["period_start"] == "2026-11-14T23:00:00Z")
        #expect(after?["rollover_micros"] == .int(250))
        #expect(after?["spent_micros"] == .int(100))
        #expect(after?["remaining_micros"] == .int(1150))
        // A restart recomputes the same counters from the ledger.
        await server.stop(removeFiles: false)
        let restarted = try await TestServer.start(clock: clock, dir: dir, operatorToken: token)
        let t2 = TenantFixture(server: restarted, id: t.id, adminKey: t.adminKey, poolId: t.poolId)
        let again = (try await t2.call(.GET, "/budgets"))["data"]?.arrayValue?.first { $0["budget"] == .string("project:\(p)") }
        #expect(again?["rollover_micros"] == .int(250) && again?["spent_micros"] == .int(100))
        #expect((try await t2.call(.POST, "/budgets/reconcile"))["drift"]?.arrayValue?.isEmpty == true)
    }
}
