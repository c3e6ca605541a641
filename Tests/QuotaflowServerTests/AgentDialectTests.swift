import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore
import Synchronization
import Testing

@testable import QuotaflowServer

/// Claude Code's and Gemini CLI's APIs, and embeddings: each token kind a dialect reports is
/// metered once, free endpoints cost nothing but are governed, and what the agents depend on passes
/// through untouched.
@Suite(.scoped) struct AgentDialectTests {
    static let pricing: JSONValue = [
        "entries": [
            // Anthropic's rules from the input price: reads 0.1×, 5-minute writes 1.25×, 1-hour writes 2×.
            ["model": "claude-sonnet-4-6", "input_per_mtok_micros": 3_000_000, "output_per_mtok_micros": 15_000_000],
            [
                "model": "gemini-2.5-pro", "input_per_mtok_micros": 1_250_000, "output_per_mtok_micros": 10_000_000,
                "cached_input_per_mtok_micros": 312_500,
            ],
            ["model": "text-embedding-3-small", "input_per_mtok_micros": 20_000, "output_per_mtok_micros": 0],
        ]
    ]

    func tenant(_ server: TestServer) async throws -> TenantFixture {
        let t = try await TenantFixture.make(server)
        try await t.call(.PUT, "/pricing", Self.pricing)
        return t
    }

    static func anthropicHeaders(_ key: String) -> [(String, String)] { [("x-api-key", key), ("anthropic-version", "2023-06-01")] }

    @Test func anthropicCacheWritesOfBothLifetimesAndReadsArePricedApart() async throws {
        let server = try await TestServer.start()
        let usage = SimulatedUsage(input: 1000, cached: 2000, cacheWrite5m: 300, cacheWrite1h: 200, output: 50, reasoning: 20, webSearches: 1)
        let up = try await StubUpstream.simulated(models: ["claude-sonnet-4-6"], usage: usage)
        let t = try await tenant(server)
        try await t.resource(provider: "anthropic", baseURL: up.url, models: ["claude-sonnet-4-6"])
        let key = try await t.key(project: try await t.project())
        let body: JSONValue = [
            "model": "claude-sonnet-4-6", "max_tokens": 256, "thinking": ["type": "enabled", "budget_tokens": 128],
            "system": [["type": "text", "text": "You are terse.", "cache_control": ["type": "ephemeral", "ttl": "1h"]]],
            "messages": [["role": "user", "content": "Hello"]],
        ]
        let whole = try await server.request(.POST, "/v1/messages", body: body, headers: Self.anthropicHeaders(key.secret))
        #expect(whole.status == 200 && whole.json["content"]?.arrayValue?.first?["signature"] == "EqQBCgIYAhIM-simulated-signature")
        var streamed = body
        if case .object(var m) = streamed {
            m.append(("stream", true))
            streamed = .object(m)
        }
        let stream = try await server.request(.POST, "/v1/messages", body: streamed, headers: Self.anthropicHeaders(key.secret))
        #expect(stream.status == 200 && stream.text.contains("signature_delta") && stream.text.contains("redacted_thinking"))
        let rows = try await server.ledger(t.id)
        #expect(rows.count == 2)
        for row in rows {
            // input_tokens excludes the cache: 1,000 + 2,000 read + 500 written, of which 200 for an hour.
            #expect(row.usage == TokenUsage(input: 3500, output: 70, cachedInput: 2000, cacheWrite: 500, cacheWrite1h: 200, serverToolCalls: 1))
            // 1,000 × 3 + 2,000 × 0.3 + 300 × 3.75 + 200 × 6 + 70 × 15 + one search at $0.01.
            #expect(row.costMicros == 3000 + 600 + 1125 + 1200 + 1050 + 10_000)
        }
    }

