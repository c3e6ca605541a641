import Foundation
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Testing

@testable import QuotaflowServer

@Suite(.scoped) struct AdminAPITests {
    @Test func healthAndReadiness() async throws {
        let server = try await TestServer.start()
        let h = try await server.request(.GET, "/healthz")
        #expect(h.status == 200)
        let r = try await server.request(.GET, "/readyz")
        #expect(r.status == 200 && r.json["database"] == .bool(true))
        #expect(r.header("x-request-id") != nil)
    }

    @Test func authenticationAndRoles() async throws {
        let server = try await TestServer.start()
        let none = try await server.request(.GET, "/admin/v1/tenants")
        #expect(none.status == 401)
        #expect(none.header("content-type") == "application/problem+json")
        #expect(none.json["detail"]?.stringValue?.contains("Bearer") == true)
        let wrong = try await server.request(.GET, "/admin/v1/tenants", token: "qf_op_not-the-token-at-all-xxxxxxxxxxxx")
        #expect(wrong.status == 401)
        #expect(!wrong.text.contains("not-the-token"))
        let t = try await TenantFixture.make(server)
        let forbidden = try await server.request(.GET, "/admin/v1/tenants", token: t.adminKey)
        #expect(forbidden.status == 403)
        let create = try await server.request(.POST, "/admin/v1/tenants", body: ["name": "sneaky"], token: t.adminKey)
        #expect(create.status == 403)
        let own = try await server.request(.GET, "/admin/v1/tenants/\(t.id)", token: t.adminKey)
        #expect(own.status == 200)
        let rename = try await server.request(.PATCH, "/admin/v1/tenants/\(t.id)", body: ["name": "x"], token: t.adminKey)
        #expect(rename.status == 403)
        let settings = try await server.request(
            .PATCH, "/admin/v1/tenants/\(t.id)", body: ["settings": ["enforcement": "audit"]], token: t.adminKey)
        #expect(settings.status == 200 && settings.json["settings"]?["enforcement"] == "audit")
    }

    @Test func tenantLifecycle() async throws {
        let server = try await TestServer.start()
        var ids: [String] = []
        for i in 0..<3 { ids.append(try await server.admin(.POST, "/tenants", ["name": .string("t\(i)")])["id"]!.stringValue!) }
        let dup = try await server.request(.POST, "/admin/v1/tenants", body: ["name": "t0"], token: server.operatorToken)
        #expect(dup.status == 409)
        let page1 = try await server.admin(.GET, "/tenants?limit=2")
        #expect(page1["data"]?.arrayValue?.count == 2)
        let cursor = try #require(page1["next_cursor"]?.stringValue)
        let page2 = try await server.admin(.GET, "/tenants?limit=2&cursor=\(cursor)")
        #expect(page2["data"]?.arrayValue?.count == 1)
        #expect(page2["next_cursor"] == .null)
        let patched = try await server.admin(.PATCH, "/tenants/\(ids[0])", ["name": "renamed", "settings": ["monthly_limit_micros": 5_000_000]])
        #expect(patched["name"] == "renamed")
        #expect(patched["settings"]?["monthly_limit_micros"] == .int(5_000_000))
        // Merge patch: other settings keep their values; null clears one.
        let cleared = try await server.admin(.PATCH, "/tenants/\(ids[0])", ["settings": ["monthly_limit_micros": nil]])
        #expect(cleared["settings"]?["monthly_limit_micros"] == nil)
        #expect(cleared["settings"]?["hash_end_users"] == .bool(true))
        let disabled = try await server.admin(.POST, "/tenants/\(ids[1])/disable")
        #expect(disabled["status"] == "disabled")
        let enabled = try await server.admin(.POST, "/tenants/\(ids[1])/enable")
        #expect(enabled["status"] == "active")
        let pricing = try await server.admin(.GET, "/tenants/\(ids[2])/pricing")
        #expect((pricing["data"]?.arrayValue?.count ?? 0) >= 6)
    }

