import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import QuotaflowTestSupport
import Synchronization
import Testing

@testable import QuotaflowServer

/// Secrets and isolation found wrong from outside: echoed credentials, refusals of the pooled
/// credential blamed on the client, forged log lines, open metrics, readable files, and tenant URLs
/// that reach the operator's network.
@Suite(.scoped) struct HardeningSecretsTests {
    static let credential = "sk-pooled-SECRETabcdefghijklmnopqrstuvwxyz0123"

    /// An upstream whose models list accepts `credential` (so probes pass) and whose chat answers `chat`.
    func upstream(
        recorder: Recorder = Recorder(), chat: @escaping @Sendable (JSONValue, HTTPFields) async throws -> Response
    ) async throws
        -> StubUpstream
    {
        try await StubUpstream.start { router in
            router.get("v1/models") { req, _ in
                guard req.headers[.authorization] == "Bearer \(Self.credential)" else {
                    return Stub.json(["error": ["message": "Incorrect API key provided", "code": "invalid_api_key"]], status: .unauthorized)
                }
                return Stub.models(["gpt-4.1-mini", "gpt-4.1"])
            }
            router.post("v1/chat/completions") { req, _ in
                let body = try await Stub.record(recorder, req, path: "chat")
                return try await chat(body, req.headers)
            }
        }
    }

