import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import ServiceLifecycle
import Synchronization
import Testing

@testable import QuotaflowServer

/// An upstream whose models-list answer the test controls.
final class Controllable: Sendable {
    let status = Atomic<Int>(200)
    let delayMs = Atomic<Int>(0)
    let models = Mutex<[String]>(["gpt-4.1-mini"])
    let modelListCalls = Atomic<Int>(0)
    let chatCalls = Atomic<Int>(0)
    let chatStatus = Atomic<Int>(200)

    func start() async throws -> StubUpstream {
        try await StubUpstream.start { router in
            router.get("v1/models") { req, _ in
                self.modelListCalls.wrappingAdd(1, ordering: .relaxed)
                let delay = self.delayMs.load(ordering: .relaxed)
                if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                let status = self.status.load(ordering: .relaxed)
                if req.headers[.authorization] != "Bearer sk-upstream-test-credential" {
                    return Stub.json(["error": ["message": "bad key"]], status: .unauthorized)
                }
                if status != 200 {
                    return Stub.json(
                        ["error": ["message": "nope"]], status: HTTPResponse.Status(code: status),
                        headers: [HTTPField.Name("x-ratelimit-limit-requests")!: "500"])
                }
                return Response(
                    status: .ok,
                    headers: [
                        .contentType: "application/json", HTTPField.Name("x-ratelimit-limit-requests")!: "500",
                        HTTPField.Name("x-ratelimit-limit-tokens")!: "30000", HTTPField.Name("x-ratelimit-remaining-requests")!: "499",
                        HTTPField.Name("x-ratelimit-reset-requests")!: "120ms",
                    ],
                    body: .init(
                        byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(["data": .array(self.models.withLock { $0 }.map { ["id": .string($0)] })]))))
            }
            router.post("v1/chat/completions") { req, _ in
                // The verifier's empty-body family check is not a completion.
                let body = try await req.body.collect(upTo: 1 << 20)
                if Stub.isProbe(req) && body.readableBytes <= 2 { return Stub.missingModel }
                self.chatCalls.wrappingAdd(1, ordering: .relaxed)
                let s = self.chatStatus.load(ordering: .relaxed)
                if s != 200 {
                    return Stub.json(
                        ["error": ["message": "slow down"]], status: HTTPResponse.Status(code: s), headers: [HTTPField.Name("retry-after")!: "60"])
                }
                return Stub.openAIAnswer()
            }
        }
    }
}

@Suite(.scoped) struct VerifierTests {
    static let start = Timestamp.parse("2026-11-21T10:00:00Z")!

    func makeServer(_ clock: ManualClock) async throws -> TestServer {
        try await TestServer.start(clock: clock) {
            $0.admissionProbes = 2
            $0.admissionSpacingMs = 1_000
            $0.probeIntervalMs = 60_000
            $0.suspendAfterFailures = 3
            // Long enough for a loaded machine; the slow upstream below takes four times as long.
            $0.probeTimeoutMs = 3_000
            $0.defaultCooldownMs = 30_000
        }
    }

    func state(_ t: TenantFixture, _ id: String) async throws -> String {
        try await t.get("/resources/\(id)").json["state"]?.stringValue ?? "?"
    }

    /// A server on a manual clock with one resource that has passed admission.
    struct Admitted {
        let clock: ManualClock
        let server: TestServer
        let up: Controllable
        let upstream: StubUpstream
        let t: TenantFixture
        let id: String
    }

    func admitted(extra: [(String, JSONValue)] = []) async throws -> Admitted {
        let clock = ManualClock(nowMs: Self.start)
        let server = try await makeServer(clock)
        let up = Controllable()
        let upstream = try await up.start()
        let t = try await TenantFixture.make(server)
        let id = try await t.resource(baseURL: upstream.url + "/v1", models: ["gpt-4.1-mini"], extra: extra, waitActive: false)
        try await t.waitState(id, "verifying")
        clock.advance(byMs: 1_000)
        try await t.waitState(id, "active")
        return Admitted(clock: clock, server: server, up: up, upstream: upstream, t: t, id: id)
    }

