import AsyncHTTPClient
import Foundation
import HashTreeCollections
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Synchronization
import Testing

@testable import QuotaflowServer

/// The catalog is changed object by object, never rebuilt: these hold the published snapshot equal
/// to one loaded whole from the database, and each write's publication to what it changed.
@Suite(.scoped) struct CatalogTests {
    /// Everything the data plane reads, as comparable text (credentials included: they are decrypted
    /// into the catalog, and must be the same ones).
    static func fingerprint(_ c: Catalog) -> [String] {
        var out: [String] = []
        for (id, t) in c.tenants { out.append("tenant \(id) \(t)") }
        for (id, p) in c.projects { out.append("project \(id) \(p)") }
        func describe(_ k: DataPlaneKey) -> String {
            "\(k.kind) \(k.id) \(k.tenantId) \(k.projectId) \(k.name) \(k.allowedModels) \(String(describing: k.budgetCapMicros)) "
                + "\(String(describing: k.rpm)) \(String(describing: k.expiresAt)) \(String(describing: k.validUntil))"
        }
        for (digest, k) in c.keys { out.append("key \(digest) \(describe(k))") }
        for (id, k) in c.keysById { out.append("key-id \(id) \(describe(k))") }
        for (digest, id) in c.revoked { out.append("revoked \(digest) \(id)") }
        for (tenantId, list) in c.resourcesByTenant {
            out.append("resources \(tenantId) " + list.map { "\($0.id)@\($0.position)" }.joined(separator: ","))
            for r in list {
                out.append("resource \(r.id) \(r.resource) \(r.credential) \(r.baseURL) \(String(describing: r.price)) \(r.egressChecked)")
            }
        }
        for (id, r) in c.resourcesById { out.append("resource-id \(id) \(r.resource.tenantId)") }
        for (id, p) in c.pricing { out.append("pricing \(id) \(p.entries) \(String(describing: p.defaultPrice)) \(p.toolCallMicros)") }
        for (id, o) in c.offers { out.append("offer \(id) \(o) \(c.offerCredential(id) ?? "-")") }
        for (id, list) in c.approvals { out.append("approvals \(id) \(list)") }
        for (id, ids) in c.projectIdsByTenant { out.append("tenant-projects \(id) \(ids.sorted())") }
        for (id, ids) in c.keyIdsByTenant { out.append("tenant-keys \(id) \(ids.sorted())") }
        return out.sorted()
    }

    static func loadedWhole(_ server: TestServer) throws -> Catalog {
        let state = server.state
        return try state.db.readSync { conn in
            try CatalogLoader.load(conn, cipher: state.cipher, logger: state.logger, now: state.clock.nowMs())
        }
    }

    @Test func theSnapshotBuiltChangeByChangeEqualsOneLoadedWhole() async throws {
        let server = try await TestServer.start()
        let upstream = try await Stub.upstream(recorder: Recorder())
        let offer = try await server.admin(
            .POST, "/overflow-offers",
            [
                "name": "platform", "provider": "openai", "base_url": .string(upstream.url + "/v1"), "credential": "sk-platform-offer-credential",
                "models": ["gpt-4.1-mini"], "price": ["input_per_mtok_micros": 4_000_000, "output_per_mtok_micros": 16_000_000],
            ])
        let a = try await TenantFixture.make(server)
        let b = try await TenantFixture.make(server)
        let resource = try await a.resource(baseURL: upstream.url + "/v1")
        try await a.resource(
            baseURL: upstream.url + "/v1", credential: "sk-second-upstream-credential",
            extra: [("cost_basis", ["type": "per_token", "input_per_mtok_micros": 2_000_000, "output_per_mtok_micros": 8_000_000])])
        try await a.call(
            .POST, "/resources",
            ["pool_id": .string(a.poolId), "name": "overflow", "kind": "overflow", "offer_id": offer["id"]!, "credit_cap_micros": 1_000])
        try await b.resource(baseURL: upstream.url + "/v1", waitActive: false)
        let parent = try await a.project()
        let child = try await a.project(extra: [("parent_id", .string(parent)), ("budget", ["monthly_cap_micros": 5_000_000])])
        let kept = try await a.key(project: child)
        let revoked = try await a.key(project: child, extra: [("budget_cap_micros", 1_000)])
        try await a.call(.POST, "/projects/\(child)/keys/\(revoked.id)/revoke")
        let seat = try await a.call(.POST, "/projects/\(child)/seats", ["holder": "contractor@example.com", "duration_seconds": 86_400])
        let seatId = try #require(seat["id"]?.stringValue)
        try await a.call(.POST, "/projects/\(child)/seats/\(seatId)/rotate", ["grace_seconds": 600])
        let gone = try await a.call(.POST, "/projects/\(parent)/seats", ["holder": "left@example.com", "duration_seconds": 3_600])
        try await a.call(.POST, "/projects/\(parent)/seats/\(try #require(gone["id"]?.stringValue))/revoke")
        try await a.call(.PATCH, "/projects/\(child)", ["rate_limits": ["rpm": 60]])
        try await a.call(.POST, "/projects/\(parent)/archive")
        try await a.call(
            .PUT, "/pricing", ["entries": [["model": "gpt-4.1-mini", "input_per_mtok_micros": 400_000, "output_per_mtok_micros": 1_600_000]]])
        try await server.admin(.PATCH, "/tenants/\(a.id)", ["settings": ["tool_call_price_micros": 20_000]])
        try await a.call(.POST, "/resources/\(resource)/suspend")
        try await server.admin(.PATCH, "/overflow-offers/\(try #require(offer["id"]?.stringValue))", ["active": false])
        try await b.call(.POST, "/projects", ["name": "solo"])
        #expect((try await server.chat(key: kept.secret)).status != 401)

        let published = Self.fingerprint(server.state.catalog)
        let whole = Self.fingerprint(try Self.loadedWhole(server))
        #expect(published.count > 20)
        #expect(Set(published).subtracting(whole).sorted() == [])
        #expect(Set(whole).subtracting(published).sorted() == [])
    }

