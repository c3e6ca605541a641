import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore
import Synchronization
import Testing

@testable import QuotaflowServer

/// A provider with an OAuth token endpoint that rotates refresh tokens (a spent one is refused with
/// `invalid_grant`, as real endpoints do), and an API that accepts only access tokens it issued.
final class OAuthStub: Sendable {
    struct State {
        var refresh = "rt-1"
        var issued = 0
        var valid: Set<String> = []
        var spent: Set<String> = []
        var reuses = 0
        var presented: [String] = []
        var failWith: (status: Int, error: String)?
        var expiresIn: Int64 = 3600
        /// The API refuses every token, fresh ones too (a wrong audience, a disabled organisation).
        var refuseAll = false
    }

    let state = Mutex(State())
    let seen = Mutex<[String]>([])

    var refreshes: Int { state.withLock { $0.issued } }
    var reuses: Int { state.withLock { $0.reuses } }

    func start() async throws -> StubUpstream {
        try await StubUpstream.start { router in
            router.post("oauth/token") { req, _ in
                let bytes = try await req.body.collect(upTo: 1 << 16)
                let form = Dictionary(
                    String(decoding: bytes.readableBytesView, as: UTF8.self).split(separator: "&").map { pair -> (String, String) in
                        let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                        return (kv[0], kv.count > 1 ? kv[1] : "")
                    }, uniquingKeysWith: { a, _ in a })
                let answer = self.state.withLock { s -> (Int, JSONValue) in
                    guard form["grant_type"] == "refresh_token", form["client_id"] == "qf-client" else { return (400, ["error": "invalid_request"]) }
                    let presented = form["refresh_token"] ?? ""
                    s.presented.append(presented)
                    if let f = s.failWith {
                        return (f.status, ["error": .string(f.error), "error_description": .string("refresh token \(presented) is bad")])
                    }
                    if s.spent.contains(presented) { s.reuses += 1 }
                    guard presented == s.refresh else { return (400, ["error": "invalid_grant"]) }
                    s.spent.insert(presented)
                    s.issued += 1
                    let access = "at-\(s.issued)"
                    s.refresh = "rt-\(s.issued + 1)"
                    s.valid.insert(access)
                    return (
                        200,
                        [
                            "access_token": .string(access), "token_type": "Bearer", "expires_in": .int(s.expiresIn),
                            "refresh_token": .string(s.refresh),
                        ]
                    )
                }
                return Stub.json(answer.1, status: .init(code: answer.0))
            }
            router.get("v1/models") { req, _ in
                guard self.authorized(req) else { return Stub.json(["error": ["message": "invalid token"]], status: .unauthorized) }
                return Stub.models(["gpt-4.1-mini"])
            }
            router.post("v1/chat/completions") { req, _ in
                let bytes = try await req.body.collect(upTo: 1 << 20)
                guard self.authorized(req) else { return Stub.json(["error": ["message": "invalid token"]], status: .unauthorized) }
                guard (try? JSONParser.parse(Array(bytes.readableBytesView)))?["model"] != nil else { return Stub.missingModel }
                if !Stub.isProbe(req) { self.seen.withLock { $0.append(req.headers[.authorization] ?? "") } }
                return Stub.openAIAnswer()
            }
        }
    }

    func authorized(_ req: Request) -> Bool {
        guard let auth = req.headers[.authorization], auth.hasPrefix("Bearer ") else { return false }
        return state.withLock { !$0.refuseAll && $0.valid.contains(String(auth.dropFirst(7))) }
    }

    /// The provider revokes an access token before it expires.
    func revoke(_ token: String) { _ = state.withLock { $0.valid.remove(token) } }
}

@Suite(.scoped) struct OAuthTests {
    static let start = Timestamp.parse("2026-11-30T09:00:00Z")!

    func resource(_ t: TenantFixture, stub: StubUpstream, tokenURL: String? = nil) async throws -> TestResponse {
        try await t.server.request(
            .POST, "/admin/v1/tenants/\(t.id)/resources",
            body: [
                "pool_id": .string(t.poolId), "name": .string("org-oauth-\(Identifier.random(4))"), "kind": "api_key",
                "provider": "openai_compatible",
                "base_url": .string(stub.url + "/v1"), "models": ["gpt-4.1-mini"], "attestation": TenantFixture.attestation,
                "oauth": [
                    "token_url": .string(tokenURL ?? stub.url + "/oauth/token"), "client_id": "qf-client", "client_secret": "cs-very-secret",
                    "refresh_token": "rt-1",
                ],
            ], token: t.adminKey)
    }

