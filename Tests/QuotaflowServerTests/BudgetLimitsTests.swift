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

/// What surrounds a budget: threshold alerts and their signed deliveries, audit mode, per-request limits,
/// rate limits per key, project, user and tokens, and key budgets with their response headers.
@Suite(.scoped) struct BudgetLimitsTests {
    @Test func thresholdsFireOnceWithSignedRetriedDeliveries() async throws {
        let clock = ManualClock(nowMs: Timestamp.parse("2026-11-21T10:00:00Z")!)
        let server = try await TestServer.start(clock: clock)
        let upstream = try await exactUpstream()
        let hooks = Recorder()
        let failFirst = Atomic<Int>(0)
        let receiver = try await StubUpstream.start { router in
            router.post("hook") { req, _ in
                _ = try await Stub.record(hooks, req, path: "hook")
                return Response(status: failFirst.wrappingAdd(1, ordering: .relaxed).oldValue == 0 ? .internalServerError : .ok)
            }
        }
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [("budget", ["monthly_cap_micros": 1000, "alert_thresholds": [50, 90]])])
        let hook = try await t.call(.POST, "/webhooks", ["url": .string(receiver.url + "/hook"), "project_id": .string(p)])
        let secret = try #require(hook["secret"]?.stringValue)
        #expect((try await t.call(.GET, "/webhooks"))["data"]?.arrayValue?.first?["secret"] == nil)
        let key = try await t.key(project: p)
        for _ in 0..<6 { #expect((try await server.ask(key.secret)).status == 200) }
        try await server.eventually("the first attempt") { hooks.count == 1 }
        // 600 of 1000: 50% fired once, 90% not yet. The first attempt failed; the retry waits for its backoff.
        clock.advance(byMs: 4_000)
        try await Task.sleep(for: .milliseconds(100))
        #expect(hooks.count == 1)
        clock.advance(byMs: 2_000)
        try await server.eventually("the retry") { hooks.count == 2 }
        let (first, second) = (hooks.all[0], hooks.all[1])
        let eventId = try #require(first.headers[HTTPField.Name("x-quotaflow-event-id")!])
        #expect(second.headers[HTTPField.Name("x-quotaflow-event-id")!] == eventId)
        #expect(second.body["data"]?["threshold_percent"] == .int(50))
        #expect(second.body["type"] == "budget.threshold")
        // Verify the signature: HMAC-SHA256 over "<timestamp>.<body>".
        let signature = try #require(second.headers[HTTPField.Name("x-quotaflow-signature")!])
        let parts = Dictionary(
            uniqueKeysWithValues: signature.split(separator: ",").map { p in (String(p.split(separator: "=")[0]), String(p.split(separator: "=")[1]))
            })
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("\(parts["t"]!).\(JSONWriter.string(second.body))".utf8), using: SymmetricKey(data: Array(secret.utf8)))
        #expect(parts["v1"] == SecretDigest.hex(mac))
        // More spend under 90% fires nothing new; crossing 90% fires once.
        #expect((try await server.ask(key.secret, tokens: 350)).status == 200)
        try await server.eventually("the 90% alert") { hooks.count == 3 }
        #expect(hooks.all[2].body["data"]?["threshold_percent"] == .int(90))
        _ = try await server.ask(key.secret, tokens: 10)
        try await Task.sleep(for: .milliseconds(150))
        #expect(hooks.count == 3)
        let log = try await t.call(.GET, "/webhooks/\(hook["id"]!.stringValue!)/deliveries")
        let first50 = log["data"]?.arrayValue?.first { $0["event_id"] == .string(eventId) }
        #expect(first50?["status"] == "delivered" && first50?["attempts"] == .int(2))
        let budgets = try await t.call(.GET, "/budgets")
        #expect(budgets["data"]?.arrayValue?.first { $0["budget"] == .string("project:\(p)") }?["thresholds_fired"] == [50, 90])
    }

    @Test func auditModeRecordsWhatWouldBeRefused() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [("enforcement", "audit"), ("budget", ["monthly_cap_micros": 150]), ("rate_limits", ["rpm": 2])])
        let key = try await t.key(project: p)
        for _ in 0..<4 { #expect((try await server.ask(key.secret)).status == 200) }
        let rows = try await server.ledger(t.id)
        #expect(rows[0].flags.isEmpty)
        #expect(rows[1].flags.contains(.wouldRefuse(.quotaExceeded)))
        #expect(rows[2].flags.contains(.wouldRefuse(.rateLimited)))
        #expect(rows.map(\.costMicros).reduce(0, +) == 400)
        try await t.call(.PATCH, "/projects/\(p)", ["enforcement": "enforce"])
        #expect((try await server.ask(key.secret)).status == 429)
    }

    @Test func perRequestLimitsClampOrRefuse() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        let upstream = try await exactUpstream(recorder: recorder)
        let t = try await TenantFixture.exact(server, upstream: upstream, settings: ["request_limits": ["max_output_tokens": 40]])
        let p = try await t.project(extra: [("request_limits", ["max_output_tokens": 100, "max_input_tokens": 200, "max_cost_micros": 45])])
        let key = try await t.key(project: p)
        // The tenant's global 40 wins over the project's 100; an absent cap is set (as max_completion_tokens,
        // which OpenAI's reasoning models require).
        #expect((try await server.chat(key: key.secret, model: "exact-model")).status == 200)
        #expect(recorder.all.last?.body["max_completion_tokens"] == .int(40))
        #expect(recorder.all.last?.body["max_tokens"] == nil)
        #expect((try await server.ask(key.secret, tokens: 1000)).status == 200)
        #expect(recorder.all.last?.body["max_tokens"] == .int(40))
        #expect((try await server.ask(key.secret, tokens: 20)).status == 200)
        #expect(recorder.all.last?.body["max_tokens"] == .int(20))
        let big = String(repeating: "lorem ipsum ", count: 200)
        let tooLong = try await server.request(
            .POST, "/v1/chat/completions", body: ["model": "exact-model", "messages": [["role": "user", "content": .string(big)]]], token: key.secret)
        #expect(tooLong.status == 413 && tooLong.json["error"]?["code"] == "request_too_large")
        #expect(tooLong.json["error"]?["message"]?.stringValue?.contains("input") == true)
        let costly = try await server.chat(key: key.secret, model: "gpt-4.1-mini", extra: [("max_tokens", 40)])
        #expect(costly.status == 413 && costly.json["error"]?["message"]?.stringValue?.contains("worst-case cost") == true)
        // An unknown model is refused (not waved through) until it has a price or a default.
        let unknown = try await server.chat(key: key.secret, model: "mystery-model")
        #expect(unknown.status == 403 && unknown.json["error"]?["message"]?.stringValue?.contains("no price") == true)
    }

    @Test func rateLimitsPerKeyProjectUserAndTokens() async throws {
        // A clock that stands still: on a loaded machine these requests can take longer than the 10 s in which
        // 6 a minute earns one more.
        let server = try await TestServer.start(clock: ManualClock(nowMs: Timestamp.parse("2026-11-21T10:00:00Z")!))
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [("rate_limits", ["rpm": 6, "rpm_per_user": 1])])
        let k1 = try await t.key(project: p, extra: [("rpm", 3)])
        let k2 = try await t.key(project: p)
        for _ in 0..<3 { #expect((try await server.ask(k1.secret)).status == 200) }
        let keyLimited = try await server.ask(k1.secret)
        #expect(keyLimited.status == 429 && keyLimited.json["error"]?["code"] == "rate_limited")
        #expect(Int(keyLimited.header("retry-after") ?? "") ?? 0 >= 1)
        #expect((try await server.ask(k2.secret, user: "dana")).status == 200)
        let perUser = try await server.ask(k2.secret, user: "dana")
        #expect(perUser.status == 429 && perUser.json["error"]?["message"]?.stringValue?.contains("per-user") == true)
        #expect((try await server.ask(k2.secret, user: "eli")).status == 200)
        #expect((try await server.ask(k2.secret, user: "fay")).status == 200)
        // The project's 6 per minute are used up for everyone (refusals took nothing).
        let project = try await server.ask(k2.secret, user: "gus")
        #expect(project.status == 429 && project.json["error"]?["message"]?.stringValue?.contains("project") == true)
        let tpm = try await t.project(extra: [("rate_limits", ["tpm": 500])])
        let k3 = try await t.key(project: tpm)
        #expect((try await server.ask(k3.secret, tokens: 300)).status == 200)
        #expect((try await server.ask(k3.secret, tokens: 300)).status == 429)
        let rows = try await server.ledger(t.id)
        #expect(rows.filter { $0.reason == .rateLimited }.count == 4)
        // End users are stored as keyed digests, never by name.
        let digests = rows.compactMap(\.userDigest)
        #expect(Set(digests).count >= 4 && digests.allSatisfy { $0.hasPrefix("u_") && !$0.contains("dana") })
    }

    @Test func keyBudgetsAndResponseHeaders() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream)
        let p = try await t.project(extra: [("budget", ["monthly_cap_micros": 10_000]), ("rate_limits", ["rpm_per_key": 10])])
        let key = try await t.key(project: p, extra: [("budget_cap_micros", 250)])
        let first = try await server.ask(key.secret)
        #expect(first.header("x-quotaflow-budget-remaining-micros") == "150")
        #expect(first.header("x-quotaflow-ratelimit-limit-requests") == "10")
        #expect(first.header("x-quotaflow-ratelimit-remaining-requests") == "9")
        #expect((try await server.ask(key.secret)).status == 200)
        let refused = try await server.ask(key.secret)
        #expect(refused.status == 429 && refused.json["error"]?["message"]?.stringValue?.contains("this key's budget") == true)
        let budgets = try await t.call(.GET, "/budgets")
        let k = budgets["data"]?.arrayValue?.first { $0["budget"] == .string("key:\(key.id)") }
        #expect(k?["spent_micros"] == .int(200) && k?["cap_micros"] == .int(250))
    }
}
