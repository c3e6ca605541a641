import Foundation
import NIOHTTP1
import QuotaflowCore
import Testing

@testable import QuotaflowServer

/// A tenant set up through the admin API, with handles to its objects.
struct TenantFixture {
    let server: TestServer
    let id: String
    let adminKey: String
    var poolId: String

    static func make(_ server: TestServer, name: String = "acme-\(Identifier.random(6))", settings: JSONValue? = nil) async throws -> TenantFixture {
        var body: [(String, JSONValue)] = [("name", .string(name))]
        if let settings { body.append(("settings", settings)) }
        let tenant = try await server.admin(.POST, "/tenants", .object(body))
        let id = try #require(tenant["id"]?.stringValue)
        let key = try await server.admin(.POST, "/tenants/\(id)/admin-keys", ["name": "root"])
        let adminKey = try #require(key["key"]?.stringValue)
        let pool = try await server.admin(.POST, "/tenants/\(id)/pools", ["name": "main"], token: adminKey)
        return TenantFixture(server: server, id: id, adminKey: adminKey, poolId: try #require(pool["id"]?.stringValue))
    }

    static let attestation: JSONValue = ["by": "it-admin@example.com", "at": "2026-11-01T00:00:00Z", "note": "owner confirmed"]

    /// Adds a resource and (by default) waits until the verifier admits it.
    @discardableResult
    func resource(
        name: String = "res-\(Identifier.random(6))", kind: String = "api_key", provider: String = "openai", baseURL: String,
        credential: String = "sk-upstream-test-credential", models: [String] = ["gpt-4.1-mini", "gpt-4.1"], pool: String? = nil,
        extra: [(String, JSONValue)] = [], waitActive: Bool = true
    ) async throws -> String {
        var body: [(String, JSONValue)] = [
            ("pool_id", .string(pool ?? poolId)), ("name", .string(name)), ("kind", .string(kind)), ("provider", .string(provider)),
            ("base_url", .string(baseURL)), ("credential", .string(credential)), ("models", .strings(models)), ("owner", "platform team"),
            ("attestation", Self.attestation),
        ]
        body += extra
        // OpenAI keys serve Responses and embeddings too by default; the tests' stubs speak chat, so
        // they declare it unless the test names the families.
        if provider == "openai" && !extra.contains(where: { $0.0 == "families" }) { body.append(("families", ["chat"])) }
        let r = try await server.admin(.POST, "/tenants/\(id)/resources", .object(body), token: adminKey)
        let rid = try #require(r["id"]?.stringValue)
        if waitActive { try await waitState(rid, "active") }
        return rid
    }

    /// Waits for a resource's state. A probe is quick, but with the whole suite running at once on two
    /// cores a server can take several seconds to get to it.
    func waitState(_ resourceId: String, _ state: String, timeout: Duration = .seconds(30)) async throws {
        try await server.eventually("\(resourceId) to be \(state)", timeout: timeout) {
            let r = try await server.request(.GET, "/admin/v1/tenants/\(id)/resources/\(resourceId)", token: adminKey)
            return r.json["state"]?.stringValue == state
        }
    }

    func project(name: String = "proj-\(Identifier.random(6))", extra: [(String, JSONValue)] = [], pools: [String]? = nil) async throws -> String {
        var body: [(String, JSONValue)] = [("name", .string(name)), ("pool_ids", .strings(pools ?? [poolId]))]
        body += extra
        let p = try await server.admin(.POST, "/tenants/\(id)/projects", .object(body), token: adminKey)
        return try #require(p["id"]?.stringValue)
    }

    func key(project: String, extra: [(String, JSONValue)] = []) async throws -> (id: String, secret: String) {
        var body: [(String, JSONValue)] = [("name", .string("key-\(Identifier.random(4))"))]
        body += extra
        let k = try await server.admin(.POST, "/tenants/\(id)/projects/\(project)/keys", .object(body), token: adminKey)
        return (try #require(k["id"]?.stringValue), try #require(k["key"]?.stringValue))
    }

    func get(_ path: String) async throws -> TestResponse {
        try await server.request(.GET, "/admin/v1/tenants/\(id)" + path, token: adminKey)
    }

    @discardableResult
    func call(
        _ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> JSONValue {
        try await server.admin(method, "/tenants/\(id)" + path, body, token: adminKey, sourceLocation: sourceLocation)
    }
}