    @Test func echoedCredentialsAreRedactedFromErrorsStreamsAndHeaders() async throws {
        let server = try await TestServer.start()
        let half = String(Self.credential.suffix(20))
        let up = try await upstream { body, _ in
            switch body["messages"]?.arrayValue?.first?["content"]?.stringValue {
            case "error":
                return Stub.json(
                    ["error": ["message": .string("Your key \(Self.credential) lacks the scope model.request"), "code": "invalid_request"]],
                    status: .badRequest, headers: [HTTPField.Name("x-request-id")!: "req_\(Self.credential)"])
            case "masked":
                return Stub.json(["error": ["message": .string("key sk-pooled-SECRET…\(half) is not allowed here")]], status: .unprocessableContent)
            default:
                // The credential split across two events and chunks of a successful stream.
                let cut = Self.credential.count / 2
                return Stub.stream([
                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(Self.credential.prefix(cut))",
                    "\(Self.credential.dropFirst(cut))\"}}]}\n\n", "data: [DONE]\n\n",
                ])
            }
        }
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: up.url + "/v1", credential: Self.credential)
        let key = try await t.key(project: try await t.project())
        let error = try await server.chat(key: key.secret, extra: [("messages", [["role": "user", "content": "error"]])])
        // Passed through with its status and wording, minus the credential.
        #expect(error.status == 400 && error.text.contains("lacks the scope model.request"))
        #expect(!error.text.contains(Self.credential) && !error.text.contains("abcdefghijklmnop"))
        #expect(error.header("x-upstream-request-id")?.contains("abcdefghij") == false)
        let masked = try await server.chat(key: key.secret, extra: [("messages", [["role": "user", "content": "masked"]])])
        #expect(masked.status == 422 && !masked.text.contains(half) && masked.text.contains("is not allowed here"))
        let stream = try await server.chat(key: key.secret, extra: [("stream", true), ("messages", [["role": "user", "content": "s"]])])
        #expect(stream.status == 200 && stream.text.hasSuffix("data: [DONE]\n\n"))
        #expect(!stream.text.contains("abcdefghijklmnop") && !stream.text.contains("SECRETabcdef"))
    }

    @Test func aRefusalSpecificToTheRequestReachesTheClientVerbatim() async throws {
        let server = try await TestServer.start()
        let refusal = #"{"error":{"message":"You do not have access to the organization tied to this feature.","code":"feature_forbidden"}}"#
        let up = try await upstream { _, _ in
            Response(status: .forbidden, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: refusal)))
        }
        let t = try await TenantFixture.make(server)
        let r = try await t.resource(baseURL: up.url + "/v1", credential: Self.credential)
        let key = try await t.key(project: try await t.project())
        let answer = try await server.chat(key: key.secret)
        // The re-probe passed: the provider's own words, and the resource stays in service.
        #expect(answer.status == 403 && answer.text == refusal)
        #expect(try await t.get("/resources/\(r)").json["state"] == "active")
        let probes = try await t.get("/resources/\(r)/health").json["probes"]?.arrayValue ?? []
        #expect(probes.contains { $0["trigger"] == "refusal" && $0["ok"] == true })
    }

    @Test func aRefusedPooledCredentialIsReprobedAndRoutedAround() async throws {
        let server = try await TestServer.start()
        let good = try await upstream { _, _ in Stub.openAIAnswer() }
        // A key the provider revokes at its first chat call: from then on every call answers 401, probes included.
        func revocable() async throws -> StubUpstream {
            let revokedNow = Mutex(false)
            return try await StubUpstream.start { router in
                router.get("v1/models") { _, _ in
                    revokedNow.withLock { $0 }
                        ? Stub.json(["error": ["message": "Incorrect API key provided"]], status: .unauthorized)
                        : Stub.models(["gpt-4.1-mini", "gpt-4.1"])
                }
                router.post("v1/chat/completions") { req, _ in
                    // The verifier's empty-body check does not count as the first chat call.
                    if Stub.isProbe(req), !revokedNow.withLock({ $0 }) { return Stub.missingModel }
                    revokedNow.withLock { $0 = true }
                    return Stub.json(["error": ["message": "Incorrect API key provided", "code": "invalid_api_key"]], status: .unauthorized)
                }
            }
        }
        let revoked = try await revocable()
        let t = try await TenantFixture.make(server)
        let bad = try await t.resource(name: "a-revoked", baseURL: revoked.url + "/v1")
        let key = try await t.key(project: try await t.project())
        // Alone, it cannot serve: 502 upstream_error, not the provider's invalid_api_key.
        let alone = try await server.chat(key: key.secret)
        #expect(alone.status == 502 && alone.header("x-quotaflow-reason") == "upstream_error", "\(alone.text)")
        #expect(alone.json["error"]?["code"] == "upstream_error")
        try await t.waitState(bad, "suspended")
        let audit = try await t.call(.GET, "/audit")["data"]?.arrayValue ?? []
        #expect(
            audit.contains { $0["target_id"]?.stringValue == bad && $0["summary"]?["to"] == "suspended" && $0["summary"]?["probe"]?["status"] == 401 }
        )
        // Beside a healthy resource, a freshly revoked one costs no request: each is served by the other.
        let other = try await t.resource(name: "b-good", baseURL: good.url + "/v1", credential: Self.credential)
        let revoked2 = try await revocable()
        let second = try await t.resource(name: "c-revoked", baseURL: revoked2.url + "/v1")
        for _ in 0..<4 { #expect(try await server.chat(key: key.secret).status == 200) }
        let served = try await server.ledger(t.id).filter { $0.status == 200 }
        #expect(served.count == 4 && served.allSatisfy { $0.resourceId == other })
        #expect(served.contains { $0.attempts == 2 })
        try await t.waitState(second, "suspended")
    }

    @Test func textLogLinesEscapeControlCharacters() {
        let handler = LineLogHandler(label: "t", format: .text)
        let event = LogEvent(
            level: .info, message: "request", metadata: ["model": "gpt\n2026-11-30T00:00:00Z ERROR forged\r\nline\u{2028}x"], source: "t", file: "f",
            function: "f", line: 1)
        let line = String(decoding: handler.line(event, time: "T"), as: UTF8.self)
        #expect(line.filter { $0 == "\n" }.count == 1 && line.hasSuffix("\n"))
        #expect(line.contains(#"model=gpt\n2026-11-30T00:00:00Z ERROR forged\r\nline\u2028x"#), "\(line)")
        let json = String(decoding: LineLogHandler(label: "t", format: .json).line(event, time: "T"), as: UTF8.self)
        #expect(json.filter { $0 == "\n" }.count == 1)
    }

    @Test func metricsNeedTheOperatorOrTheMetricsToken() async throws {
        let metricsToken = "qf-metrics-token-for-scrapers"
        let server = try await TestServer.start { $0.metricsTokenDigest = SecretDigest.of(metricsToken) }
        #expect(try await server.request(.GET, "/metrics").status == 401)
        #expect(try await server.request(.GET, "/metrics", token: "qf_pk_guess").status == 401)
        let t = try await TenantFixture.make(server)
        #expect(try await server.request(.GET, "/metrics", token: t.adminKey).status == 401)
        #expect(try await server.request(.GET, "/metrics", token: metricsToken).status == 200)
        let body = try await server.request(.GET, "/metrics", token: server.operatorToken)
        #expect(body.status == 200 && body.text.contains("# TYPE quotaflow_routing_decisions_total counter"))
    }

    @Test func databaseWalAndBackupFilesAreOwnerOnly() async throws {
        let server = try await TestServer.start(engine: .sqlite)
        let t = try await TenantFixture.make(server)
        _ = t
        let path = server.state.config.databasePath
        func mode(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p)[.posixPermissions]) as? NSNumber)?.intValue ?? -1 }
        #expect(mode(path) == 0o600 && mode(path + "-wal") == 0o600 && mode(path + "-shm") == 0o600)
        let backup = server.dir + "/copy.db"
        try DatabaseBackup.run(database: path, to: backup, force: false)
        #expect(mode(backup) == 0o600)
        await server.stop(removeFiles: false)
        // A database an earlier version created 0644 is tightened at the next start.
        chmod(path, 0o644)
        let again = try await TestServer.start(dir: server.dir)
        #expect(mode(path) == 0o600)
        await again.stop()
    }

    @Test func backupRefusesTheLiveDatabaseHoweverSpelledAndReplacesAtomically() async throws {
        let server = try await TestServer.start(engine: .sqlite)
        let t = try await TenantFixture.make(server)
        let path = server.state.config.databasePath
        let dir = server.dir
        symlink(path, dir + "/link.db")
        for target in [
            path, dir + "/./quotaflow.db", dir + "/../" + (dir as NSString).lastPathComponent + "/quotaflow.db", path + "-wal", path + "-shm",
            dir + "/link.db",
        ] {
            #expect(throws: DatabaseBackup.Failure.self) { try DatabaseBackup.run(database: path, to: target, force: true) }
        }
        // The live database is intact and still serving.
        #expect(try await t.get("/pools").status == 200)
        let backup = dir + "/b.db"
        try DatabaseBackup.run(database: path, to: backup, force: false)
        #expect(throws: DatabaseBackup.Failure.self) { try DatabaseBackup.run(database: path, to: backup, force: false) }
        // A failed backup leaves the old one untouched.
        #expect(throws: DatabaseBackup.Failure.self) { try DatabaseBackup.run(database: dir + "/missing.db", to: backup, force: true) }
        let copy = try SQLiteConnection(path: backup, readOnly: true)
        #expect(try copy.queryOne("SELECT count(*) AS n FROM tenants")?.int("n") == 1)
        try DatabaseBackup.run(database: path, to: backup, force: true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".tmp") }.isEmpty)
    }
}