    @Test func adminKeysAreShownOnceAndRevocable() async throws {
        let server = try await TestServer.start()
        let t = try await TenantFixture.make(server)
        let extra = try await t.call(.POST, "/admin-keys", ["name": "second"])
        let secret = try #require(extra["key"]?.stringValue)
        #expect(secret.hasPrefix("qf_ak_"))
        let list = try await t.call(.GET, "/admin-keys")
        for k in list["data"]?.arrayValue ?? [] {
            #expect(k["key"] == nil)
            #expect(k["prefix"]?.stringValue?.hasPrefix("qf_ak_") == true)
        }
        #expect(!(try await t.get("/admin-keys")).text.contains(secret))
        #expect((try await server.request(.GET, "/admin/v1/tenants/\(t.id)/pools", token: secret)).status == 200)
        try await t.call(.POST, "/admin-keys/\(extra["id"]!.stringValue!)/revoke")
        #expect((try await server.request(.GET, "/admin/v1/tenants/\(t.id)/pools", token: secret)).status == 401)
        // Only the digest is stored.
        let stored = try await server.state.db.read { conn in
            try conn.query("SELECT digest, prefix FROM admin_keys").map { try $0.string("digest") + $0.string("prefix") }
        }
        #expect(!stored.joined().contains(secret))
    }

    @Test func aViewerKeyReadsEverythingAndChangesNothing() async throws {
        let server = try await TestServer.start()
        let t = try await TenantFixture.make(server)
        let project = try await t.project()
        let viewer = try await t.call(.POST, "/admin-keys", ["name": "finance", "scope": "viewer"])
        #expect(viewer["scope"] == "viewer")
        let secret = try #require(viewer["key"]?.stringValue)
        // An admin key issued without a scope keeps every power.
        #expect(try await t.call(.POST, "/admin-keys", ["name": "ops"])["scope"] == "admin")
        for path in ["/projects", "/projects/\(project)", "/pools", "/admin-keys", "/audit", "/usage", "/ledger"] {
            let r = try await server.request(.GET, "/admin/v1/tenants/\(t.id)\(path)", token: secret)
            #expect(r.status == 200, "GET \(path): \(r.status) \(r.text.prefix(200))")
        }
        let writes: [(HTTPMethod, String, JSONValue?)] = [
            (.POST, "/projects", ["name": "sneaky"]), (.PATCH, "/projects/\(project)", ["name": "renamed"]),
            (.POST, "/projects/\(project)/keys", ["name": "k2"]), (.POST, "/admin-keys", ["name": "escalate", "scope": "admin"]),
            (.POST, "/projects/\(project)/archive", nil), (.DELETE, "/pools/\(t.poolId)", nil),
            (.POST, "/policy?dry_run=true", ["projects": []]),
        ]
        for (method, path, body) in writes {
            let r = try await server.request(method, "/admin/v1/tenants/\(t.id)\(path)", body: body, token: secret)
            #expect(r.status == 403, "\(method) \(path): \(r.status)")
            #expect(r.text.contains("viewer key"))
        }
        // Nothing changed, and the viewer cannot reach another tenant either.
        let projects = try await t.call(.GET, "/projects")
        #expect(projects["data"]?.arrayValue?.count == 1 && projects["data"]?.arrayValue?.first?["name"] != "renamed")
        let other = try await TenantFixture.make(server)
        #expect((try await server.request(.GET, "/admin/v1/tenants/\(other.id)/projects", token: secret)).status == 404)
        // A bad scope is a clear 422 naming the field, like every validation failure.
        let bad = try await server.request(.POST, "/admin/v1/tenants/\(t.id)/admin-keys", body: ["name": "x", "scope": "root"], token: t.adminKey)
        #expect(bad.status == 422 && bad.text.contains("scope"), "\(bad.status) \(bad.text.prefix(300))")
        // The audit log names the key that acted.
        let audit = try await t.call(.GET, "/audit")
        let creator = audit["data"]?.arrayValue?.first { $0["action"] == "admin_key.create" }?["actor"]?.stringValue
        #expect(creator?.hasPrefix("admin_key:") == true)
    }

