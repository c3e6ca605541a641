import Foundation
import NIOHTTP1
import QuotaflowCore
import Testing

@testable import QuotaflowServer

/// Runs Tests/sdk/sdk_compat.py: the official `openai` and `anthropic` Python packages, unchanged
/// apart from base URL and key, against a running server and a stub upstream.
@Suite(.scoped) struct SDKCompatibilityTests {
    /// Runs Tests/sdk/`name` with `variables` added to the environment and expects it to end with `marker`.
    static func run(
        _ name: String, until marker: String, _ variables: [String: String], sourceLocation: SourceLocation = #_sourceLocation
    )
        async throws
    {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("sdk/\(name)")
            .path
        let env = ProcessInfo.processInfo.environment.merging(variables) { _, new in new }
        let (status, output) = try await ChildProcess.run(["python3", script], environment: env)
        #expect(status == 0, "\(name) failed (pip install -r Tests/requirements.txt):\n\(output)", sourceLocation: sourceLocation)
        #expect(output.contains(marker), "\(output)", sourceLocation: sourceLocation)
    }

    @Test func officialSDKsWorkUnchanged() async throws {
        let server = try await TestServer.start()
        let upstream = try await StubUpstream.simulated()
        let t = try await TenantFixture.make(server)
        try await t.resource(baseURL: upstream.url + "/v1", models: ["gpt-4.1-mini"])
        try await t.resource(provider: "anthropic", baseURL: upstream.url, models: ["claude-haiku-4-5"])
        let p = try await t.project(extra: [("allowed_models", ["gpt-4.1*", "claude-*"])])
        let key = try await t.key(project: p)
        let limited = try await t.key(project: p, extra: [("rpm", 1)])
        let brokeProject = try await t.project(extra: [("allowed_models", ["gpt-4.1*", "claude-*"]), ("budget", ["monthly_cap_micros": 1])])
        let broke = try await t.key(project: brokeProject)
        try await Self.run(
            "sdk_compat.py", until: "ALL SDK CHECKS PASSED",
            ["QF_BASE": server.base, "QF_KEY": key.secret, "QF_LIMITED_KEY": limited.secret, "QF_BROKE_KEY": broke.secret])
        // Every request the SDKs made is in the ledger.
        let rows = try await server.ledger(t.id)
        #expect(rows.filter { $0.status == 200 }.count >= 6)
        #expect(rows.contains { $0.reason == .rateLimited })
    }

    /// Tests/sdk/agent_apis.py: `openai` (Responses, embeddings), `google-genai` and `anthropic`
    /// (token counting, thinking, 1-hour cache usage) against the simulated provider.
    @Test func agentAPIClientsWorkUnchanged() async throws {
        let server = try await TestServer.start()
        let usage = SimulatedUsage(input: 1000, cached: 200, cacheWrite5m: 100, cacheWrite1h: 200, output: 50, reasoning: 20)
        let upstream = try await StubUpstream.simulated(
            models: ["gpt-5.4", "text-embedding-3-small", "claude-sonnet-4-6", "gemini-2.5-pro", "gemini-2.5-flash"], usage: usage)
        let t = try await TenantFixture.make(server)
        try await t.call(
            .PUT, "/pricing",
            [
                "entries": [
                    ["model": "gpt-5.4", "input_per_mtok_micros": 1_250_000, "output_per_mtok_micros": 10_000_000],
                    ["model": "text-embedding-3-small", "input_per_mtok_micros": 20_000, "output_per_mtok_micros": 0],
                    ["model": "claude-sonnet-*", "input_per_mtok_micros": 3_000_000, "output_per_mtok_micros": 15_000_000],
                    ["model": "gemini-2.5-*", "input_per_mtok_micros": 1_250_000, "output_per_mtok_micros": 10_000_000],
                ]
            ])
        try await t.resource(
            baseURL: upstream.url + "/v1", models: ["gpt-5.4", "text-embedding-3-small"], extra: [("families", ["chat", "responses", "embeddings"])])
        try await t.resource(provider: "anthropic", baseURL: upstream.url, models: ["claude-sonnet-4-6"])
        try await t.resource(provider: "gemini", baseURL: upstream.url, models: ["gemini-2.5-pro", "gemini-2.5-flash"])
        let allowed: JSONValue = ["gpt-5.4", "text-embedding-3-small", "claude-*", "gemini-2.5-pro"]
        let key = try await t.key(project: try await t.project(extra: [("allowed_models", allowed)]))
        let broke = try await t.key(project: try await t.project(extra: [("allowed_models", allowed), ("budget", ["monthly_cap_micros": 1])]))
        try await Self.run(
            "agent_apis.py", until: "ALL AGENT API CHECKS PASSED", ["QF_BASE": server.base, "QF_KEY": key.secret, "QF_BROKE_KEY": broke.secret])
        let endpoints = Set(try await server.ledger(t.id).filter { $0.status == 200 }.map(\.endpoint))
        #expect(
            endpoints.isSuperset(of: [
                "responses", "responses.get", "responses.delete", "embeddings", "gemini.generate_content", "gemini.count_tokens", "messages",
                "messages.count_tokens",
            ]), "\(endpoints)")
    }
}
