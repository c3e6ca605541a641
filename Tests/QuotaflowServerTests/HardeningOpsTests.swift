import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore
import Synchronization
import Testing

@testable import QuotaflowServer

/// A resolver the test can repoint, for DNS rebinding.
final class SwitchableResolver: HostResolver, Sendable {
    let answers: Mutex<[String: [String]]>
    init(_ answers: [String: [String]]) { self.answers = Mutex(answers) }
    func set(_ host: String, _ ips: [String]) { answers.withLock { $0[host] = ips } }
    func resolve(host: String, port: Int) async throws -> [[UInt8]] {
        try await StaticResolver(answers.withLock { $0 }).resolve(host: host, port: port)
    }
}

/// Operator safety and clear answers: the egress policy, redirects, probes that prove the route,
/// re-verification at once, 429s in admission, runtime 404s, body time limits and 405s.
@Suite(.scoped) struct HardeningOpsTests {
    @Test func tenantURLsCannotReachMetadataOrPrivateAddresses() async throws {
        let resolver = SwitchableResolver([
            "metadata.test": ["169.254.169.254"], "intranet.test": ["10.0.0.5"], "mixed.test": ["93.184.216.34", "fe80::1"],
            "rebind.test": ["93.184.216.34"],
        ])
        let server = try await TestServer.start(resolver: resolver) {
            $0.allowPrivateEgress = false
            $0.verifierEnabled = false
        }
        let t = try await TenantFixture.make(server)
        func create(_ url: String, token: String? = nil) async throws -> TestResponse {
            try await server.request(
                .POST, "/admin/v1/tenants/\(t.id)/resources",
                body: [
                    "pool_id": .string(t.poolId), "name": .string("r-\(Identifier.random(5))"), "kind": "api_key", "provider": "openai",
                    "base_url": .string(url), "credential": "sk-upstream-test-credential", "models": ["gpt-4.1-mini"],
                    "attestation": TenantFixture.attestation,
                ], token: token ?? t.adminKey)
        }
        for (url, says) in [
            ("http://metadata.test/v1", "169.254.169.254"), ("http://169.254.169.254/latest", "link-local"), ("http://[fe80::1]/v1", "link-local"),
            ("http://intranet.test/v1", "private"), ("http://10.1.2.3/v1", "private"), ("http://127.0.0.1:9/v1", "loopback"),
            ("http://mixed.test/v1", "fe80::1"),
        ] {
            let r = try await create(url)
            #expect(r.status == 422 && r.json["field"] == "base_url" && r.text.contains(says), "\(url): \(r.text)")
        }
        let hook = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/webhooks", body: ["url": "http://169.254.169.254/hook"], token: t.adminKey)
        #expect(hook.status == 422 && hook.json["field"] == "url")
        // The operator's own resources are exempt.
        #expect(try await create("http://127.0.0.1:9/v1", token: server.operatorToken).status == 201)
        // A name that passes when saved and re-resolves to metadata afterwards is refused at the connection.
        let saved = try await create("http://rebind.test/v1")
        #expect(saved.status == 201)
        resolver.set("rebind.test", ["169.254.169.254"])
        let id = try #require(saved.json["id"]?.stringValue)
        let probe = try await t.call(.POST, "/resources/\(id)/verify")
        #expect(probe["ok"] == false && probe["reason"]?.stringValue?.contains("169.254.169.254") == true, "\(probe)")
    }