    @Test func oneRefreshForFiftyRequestsARotatedTokenSurvivesARestartAndA401RefreshesOnce() async throws {
        let clock = ManualClock(nowMs: Self.start)
        let server = try await TestServer.start(clock: clock)
        let oauth = OAuthStub()
        let stub = try await oauth.start()
        let t = try await TenantFixture.make(server)
        let created = try await resource(t, stub: stub)
        #expect(created.status == 201)
        let id = try #require(created.json["id"]?.stringValue)
        // Admission needed a token: the first refresh.
        try await t.waitState(id, "active")
        #expect(oauth.refreshes == 1)
        let p = try await t.project()
        let key = try await t.key(project: p)
        #expect((try await server.chat(key: key.secret)).status == 200)
        #expect(oauth.refreshes == 1)
        // Into the refresh margin: fifty requests at once cause exactly one refresh, and all use its token.
        clock.advance(byMs: 3_600_000 - 200_000)
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 { group.addTask { try await server.chat(key: key.secret).status } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.allSatisfy { $0 == 200 })
        #expect(oauth.refreshes == 2)
        #expect(oauth.seen.withLock { Array($0.suffix(50)) }.allSatisfy { $0 == "Bearer at-2" })
        // The provider revokes the token early: the 401 causes one refresh and one retry.
        oauth.revoke("at-2")
        let retried = try await server.chat(key: key.secret)
        #expect(retried.status == 200 && oauth.refreshes == 3)
        #expect(try await server.ledger(t.id).last?.attempts == 2)
        // The rotated refresh token (rt-4 now) survives a restart: the next process spends it, not rt-1.
        await server.stop(removeFiles: false)
        let again = try await TestServer.start(clock: clock, dir: server.dir, operatorToken: server.operatorToken)
        clock.advance(byMs: 3_600_000)
        #expect((try await again.chat(key: key.secret)).status == 200)
        #expect(oauth.state.withLock { $0.presented.last } == "rt-4")
        #expect(oauth.reuses == 0)
        // The tokens never show: not in the resource, its health, or the audit log.
        for path in ["/resources/\(id)", "/resources/\(id)/health", "/audit"] {
            let text = try await TenantFixture(server: again, id: t.id, adminKey: t.adminKey, poolId: t.poolId).get(path).text
            for secret in ["rt-", "at-", "cs-very-secret"] { #expect(!text.contains(secret), "\(path) shows \(secret)") }
        }
        let health = try await again.admin(.GET, "/tenants/\(t.id)/resources/\(id)/health")
        #expect(health["oauth"]?["refresh_count"] == 4 && health["oauth"]?["failures"] == 0)
    }

    /// A server with one admitted OAuth resource on a stub provider, and a key that reaches it.
    func admitted() async throws -> (clock: ManualClock, server: TestServer, oauth: OAuthStub, t: TenantFixture, id: String, key: String) {
        let clock = ManualClock(nowMs: Self.start)
        let server = try await TestServer.start(clock: clock)
        let oauth = OAuthStub()
        let stub = try await oauth.start()
        let t = try await TenantFixture.make(server)
        let id = try #require(try await resource(t, stub: stub).json["id"]?.stringValue)
        try await t.waitState(id, "active")
        let key = try await t.key(project: try await t.project())
        return (clock, server, oauth, t, id, key.secret)
    }

    @Test func anAPIThatRefusesEveryFreshTokenCostsOneRefreshPerRequestNotALoop() async throws {
        let (_, server, oauth, _, _, key) = try await admitted()
        let before = oauth.refreshes
        // From now on the provider accepts no token at all (a wrong audience, a disabled organisation).
        oauth.state.withLock { $0.refuseAll = true }
        let r = try await server.chat(key: key)
        #expect(r.status >= 400)
        #expect(oauth.refreshes == before + 1, "one refresh and one retry, then the 401 is handled as any refusal")
    }

    @Test func aFailingRefreshSuspendsWithEvidenceAndBacksOff() async throws {
        let (clock, server, oauth, t, id, key) = try await admitted()
        // The organisation's grant is revoked at the provider.
        oauth.state.withLock { $0.failWith = (400, "invalid_grant") }
        clock.advance(byMs: 3_600_000 + 1)
        let refused = try await server.chat(key: key)
        #expect(refused.status == 502 || refused.status == 503)
        #expect(!refused.text.contains("rt-") && !refused.text.contains("cs-very-secret"))
        try await t.waitState(id, "suspended")
        let r = try await t.call(.GET, "/resources/\(id)")
        #expect(r["state_reason"]?.stringValue?.contains("invalid_grant") == true)
        let health = try await t.call(.GET, "/resources/\(id)/health")
        #expect(health["oauth"]?["failures"] == 1 && health["oauth"]?["next_attempt_at"]?.stringValue != nil)
        #expect(health["oauth"]?["last_error"]?.stringValue?.contains("rt-") == false)
        // No tight loop: more requests during the backoff do not reach the token endpoint.
        let calls = oauth.state.withLock { $0.presented.count }
        for _ in 0..<5 { _ = try await server.chat(key: key) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(oauth.state.withLock { $0.presented.count } == calls)
        // An admin writes a new refresh token: verified again, in service.
        oauth.state.withLock {
            $0.failWith = nil
            $0.refresh = "rt-fresh"
        }
        let rotated = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/resources/\(id)/rotate-credential", body: ["oauth": ["refresh_token": "rt-fresh"]], token: t.adminKey)
        #expect(rotated.status == 200 && !rotated.text.contains("rt-fresh"))
        try await t.waitState(id, "active")
        #expect((try await server.chat(key: key)).status == 200)
    }

    @Test func badOAuthInputIsRefusedClearly() async throws {
        let server = try await TestServer.start()
        let oauth = OAuthStub()
        let stub = try await oauth.start()
        let t = try await TenantFixture.make(server)
        // Token endpoints are tenant-set URLs: the egress rule applies.
        let metadata = try await resource(t, stub: stub, tokenURL: "http://169.254.169.254/oauth/token")
        #expect(metadata.status == 422 && metadata.json["field"] == "oauth.token_url")
        func create(_ oauth: JSONValue, extra: [(String, JSONValue)] = []) async throws -> TestResponse {
            try await server.request(
                .POST, "/admin/v1/tenants/\(t.id)/resources",
                body: .object(
                    [
                        ("pool_id", .string(t.poolId)), ("name", .string("o-\(Identifier.random(4))")), ("kind", "api_key"),
                        ("provider", "openai_compatible"), ("base_url", .string(stub.url + "/v1")), ("models", ["gpt-4.1-mini"]),
                        ("attestation", TenantFixture.attestation), ("oauth", oauth),
                    ] + extra), token: t.adminKey)
        }
        #expect((try await create(["token_url": .string(stub.url + "/t"), "client_id": "c"])).json["field"] == "oauth.refresh_token")
        #expect(
            (try await create(["token_url": .string(stub.url + "/t"), "client_id": "c", "grant": "client_credentials"])).json["field"]
                == "oauth.client_secret")
        #expect((try await create(["token_url": "ftp://x", "client_id": "c", "refresh_token": "r"])).json["field"] == "oauth.token_url")
        #expect((try await create(["token_url": .string(stub.url + "/t"), "client_id": 5, "refresh_token": "r"])).json["field"] == "oauth.client_id")
        #expect((try await create(["token_url": .string(stub.url + "/t"), "client_id": "c", "refresh_token": "r", "extra": 1])).status == 422)
        #expect((try await create("not an object")).status == 422)
        let both = try await create(["token_url": .string(stub.url + "/t"), "client_id": "c", "refresh_token": "r"], extra: [("credential", "sk-x")])
        #expect(both.status == 422 && both.json["field"] == "credential")
        // A static resource cannot be given OAuth secrets, nor an OAuth one a static credential.
        let created = try await resource(t, stub: stub)
        let id = try #require(created.json["id"]?.stringValue)
        let wrong = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/resources/\(id)/rotate-credential", body: ["credential": "sk-x"], token: t.adminKey)
        #expect(wrong.status == 422)
        let empty = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/resources/\(id)/rotate-credential", body: ["oauth": [:]], token: t.adminKey)
        #expect(empty.status == 422)
    }
}