    @Test func aWritePublishesWhatItChangedAndAFailedOneNothing() async throws {
        let server = try await TestServer.start()
        let t = try await TenantFixture.make(server)
        let project = try await t.project()
        let seen = Mutex<[CatalogChanges]>([])
        server.state.onPublish { _, _, changes in seen.withLock { $0.append(changes) } }
        let key = try await t.key(project: project)
        var expected = CatalogChanges()
        expected.keys = [key.id]
        #expect(seen.withLock { $0 } == [expected])
        #expect(server.state.catalog.keysById[key.id]?.projectId == project)

        // A write that fails after changing a row publishes nothing and leaves nothing pending.
        let before = server.state.catalog
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await server.state.mutate { conn in
                try conn.run("UPDATE projects SET name = 'renamed' WHERE id = ?", [.text(project)])
                throw Refused()
            }
        }
        #expect(server.state.catalog === before)
        try await t.call(.POST, "/projects/\(project)/keys/\(key.id)/revoke")
        #expect(seen.withLock { $0.count } == 2)
        #expect(seen.withLock { $0.last?.projects } == [])
        #expect(server.state.catalog.projects[project]?.name != "renamed")
        // A revoke is in force when the call returns.
        #expect(server.state.catalog.keysById[key.id] == nil)
        #expect((try await server.chat(key: key.secret)).status == 401)
    }

    /// Lists are read a page at a time from an index, in a stable order, whatever the tenant holds.
    @Test func listsComeInPagesWithACursor() async throws {
        let server = try await TestServer.start { $0.verifierEnabled = false }
        let t = try await TenantFixture.make(server)
        var projects: [String] = []
        for i in 0..<5 { projects.append(try await t.project(extra: [("name", .string("p\(i)"))])) }
        for i in 0..<3 { try await t.resource(name: "r\(i)", baseURL: "https://api.openai.com/v1", waitActive: false) }
        for _ in 0..<5 { _ = try await t.key(project: projects[0]) }
        for i in 0..<3 { try await t.call(.POST, "/projects/\(projects[0])/seats", ["holder": .string("h\(i)"), "duration_seconds": 3_600]) }
        func all(_ path: String, limit: Int, key: String) async throws -> [String] {
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await t.call(.GET, path + "?limit=\(limit)" + (cursor.map { "&cursor=\($0)" } ?? ""))
                let items = page["data"]?.arrayValue ?? []
                #expect(items.count <= limit)
                seen += items.compactMap { $0[key]?.stringValue }
                cursor = page["next_cursor"]?.stringValue
            } while cursor != nil
            return seen
        }
        #expect(try await all("/projects", limit: 2, key: "name") == ["p0", "p1", "p2", "p3", "p4"])
        #expect(try await all("/resources", limit: 2, key: "name") == ["r0", "r1", "r2"])
        let keys = try await all("/projects/\(projects[0])/keys", limit: 2, key: "id")
        #expect(keys.count == 5 && Set(keys).count == 5)
        #expect(try await all("/projects/\(projects[0])/seats", limit: 1, key: "holder") == ["h0", "h1", "h2"])
        for i in 0..<2 { try await t.call(.POST, "/pools", ["name": .string("q\(i)")]) }
        #expect(try await all("/pools", limit: 2, key: "name") == ["main", "q0", "q1"])
        for i in 0..<3 { try await t.call(.POST, "/webhooks", ["url": .string("http://127.0.0.1:9/hook-\(i)")]) }
        #expect(try await all("/webhooks", limit: 2, key: "url") == (0..<3).map { "http://127.0.0.1:9/hook-\($0)" })
        for i in 0..<2 { try await server.admin(.POST, "/tenants/\(t.id)/admin-keys", ["name": .string("extra-\(i)")]) }
        #expect(try await all("/admin-keys", limit: 1, key: "name") == ["root", "extra-0", "extra-1"])
        let bad = try await t.get("/projects/\(projects[0])/keys?cursor=not-a-cursor")
        #expect(bad.status == 400)
    }
}
