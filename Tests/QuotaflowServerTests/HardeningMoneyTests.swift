import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore
import Synchronization
import Testing

@testable import QuotaflowServer

/// Money found wrong from outside: `n` choices, server tool fees, what rows record when usage never
/// arrives, one rule for answers that break off, and approvals opened once.
@Suite(.scoped) struct HardeningMoneyTests {
    @Test func choicesAreReservedAndCheckedAsNTimesTheOutput() async throws {
        let server = try await TestServer.start()
        let gate = AsyncGate()
        let upstream = try await exactUpstream(gate: gate)
        let t = try await TenantFixture.exact(server, upstream: upstream, models: ["exact-model"])
        // A hard cap of 1,000: each request's worst case is 3 × 100 = 300, so 3 fit, not 10.
        let p = try await t.project(extra: [("budget", ["monthly_cap_micros": 1_000])])
        let key = try await t.key(project: p)
        let results = try await withThrowingTaskGroup(of: TestResponse.self) { group in
            for _ in 0..<10 {
                group.addTask { try await server.chat(key: key.secret, model: "exact-model", extra: [("max_tokens", 100), ("n", 3)]) }
            }
            try await server.eventually("every request to be decided") { server.gateway.engine.reservationsHeld == 3 }
            await gate.open()
            var out: [TestResponse] = []
            for try await r in group { out.append(r) }
            return out
        }
        #expect(results.filter { $0.status == 200 }.count == 3)
        let spent = try await server.ledger(t.id).map(\.costMicros).reduce(0, +)
        #expect(spent == 900)
        // Sequentially, the fourth does not fit the 100 left either.
        #expect(try await server.chat(key: key.secret, model: "exact-model", extra: [("max_tokens", 100), ("n", 3)]).status == 429)
        // The per-request cost limit counts every choice too.
        let limited = try await t.project(extra: [("request_limits", ["max_cost_micros": 250])])
        let k2 = try await t.key(project: limited)
        let over = try await server.chat(key: k2.secret, model: "exact-model", extra: [("max_tokens", 100), ("n", 3)])
        #expect(over.status == 413 && over.json["error"]?["message"]?.stringValue?.contains("× 3 choices") == true)
        #expect(try await server.chat(key: k2.secret, model: "exact-model", extra: [("max_tokens", 100), ("n", 2)]).status == 200)
        // n must be a sensible integer.
        for bad: JSONValue in [.int(0), .int(129), .string("3"), .double(1.5)] {
            let r = try await server.chat(key: k2.secret, model: "exact-model", extra: [("n", bad)])
            #expect(r.status == 400 && r.header("x-should-retry") == "false")
        }
    }