    @Test func poolsAndTheirConflicts() async throws {
        let server = try await TestServer.start()
        let upstream = try await StubUpstream.simulated()
        let t = try await TenantFixture.make(server)
        let second = try await t.call(.POST, "/pools", ["name": "batch", "description": "nightly jobs"])
        let secondId = try #require(second["id"]?.stringValue)
        let dup = try await server.request(.POST, "/admin/v1/tenants/\(t.id)/pools", body: ["name": "batch"], token: t.adminKey)
        #expect(dup.status == 409)
        let patched = try await t.call(.PATCH, "/pools/\(secondId)", ["description": "renamed"])
        #expect(patched["description"] == "renamed" && patched["name"] == "batch")
        try await t.resource(baseURL: upstream.url + "/v1", pool: secondId, waitActive: false)
        let blocked = try await server.request(.DELETE, "/admin/v1/tenants/\(t.id)/pools/\(secondId)", token: t.adminKey)
        #expect(blocked.status == 409)
        #expect(blocked.json["detail"]?.stringValue?.contains("resource") == true)
        let empty = try await t.call(.POST, "/pools", ["name": "empty"])
        let deleted = try await server.request(.DELETE, "/admin/v1/tenants/\(t.id)/pools/\(empty["id"]!.stringValue!)", token: t.adminKey)
        #expect(deleted.status == 204)
        let gone = try await server.request(.GET, "/admin/v1/tenants/\(t.id)/pools/\(empty["id"]!.stringValue!)", token: t.adminKey)
        #expect(gone.status == 404)
    }

    @Test func resourcesKeepTheirCredentialSecret() async throws {
        let server = try await TestServer.start { $0.verifierEnabled = false }
        let t = try await TenantFixture.make(server)
        let credential = "sk-live-THIS-MUST-NEVER-LEAK-1234"
        let id = try await t.resource(
            kind: "seat", baseURL: "https://api.openai.com/v1", credential: credential, models: ["gpt-4.1", "gpt-4.1-*"],
            extra: [
                ("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 20_000_000]),
                ("limits", ["max_concurrency": 2, "rpm": 50, "windows": [["requests": 200, "window_seconds": 18_000]]]),
            ], waitActive: false)
        let one = try await t.get("/resources/\(id)")
        #expect(one.json["state"] == "pending")
        #expect(one.json["credential_hint"] == "…1234")
        #expect(one.json["lease_mode"] == "exclusive")
        #expect(one.json["limits"]?["windows"]?.arrayValue?.count == 1)
        for path in ["/resources", "/resources/\(id)", "/audit"] {
            let r = try await t.get(path)
            #expect(!r.text.contains(credential), "\(path) leaked the credential")
        }
        let raw = try await server.state.db.read { conn in
            try conn.queryOne("SELECT credential_ciphertext FROM resources")!.blob("credential_ciphertext") ?? []
        }
        #expect(!String(decoding: raw, as: UTF8.self).contains("NEVER-LEAK"))
        // Filters.
        #expect((try await t.get("/resources?kind=seat")).json["data"]?.arrayValue?.count == 1)
        #expect((try await t.get("/resources?kind=relay")).json["data"]?.arrayValue?.count == 0)
        #expect((try await t.get("/resources?state=pending&provider=openai")).json["data"]?.arrayValue?.count == 1)
        #expect((try await t.get("/resources?state=bogus")).status == 400)
        // A seat cannot have per-token pricing.
        let bad = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/resources",
            body: [
                "pool_id": .string(t.poolId), "name": "x", "kind": "seat", "provider": "openai", "credential": "sk-xxxxxxxxxxxxxxxx",
                "models": ["gpt-4.1"], "cost_basis": ["type": "per_token", "input_per_mtok_micros": 1, "output_per_mtok_micros": 1],
            ], token: t.adminKey)
        #expect(bad.status == 422 && bad.json["field"] == "cost_basis")
        // Actions.
        let suspended = try await t.call(.POST, "/resources/\(id)/suspend", ["reason": "contract ended"])
        #expect(suspended["state"] == "suspended" && suspended["manual_hold"] == .bool(true))
        let resumed = try await t.call(.POST, "/resources/\(id)/resume")
        #expect(resumed["state"] == "pending" && resumed["manual_hold"] == .bool(false))
        let rotated = try await t.call(.POST, "/resources/\(id)/rotate-credential", ["credential": "sk-new-credential-9876"])
        #expect(rotated["credential_hint"] == "…9876")
        let revoked = try await t.call(.POST, "/resources/\(id)/revoke")
        #expect(revoked["state"] == "revoked")
        #expect((try await server.request(.POST, "/admin/v1/tenants/\(t.id)/resources/\(id)/resume", token: t.adminKey)).status == 409)
        #expect((try await server.request(.PATCH, "/admin/v1/tenants/\(t.id)/resources/\(id)", body: ["name": "y"], token: t.adminKey)).status == 409)
        let patchCredential = try await server.request(
            .PATCH, "/admin/v1/tenants/\(t.id)/resources/\(id)", body: ["credential": "sk-zzzzzzzzzzzzzz"], token: t.adminKey)
        #expect(patchCredential.status == 409 || patchCredential.status == 422)
    }

