import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import QuotaflowCore
import Testing

@testable import QuotaflowServer

/// Admin input validation, run in process through Hummingbird's router test client: the real
/// application and a real SQLite file, no socket. (Anything that touches the data plane, the
/// workers or streaming runs live over loopback instead.)
///
/// Each test gathers its answers inside the client closure and checks them outside it: Swift 6.3.1
/// miscompiles a closure that follows an `#expect` holding a closure within one enclosing closure.
@Suite(.scoped) struct AdminValidationTests {
    /// One admin call and what must come back.
    struct Case: Sendable {
        let method: HTTPRequest.Method
        let path: String
        let body: String?
        let status: Int
        /// The `field` the problem document must name, when it names one.
        let field: String?

        init(_ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, _ status: Int, field: String? = nil) {
            self.method = method
            self.path = path
            self.body = body
            self.status = status
            self.field = field
        }
    }

    struct Answer: Sendable {
        let status: Int
        let contentType: String?
        let json: JSONValue
    }

    /// The ids of a tenant made for the test.
    struct Made: Sendable {
        let tenant: String
        let adminKey: String
        let pool: String
        let project: String
        let otherTenant: String
        let otherProject: String
    }

    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ body: String?, token: String
    ) async throws -> Answer {
        var headers: HTTPFields = [.authorization: "Bearer \(token)"]
        if body != nil { headers[.contentType] = "application/json" }
        let r = try await client.execute(uri: "/admin/v1" + path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        let json = (try? JSONParser.parse(Array(r.body.readableBytesView))) ?? .null
        return Answer(status: Int(r.status.code), contentType: r.headers[.contentType], json: json)
    }

    struct SetupFailed: Error, CustomStringConvertible { let description: String }

    static func id(_ a: Answer, _ what: String) throws -> String {
        guard (200..<300).contains(a.status), let id = (a.json["id"] ?? a.json["key"])?.stringValue else {
            throw SetupFailed(description: "creating \(what) answered \(a.status): \(a.json)")
        }
        return id
    }

    /// Makes two tenants (each with a pool and a project), runs `cases` as the first tenant's admin,
    /// and returns each answer with how many of each kind of object the tenant has afterwards.
    static func run(_ cases: @Sendable (Made) -> [Case]) async throws -> (made: Made, answers: [(Case, Answer)], countsAfter: [String: Int]) {
        let (_, gateway, _, op) = try TestServer.assemble { $0.verifierEnabled = false }
        let app = QuotaflowApp.buildApplication(gateway: gateway)
        return try await app.test(.router) { client in
            func make(_ name: String) async throws -> (String, String, String, String) {
                let tenant = try id(try await call(client, .post, "/tenants", #"{"name":"\#(name)"}"#, token: op), "a tenant")
                let admin = try await call(client, .post, "/tenants/\(tenant)/admin-keys", #"{"name":"root"}"#, token: op)
                guard let key = admin.json["key"]?.stringValue else { throw SetupFailed(description: "admin key: \(admin.json)") }
                let pool = try id(try await call(client, .post, "/tenants/\(tenant)/pools", #"{"name":"main"}"#, token: key), "a pool")
                let project = try id(
                    try await call(client, .post, "/tenants/\(tenant)/projects", #"{"name":"web","pool_ids":["\#(pool)"]}"#, token: key), "a project")
                return (tenant, key, pool, project)
            }
            let (tenant, key, pool, project) = try await make("acme")
            let (other, _, _, otherProject) = try await make("globex")
            let made = Made(tenant: tenant, adminKey: key, pool: pool, project: project, otherTenant: other, otherProject: otherProject)
            var answers: [(Case, Answer)] = []
            for c in cases(made) { answers.append((c, try await call(client, c.method, c.path, c.body, token: key))) }
            var counts: [String: Int] = [:]
            for kind in ["pools", "resources", "projects", "webhooks"] {
                counts[kind] = try await call(client, .get, "/tenants/\(tenant)/\(kind)", nil, token: key).json["data"]?.arrayValue?.count ?? -1
            }
            return (made, answers, counts)
        }
    }

    static func check(_ answers: [(Case, Answer)], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!answers.isEmpty, sourceLocation: sourceLocation)
        for (c, a) in answers {
            let what = "\(c.method) \(c.path) \(c.body?.prefix(80) ?? "")"
            #expect(a.status == c.status, "\(what) -> \(a.status) \(a.json)", sourceLocation: sourceLocation)
            if a.status >= 400 {
                #expect(a.contentType == "application/problem+json", "\(what)", sourceLocation: sourceLocation)
                #expect(a.json["detail"]?.stringValue?.isEmpty == false, "\(what) has no detail", sourceLocation: sourceLocation)
            }
            if let field = c.field { #expect(a.json["field"]?.stringValue == field, "\(what) -> \(a.json)", sourceLocation: sourceLocation) }
        }
    }

    @Test func projectPolicyIsCheckedFieldByField() async throws {
        let run = try await Self.run { m in
            let path = "/tenants/\(m.tenant)/projects"
            let pools = #""pool_ids":["\#(m.pool)"]"#
            return [
                Case(.post, path, #"{"name":"p1",\#(pools),"budget":{"monthly_cap_micros":"lots"}}"#, 422, field: "budget.monthly_cap_micros"),
                Case(.post, path, #"{"name":"p2",\#(pools),"budget":{"monthly_cap_micros":-1}}"#, 422, field: "budget.monthly_cap_micros"),
                Case(.post, path, #"{"name":"p3",\#(pools),"budget":{"rollover_percent":101}}"#, 422, field: "budget.rollover_percent"),
                Case(.post, path, #"{"name":"p4",\#(pools),"budget":{"overage_policy":"pray"}}"#, 422, field: "budget.overage_policy"),
                Case(.post, path, #"{"name":"p5",\#(pools),"rate_limits":{"rpm":0}}"#, 422, field: "rate_limits.rpm"),
                Case(.post, path, #"{"name":"p6",\#(pools),"rate_limits":{"tpm":1.5}}"#, 422, field: "rate_limits.tpm"),
                Case(
                    .post, path, #"{"name":"p7",\#(pools),"request_limits":{"max_output_tokens":true}}"#, 422,
                    field: "request_limits.max_output_tokens"),
                Case(.post, path, #"{"name":"p8","pool_ids":"main"}"#, 422, field: "pool_ids"),
                Case(.post, path, #"{"name":"p9","pool_ids":["pool_nope"]}"#, 422),
                Case(.post, path, #"{"name":"p10",\#(pools),"parent_id":"\#(m.otherProject)"}"#, 422),
                Case(.post, path, #"{"name":"web",\#(pools)}"#, 409),
                Case(
                    .patch, "\(path)/\(m.project)", #"{"budget":{"monthly_cap_micros":null,"alert_thresholds":"often"}}"#, 422,
                    field: "budget.alert_thresholds"),
                Case(.patch, "\(path)/\(m.otherProject)", #"{"name":"stolen"}"#, 404),
            ]
        }
        Self.check(run.answers)
        #expect(run.countsAfter["projects"] == 1)
    }

    @Test func keysSeatsAndPricingRefuseBadValues() async throws {
        let run = try await Self.run { m in
            let project = "/tenants/\(m.tenant)/projects/\(m.project)"
            return [
                Case(.post, "\(project)/keys", #"{"name":"k","expires_at":"tomorrow"}"#, 422, field: "expires_at"),
                Case(.post, "\(project)/keys", #"{"name":"k","budget_cap_micros":-3}"#, 422, field: "budget_cap_micros"),
                Case(.post, "\(project)/keys", #"{"name":"k","allowed_models":[1,2]}"#, 422),
                Case(.post, "/tenants/\(m.tenant)/projects/\(m.otherProject)/keys", #"{"name":"k"}"#, 404),
                Case(.post, "\(project)/seats", #"{"holder":"Ada","duration_seconds":0}"#, 422, field: "duration_seconds"),
                Case(.post, "\(project)/seats", #"{"duration_seconds":3600}"#, 422, field: "holder"),
                Case(
                    .put, "/tenants/\(m.tenant)/pricing", #"{"entries":[{"model":"m","input_per_mtok_micros":-1,"output_per_mtok_micros":1}]}"#, 422),
                Case(.put, "/tenants/\(m.tenant)/pricing", #"{"entries":"none"}"#, 422, field: "entries"),
                // Another tenant's objects do not exist for this admin.
                Case(.put, "/tenants/\(m.otherTenant)/pricing", #"{"entries":[]}"#, 404),
            ]
        }
        Self.check(run.answers)
    }

    @Test func resourcesAndWebhooksRefuseBadValuesWithoutTouchingTheNetwork() async throws {
        let run = try await Self.run { m in
            let path = "/tenants/\(m.tenant)/resources"
            let attested = #""owner":"it","attestation":{"by":"it@example.com","at":"2026-11-01T00:00:00Z","note":"ok"}"#
            func resource(_ fields: String) -> String {
                #"{"pool_id":"\#(m.pool)","name":"r","kind":"api_key","provider":"openai","credential":"sk-test-credential-123456",\#(attested),\#(fields)}"#
            }
            return [
                Case(.post, path, resource(#""base_url":"ftp://example.com","models":["m"]"#), 422, field: "base_url"),
                Case(.post, path, resource(#""base_url":"https://example.com/v1","models":[]"#), 422, field: "models"),
                Case(.post, path, resource(#""base_url":"https://example.com/v1","models":["m"],"limits":{"rpm":-1}"#), 422, field: "limits.rpm"),
                Case(.post, path, resource(#""base_url":"https://example.com/v1","models":["m"],"kind":"gift_card""#), 422),
                Case(
                    .post, path,
                    #"{"pool_id":"\#(m.pool)","name":"r","kind":"seat","provider":"openai","base_url":"https://example.com/v1","models":["m"]}"#, 422),
                Case(.post, "/tenants/\(m.tenant)/webhooks", #"{"url":"not a url"}"#, 422, field: "url"),
                Case(.post, "/tenants/\(m.tenant)/webhooks", #"{"url":"https://example.com/hook","secret":"mine"}"#, 422, field: "secret"),
                Case(.post, "/tenants/\(m.tenant)/webhooks", #"{"url":"https://example.com/hook","format":"telegram"}"#, 422, field: "format"),
                Case(.get, "/tenants/\(m.tenant)/webhooks/whk_nope", nil, 404),
                Case(.get, "/tenants/\(m.otherTenant)/resources", nil, 404),
            ]
        }
        Self.check(run.answers)
        // Nothing refused was created.
        #expect(run.countsAfter == ["pools": 1, "resources": 0, "projects": 1, "webhooks": 0])
    }
}