    @Test func webSearchFeesAreBoundedReservedAndCharged() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        let upstream = try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in Stub.models(["exact-model"]) }
            router.post("v1/messages") { req, _ in
                _ = try await Stub.record(recorder, req, path: "messages")
                return Stub.json([
                    "id": "msg_1", "type": "message", "role": "assistant", "model": "exact-model", "content": [["type": "text", "text": "ok"]],
                    "stop_reason": "end_turn",
                    "usage": ["input_tokens": 100, "output_tokens": 20, "server_tool_use": ["web_search_requests": 2]],
                ])
            }
        }
        let t = try await TenantFixture.exact(server, upstream: upstream, models: ["exact-model"], provider: "anthropic")
        let key = try await t.key(project: try await t.project())
        let tools: JSONValue = [["type": "web_search_20250305", "name": "web_search"], ["name": "local_tool", "input_schema": ["type": "object"]]]
        let r = try await server.messages(key: key.secret, model: "exact-model", extra: [("tools", tools)])
        #expect(r.status == 200)
        // The unbounded search tool went upstream with max_uses set; the client tool as sent.
        let sent = try #require(recorder.all.first?.body["tools"]?.arrayValue)
        #expect(sent[0]["max_uses"] == .int(ServerTools.defaultMaxUses) && sent[1] == tools.arrayValue![1])
        let row = try #require(try await server.ledger(t.id).first)
        // 20 output tokens at 1 micro-USD each, plus 2 searches at $10 per 1,000.
        #expect(row.usage.serverToolCalls == 2 && row.costMicros == 20 + 20_000)
        // The reservation covered 10 searches and their results.
        #expect(row.reservedMicros == 64 + 10 * 10_000)
        // A budget that cannot cover the searches refuses, naming them.
        let small = try await t.project(extra: [("budget", ["monthly_cap_micros": 50_000])])
        let k2 = try await t.key(project: small)
        let refused = try await server.messages(key: k2.secret, model: "exact-model", extra: [("tools", tools)])
        #expect(refused.status == 429 && refused.json["error"]?["message"]?.stringValue?.contains("10 billed tool calls") == true)
    }

    @Test func rowsWithoutUsageRecordTheChargeNotInventedTokens() async throws {
        let server = try await TestServer.start()
        let upstream = try await Stub.upstream(models: ["exact-model"]) { _, _ in
            Stub.json([
                "id": "c", "object": "chat.completion", "model": "exact-model",
                "choices": [["index": 0, "message": ["role": "assistant", "content": "ok"]]],
            ])
        }
        let t = try await TenantFixture.exact(server, upstream: upstream, models: ["exact-model"])
        let key = try await t.key(project: try await t.project())
        #expect(try await server.chat(key: key.secret, model: "exact-model", extra: [("max_tokens", 100)]).status == 200)
        let row = try #require(try await server.ledger(t.id).first)
        #expect(row.flags.contains(.usageMissing))
        #expect(row.costMicros == row.reservedMicros && row.costMicros == 100)
        #expect(row.usage.input == 0 && row.usage.output == 0)
    }

    /// A stream cut by the network and a stream carrying an upstream error event end the same way:
    /// status 502, charged the input estimate and the output delivered, flagged `usage_estimated`.
    @Test func brokenStreamsAreChargedByOneRule() async throws {
        let server = try await TestServer.start()
        let upstream = try await Stub.upstream(models: ["exact-model"]) { body, _ in
            let content = [Stub.chunk("a"), Stub.chunk("b"), Stub.chunk("c")]
            if body["messages"]?.arrayValue?.first?["content"] == "cut" { return Stub.stream(content, gap: .milliseconds(30), thenFail: true) }
            return Stub.stream(content + ["data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"])
        }
        let t = try await TenantFixture.exact(server, upstream: upstream, models: ["exact-model"])
        let key = try await t.key(project: try await t.project())
        for content in ["cut", "error"] {
            let body: JSONValue = [
                "model": "exact-model", "max_tokens": 100, "stream": true, "messages": [["role": "user", "content": .string(content)]],
            ]
            _ = try? await server.request(.POST, "/v1/chat/completions", body: body, token: key.secret)
        }
        try await server.eventually("both rows") { try await server.ledger(t.id).count == 2 }
        let rows = try await server.ledger(t.id)
        for row in rows {
            #expect(row.status == 502 && row.reason == .upstreamError, "\(row.flags)")
            #expect(row.flags.contains(.usageEstimated) && !row.flags.contains(.usageMissing), "\(row.flags)")
            #expect(row.usage.output == 3 && row.costMicros == 3, "\(row.usage) \(row.flags) \(row.costMicros)")
        }
        #expect(rows.contains { $0.flags.contains(.streamError) } && rows.contains { $0.flags.contains(.streamInterrupted) })
        #expect(server.gateway.engine.reservationsHeld == 0)
    }

    @Test func concurrentOverBudgetRequestsOpenOneApproval() async throws {
        let server = try await TestServer.start()
        let upstream = try await exactUpstream()
        let t = try await TenantFixture.exact(server, upstream: upstream, models: ["exact-model"])
        let p = try await t.project(extra: [("budget", ["monthly_cap_micros": 10, "overage_policy": "approval"])])
        let key = try await t.key(project: p)
        let results = try await withThrowingTaskGroup(of: TestResponse.self) { group in
            for _ in 0..<20 { group.addTask { try await server.chat(key: key.secret, model: "exact-model", extra: [("max_tokens", 100)]) } }
            var out: [TestResponse] = []
            for try await r in group { out.append(r) }
            return out
        }
        #expect(results.count == 20 && results.allSatisfy { $0.status == 403 && $0.json["error"]?["code"] == "approval_required" })
        #expect(results.allSatisfy { $0.header("x-should-retry") == "false" })
        let approvals = try await t.call(.GET, "/approvals?status=open")["data"]?.arrayValue ?? []
        #expect(approvals.count == 1)
        let id = try #require(approvals.first?["id"]?.stringValue)
        #expect(results.allSatisfy { $0.json["error"]?["message"]?.stringValue?.contains(id) == true })
    }
}