    @Test func projectsAndKeys() async throws {
        let server = try await TestServer.start { $0.verifierEnabled = false }
        let t = try await TenantFixture.make(server)
        let division = try await t.project(name: "division", extra: [("budget", ["monthly_cap_micros": 50_000_000])])
        let team = try await t.project(name: "team", extra: [("parent_id", .string(division)), ("allowed_models", ["gpt-4.1*"])])
        let cycle = try await server.request(
            .PATCH, "/admin/v1/tenants/\(t.id)/projects/\(division)", body: ["parent_id": .string(team)], token: t.adminKey)
        #expect(cycle.status == 422 && cycle.json["field"] == "parent_id")
        let badPool = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/projects", body: ["name": "x", "pool_ids": ["pool_nope"]], token: t.adminKey)
        #expect(badPool.status == 422 && badPool.json["field"] == "pool_ids[0]")
        let key = try await t.key(project: team, extra: [("rpm", 30)])
        #expect(key.secret.hasPrefix("qf_pk_"))
        let keys = try await t.get("/projects/\(team)/keys")
        #expect(!keys.text.contains(key.secret))
        #expect(keys.json["data"]?.arrayValue?.first?["prefix"]?.stringValue == String(key.secret.prefix(12)))
        let revoked = try await t.call(.POST, "/projects/\(team)/keys/\(key.id)/revoke")
        #expect(revoked["state"] == "revoked")
        let archived = try await t.call(.POST, "/projects/\(team)/archive")
        #expect(archived["status"] == "archived")
        #expect(
            (try await server.request(.POST, "/admin/v1/tenants/\(t.id)/projects/\(team)/keys", body: ["name": "k"], token: t.adminKey)).status == 409
        )
        let listed = try await t.get("/projects?status=active")
        #expect(listed.json["data"]?.arrayValue?.map { $0["name"] } == ["division"])
    }

    @Test func auditLogRecordsChangesWithoutSecrets() async throws {
        let server = try await TestServer.start { $0.verifierEnabled = false }
        let t = try await TenantFixture.make(server)
        let credential = "sk-audit-secret-abcdefgh"
        let r = try await t.resource(baseURL: "https://api.openai.com/v1", credential: credential, waitActive: false)
        try await t.call(.PATCH, "/resources/\(r)", ["owner": "someone else"])
        let p = try await t.project()
        let k = try await t.key(project: p)
        try await t.call(.POST, "/projects/\(p)/keys/\(k.id)/revoke")
        let all = try await t.call(.GET, "/audit?limit=100")
        let actions = all["data"]?.arrayValue?.compactMap { $0["action"]?.stringValue } ?? []
        for a in [
            "tenant.create", "admin_key.create", "pool.create", "resource.create", "resource.update", "project.create", "key.create", "key.revoke",
        ] {
            #expect(actions.contains(a), "missing \(a)")
        }
        let update = all["data"]?.arrayValue?.first { $0["action"] == "resource.update" }
        #expect(update?["summary"]?["changed"]?["owner"]?["to"] == "someone else")
        #expect(update?["actor"]?.stringValue?.hasPrefix("admin_key:") == true)
        let text = JSONWriter.string(all)
        #expect(!text.contains(credential) && !text.contains(k.secret) && !text.contains(t.adminKey))
        // Cursor pagination walks every entry once.
        var seen: [Int64] = []
        var cursor: String?
        repeat {
            let page = try await t.call(.GET, "/audit?limit=3" + (cursor.map { "&cursor=\($0)" } ?? ""))
            seen += page["data"]?.arrayValue?.compactMap { $0["id"]?.int64Value } ?? []
            cursor = page["next_cursor"]?.stringValue
        } while cursor != nil
        #expect(seen.count == actions.count && Set(seen).count == seen.count && seen == seen.sorted(by: >))
    }

    @Test func tenantsAreIsolatedForEveryObjectKind() async throws {
        let server = try await TestServer.start { $0.verifierEnabled = false }
        let a = try await TenantFixture.make(server, name: "alpha")
        let b = try await TenantFixture.make(server, name: "beta")
        let bResource = try await b.resource(baseURL: "https://api.openai.com/v1", waitActive: false)
        let bProject = try await b.project()
        let bKey = try await b.key(project: bProject)
        let bAdminKeys = try await b.call(.GET, "/admin-keys")
        let bAdminKey = try #require(bAdminKeys["data"]?.arrayValue?.first?["id"]?.stringValue)
        let reads = [
            "/tenants/\(b.id)", "/tenants/\(b.id)/pools", "/tenants/\(b.id)/pools/\(b.poolId)", "/tenants/\(b.id)/resources",
            "/tenants/\(b.id)/resources/\(bResource)", "/tenants/\(b.id)/resources/\(bResource)/health", "/tenants/\(b.id)/projects",
            "/tenants/\(b.id)/projects/\(bProject)", "/tenants/\(b.id)/projects/\(bProject)/keys",
            "/tenants/\(b.id)/projects/\(bProject)/keys/\(bKey.id)", "/tenants/\(b.id)/admin-keys", "/tenants/\(b.id)/audit",
            "/tenants/\(b.id)/ledger", "/tenants/\(b.id)/pricing",
            // B's object ids under A's own tenant path are unknown too.
            "/tenants/\(a.id)/pools/\(b.poolId)", "/tenants/\(a.id)/resources/\(bResource)", "/tenants/\(a.id)/projects/\(bProject)",
            "/tenants/\(a.id)/projects/\(bProject)/keys/\(bKey.id)",
        ]
        for path in reads {
            let r = try await server.request(.GET, "/admin/v1" + path, token: a.adminKey)
            #expect(r.status == 404, "GET \(path) answered \(r.status)")
            #expect(!r.text.contains("beta"))
        }
        let writes: [(HTTPMethod, String, JSONValue?)] = [
            (.PATCH, "/tenants/\(b.id)", ["settings": ["enforcement": "audit"]]), (.POST, "/tenants/\(b.id)/pools", ["name": "x"]),
            (.PATCH, "/tenants/\(a.id)/pools/\(b.poolId)", ["name": "x"]), (.DELETE, "/tenants/\(a.id)/pools/\(b.poolId)", nil),
            (.DELETE, "/tenants/\(b.id)/pools/\(b.poolId)", nil), (.PATCH, "/tenants/\(b.id)/resources/\(bResource)", ["name": "x"]),
            (.POST, "/tenants/\(a.id)/resources/\(bResource)/suspend", nil), (.POST, "/tenants/\(b.id)/resources/\(bResource)/revoke", nil),
            (.POST, "/tenants/\(a.id)/resources/\(bResource)/verify", nil), (.PATCH, "/tenants/\(a.id)/projects/\(bProject)", ["name": "x"]),
            (.POST, "/tenants/\(a.id)/projects/\(bProject)/keys", ["name": "x"]),
            (.POST, "/tenants/\(a.id)/projects/\(bProject)/keys/\(bKey.id)/revoke", nil),
            (.POST, "/tenants/\(b.id)/projects/\(bProject)/archive", nil), (.POST, "/tenants/\(b.id)/admin-keys", ["name": "x"]),
            (.POST, "/tenants/\(a.id)/admin-keys/\(bAdminKey)/revoke", nil),
            (
                .POST, "/tenants/\(a.id)/resources",
                [
                    "pool_id": .string(b.poolId), "name": "x", "kind": "api_key", "provider": "openai", "credential": "sk-xxxxxxxxxxxxxxxx",
                    "models": ["gpt-4.1"],
                ]
            ),
            (.POST, "/tenants/\(a.id)/projects", ["name": "x", "pool_ids": [.string(b.poolId)]]),
            (.POST, "/tenants/\(a.id)/projects", ["name": "y", "parent_id": .string(bProject)]),
        ]
        for (method, path, body) in writes {
            let r = try await server.request(method, "/admin/v1" + path, body: body, token: a.adminKey)
            #expect(r.status == 404 || r.status == 422, "\(method) \(path) answered \(r.status)")
        }
        // Nothing of B changed, and B's key still works on B.
        let resource = try await b.get("/resources/\(bResource)")
        #expect(resource.json["state"] == "pending" && resource.json["manual_hold"] == .bool(false))
        #expect((try await b.get("/projects/\(bProject)/keys/\(bKey.id)")).json["state"] == "active")
        #expect((try await b.get("/projects/\(bProject)")).json["status"] == "active")
        let auditA = (try await a.get("/audit")).json["data"]?.arrayValue ?? []
        #expect(!auditA.isEmpty && auditA.allSatisfy { $0["tenant_id"] == .string(a.id) })
    }

    @Test func badInputGetsClearAnswersAndTheServerStaysUp() async throws {
        let server = try await TestServer.start { $0.verifierEnabled = false }
        let t = try await TenantFixture.make(server)
        let path = "/admin/v1/tenants/\(t.id)/pools"
        let cases: [([UInt8], Int, String)] = [
            (Array("{\"name\":".utf8), 400, "not valid JSON"),
            (Array("[1,2]".utf8), 400, "JSON object"),
            (Array("".utf8), 400, "empty"),
            ([0x7B, 0x22, 0x6E, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D], 400, "UTF-8"),
            (Array("{\"name\": 42}".utf8), 422, "name"),
            (Array("{\"name\": \"ok\", \"colour\": \"red\"}".utf8), 422, "colour"),
            (Array("{\"name\": \"\"}".utf8), 422, "empty"),
            (Array("{\"name\": \"\(String(repeating: "x", count: 500))\"}".utf8), 422, "at most"),
            (Array(("{\"name\":" + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}").utf8), 400, "nested"),
        ]
        for (body, status, hint) in cases {
            let r = try await server.request(.POST, path, raw: body, token: t.adminKey, headers: [("content-type", "application/json")])
            #expect(r.status == status, "\(String(decoding: body.prefix(40), as: UTF8.self)) -> \(r.status) \(r.text)")
            #expect(r.header("content-type") == "application/problem+json")
            #expect(r.json["detail"]?.stringValue?.contains(hint) == true, "\(r.text)")
        }
        let wrongType = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/projects", body: ["name": "p", "budget": ["monthly_cap_micros": -5]], token: t.adminKey)
        #expect(wrongType.status == 422 && wrongType.json["field"] == "budget.monthly_cap_micros")
        let huge = [UInt8](repeating: UInt8(ascii: "a"), count: 2 << 20)
        let big = try await server.request(.POST, path, raw: huge, token: t.adminKey)
        #expect(big.status == 413)
        for unknown in ["/pools/pool_nope", "/resources/res_nope", "/projects/prj_nope", "/projects/prj_nope/keys", "/resources/res_nope/health"] {
            #expect((try await t.get(unknown)).status == 404, "\(unknown)")
        }
        for trick in [
            "/admin/v1/tenants/\(t.id)/../\(t.id)/pools", "/admin/v1/tenants/%2e%2e/pools", "/admin/v1/tenants/\(t.id)/pools/%00",
            "/admin/v1/nothing-here",
        ] {
            let r = try await server.request(.GET, trick, token: t.adminKey)
            #expect((400..<500).contains(r.status), "\(trick) -> \(r.status)")
        }
        #expect((try await server.request(.GET, "/admin/v1/tenants?limit=abc", token: server.operatorToken)).status == 400)
        #expect((try await server.request(.GET, "/admin/v1/tenants/\(t.id)/audit?cursor=-4", token: t.adminKey)).status == 400)
        // Nothing was created and the server still answers.
        #expect((try await t.get("/pools")).json["data"]?.arrayValue?.count == 1)
        #expect((try await server.request(.GET, "/healthz")).status == 200)
    }
}