    @Test func aGoodKeyIsAdmittedAfterNProbes() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let server = try await makeServer(clock)
        let up = Controllable()
        let upstream = try await up.start()
        let t = try await TenantFixture.make(server)
        let id = try await t.resource(baseURL: upstream.url + "/v1", models: ["gpt-4.1-mini"], waitActive: false)
        try await t.waitState(id, "verifying")
        #expect(up.modelListCalls.load(ordering: .relaxed) == 1)
        // Not routed before admission.
        let key = try await t.key(project: try await t.project())
        #expect((try await server.chat(key: key.secret)).status == 503)
        clock.advance(byMs: 1_000)
        try await t.waitState(id, "active")
        let health = try await t.get("/resources/\(id)/health")
        #expect(health.json["probes"]?.arrayValue?.count == 2)
        #expect(health.json["learned_limits"]?["limit_requests"] == .int(500))
        #expect(health.json["learned_limits"]?["limit_tokens"] == .int(30_000))
        #expect(health.json["next_probe_at"]?.stringValue != nil)
        let probe = health.json["probes"]?.arrayValue?.first
        #expect(probe?["checks"]?.arrayValue?.map { $0["check"]?.stringValue ?? "" }.contains("models") == true)
        // Probes are cheap: no completion was sent.
        #expect(up.chatCalls.load(ordering: .relaxed) == 0)
        let audit = try await t.call(.GET, "/audit?target_id=\(id)&action=resource.state")
        #expect(audit["data"]?.arrayValue?.first?["summary"]?["to"] == "active")
        #expect(audit["data"]?.arrayValue?.first?["actor"] == "system:verifier")
        #expect((try await server.chat(key: key.secret)).status == 200)
    }

    @Test func refusedSlowAndWrongModelResourcesAreRejectedWithReasons() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let server = try await makeServer(clock)
        let up = Controllable()
        let upstream = try await up.start()
        let slowUp = Controllable()
        slowUp.delayMs.store(12_000, ordering: .relaxed)
        let slow = try await slowUp.start()
        let t = try await TenantFixture.make(server)
        let refused = try await t.resource(baseURL: upstream.url + "/v1", credential: "sk-wrong-credential-000", waitActive: false)
        let tooSlow = try await t.resource(baseURL: slow.url + "/v1", models: ["gpt-4.1-mini"], waitActive: false)
        let wrongModel = try await t.resource(baseURL: upstream.url + "/v1", models: ["gpt-5.4-pro"], waitActive: false)
        let partly = try await t.resource(baseURL: upstream.url + "/v1", models: ["gpt-4.1-mini", "o9-ultra"], waitActive: false)
        let unattested = try await t.call(
            .POST, "/resources",
            [
                "pool_id": .string(t.poolId), "name": "orphan", "kind": "api_key", "provider": "openai", "base_url": .string(upstream.url + "/v1"),
                "credential": "sk-upstream-test-credential", "models": ["gpt-4.1-mini"],
            ])
        let orphan = try #require(unattested["id"]?.stringValue)
        let expected = [
            (refused, "401 from upstream: the key was refused"), (tooSlow, "no answer within 3 s"),
            (wrongModel, "the models list does not include any model this resource claims to serve"),
            (partly, "the models list does not include claimed model(s): o9-ultra"),
            (orphan, "no owner attestation: record who confirmed permission to connect this resource"),
        ]
        for (id, reason) in expected {
            try await t.waitState(id, "rejected")
            let r = try await t.get("/resources/\(id)")
            #expect(r.json["state_reason"]?.stringValue == reason)
        }
        // Rejected resources are not probed on a schedule.
        let calls = up.modelListCalls.load(ordering: .relaxed)
        clock.advance(byMs: 120_000)
        try await Task.sleep(for: .milliseconds(200))
        #expect(up.modelListCalls.load(ordering: .relaxed) == calls)
    }

    @Test func aFlappingUpstreamGoesDegradedSuspendedAndBack() async throws {
        let a = try await admitted()
        let (clock, server, up, t, id) = (a.clock, a.server, a.up, a.t, a.id)
        let probes = { try await t.get("/resources/\(id)/health").json["probes"]?.arrayValue?.count ?? 0 }
        up.status.store(503, ordering: .relaxed)
        var seen: [String] = []
        for _ in 0..<3 {
            let before = try await probes()
            clock.advance(byMs: 70_000)
            try await server.eventually("a probe") { try await probes() > before }
            seen.append(try await state(t, id))
        }
        #expect(seen == ["degraded", "degraded", "suspended"])
        // Degraded is still routable; suspended is not.
        let key = try await t.key(project: try await t.project())
        #expect((try await server.chat(key: key.secret)).status == 503)
        up.status.store(200, ordering: .relaxed)
        clock.advance(byMs: 70_000)
        try await t.waitState(id, "active")
        let audit = try await t.call(.GET, "/audit?target_id=\(id)&action=resource.state&limit=20")
        let transitions = audit["data"]?.arrayValue?.reversed().compactMap { $0["summary"]?["to"]?.stringValue } ?? []
        #expect(transitions == ["verifying", "active", "degraded", "suspended", "active"])
        #expect(
            audit["data"]?.arrayValue?.first(where: { $0["summary"]?["to"] == "suspended" })?["summary"]?["cause"]?.stringValue?
                .contains("3 probes failed") == true)
    }

    @Test func a429CoolsTheResourceUntilAHalfOpenProbe() async throws {
        let a = try await admitted()
        let (clock, server, up, t, id) = (a.clock, a.server, a.up, a.t, a.id)
        let key = try await t.key(project: try await t.project())
        up.chatStatus.store(429, ordering: .relaxed)
        let r = try await server.chat(key: key.secret)
        #expect(r.status == 503 && r.header("retry-after") == "60")
        try await t.waitState(id, "cooling")
        up.chatStatus.store(200, ordering: .relaxed)
        let probesBefore = up.modelListCalls.load(ordering: .relaxed)
        clock.advance(byMs: 59_000)
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await state(t, id) == "cooling")
        #expect(up.modelListCalls.load(ordering: .relaxed) == probesBefore)
        clock.advance(byMs: 1_000)
        try await t.waitState(id, "active")
        let healthText = try await t.get("/resources/\(id)/health").text
        #expect(up.modelListCalls.load(ordering: .relaxed) == probesBefore + 1, "\(healthText)")
        let last = try await t.get("/resources/\(id)/health").json["probes"]?.arrayValue?.first
        #expect(last?["trigger"] == "half_open")
        #expect((try await server.chat(key: key.secret)).status == 200)
    }

    @Test func aPersonsSuspendSurvivesPassingProbes() async throws {
        let a = try await admitted()
        let (clock, server, t, id) = (a.clock, a.server, a.t, a.id)
        try await t.call(.POST, "/resources/\(id)/suspend", ["reason": "owner left"])
        clock.advance(byMs: 200_000)
        try await Task.sleep(for: .milliseconds(150))
        let manual = try await t.call(.POST, "/resources/\(id)/verify")
        #expect(manual["ok"] == .bool(true))
        #expect(manual["state"] == "suspended")
        #expect(try await state(t, id) == "suspended")
        // Revoke is final too.
        try await t.call(.POST, "/resources/\(id)/revoke")
        let again = try await server.request(.POST, "/admin/v1/tenants/\(t.id)/resources/\(id)/verify", token: t.adminKey)
        #expect(again.status == 409)
        #expect(try await state(t, id) == "revoked")
    }

    @Test func manualVerifyReturnsTheResultAndIsRateLimited() async throws {
        let a = try await admitted(extra: [("probe", ["completion": true])])
        let (clock, server, up, t, id) = (a.clock, a.server, a.up, a.t, a.id)
        // The 1-token completion probe runs only because this resource asked for it.
        #expect(up.chatCalls.load(ordering: .relaxed) == 2)
        clock.advance(byMs: 5_000)
        let result = try await t.call(.POST, "/resources/\(id)/verify")
        #expect(result["ok"] == .bool(true) && result["trigger"] == "manual")
        #expect(result["checks"]?.arrayValue?.contains { $0["check"] == "completion" } == true)
        let tooSoon = try await server.request(.POST, "/admin/v1/tenants/\(t.id)/resources/\(id)/verify", token: t.adminKey)
        #expect(tooSoon.status == 429 && tooSoon.header("retry-after") == "1")
    }

    @Test func theWorkerStopsGracefully() async throws {
        let clock = ManualClock(nowMs: Self.start)
        // The server's own verifier is off: the loop below is the only one that sleeps on the clock and on
        // its wake-up (two loops on one wake-up could each take the other's poke).
        let server = try await TestServer.start(clock: clock) { $0.verifierEnabled = false }
        let verifier = server.gateway.verifier
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let group = ServiceGroup(configuration: .init(services: [VerifierService(verifier: verifier, enabled: true)], logger: logger))
        let others = clock.sleeperCount
        let task = Task { try await group.run() }
        try await server.eventually("the worker to sleep") { clock.sleeperCount > others }
        // Asleep on a clock that never moves: only the shutdown can wake it (a loose bound: the whole suite
        // shares two cores).
        await group.triggerGracefulShutdown()
        #expect(await finishes(task, within: .seconds(5)), "the verifier did not stop")
        await server.stop()
    }
}