    @Test func redirectsAreNeverFollowed() async throws {
        let server = try await TestServer.start()
        let elsewhere = Recorder()
        let target = try await Stub.upstream(recorder: elsewhere)
        let redirecting = try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in Stub.models(["gpt-4.1-mini", "gpt-4.1"]) }
            router.post("v1/chat/completions") { _, _ in
                Response(status: .temporaryRedirect, headers: [.location: target.url + "/v1/chat/completions"])
            }
        }
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: redirecting.url + "/v1")
        let key = try await t.key(project: try await t.project())
        let redirected = try await server.chat(key: key.secret)
        #expect(redirected.status == 502 && redirected.text.contains("redirect"), "\(redirected.text)")
        #expect(redirected.header("location") == nil)
        #expect(elsewhere.count == 0)
    }

    @Test func admissionProvesTheRoute() async throws {
        let server = try await TestServer.start()
        // A relay with no models list; chat works.
        let relay = try await StubUpstream.start { router in
            router.post("v1/chat/completions") { _, _ in Stub.openAIAnswer() }
        }
        let t = try await TenantFixture.make(server)
        // An OpenAI resource whose base URL lacks /v1: its models list answers 404.
        let wrong = try await t.resource(baseURL: relay.url, waitActive: false)
        try await t.waitState(wrong, "rejected")
        #expect(try await t.get("/resources/\(wrong)").json["state_reason"]?.stringValue?.contains("ends in /v1") == true)
        // A relay without a models list is not admitted on faith...
        let unproven = try await t.resource(provider: "openai_compatible", baseURL: relay.url + "/v1", waitActive: false)
        try await t.waitState(unproven, "rejected")
        #expect(try await t.get("/resources/\(unproven)").json["state_reason"]?.stringValue?.contains("probe.completion") == true)
        // ...but with a completion probe, or an admin's waiver (which the audit log keeps).
        try await t.resource(provider: "openai_compatible", baseURL: relay.url + "/v1", extra: [("probe", ["completion": true])])
        let waived = try await t.resource(
            provider: "openai_compatible", baseURL: relay.url + "/v1",
            extra: [("probe", ["waiver": ["by": "cto@acme.example", "note": "vendor relay"]])])
        let audit = try await t.call(.GET, "/audit")["data"]?.arrayValue ?? []
        #expect(audit.contains { $0["target_id"]?.stringValue == waived && $0["summary"]?["probe"]?["waiver"]?["by"] == "cto@acme.example" })
    }

    @Test func rateLimitedAdmissionRetriesAtTheReset() async throws {
        let server = try await TestServer.start()
        let calls = Atomic<Int>(0)
        let up = try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in
                if calls.wrappingAdd(1, ordering: .relaxed).oldValue == 0 {
                    return Stub.json(["error": ["message": "slow down"]], status: .tooManyRequests, headers: [HTTPField.Name("retry-after")!: "1"])
                }
                return Stub.models(["gpt-4.1-mini", "gpt-4.1"])
            }
            router.post("v1/chat/completions") { _, _ in Stub.missingModel }
        }
        let t = try await TenantFixture.make(server)
        let r = try await t.resource(baseURL: up.url + "/v1", waitActive: false)
        try await server.eventually("the 429") { calls.load(ordering: .relaxed) >= 1 }
        #expect(try await t.get("/resources/\(r)").json["state"] == "pending")
        try await t.waitState(r, "active")
    }

    @Test func changedResourcesAreReverifiedAtOnceEvenWhileCooling() async throws {
        let server = try await TestServer.start()
        let up = try await Stub.upstream { _, _ in
            Stub.json(["error": ["message": "slow down"]], status: .tooManyRequests, headers: [HTTPField.Name("retry-after")!: "3600"])
        }
        let t = try await TenantFixture.make(server)
        let r = try await t.resource(baseURL: up.url + "/v1")
        let key = try await t.key(project: try await t.project())
        let refused = try await server.chat(key: key.secret)
        #expect(refused.status == 503)
        try await t.waitState(r, "cooling")
        try await t.call(.POST, "/resources/\(r)/rotate-credential", ["credential": "sk-upstream-test-credential"])
        try await t.waitState(r, "active", timeout: .seconds(5))
        try await t.call(.POST, "/resources/\(r)/suspend")
        try await t.call(.POST, "/resources/\(r)/resume")
        try await t.waitState(r, "active", timeout: .seconds(5))
    }

    @Test func noCapacitySaysWhenRoomReturns() async throws {
        let server = try await TestServer.start()
        let up = try await Stub.upstream()
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: up.url + "/v1", extra: [("limits", ["rpm": 1])])
        let key = try await t.key(project: try await t.project())
        #expect(try await server.chat(key: key.secret).status == 200)
        let full = try await server.chat(key: key.secret)
        #expect(full.status == 503 && full.json["error"]?["code"] == "no_capacity")
        let wait = Int(full.header("retry-after") ?? "") ?? 0
        #expect(wait >= 55 && wait <= 61, "Retry-After \(wait)")
        #expect(full.header("x-should-retry") == nil)
    }

    @Test func upstream404sAreToldApart() async throws {
        let server = try await TestServer.start()
        let objectMissing = #"{"error":{"message":"Response with id 'resp_1' not found.","type":"invalid_request_error"}}"#
        let lacking = try await Stub.upstream { body, _ in
            if body["model"] == "gpt-4.1" {
                return Stub.json(["error": ["message": "The model `gpt-4.1` does not exist", "code": "model_not_found"]], status: .notFound)
            }
            return Response(
                status: .notFound, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: objectMissing)))
        }
        let serving = Recorder()
        let other = try await Stub.upstream(recorder: serving)
        let t = try await TenantFixture.make(server)
        let a = try await t.resource(name: "a", baseURL: lacking.url + "/v1")
        let key = try await t.key(project: try await t.project())
        // About an object: the client's own answer, verbatim, and nobody is probed or cooled.
        let obj = try await server.chat(key: key.secret)
        #expect(obj.status == 404 && obj.text == objectMissing)
        #expect((try await t.get("/resources/\(a)/health").json["probes"]?.arrayValue ?? []).allSatisfy { $0["trigger"] != "refusal" })
        // About the model: cooled on that resource only, and the other resource serves it.
        try await t.resource(name: "b", baseURL: other.url + "/v1")
        for _ in 0..<3 { #expect(try await server.chat(key: key.secret, model: "gpt-4.1").status == 200) }
        #expect(serving.count == 3)
        let audit = try await t.call(.GET, "/audit")["data"]?.arrayValue ?? []
        #expect(
            audit.contains { $0["action"] == "resource.model_cooled" && $0["target_id"]?.stringValue == a && $0["summary"]?["model"] == "gpt-4.1" })
        #expect(try await t.get("/resources/\(a)").json["state"] == "active")
    }

    @Test func aMissingRouteTriggersAnImmediateReprobe() async throws {
        let server = try await TestServer.start()
        // Once broken, chat answers an HTML 404 (a wrong path on a proxy); the re-probe finds the same.
        let broken = Atomic<Bool>(false)
        let up = try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in Stub.models(["gpt-4.1-mini", "gpt-4.1"]) }
            router.post("v1/chat/completions") { _, _ in
                guard broken.load(ordering: .relaxed) else { return Stub.missingModel }
                return Response(
                    status: .notFound, headers: [.contentType: "text/html"],
                    body: .init(byteBuffer: ByteBuffer(string: "<h1>404 page not found</h1>")))
            }
        }
        let t = try await TenantFixture.make(server)
        // Admitted while the route worked; then it broke.
        let r = try await t.resource(baseURL: up.url + "/v1")
        broken.store(true, ordering: .relaxed)
        try await t.call(.PATCH, "/resources/\(r)", ["probe": ["completion": true]])
        let key = try await t.key(project: try await t.project())
        let answer = try await server.chat(key: key.secret)
        #expect(answer.status == 502 && answer.header("x-quotaflow-reason") == "upstream_error")
        let probes = try await t.get("/resources/\(r)/health").json["probes"]?.arrayValue ?? []
        #expect(probes.contains { $0["trigger"] == "refusal" && $0["ok"] == false })
        #expect(try await t.get("/resources/\(r)").json["state"] == "degraded")
    }

    @Test func stalledBodiesGet408AndBrokenFramingGets400() async throws {
        let server = try await TestServer.start { $0.bodyTimeoutMs = 500 }
        let up = try await Stub.upstream()
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: up.url + "/v1")
        let key = try await t.key(project: try await t.project())
        let stalled = await RawHTTP.exchange(
            port: server.app.port,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key.secret)\r\nContent-Length: 100\r\n\r\n{\"model\":")
        #expect(stalled.text.hasPrefix("HTTP/1.1 408") && stalled.seconds < 3, "\(stalled)")
        let admin = await RawHTTP.exchange(
            port: server.app.port,
            "POST /admin/v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(server.operatorToken)\r\nContent-Length: 50\r\n\r\n{\"na")
        #expect(admin.text.hasPrefix("HTTP/1.1 408") && admin.seconds < 3)
        let chunked = await RawHTTP.exchange(
            port: server.app.port,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key.secret)\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
        )
        #expect(chunked.text.hasPrefix("HTTP/1.1 400"), "\(chunked.text)")
        // And the server keeps serving.
        #expect(try await server.chat(key: key.secret).status == 200)
    }

    @Test func wrongMethodsOnKnownPathsAre405() async throws {
        let server = try await TestServer.start()
        let r = try await server.request(.DELETE, "/v1/chat/completions")
        #expect(r.status == 405 && r.header("allow") == "POST" && r.json["error"]?["message"] != nil)
        let a = try await server.request(.PUT, "/admin/v1/tenants", token: server.operatorToken)
        #expect(a.status == 405 && a.header("allow") == "GET, POST" && a.header("content-type") == "application/problem+json")
        #expect(try await server.request(.GET, "/v1/nothing-here").status == 404)
    }

    @Test func aGrantNeverWidensAKeysOwnModels() async throws {
        let server = try await TestServer.start()
        let up = try await Stub.upstream()
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: up.url + "/v1")
        let p = try await t.project(extra: [("allowed_models", ["gpt-4.1-mini"])])
        let narrow = try await t.key(project: p, extra: [("allowed_models", ["gpt-4.1-mini"])])
        let open = try await t.key(project: p)
        try await t.call(.POST, "/approvals", ["project_id": .string(p), "model": "gpt-4.1", "duration_seconds": 3600])
        #expect(try await server.chat(key: open.secret, model: "gpt-4.1").status == 200)
        let refused = try await server.chat(key: narrow.secret, model: "gpt-4.1")
        #expect(refused.status == 403 && refused.json["error"]?["code"] == "model_not_allowed")
    }
}