    @Test func anthropicHeadersBodiesAndRefusalsPassThroughUntouched() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        let raw = Mutex<[UInt8]>([])
        let refusal = #"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#
        let up = try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in Stub.models(["claude-sonnet-4-6"]) }
            router.post("v1/messages") { req, _ in
                let bytes = Array(try await req.body.collect(upTo: 1 << 20).readableBytesView)
                guard !Stub.isProbe(req) else { return Stub.missingModel }
                raw.withLock { $0 = bytes }
                recorder.record(Received(path: "messages", headers: req.headers, body: (try? JSONParser.parse(bytes)) ?? .null))
                if bytes.count > 600 {
                    return Response(
                        status: .badRequest, headers: [.contentType: "application/json", HTTPField.Name("request-id")!: "req_up_1"],
                        body: .init(byteBuffer: ByteBuffer(string: refusal)))
                }
                return Stub.anthropicAnswer(model: "claude-sonnet-4-6")
            }
        }
        let t = try await tenant(server)
        try await t.resource(provider: "anthropic", baseURL: up.url, models: ["claude-sonnet-4-6"])
        let key = try await t.key(project: try await t.project())
        let sent =
            #"{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":"Hi"},"#
            + #"{"role":"assistant","content":[{"type":"thinking","thinking":"…","signature":"EqQBCgIYAhIMx+/=="},{"type":"text","text":"Hello"}]},"#
            + #"{"role":"user","content":"Again"}]}"#
        let headers = [
            ("authorization", "Bearer \(key.secret)"), ("anthropic-version", "2026-10-21"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14,extended-cache-ttl-2025-04-11"), ("content-type", "application/json"),
        ]
        let ok = try await server.request(.POST, "/v1/messages?beta=true", raw: Array(sent.utf8), headers: headers)
        #expect(ok.status == 200)
        #expect(raw.withLock { $0 } == Array(sent.utf8))
        let upstreamHeaders = try #require(recorder.all.last?.headers)
        #expect(upstreamHeaders[HTTPField.Name("anthropic-version")!] == "2026-10-21")
        #expect(upstreamHeaders[HTTPField.Name("anthropic-beta")!] == "interleaved-thinking-2025-05-14,extended-cache-ttl-2025-04-11")
        #expect(upstreamHeaders[HTTPField.Name("x-api-key")!] == "sk-upstream-test-credential" && upstreamHeaders[.authorization] == nil)
        // A provider's refusal of the request reaches the client verbatim, with our headers added.
        let long =
            #"{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":""#
            + String(repeating: "x", count: 700) + #""}]}"#
        let refused = try await server.request(.POST, "/v1/messages", raw: Array(long.utf8), headers: headers)
        #expect(refused.status == 400 && refused.text == refusal)
        #expect(refused.header("x-request-id") != nil && refused.header("x-upstream-request-id") == "req_up_1")
    }

    @Test func tokenCountingIsFreeButGovernedAndRecorded() async throws {
        let server = try await TestServer.start()
        let up = try await StubUpstream.simulated(models: ["claude-sonnet-4-6"])
        let t = try await tenant(server)
        let resource = try await t.resource(provider: "anthropic", baseURL: up.url, models: ["claude-sonnet-4-6"])
        // A project with no budget left still counts tokens; its key is limited to 2 requests a minute.
        let p = try await t.project(extra: [("budget", ["monthly_cap_micros": 0])])
        let key = try await t.key(project: p, extra: [("rpm", 2)])
        let body: JSONValue = ["model": "claude-sonnet-4-6", "messages": [["role": "user", "content": "How many tokens is this?"]]]
        let counted = try await server.request(.POST, "/v1/messages/count_tokens", body: body, headers: Self.anthropicHeaders(key.secret))
        #expect(counted.status == 200 && (counted.json["input_tokens"]?.int64Value ?? 0) > 0)
        let chat = try await server.messages(key: key.secret, model: "claude-sonnet-4-6")
        #expect(chat.status == 429 && chat.json["error"]?["code"] == "quota_exceeded")
        let limited = try await server.request(.POST, "/v1/messages/count_tokens", body: body, headers: Self.anthropicHeaders(key.secret))
        #expect(limited.status == 429 && limited.json["error"]?["code"] == "rate_limited" && limited.json["type"] == "error")
        // A model the key may not use is refused here too.
        let other = try await t.key(project: p, extra: [("allowed_models", ["claude-haiku-*"])])
        let notAllowed = try await server.request(.POST, "/v1/messages/count_tokens", body: body, headers: Self.anthropicHeaders(other.secret))
        #expect(notAllowed.status == 403)
        let rows = try await server.ledger(t.id).filter { $0.endpoint == "messages.count_tokens" }
        #expect(rows.count == 3)
        let served = rows.filter { $0.status == 200 }
        #expect(served.count == 1 && served[0].resourceId == resource && served[0].costMicros == 0 && served[0].usage == TokenUsage())
    }

    @Test func geminiIsMeteredWithThoughtsAndCandidatesAndKeysComeAnyWayGoogleSendsThem() async throws {
        let server = try await TestServer.start()
        let up = try await StubUpstream.simulated(
            models: ["gemini-2.5-pro"], usage: SimulatedUsage(input: 1000, cached: 400, output: 100, reasoning: 300))
        let t = try await tenant(server)
        try await t.resource(provider: "gemini", baseURL: up.url, models: ["gemini-2.5-pro"])
        let key = try await t.key(project: try await t.project())
        let body: JSONValue = [
            "contents": [["role": "user", "parts": [["text": "Hello"]]]],
            "generationConfig": ["candidateCount": 2, "maxOutputTokens": 64, "thinkingConfig": ["thinkingBudget": 512]],
        ]
        let path = "/v1beta/models/gemini-2.5-pro"
        let whole = try await server.request(.POST, path + ":generateContent", body: body, headers: [("x-goog-api-key", key.secret)])
        #expect(whole.status == 200 && whole.json["candidates"]?.arrayValue?.count == 2)
        let stream = try await server.request(.POST, path + ":streamGenerateContent?alt=sse&key=\(key.secret)", body: body)
        #expect(stream.status == 200 && stream.text.hasPrefix("data: {") && stream.text.hasSuffix("\r\n\r\n"))
        let count = try await server.request(
            .POST, path + ":countTokens", body: ["contents": body["contents"] ?? .null], headers: [("x-goog-api-key", key.secret)])
        #expect(count.status == 200 && (count.json["totalTokens"]?.int64Value ?? 0) > 0)
        let rows = try await server.ledger(t.id)
        #expect(rows.map(\.endpoint) == ["gemini.generate_content", "gemini.generate_content", "gemini.count_tokens"])
        for row in rows.prefix(2) {
            // promptTokenCount (1,400) includes the 400 cached; thoughts (300) are outside the 200 candidate tokens.
            #expect(row.usage == TokenUsage(input: 1400, output: 500, cachedInput: 400, reasoning: 300))
            #expect(row.costMicros == 1250 + 125 + 5000)
            #expect(row.wireFormat == .gemini && row.modelServed == "gemini-2.5-pro")
        }
        #expect(rows[2].costMicros == 0)
        let models = try await server.request(.GET, "/v1beta/models?key=\(key.secret)")
        #expect(models.json["models"]?.arrayValue?.first?["name"] == "models/gemini-2.5-pro")
    }

    @Test func geminiRefusalsAreGoogleShapedAndTheOutputCapIsWrittenInsideGenerationConfig() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        let up = try await StubUpstream.start { router in
            router.get("v1beta/models") { _, _ in Stub.json(["models": [["name": "models/gemini-2.5-pro"]]]) }
            router.post("v1beta/models/{action}") { req, _ in
                let body = try await Stub.record(recorder, req, path: "gemini")
                _ = body
                return Stub.json([
                    "candidates": [["content": ["role": "model", "parts": [["text": "ok"]]], "finishReason": "STOP", "index": 0]],
                    "usageMetadata": ["promptTokenCount": 5, "candidatesTokenCount": 1, "totalTokenCount": 6], "modelVersion": "gemini-2.5-pro",
                ])
            }
        }
        let t = try await tenant(server)
        try await t.resource(provider: "gemini", baseURL: up.url, models: ["gemini-2.5-pro"])
        let p = try await t.project(extra: [("request_limits", ["max_output_tokens": 100]), ("allowed_models", ["gemini-2.5-pro"])])
        let key = try await t.key(project: p)
        let path = "/v1beta/models/gemini-2.5-pro:generateContent"
        let body: JSONValue = [
            "contents": [["parts": [["text": "Hi"]]]], "generationConfig": ["temperature": .double(0.5), "maxOutputTokens": 4096],
        ]
        #expect((try await server.request(.POST, path, body: body, headers: [("x-goog-api-key", key.secret)])).status == 200)
        let sent = try #require(recorder.all.last?.body)
        #expect(sent["generationConfig"] == ["temperature": .double(0.5), "maxOutputTokens": 100] && sent["contents"] == body["contents"])
        #expect(sent["model"] == nil)
        // Refusals in Google's shape: a bad key, a model the key may not use, a spent budget (final, daily).
        let bad = try await server.request(.POST, path, body: body, headers: [("x-goog-api-key", "qf_pk_nope")])
        #expect(bad.status == 401 && bad.json["error"]?["status"] == "UNAUTHENTICATED" && bad.json["error"]?["code"] == 401)
        let other = try await server.request(
            .POST, "/v1beta/models/gemini-2.5-flash:generateContent", body: body, headers: [("x-goog-api-key", key.secret)])
        #expect(other.status == 403 && other.json["error"]?["status"] == "PERMISSION_DENIED")
        let broke = try await t.project(extra: [("budget", ["monthly_cap_micros": 0])])
        let brokeKey = try await t.key(project: broke)
        let quota = try await server.request(.POST, path, body: body, headers: [("x-goog-api-key", brokeKey.secret)])
        #expect(quota.status == 429 && quota.json["error"]?["status"] == "RESOURCE_EXHAUSTED")
        let details = quota.json["error"]?["details"]?.arrayValue ?? []
        #expect(details.contains { $0["@type"] == "type.googleapis.com/google.rpc.QuotaFailure" })
        let unknown = try await server.request(
            .POST, "/v1beta/models/gemini-2.5-pro:embedContent", body: body, headers: [("x-goog-api-key", key.secret)])
        #expect(unknown.status == 404 && unknown.json["error"]?["status"] == "NOT_FOUND")
        let noAlt = try await server.request(
            .POST, "/v1beta/models/gemini-2.5-pro:streamGenerateContent", body: body, headers: [("x-goog-api-key", key.secret)])
        #expect(noAlt.status == 400 && noAlt.json["error"]?["status"] == "INVALID_ARGUMENT")
    }

    @Test func embeddingsArePricedPerInputToken() async throws {
        let server = try await TestServer.start()
        let up = try await StubUpstream.simulated(models: ["text-embedding-3-small"], usage: SimulatedUsage(input: 5000, output: 0))
        let t = try await tenant(server)
        try await t.resource(baseURL: up.url + "/v1", models: ["text-embedding-3-small"], extra: [("families", ["embeddings"])])
        let key = try await t.key(project: try await t.project())
        let r = try await server.request(.POST, "/v1/embeddings", body: ["model": "text-embedding-3-small", "input": ["a", "b"]], token: key.secret)
        #expect(r.status == 200 && r.json["data"]?.arrayValue?.count == 2)
        let row = try #require(try await server.ledger(t.id).last)
        #expect(row.endpoint == "embeddings" && row.usage == TokenUsage(input: 5000) && row.costMicros == 100)
        // Chat is not served by an embeddings-only resource.
        let chat = try await server.chat(key: key.secret, model: "text-embedding-3-small")
        #expect(chat.status == 503 && chat.json["error"]?["code"] == "no_capacity")
        let missing = try await server.request(.POST, "/v1/embeddings", body: ["model": "text-embedding-3-small"], token: key.secret)
        #expect(missing.status == 400)
    }
}
