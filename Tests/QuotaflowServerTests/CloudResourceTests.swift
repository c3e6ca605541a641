import Foundation
import NIOHTTP1
import QuotaflowCore
import Testing

@testable import QuotaflowServer

/// Admin validation of cloud resources (the wire behaviour is driven end to end by
/// Tests/faults/test_cloud_bedrock.py, whose stub checks signatures with botocore).
@Suite(.scoped) struct CloudResourceTests {
    @Test func cloudResourcesNeedTheirSettingsAndWellFormedCredentials() async throws {
        let server = try await TestServer.start()
        let t = try await TenantFixture.make(server)
        func create(_ fields: [(String, JSONValue)]) async throws -> TestResponse {
            try await server.request(
                .POST, "/admin/v1/tenants/\(t.id)/resources",
                body: .object(
                    [
                        ("pool_id", .string(t.poolId)), ("name", .string("c-\(Identifier.random(5))")), ("kind", "api_key"),
                        ("models", ["claude-sonnet-4-6"]), ("attestation", TenantFixture.attestation),
                    ] + fields), token: server.operatorToken)
        }
        let noRegion = try await create([("provider", "bedrock"), ("credential", "AKID:secret")])
        #expect(noRegion.status == 422 && noRegion.json["field"] == "cloud.region")
        let badKey = try await create([("provider", "bedrock"), ("credential", "just-a-key"), ("cloud", ["region": "us-east-1"])])
        #expect(badKey.status == 422 && badKey.json["field"] == "credential" && !badKey.text.contains("just-a-key"))
        let badRegion = try await create([("provider", "bedrock"), ("credential", "AKID:secret"), ("cloud", ["region": "us-east-1/../x"])])
        #expect(badRegion.status == 422 && badRegion.json["field"] == "cloud.region")
        let badMap = try await create(
            [("provider", "bedrock"), ("credential", "AKID:secret"), ("cloud", ["region": "us-east-1", "model_map": ["claude-sonnet-4-6": "a b"]])])
        #expect(badMap.status == 422)
        let notCloud = try await create([("provider", "anthropic"), ("credential", "sk-x"), ("cloud", ["region": "us-east-1"])])
        #expect(notCloud.status == 422 && notCloud.json["field"] == "cloud")
        let ok = try await create(
            [
                ("provider", "bedrock"), ("credential", "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY:session-token"),
                ("cloud", ["region": "eu-central-1", "model_map": ["claude-sonnet-4-6": "eu.anthropic.claude-sonnet-4-6-v1:0"]]),
            ])
        #expect(ok.status == 201)
        #expect(ok.json["base_url"] == "https://bedrock-runtime.eu-central-1.amazonaws.com" && ok.json["families"] == ["messages"])
        #expect(ok.json["cloud"]?["model_map"]?["claude-sonnet-4-6"] == "eu.anthropic.claude-sonnet-4-6-v1:0")
        #expect(!ok.text.contains("wJalrXUtnFEMI") && !ok.text.contains("session-token"))
        // The mapping is editable.
        let id = try #require(ok.json["id"]?.stringValue)
        let patched = try await server.request(
            .PATCH, "/admin/v1/tenants/\(t.id)/resources/\(id)",
            body: ["cloud": ["model_map": ["claude-sonnet-4-6": "global.anthropic.claude-sonnet-4-6-v1:0"]]], token: server.operatorToken)
        #expect(patched.status == 200 && patched.json["cloud"]?["model_map"]?["claude-sonnet-4-6"] == "global.anthropic.claude-sonnet-4-6-v1:0")
        #expect(patched.json["cloud"]?["region"] == "eu-central-1")
        // Vertex AI: a project and region, and a service account key that parses.
        let noProject = try await create([("provider", "vertex"), ("credential", "{}"), ("cloud", ["region": "us-east5"])])
        #expect(noProject.status == 422 && noProject.json["field"] == "cloud.project")
        let notAKey = try await create(
            [
                ("provider", "vertex"),
                ("credential", #"{"client_email":"x@y","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}"#),
                ("cloud", ["region": "us-east5", "project": "p-1"]),
            ])
        #expect(notAKey.status == 422 && notAKey.json["field"] == "credential" && !notAKey.text.contains("BEGIN"))
        let vertex = try await create([("provider", "vertex"), ("credential", "not json"), ("cloud", ["region": "global", "project": "p-1"])])
        #expect(vertex.status == 422 && vertex.json["field"] == "credential")
        let rotated = try await server.request(
            .POST, "/admin/v1/tenants/\(t.id)/resources/\(id)/rotate-credential", body: ["credential": "nope"], token: server.operatorToken)
        #expect(rotated.status == 422 && rotated.json["field"] == "credential")
    }
}
