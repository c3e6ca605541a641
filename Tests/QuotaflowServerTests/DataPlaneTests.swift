import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import QuotaflowTestSupport
import Synchronization
import Testing

@testable import QuotaflowServer

@Suite(.scoped) struct DataPlaneTests {
    @Test func routesAndMetersBothWireFormats() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        let upstream = try await Stub.upstream(recorder: recorder) { _, _ in Stub.openAIAnswer(input: 1000, output: 500, cached: 200) }
        let t = try await TenantFixture.make(server)
        let openai = try await t.resource(baseURL: upstream.url + "/v1", credential: "sk-openai-upstream-credential")
        let anthropic = try await t.resource(
            provider: "anthropic", baseURL: upstream.url, credential: "sk-ant-upstream-credential", models: ["claude-haiku-4-5"])
        let p = try await t.project()
        let key = try await t.key(project: p)
        let r = try await server.chat(key: key.secret, model: "gpt-4.1")
        #expect(r.status == 200)
        #expect(r.json["choices"]?.arrayValue?.count == 1)
        let requestId = try #require(r.header("x-request-id"))
        let m = try await server.messages(key: key.secret)
        #expect(m.status == 200 && m.json["type"] == "message")
        // The resource's credential went upstream; the client's key never did.
        let sent = recorder.all
        #expect(sent.count == 2)
        #expect(sent[0].headers[.authorization] == "Bearer sk-openai-upstream-credential")
        #expect(sent[1].headers[HTTPField.Name("x-api-key")!] == "sk-ant-upstream-credential")
        for s in sent { #expect(!"\(s.headers)".contains(key.secret)) }
        let rows = try await server.ledger(t.id)
        #expect(rows.count == 2)
        let row = rows[0]
        #expect(row.requestId == requestId)
        #expect(row.resourceId == openai && row.projectId == p && row.keyId == key.id)
        #expect(row.modelRequested == "gpt-4.1" && row.modelServed == "gpt-4.1-mini")
        #expect(row.usage == TokenUsage(input: 1000, output: 500, cachedInput: 200))
        // GPT-4.1 list price: $2 in, $0.50 cached, $8 out per million tokens.
        #expect(row.costMicros == 1600 + 100 + 4000)
        #expect(row.status == 200 && row.attempts == 1 && row.latencyUs > 0 && row.provider == "openai")
        #expect(rows[1].resourceId == anthropic && rows[1].wireFormat == .anthropic)
        // Claude Haiku list price: $1 in, $5 out.
        #expect(rows[1].costMicros == 10 + 25)
    }

