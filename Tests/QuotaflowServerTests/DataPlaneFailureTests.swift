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

/// When an upstream or a client fails: retries on another resource (and when not to), answers that break
/// off, client disconnects, first-byte and stall timeouts, and errors in the provider's shape.
@Suite(.scoped) struct DataPlaneFailureTests {
    @Test func retryableFailureCoolsTheResourceAndTriesTheNext() async throws {
        let server = try await TestServer.start()
        let limited = Recorder()
        let healthy = Recorder()
        let bad = try await Stub.upstream(recorder: limited) { _, _ in
            Stub.json(
                ["error": ["message": "slow down", "type": "requests"]], status: .tooManyRequests,
                headers: [HTTPField.Name("retry-after")!: "120", HTTPField.Name("x-ratelimit-remaining-requests")!: "0"])
        }
        let good = try await Stub.upstream(recorder: healthy)
        let t = try await TenantFixture.make(server)
        // The limited one is cheaper, so it is tried first.
        let cool = try await t.resource(
            kind: "seat", baseURL: bad.url + "/v1", extra: [("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 1])])
        let fine = try await t.resource(baseURL: good.url + "/v1")
        let key = try await t.key(project: try await t.project())
        let r = try await server.chat(key: key.secret)
        #expect(r.status == 200)
        let row = try #require(try await server.ledger(t.id).first)
        #expect(row.attempts == 2 && row.resourceId == fine)
        try await t.waitState(cool, "cooling")
        let resource = try await t.get("/resources/\(cool)")
        let until = try #require(resource.json["cooling_until"]?.stringValue.flatMap(Timestamp.parse))
        #expect(abs(until - (server.clock.nowMs() + 120_000)) < 5_000)
        let audit = try await t.call(.GET, "/audit?target_id=\(cool)&action=resource.state")
        let evidence = try #require(audit["data"]?.arrayValue?.first?["summary"])
        #expect(evidence["status"] == .int(429))
        #expect(evidence["headers"]?["retry-after"] == "120")
        #expect(evidence["to"] == "cooling")
        // While it cools, nothing goes there.
        for _ in 0..<3 { #expect((try await server.chat(key: key.secret)).status == 200) }
        #expect(limited.count == 1 && healthy.count == 4)
    }

    @Test func clientErrorsAreNotRetriedAndAttemptsAreCapped() async throws {
        let server = try await TestServer.start { $0.maxAttempts = 3 }
        let calls = Recorder()
        let invalid = try await Stub.upstream(recorder: calls) { _, _ in
            Stub.json(["error": ["message": "bad parameter: temperature", "type": "invalid_request_error"]], status: .badRequest)
        }
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: invalid.url + "/v1")
        try await t.resource(baseURL: invalid.url + "/v1")
        let key = try await t.key(project: try await t.project())
        let r = try await server.chat(key: key.secret)
        #expect(r.status == 400 && r.text.contains("temperature"))
        #expect(calls.count == 1)
        // Four failing resources, but only three attempts.
        let server2 = try await TestServer.start { $0.maxAttempts = 3 }
        let failures = Recorder()
        let broken = try await Stub.upstream(recorder: failures) { _, _ in Stub.json(["error": ["message": "boom"]], status: .serviceUnavailable) }
        let t2 = try await TenantFixture.make(server2)
        for _ in 0..<4 { try await t2.resource(baseURL: broken.url + "/v1") }
        let key2 = try await t2.key(project: try await t2.project())
        let r2 = try await server2.chat(key: key2.secret)
        #expect(r2.status == 502 && r2.json["error"]?["code"] == "upstream_error")
        #expect(failures.count == 3)
        #expect(try await server2.ledger(t2.id).first?.attempts == 3)
    }

    @Test func connectionFailureIsRetriedOnAnotherResource() async throws {
        let server = try await TestServer.start()
        let good = try await Stub.upstream()
        let doomed = try await Stub.upstream()
        let t = try await TenantFixture.make(server)
        let dead = try await t.resource(
            kind: "seat", baseURL: doomed.url + "/v1", extra: [("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 1])])
        try await t.resource(baseURL: good.url + "/v1")
        await doomed.stop()
        let key = try await t.key(project: try await t.project())
        let r = try await server.chat(key: key.secret)
        #expect(r.status == 200)
        #expect(try await server.ledger(t.id).first?.attempts == 2)
        try await t.waitState(dead, "cooling")
    }

    @Test func noRetryOnceBytesReachedTheClient() async throws {
        let server = try await TestServer.start()
        let calls = Recorder()
        let dies = try await Stub.upstream(recorder: calls) { _, _ in Stub.stream([Stub.chunk("partial")], thenFail: true) }
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: dies.url + "/v1")
        try await t.resource(baseURL: dies.url + "/v1")
        let key = try await t.key(project: try await t.project())
        var request = HTTPClientRequest(url: server.base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key.secret)")
        request.body = .bytes(ByteBuffer(string: #"{"model":"gpt-4.1-mini","stream":true,"messages":[]}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        var text = ""
        do {
            for try await chunk in response.body { text += String(buffer: chunk) }
        } catch {}
        #expect(text.contains("partial"))
        #expect(calls.count == 1)
        try await server.eventually("the interrupted stream is in the ledger") { try await server.ledger(t.id).count == 1 }
        let row = try #require(try await server.ledger(t.id).first)
        #expect(row.attempts == 1 && row.flags.contains(.streamInterrupted))
    }

    @Test func anAnswerThatBreaksOffOrIsTooLargeIsA502AndIsNotRetried() async throws {
        let server = try await TestServer.start { $0.maxUpstreamResponseBytes = 4096 }
        let calls = Recorder()
        // The head arrives, then the body breaks off (or grows past the limit) for a non-streaming request.
        let upstream = try await Stub.upstream(recorder: calls) { body, _ in
            if body["model"] == "gpt-4.1" {
                return Response(
                    status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(repeating: 0x20, count: 10_000)))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: #"{"id":"c","object":"chat.completion","choi"#))
                    throw CancellationError()
                })
        }
        let t = try await TenantFixture.make(server)
        let first = try await t.resource(baseURL: upstream.url + "/v1")
        let second = try await t.resource(baseURL: upstream.url + "/v1")
        let key = try await t.key(project: try await t.project())
        let broken = try await server.chat(key: key.secret, model: "gpt-4.1-mini")
        #expect(broken.status == 502)
        #expect(broken.json["error"]?["message"]?.stringValue?.contains("broke off") == true)
        let large = try await server.chat(key: key.secret, model: "gpt-4.1")
        #expect(large.status == 502)
        #expect(large.json["error"]?["message"]?.stringValue?.contains("larger than 4096 bytes") == true)
        // The upstream answered each time: one call per request, no retry elsewhere, nobody cooled.
        #expect(calls.count == 2)
        let rows = try await server.ledger(t.id)
        #expect(rows.count == 2)
        // Dispatched but broken off: charged the input estimate and the output seen (none), flagged as estimated.
        #expect(rows.allSatisfy { $0.attempts == 1 && $0.status == 502 && $0.flags.contains(.upstreamBodyFailed) })
        #expect(rows.allSatisfy { $0.flags.contains(.usageEstimated) && $0.usage.output == 0 && $0.usage.input > 0 && $0.costMicros > 0 })
        #expect(try await t.get("/resources/\(first)").json["state"] == "active")
        #expect(try await t.get("/resources/\(second)").json["state"] == "active")
    }

    @Test func clientDisconnectCancelsTheUpstreamAndFreesCapacity() async throws {
        let server = try await TestServer.start()
        let gate = AsyncGate()
        let arrived = AsyncGate()
        let slow = try await Stub.upstream { _, _ in
            await arrived.open()
            await gate.wait()
            return Stub.openAIAnswer()
        }
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: slow.url + "/v1", extra: [("limits", ["max_concurrency": 1])])
        let key = try await t.key(project: try await t.project())
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var request = HTTPClientRequest(url: server.base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key.secret)")
        request.body = .bytes(ByteBuffer(string: #"{"model":"gpt-4.1-mini","messages":[]}"#))
        // The client goes away once the upstream holds the request, however slow the machine is.
        let call = Task { try? await client.execute(request, timeout: .seconds(60)) }
        #expect(await arrived.wait(upTo: .seconds(30)))
        call.cancel()
        _ = await call.value
        try await client.shutdown()
        try await server.eventually("the slot to be freed") {
            server.gateway.engine.resourceSnapshot().values.allSatisfy { $0.inFlight == 0 }
        }
        // The slot is freed just before the row is handed to the ledger writer.
        try await server.eventually("the row") { try await !server.ledger(t.id).isEmpty }
        let row = try #require(try await server.ledger(t.id).first)
        #expect(row.status == 499 && row.reason == .clientClosed)
        // The request reached the upstream: it is charged its input estimate, flagged as estimated.
        #expect(
            row.flags.contains(.usageEstimated) && row.usage.output == 0
                && row.costMicros == Money.cost(row.usage, at: TokenPrice(inputPerMTok: 400_000, outputPerMTok: 1_600_000)))
        #expect(server.gateway.engine.reservationsHeld == 0)
    }

    @Test func firstByteAndStallTimeoutsHold() async throws {
        // 1 s, not less: the verifier's admission probes run under the same timeouts, and a loaded CI
        // machine can take a few hundred milliseconds to answer one.
        let server = try await TestServer.start {
            $0.firstByteTimeoutMs = 1_000
            $0.stallTimeoutMs = 1_000
            $0.maxAttempts = 1
        }
        let silent = try await Stub.upstream { body, _ in
            if body["stream"] == .bool(true) { return Stub.stream([Stub.chunk("a"), Stub.chunk("b")], gap: .seconds(6)) }
            try await Task.sleep(for: .seconds(6))
            return Stub.openAIAnswer()
        }
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: silent.url + "/v1")
        let key = try await t.key(project: try await t.project())
        let start = ContinuousClock.now
        let r = try await server.chat(key: key.secret)
        #expect(r.status == 504 && r.json["error"]?["code"] == "upstream_timeout")
        // Well before the upstream's 6 s silence ends (a loose bound: these machines are shared).
        #expect(ContinuousClock.now - start < .seconds(4))
        #expect(server.gateway.engine.resourceSnapshot().values.allSatisfy { $0.inFlight == 0 })
    }

    @Test func errorsUseTheProviderShapeAndNeverEchoTheKey() async throws {
        let server = try await TestServer.start()
        let upstream = try await Stub.upstream()
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: upstream.url + "/v1")
        let p = try await t.project(extra: [("allowed_models", ["gpt-4.1-mini"])])
        let key = try await t.key(project: p)
        let bogus = "qf_pk_DEFINITELYNOTAREALKEYxxxxxxxxxxxxxxxxxx"
        let openai = try await server.chat(key: bogus)
        #expect(openai.status == 401 && openai.json["error"]?["code"] == "invalid_key" && openai.json["error"]?["type"] == "authentication_error")
        #expect(!openai.text.contains(bogus))
        let anthropic = try await server.messages(key: bogus)
        #expect(anthropic.status == 401 && anthropic.json["type"] == "error" && anthropic.json["error"]?["type"] == "authentication_error")
        #expect(!anthropic.text.contains(bogus))
        let model = try await server.chat(key: key.secret, model: "gpt-4.1")
        #expect(model.status == 403 && model.json["error"]?["code"] == "model_not_allowed")
        let malformed = try await server.request(.POST, "/v1/chat/completions", raw: Array("{\"model\":".utf8), token: key.secret)
        #expect(malformed.status == 400 && malformed.json["error"]?["code"] == "invalid_request")
        let noModel = try await server.request(.POST, "/v1/chat/completions", body: ["messages": []], token: key.secret)
        #expect(noModel.status == 400 && noModel.text.contains("model"))
        let wrongType = try await server.request(.POST, "/v1/chat/completions", body: ["model": "gpt-4.1-mini", "stream": "yes"], token: key.secret)
        #expect(wrongType.status == 400 && wrongType.text.contains("stream"))
        let huge = try await server.request(
            .POST, "/v1/chat/completions", raw: [UInt8](repeating: 0x20, count: 17 << 20), token: key.secret)
        #expect(huge.status == 413 && huge.json["error"]?["code"] == "request_too_large")
        // Revocation takes effect at once.
        try await t.call(.POST, "/projects/\(p)/keys/\(key.id)/revoke")
        let revoked = try await server.chat(key: key.secret)
        #expect(revoked.status == 401 && revoked.json["error"]?["code"] == "key_revoked")
        #expect(!revoked.text.contains(key.secret))
        #expect((try await server.request(.GET, "/healthz")).status == 200)
    }
}
