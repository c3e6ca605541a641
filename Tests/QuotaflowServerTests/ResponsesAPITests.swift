import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore
import Synchronization
import Testing

@testable import QuotaflowServer

/// The OpenAI Responses API as Codex uses it: metering with every token kind, stored responses pinned
/// to the resource that created them (and to the key), the preamble held until output, the body
/// passed through apart from what bounds its cost.
@Suite(.scoped) struct ResponsesAPITests {
    /// $1 in, $0.10 cached, $10 out per million: 1, 0.1 and 10 micro-USD a token.
    static let pricing: JSONValue = [
        "entries": [
            ["model": "gpt-5.4", "input_per_mtok_micros": 1_000_000, "output_per_mtok_micros": 10_000_000, "cached_input_per_mtok_micros": 100_000]
        ]
    ]
    static let families: (String, JSONValue) = ("families", ["chat", "responses", "embeddings"])

    func tenant(_ server: TestServer, upstreams: [StubUpstream]) async throws -> (TenantFixture, [String]) {
        let t = try await TenantFixture.make(server)
        try await t.call(.PUT, "/pricing", Self.pricing)
        var ids: [String] = []
        for (i, up) in upstreams.enumerated() {
            ids.append(try await t.resource(name: "r\(i)", baseURL: up.url + "/v1", models: ["gpt-5.4"], extra: [Self.families]))
        }
        return (t, ids)
    }

    func create(_ server: TestServer, _ key: String, _ members: [(String, JSONValue)] = []) async throws -> TestResponse {
        try await server.request(.POST, "/v1/responses", body: .object([("model", "gpt-5.4"), ("input", "Hello")] + members), token: key)
    }

    static func events(_ text: String) -> [JSONValue] {
        text.components(separatedBy: "\n\n").compactMap { block in
            guard let line = block.split(separator: "\n").first(where: { $0.hasPrefix("data: ") }) else { return nil }
            return try? JSONParser.parse(Array(line.dropFirst(6).utf8))
        }
    }

    @Test func everyTokenKindIsMeteredStreamedOrNot() async throws {
        let server = try await TestServer.start()
        let up = try await StubUpstream.simulated(
            models: ["gpt-5.4"], usage: SimulatedUsage(input: 1000, cached: 400, output: 300, reasoning: 200, webSearches: 2))
        let (t, _) = try await tenant(server, upstreams: [up])
        let key = try await t.key(project: try await t.project())
        let whole = try await create(server, key.secret, [("tools", [["type": "web_search"]])])
        #expect(whole.status == 200 && whole.json["usage"]?["output_tokens_details"]?["reasoning_tokens"] == 200)
        let streamed = try await create(server, key.secret, [("stream", true), ("tools", [["type": "web_search"]])])
        let events = Self.events(streamed.text)
        #expect(streamed.status == 200 && events.first?["type"] == "response.created" && events.last?["type"] == "response.completed")
        let rows = try await server.ledger(t.id)
        #expect(rows.count == 2)
        for row in rows {
            // input_tokens (1,400) includes the 400 cached; output_tokens (500) includes the 200 reasoning.
            #expect(row.usage == TokenUsage(input: 1400, output: 500, cachedInput: 400, reasoning: 200, serverToolCalls: 2))
            // 1,000 fresh × 1 + 400 cached × 0.1 + 500 × 10 + 2 searches × $0.01.
            #expect(row.costMicros == 1000 + 40 + 5000 + 20_000)
            #expect(row.endpoint == "responses" && row.responseId?.hasPrefix("resp_sim") == true && row.flags.isEmpty)
        }
        #expect(rows[1].stream)
    }