    @Test func ledgerRowIsCommittedBeforeTheResponseCompletes() async throws {
        let server = try await TestServer.start(engine: .sqlite)
        let upstream = try await Stub.upstream()
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: upstream.url + "/v1")
        let key = try await t.key(project: try await t.project())
        for _ in 0..<5 {
            let r = try await server.chat(key: key.secret)
            let id = try #require(r.header("x-request-id"))
            // Read straight from the file through a fresh connection, without flushing anything.
            let conn = try StoreConnection(sqlitePath: server.state.config.databasePath, readOnly: true)
            #expect(try conn.ledgerEntry(requestId: id) != nil)
        }
    }

    @Test func streamsPassThroughAsTheyArriveAndAreMetered() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        // The upstream sends its first event, then holds the rest until the client has read that
        // event (or 5 s pass). A gateway that buffered the stream would make it wait the full 5 s.
        let clientHasFirstEvent = AsyncGate()
        let heldUntilClientRead = Mutex(false)
        let upstream = try await Stub.upstream(recorder: recorder) { body, _ in
            var rest = [Stub.chunk("lo")]
            if body["stream_options"]?["include_usage"] == .bool(true) { rest.append(Stub.usageChunk) }
            rest.append("data: [DONE]\n\n")
            let events = rest
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: Stub.chunk("Hel")))
                    let released = await clientHasFirstEvent.wait(upTo: .seconds(5))
                    heldUntilClientRead.withLock { $0 = released }
                    for e in events { try await writer.write(ByteBuffer(string: e)) }
                    try await writer.finish(nil)
                })
        }
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: upstream.url + "/v1")
        let key = try await t.key(project: try await t.project())
        var request = HTTPClientRequest(url: server.base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key.secret)")
        request.body = .bytes(ByteBuffer(string: #"{"model":"gpt-4.1-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.headers.first(name: "content-type")?.contains("text/event-stream") == true)
        var received = ""
        for try await chunk in response.body {
            received += String(buffer: chunk)
            if received.contains("Hel") { await clientHasFirstEvent.open() }
        }
        // The first event reached the client while the upstream was still holding the rest.
        #expect(heldUntilClientRead.withLock { $0 })
        #expect(received.contains("Hel") && received.hasSuffix("data: [DONE]\n\n"))
        // We asked upstream for usage; the client did not, so the usage chunk was not passed on.
        #expect(recorder.all.first?.body["stream_options"]?["include_usage"] == .bool(true))
        #expect(!received.contains("prompt_tokens"))
        let row = try #require(try await server.ledger(t.id).first)
        #expect(row.stream && row.status == 200 && row.usage == TokenUsage(input: 11, output: 3))
        #expect(row.ttfbUs != nil)
    }

    @Test func leastLoadedResourceWinsAndLimitsHold() async throws {
        let server = try await TestServer.start()
        let gate = AsyncGate()
        let upstream = try await Stub.upstream { _, _ in
            await gate.wait()
            return Stub.openAIAnswer()
        }
        let t = try await TenantFixture.make(server)
        let a = try await t.resource(baseURL: upstream.url + "/v1", extra: [("limits", ["max_concurrency": 1])])
        let b = try await t.resource(baseURL: upstream.url + "/v1", extra: [("limits", ["max_concurrency": 1])])
        let key = try await t.key(project: try await t.project())
        async let first = server.chat(key: key.secret)
        async let second = server.chat(key: key.secret)
        try await server.eventually("two requests in flight") { server.gateway.engine.resourceSnapshot().values.map(\.inFlight).reduce(0, +) == 2 }
        // Both resources are full: a third request is refused with a clear reason.
        let third = try await server.chat(key: key.secret)
        #expect(third.status == 503)
        #expect(third.json["error"]?["code"] == "no_capacity")
        #expect(third.header("retry-after") != nil)
        await gate.open()
        let (r1, r2) = try await (first, second)
        #expect(r1.status == 200 && r2.status == 200)
        let used = Set(try await server.ledger(t.id).compactMap(\.resourceId))
        #expect(used == [a, b])
    }

    @Test func tiesGoToTheFlatFeeSeatThenRoundRobin() async throws {
        let server = try await TestServer.start()
        let upstream = try await Stub.upstream()
        let t = try await TenantFixture.make(server)
        let seat = try await t.resource(
            kind: "seat", baseURL: upstream.url + "/v1", extra: [("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 20_000_000])])
        let metered = try await t.resource(
            baseURL: upstream.url + "/v1",
            extra: [("cost_basis", ["type": "per_token", "input_per_mtok_micros": 2_000_000, "output_per_mtok_micros": 8_000_000])])
        let key = try await t.key(project: try await t.project())
        for _ in 0..<4 { #expect((try await server.chat(key: key.secret)).status == 200) }
        let rows = try await server.ledger(t.id)
        #expect(rows.count == 4 && rows.allSatisfy { $0.resourceId == seat })
        #expect(rows.allSatisfy { $0.upstreamCostMicros == 0 })
        // Two equal metered keys share the work.
        try await t.call(.POST, "/resources/\(seat)/suspend")
        let twin = try await t.resource(
            baseURL: upstream.url + "/v1",
            extra: [("cost_basis", ["type": "per_token", "input_per_mtok_micros": 2_000_000, "output_per_mtok_micros": 8_000_000])])
        for _ in 0..<6 { #expect((try await server.chat(key: key.secret)).status == 200) }
        let later = try await server.ledger(t.id).suffix(6)
        #expect(Set(later.compactMap(\.resourceId)) == [metered, twin])
        #expect(later.allSatisfy { $0.upstreamCostMicros > 0 })
    }

    @Test func requestsNeverReachAnotherTenantsResources() async throws {
        let server = try await TestServer.start()
        let mine = Recorder()
        let theirs = Recorder()
        let myUpstream = try await Stub.upstream(models: ["gpt-4.1-mini"], recorder: mine)
        let theirUpstream = try await Stub.upstream(models: ["gpt-4.1"], recorder: theirs)
        let a = try await TenantFixture.make(server)
        let b = try await TenantFixture.make(server)
        try await a.resource(baseURL: myUpstream.url + "/v1", models: ["gpt-4.1-mini"])
        try await b.resource(baseURL: theirUpstream.url + "/v1", models: ["gpt-4.1"])
        let key = try await a.key(project: try await a.project())
        let r = try await server.chat(key: key.secret, model: "gpt-4.1")
        #expect(r.status == 503 && r.json["error"]?["code"] == "no_capacity")
        #expect(theirs.count == 0)
        #expect((try await server.chat(key: key.secret)).status == 200)
        #expect(mine.count == 1 && theirs.count == 0)
    }

    @Test func modelsListShowsWhatTheKeyMayUse() async throws {
        let server = try await TestServer.start()
        let upstream = try await Stub.upstream()
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: upstream.url + "/v1", models: ["gpt-4.1-mini", "gpt-4.1"])
        try await t.resource(provider: "anthropic", baseURL: upstream.url, models: ["claude-haiku-4-5"])
        let p = try await t.project(extra: [("allowed_models", ["gpt-4.1*", "claude-*"])])
        let key = try await t.key(project: p, extra: [("allowed_models", ["gpt-4.1-mini", "claude-haiku-4-5"])])
        let r = try await server.request(.GET, "/v1/models", token: key.secret)
        #expect(r.json["object"] == "list")
        // Each shape lists what its API can reach: OpenAI clients the OpenAI resource's models,
        // Anthropic clients (anthropic-version or x-api-key) the Anthropic one's.
        #expect(r.json["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["gpt-4.1-mini"])
        let a = try await server.request(.GET, "/v1/models", token: key.secret, headers: [("anthropic-version", "2023-06-01")])
        #expect(a.json["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["claude-haiku-4-5"])
        #expect(a.json["data"]?.arrayValue?.first?["type"] == "model")
        let viaKey = try await server.request(.GET, "/v1/models", headers: [("x-api-key", key.secret)])
        #expect(viaKey.json["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["claude-haiku-4-5"])
    }

    @Test func seatsAreLeasedToOneHolderUntilIdle() async throws {
        let clock = ManualClock(nowMs: Timestamp.parse("2026-11-21T10:00:00Z")!)
        let server = try await TestServer.start(clock: clock)
        let upstream = try await Stub.upstream()
        let t = try await TenantFixture.make(server, settings: ["lease_idle_seconds": 60])
        let seat = try await t.resource(
            kind: "seat", baseURL: upstream.url + "/v1", extra: [("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 1])])
        let p = try await t.project()
        let alice = try await t.key(project: p)
        let bob = try await t.key(project: p)
        #expect((try await server.chat(key: alice.secret)).status == 200)
        // Bob cannot share Alice's seat while she is active.
        let blocked = try await server.chat(key: bob.secret)
        #expect(blocked.status == 503)
        clock.advance(byMs: 30_000)
        #expect((try await server.chat(key: alice.secret)).status == 200)
        #expect((try await server.chat(key: bob.secret)).status == 503)
        // After a minute of idleness the seat returns to the pool.
        clock.advance(byMs: 61_000)
        #expect((try await server.chat(key: bob.secret)).status == 200)
        let rows = try await server.ledger(t.id).filter { $0.status == 200 }
        #expect(rows.map(\.keyId) == [alice.id, alice.id, bob.id])
        #expect(rows.allSatisfy { $0.resourceId == seat })
        #expect(server.gateway.engine.resourceSnapshot()[seat]?.leaseGrants == 2)
    }

    @Test func overflowIsUsedOnlyWhenAllowedAndNothingOwnedIsEligible() async throws {
        let server = try await TestServer.start()
        let owned = Recorder()
        let platform = Recorder()
        let ownedUpstream = try await Stub.upstream(recorder: owned)
        let platformUpstream = try await Stub.upstream(recorder: platform)
        let offer = try await server.admin(
            .POST, "/overflow-offers",
            [
                "name": "platform-openai", "provider": "openai", "base_url": .string(platformUpstream.url + "/v1"),
                "credential": "sk-platform-overflow-credential", "models": ["gpt-4.1-mini"],
                "price": ["input_per_mtok_micros": 4_000_000, "output_per_mtok_micros": 16_000_000],
            ])
        let t = try await TenantFixture.make(server)
        let own = try await t.resource(baseURL: ownedUpstream.url + "/v1", models: ["gpt-4.1-mini"])
        let credit = try await t.call(
            .POST, "/resources",
            ["pool_id": .string(t.poolId), "name": "overflow", "kind": "overflow", "offer_id": offer["id"]!, "credit_cap_micros": 1_000])
        let creditId = try #require(credit["id"]?.stringValue)
        #expect(credit["credential_hint"]?.stringValue?.hasPrefix("…") == true)
        try await t.waitState(creditId, "active")
        let closed = try await t.project()
        let open = try await t.project(extra: [("overflow_allowed", true), ("overflow_cap_micros", 400)])
        let closedKey = try await t.key(project: closed)
        let openKey = try await t.key(project: open)
        // Owned capacity is eligible: overflow is not touched.
        #expect((try await server.chat(key: openKey.secret)).status == 200)
        #expect(platform.count(path: "chat") == 0)
        try await t.call(.POST, "/resources/\(own)/suspend")
        // No owned capacity, no policy: no_capacity, and the offer is never touched.
        let refused = try await server.chat(key: closedKey.secret)
        #expect(refused.status == 503 && refused.json["error"]?["code"] == "no_capacity")
        #expect(platform.count(path: "chat") == 0)
        // With the policy: served by overflow, metered at the offer's price (10 in, 5 out).
        let capped: [(String, JSONValue)] = [("max_tokens", 5)]
        let served = try await server.chat(key: openKey.secret, extra: capped)
        #expect(served.status == 200)
        #expect(platform.count(path: "chat") == 1)
        #expect(platform.all.last?.headers[.authorization] == "Bearer sk-platform-overflow-credential")
        let row = try #require(try await server.ledger(t.id).last)
        #expect(row.overflow && row.resourceId == creditId)
        #expect(row.upstreamCostMicros == 40 + 80 && row.overflowChargeMicros == 120)
        // The project cap (400) stops overflow before the credit cap (1000).
        var statuses: [Int] = []
        for _ in 0..<6 { statuses.append(try await server.chat(key: openKey.secret, extra: capped).status) }
        let charged = try await server.ledger(t.id).filter(\.overflow).map(\.upstreamCostMicros).reduce(0, +)
        #expect(charged <= 400)
        #expect(statuses.contains(503))
    }
}

/// Holds tasks until opened.