    @Test func followUpsGoToTheResourceThatHoldsTheResponseAndOnlyForItsKey() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qf-pin-\(Identifier.random(8))").path
        let server = try await TestServer.start(dir: dir)
        let a = try await StubUpstream.simulated(models: ["gpt-5.4"])
        let b = try await StubUpstream.simulated(models: ["gpt-5.4"])
        let (t, ids) = try await tenant(server, upstreams: [a, b])
        let project = try await t.project()
        let key = try await t.key(project: project)
        let first = try await create(server, key.secret)
        let id = try #require(first.json["id"]?.stringValue)
        let owner = try #require(try await server.ledger(t.id).last?.resourceId)
        // Each provider knows only its own responses: a follow-up anywhere else would fail.
        for _ in 0..<6 {
            #expect((try await create(server, key.secret, [("previous_response_id", .string(id))])).status == 200)
        }
        #expect((try await server.request(.GET, "/v1/responses/\(id)", token: key.secret)).json["id"] == .string(id))
        let items = try await server.request(.GET, "/v1/responses/\(id)/input_items?limit=5&key=leak", token: key.secret)
        #expect(items.status == 200 && items.json["object"] == "list")
        // Another key of the same project, and another tenant, cannot see it.
        let other = try await t.key(project: project)
        let stranger = try await TenantFixture.make(server)
        try await stranger.resource(baseURL: a.url + "/v1", models: ["gpt-5.4"], extra: [Self.families])
        let strangerKey = try await stranger.key(project: try await stranger.project())
        for secret in [other.secret, strangerKey.secret] {
            let r = try await server.request(.GET, "/v1/responses/\(id)", token: secret)
            #expect(r.status == 404 && r.json["error"]?["code"] == "response_not_found")
            let c = try await create(server, secret, [("previous_response_id", .string(id))])
            #expect(c.status == 404 && c.header("x-should-retry") == "false")
        }
        let rows = try await server.ledger(t.id)
        #expect(rows.filter { $0.status == 200 }.allSatisfy { $0.resourceId == owner })
        #expect(rows.contains { $0.endpoint == "responses.get" && $0.costMicros == 0 && $0.resourceId == owner })
        // The mapping survives a restart.
        await server.stop(removeFiles: false)
        let again = try await TestServer.start(dir: dir)
        #expect((try await again.request(.GET, "/v1/responses/\(id)", token: key.secret)).status == 200)
        // Gone with its resource: a clear refusal, never another resource.
        let t2 = TenantFixture(server: again, id: t.id, adminKey: t.adminKey, poolId: t.poolId)
        try await t2.call(.POST, "/resources/\(owner)/suspend", ["reason": "owner left"])
        let gone = try await create(again, key.secret, [("previous_response_id", .string(id))])
        #expect(gone.status == 409 && gone.json["error"]?["code"] == "response_unavailable")
        #expect(ids.contains(owner))
        // A fresh conversation still works on the other resource.
        #expect((try await create(again, key.secret)).status == 200)
    }

    @Test func compactionIsMeteredLikeAResponse() async throws {
        let server = try await TestServer.start()
        let up = try await StubUpstream.simulated(models: ["gpt-5.4"], usage: SimulatedUsage(input: 2000, output: 100))
        let (t, _) = try await tenant(server, upstreams: [up])
        let key = try await t.key(project: try await t.project())
        let compact = try await server.request(
            .POST, "/v1/responses/compact", body: ["model": "gpt-5.4", "input": [["role": "user", "content": "a long history"]]], token: key.secret)
        #expect(compact.status == 200 && compact.json["object"] == "response.compaction")
        let row = try #require(try await server.ledger(t.id).last)
        #expect(row.endpoint == "responses.compact" && row.usage == TokenUsage(input: 2000, output: 100) && row.costMicros == 2000 + 1000)
    }

    @Test func aDeclaredFamilyTheUpstreamLacksKeepsTheResourceOut() async throws {
        let server = try await TestServer.start()
        // A relay with chat only.
        let up = try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in Stub.models(["gpt-5.4"]) }
            router.post("v1/chat/completions") { _, _ in Stub.missingModel }
        }
        let t = try await TenantFixture.make(server)
        try await t.call(.PUT, "/pricing", Self.pricing)
        let r = try await t.resource(
            provider: "openai_compatible", baseURL: up.url + "/v1", models: ["gpt-5.4"], extra: [("families", ["chat", "responses"])],
            waitActive: false)
        try await t.waitState(r, "rejected")
        let reason = try await t.get("/resources/\(r)").json["state_reason"]?.stringValue ?? ""
        #expect(reason.contains("does not serve responses"), "\(reason)")
        // Declared truthfully, it is admitted; and it takes no Responses requests.
        try await t.call(.PATCH, "/resources/\(r)", ["families": ["chat"]])
        try await t.waitState(r, "active")
        let key = try await t.key(project: try await t.project())
        let refused = try await create(server, key.secret)
        #expect(refused.status == 503 && refused.json["error"]?["code"] == "no_capacity")
        // Families must match the wire format.
        let wrong = try await server.request(
            .PATCH, "/admin/v1/tenants/\(t.id)/resources/\(r)", body: ["families": ["messages"]], token: t.adminKey)
        #expect(wrong.status == 422 && wrong.json["field"] == "families")
    }

    @Test func deletingAndCancellingGoToTheOwnerAndAnswerAsItDoes() async throws {
        let server = try await TestServer.start()
        let up = try await StubUpstream.simulated(models: ["gpt-5.4"])
        let (t, _) = try await tenant(server, upstreams: [up])
        let key = try await t.key(project: try await t.project())
        let id = try #require(try await create(server, key.secret).json["id"]?.stringValue)
        let cancel = try await server.request(.POST, "/v1/responses/\(id)/cancel", token: key.secret)
        #expect(cancel.status == 400 && cancel.text.contains("background"))
        let deleted = try await server.request(.DELETE, "/v1/responses/\(id)", token: key.secret)
        #expect(deleted.status == 200 && deleted.json["deleted"] == true)
        // The provider's own 404 now, passed through.
        let after = try await server.request(.GET, "/v1/responses/\(id)", token: key.secret)
        #expect(after.status == 404 && after.text.contains("not found"))
        let streamed = try await server.request(.GET, "/v1/responses/\(id)?stream=true", token: key.secret)
        #expect(streamed.status == 400)
        let endpoints = try await server.ledger(t.id).map(\.endpoint)
        #expect(endpoints == ["responses", "responses.cancel", "responses.delete", "responses.get"])
    }

    @Test func backgroundAndUnboundedHostedToolsAreRefusedClearly() async throws {
        let server = try await TestServer.start()
        let up = try await StubUpstream.simulated(models: ["gpt-5.4"])
        let (t, _) = try await tenant(server, upstreams: [up])
        let key = try await t.key(project: try await t.project())
        let background = try await create(server, key.secret, [("background", true)])
        #expect(background.status == 400 && background.text.contains("background") && background.header("x-should-retry") == "false")
        let container = try await create(server, key.secret, [("tools", [["type": "code_interpreter", "container": ["type": "auto"]]])])
        #expect(container.status == 400 && container.text.contains("code_interpreter"))
        let conversation = try await create(server, key.secret, [("conversation", "conv_1")])
        #expect(conversation.status == 400)
        #expect(try await server.ledger(t.id).isEmpty)
    }

    @Test func theBodyPassesThroughByteForByteApartFromItsBounds() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        let raw = Mutex<[[UInt8]]>([])
        let up = try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in Stub.models(["gpt-5.4"]) }
            router.post("v1/responses") { req, _ in
                let bytes = Array(try await req.body.collect(upTo: 1 << 20).readableBytesView)
                guard !Stub.isProbe(req) else { return Stub.missingModel }
                raw.withLock { $0.append(bytes) }
                recorder.record(Received(path: "responses", headers: req.headers, body: (try? JSONParser.parse(bytes)) ?? .null))
                return Stub.json([
                    "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.4", "output": [],
                    "usage": ["input_tokens": 10, "output_tokens": 2, "total_tokens": 12],
                ])
            }
        }
        let t = try await TenantFixture.make(server)
        try await t.call(.PUT, "/pricing", Self.pricing)
        try await t.resource(baseURL: up.url + "/v1", models: ["gpt-5.4"], extra: [("families", ["responses"])])
        let key = try await t.key(project: try await t.project())
        // What Codex sends: stateless replay with encrypted reasoning, unknown tool types, client metadata.
        let codex =
            #"{"model":"gpt-5.4","stream":false,"store":false,"include":["reasoning.encrypted_content"],"max_output_tokens":2048,"#
            + #""input":[{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAABo+/x=="},"#
            + #"{"type":"message","role":"user","content":[{"type":"input_text","text":"Say \u2028 PONG"}]}],"#
            + #""tools":[{"type":"namespace","name":"multi_agent_v1","tools":[]},{"type":"function","name":"exec","parameters":{}}],"#
            + #""client_metadata":{"x-codex-installation-id":"abc"},"prompt_cache_key":"c1"}"#
        let r1 = try await server.request(
            .POST, "/v1/responses", raw: Array(codex.utf8), token: key.secret, headers: [("content-type", "application/json")])
        #expect(r1.status == 200)
        #expect(raw.withLock { $0.last } == Array(codex.utf8))
        // Without a cap, one is written (reasoning counts against it); a hosted search gets max_tool_calls.
        let r2 = try await create(server, key.secret, [("tools", [["type": "web_search", "external_web_access": false]])])
        #expect(r2.status == 200)
        let sent = try #require(recorder.all.last?.body)
        #expect(sent["max_output_tokens"] == .int(Responses.assumedCap) && sent["max_tool_calls"] == 10)
        #expect(sent["tools"] == [["type": "web_search", "external_web_access": false]])
        // A policy clamps a larger cap.
        let capped = try await t.project(extra: [("request_limits", ["max_output_tokens": 512])])
        let cappedKey = try await t.key(project: capped)
        #expect((try await create(server, cappedKey.secret, [("max_output_tokens", 4096)])).status == 200)
        #expect(recorder.all.last?.body["max_output_tokens"] == 512)
    }

    /// A stub that fails at its preamble (before output) or after output, as told.
    func flaky(_ failAfterOutput: Bool) async throws -> StubUpstream {
        try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in Stub.models(["gpt-5.4"]) }
            router.post("v1/responses") { req, _ in
                guard !Stub.isProbe(req) else { return Stub.missingModel }
                func event(_ v: JSONValue) -> String { "event: \(v["type"]?.stringValue ?? "")\ndata: \(JSONWriter.string(v))\n\n" }
                let start: JSONValue = ["id": "resp_flaky", "object": "response", "status": "in_progress", "model": "gpt-5.4", "output": []]
                var events = [event(["type": "response.created", "response": start]), event(["type": "response.in_progress", "response": start])]
                if failAfterOutput {
                    events.append(
                        event(["type": "response.output_text.delta", "item_id": "m", "output_index": 0, "content_index": 0, "delta": "Hal"]))
                }
                events.append(
                    event([
                        "type": "response.failed",
                        "response": [
                            "id": "resp_flaky", "status": "failed", "error": ["code": "server_error", "message": "The model failed"], "usage": .null,
                        ],
                    ]))
                return Stub.stream(events)
            }
        }
    }

    @Test func aFailureBeforeOutputGoesToAnotherResourceAndAfterItReachesTheClient() async throws {
        let server = try await TestServer.start()
        let bad = try await flaky(false)
        let good = try await StubUpstream.simulated(models: ["gpt-5.4"])
        let t = try await TenantFixture.make(server)
        try await t.call(.PUT, "/pricing", Self.pricing)
        try await t.resource(name: "a-bad", baseURL: bad.url + "/v1", models: ["gpt-5.4"], extra: [("families", ["responses"])])
        let key = try await t.key(project: try await t.project())
        // With only the failing resource: nothing was sent, so the client gets a clean error, not an event.
        let alone = try await create(server, key.secret, [("stream", true)])
        #expect(alone.status == 502 && alone.json["error"]?["code"] == "upstream_error")
        // Beside a healthy one, the failure costs the client nothing: the next resource answers.
        let bad2 = try await flaky(false)
        let t2 = try await TenantFixture.make(server)
        try await t2.call(.PUT, "/pricing", Self.pricing)
        try await t2.resource(name: "a-bad", baseURL: bad2.url + "/v1", models: ["gpt-5.4"], extra: [("families", ["responses"])])
        let goodId = try await t2.resource(name: "b-good", baseURL: good.url + "/v1", models: ["gpt-5.4"], extra: [Self.families])
        let key2 = try await t2.key(project: try await t2.project())
        for _ in 0..<3 {
            let r = try await create(server, key2.secret, [("stream", true)])
            let events = Self.events(r.text)
            #expect(r.status == 200 && events.first?["type"] == "response.created" && events.last?["type"] == "response.completed")
            #expect(!r.text.contains("resp_flaky"))
        }
        let rows = try await server.ledger(t2.id)
        #expect(rows.count == 3 && rows.allSatisfy { $0.status == 200 && $0.resourceId == goodId })
        #expect(rows.contains { $0.attempts == 2 })
        // After output started, the provider's own failure event reaches the client, and the row says so.
        let late = try await flaky(true)
        let t3 = try await TenantFixture.make(server)
        try await t3.call(.PUT, "/pricing", Self.pricing)
        try await t3.resource(baseURL: late.url + "/v1", models: ["gpt-5.4"], extra: [("families", ["responses"])])
        let key3 = try await t3.key(project: try await t3.project())
        let r = try await create(server, key3.secret, [("stream", true)])
        #expect(r.status == 200 && Self.events(r.text).last?["type"] == "response.failed")
        let row = try #require(try await server.ledger(t3.id).last)
        #expect(row.status == 502 && row.flags.contains(.streamError) && row.flags.contains(.usageEstimated))
    }
}
