import Foundation
import NIOHTTP1
import QuotaflowCore
import Testing

@testable import QuotaflowServer

/// One real turn of the real agent CLIs through Quotaflow to the simulated provider: Claude Code
/// (bundled in `claude-agent-sdk`) and Codex (`openai-codex-cli-bin`), both from PyPI (see
/// Tests/requirements.txt). Each runs with a throwaway home, no other network, and only the base
/// URL and key changed; the ledger must agree with what the agent itself reports.
@Suite(.scoped) struct RealAgentTests {
    /// The path of an agent's bundled binary, from its Python package.
    static func binary(_ lookup: String) async throws -> String {
        let (status, output) = try await ChildProcess.run(["python3", "-c", lookup], environment: ProcessInfo.processInfo.environment)
        let path = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0, FileManager.default.isExecutableFile(atPath: path) else {
            throw ChildProcess.Failure(description: "agent CLI not installed (pip install -r Tests/requirements.txt): \(output)")
        }
        return path
    }

    /// A fresh home directory, and the environment an agent runs with: nothing of ours leaks in, and
    /// any connection beyond loopback goes to a closed port.
    static func sandbox(_ extra: [String: String]) throws -> (home: String, env: [String: String]) {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("qf-agent-\(Identifier.random(8))").path
        try FileManager.default.createDirectory(atPath: home + "/work", withIntermediateDirectories: true)
        var env = [
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        ]
        env.merge(extra) { _, new in new }
        return (home, env)
    }

    /// One `claude -p "Say hello"` turn in a sandbox with `extra` environment; its exit status, output
    /// and the JSON result line.
    static func claudeTurn(_ extra: [String: String]) async throws -> (status: Int32, output: String, result: JSONValue) {
        let claude = try await binary(
            "import claude_agent_sdk, pathlib; print(pathlib.Path(claude_agent_sdk.__file__).parent / '_bundled' / 'claude')")
        let (home, env) = try sandbox(
            ["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"]
                .merging(extra) { _, new in new })
        var environment = env
        environment["CLAUDE_CONFIG_DIR"] = home + "/.claude"
        let (status, output) = try await ChildProcess.run(
            [
                claude, "-p", "Say hello", "--model", "claude-sonnet-4-6", "--output-format", "json", "--bare", "--no-session-persistence",
            ], environment: environment, directory: home + "/work")
        let line = output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
        return (status, output, (try? JSONParser.parse(Array(line.utf8))) ?? .null)
    }

    /// One `codex exec "Say hello"` turn against a `quotaflow` model provider whose settings are
    /// `provider` (TOML inline-table members), in a sandbox with `environment`.
    static func codexTurn(provider: String, environment extra: [String: String]) async throws -> (status: Int32, output: String) {
        let codex = try await binary("import codex_cli_bin; print(codex_cli_bin.bundled_codex_path())")
        let (home, env) = try sandbox(extra)
        var environment = env
        environment["CODEX_HOME"] = home + "/.codex"
        try FileManager.default.createDirectory(atPath: home + "/.codex", withIntermediateDirectories: true)
        let table =
            #"model_providers.quotaflow={name="Quotaflow",wire_api="responses",request_max_retries=0,stream_max_retries=0,"# + provider + "}"
        return try await ChildProcess.run(
            [
                codex, "exec", "--skip-git-repo-check", "--sandbox", "read-only", "--json", "-m", "gpt-5.4", "-c", "model_provider=quotaflow", "-c",
                table, "-c", "analytics.enabled=false", "-c", "check_for_update_on_startup=false", "--disable", "plugins", "Say hello",
            ], environment: environment, directory: home + "/work")
    }

    @Test func claudeCodeRunsATurnAndTheLedgerCostsWhatItReports() async throws {
        let server = try await TestServer.start()
        // Claude Code's own figures for this usage at Sonnet's list prices: $0.00678.
        let usage = SimulatedUsage(input: 1200, cached: 5000, cacheWrite5m: 100, cacheWrite1h: 200, output: 7)
        let up = try await StubUpstream.simulated(models: ["claude-sonnet-4-6"], usage: usage)
        let t = try await TenantFixture.make(server)
        try await t.call(
            .PUT, "/pricing", ["entries": [["model": "claude-sonnet-*", "input_per_mtok_micros": 3_000_000, "output_per_mtok_micros": 15_000_000]]])
        try await t.resource(provider: "anthropic", baseURL: up.url, models: ["claude-sonnet-4-6"])
        let key = try await t.key(project: try await t.project())
        let (status, output, result) = try await Self.claudeTurn([
            "ANTHROPIC_BASE_URL": server.base, "ANTHROPIC_AUTH_TOKEN": key.secret, "ENABLE_PROMPT_CACHING_1H": "1",
        ])
        #expect(status == 0, "claude exited \(status): \(output.suffix(2000))")
        #expect(
            result["is_error"] == false && result["result"]?.stringValue?.hasPrefix("Hello from the simulated provider") == true,
            "\(output.suffix(2000))")
        let reported: Double
        switch result["total_cost_usd"] {
        case .double(let d): reported = d
        case .int(let i): reported = Double(i)
        default: reported = -1
        }
        let rows = try await server.ledger(t.id).filter { $0.endpoint == "messages" && $0.status == 200 }
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row.usage == TokenUsage(input: 6500, output: 7, cachedInput: 5000, cacheWrite: 300, cacheWrite1h: 200))
        #expect(row.costMicros == 6780)
        #expect(Int64((reported * 1_000_000).rounded()) == row.costMicros, "Claude Code reported $\(reported)")
    }

    @Test func claudeCodePassesItsHoldersOwnSubscriptionThroughWithOneExtraHeader() async throws {
        let server = try await TestServer.start()
        // The provider accepts only the holder's own subscription token; Quotaflow stores none.
        let ownToken = "sk-ant-oat01-the-holders-own-subscription-token"
        let up = try await StubUpstream.simulated(credential: ownToken, models: ["claude-sonnet-4-6"])
        let t = try await TenantFixture.make(server)
        try await t.call(
            .PUT, "/pricing", ["entries": [["model": "claude-sonnet-*", "input_per_mtok_micros": 3_000_000, "output_per_mtok_micros": 15_000_000]]])
        let seat = try await t.resource(
            kind: "seat", provider: "anthropic", baseURL: up.url, credential: "", models: ["claude-sonnet-4-6"],
            extra: [("plan", ["kind": "personal", "name": "Claude Max 5x"]), ("credential", .null)])
        let key = try await t.key(project: try await t.project())
        let (status, output, result) = try await Self.claudeTurn([
            "ANTHROPIC_BASE_URL": server.base, "ANTHROPIC_AUTH_TOKEN": ownToken, "ANTHROPIC_CUSTOM_HEADERS": "x-quotaflow-key: \(key.secret)",
        ])
        #expect(status == 0, "claude exited \(status): \(output.suffix(2000))")
        #expect(!output.contains(key.secret))
        #expect(
            result["is_error"] == false && result["result"]?.stringValue?.hasPrefix("Hello from the simulated provider") == true,
            "\(output.suffix(2000))")
        let rows = try await server.ledger(t.id).filter { $0.endpoint == "messages" && $0.status == 200 }
        #expect(!rows.isEmpty && rows.allSatisfy { $0.resourceId == seat && $0.keyId == key.id })
        #expect(rows.first?.routeReason == .passthrough)
    }

    @Test func codexRunsATurnOverTheResponsesAPIAndTheLedgerMatchesItsUsage() async throws {
        let server = try await TestServer.start()
        let usage = SimulatedUsage(input: 600, cached: 400, output: 5, reasoning: 2)
        let up = try await StubUpstream.simulated(models: ["gpt-5.4"], usage: usage)
        let t = try await TenantFixture.make(server)
        try await t.call(
            .PUT, "/pricing",
            [
                "entries": [
                    [
                        "model": "gpt-5.4", "input_per_mtok_micros": 1_250_000, "output_per_mtok_micros": 10_000_000,
                        "cached_input_per_mtok_micros": 125_000,
                    ]
                ]
            ])
        try await t.resource(baseURL: up.url + "/v1", models: ["gpt-5.4"], extra: [("families", ["responses"])])
        let key = try await t.key(project: try await t.project())
        let (status, output) = try await Self.codexTurn(
            provider: #"base_url="\#(server.base)/v1",env_key="QF_KEY""#, environment: ["QF_KEY": key.secret])
        #expect(status == 0, "codex exited \(status): \(output.suffix(2000))")
        let events = output.split(separator: "\n").compactMap { try? JSONParser.parse(Array($0.utf8)) }
        let message = events.first { $0["item"]?["type"] == "agent_message" }?["item"]?["text"]?.stringValue
        #expect(message?.hasPrefix("Hello from the simulated provider") == true, "\(output.suffix(2000))")
        let reported = try #require(events.last { $0["type"] == "turn.completed" }?["usage"])
        let rows = try await server.ledger(t.id).filter { $0.endpoint == "responses" && $0.status == 200 }
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        // Codex's usage counts cached input inside input_tokens, as the ledger does.
        #expect(reported["input_tokens"]?.int64Value == row.usage.input && reported["cached_input_tokens"]?.int64Value == row.usage.cachedInput)
        #expect(reported["output_tokens"]?.int64Value == row.usage.output && reported["reasoning_output_tokens"]?.int64Value == row.usage.reasoning)
        // 600 fresh × 1.25 + 400 cached × 0.125 + 7 output × 10 (Codex adds a hosted web search it did not use).
        #expect(row.usage == TokenUsage(input: 1000, output: 7, cachedInput: 400, reasoning: 2))
        #expect(row.costMicros == 750 + 50 + 70)
    }
}

extension RealAgentTests {
    @Test func codexPassesItsHoldersOwnTokenThroughWithEnvHTTPHeaders() async throws {
        let server = try await TestServer.start()
        let ownToken = "holders-own-chatgpt-access-token"
        let up = try await StubUpstream.simulated(credential: ownToken, models: ["gpt-5.4"])
        let t = try await TenantFixture.make(server)
        try await t.call(
            .PUT, "/pricing", ["entries": [["model": "gpt-5.4", "input_per_mtok_micros": 1_250_000, "output_per_mtok_micros": 10_000_000]]])
        let seat = try await t.resource(
            kind: "seat", baseURL: up.url + "/v1", credential: "", models: ["gpt-5.4"],
            extra: [("families", ["responses"]), ("plan", ["kind": "personal", "name": "ChatGPT Plus"]), ("credential", .null)])
        let key = try await t.key(project: try await t.project())
        let (status, output) = try await Self.codexTurn(
            provider: #"base_url="\#(server.base)/v1",env_key="OWN_TOKEN",env_http_headers={"x-quotaflow-key"="QUOTAFLOW_KEY"}"#,
            environment: ["OWN_TOKEN": ownToken, "QUOTAFLOW_KEY": key.secret])
        #expect(status == 0, "codex exited \(status): \(output.suffix(2000))")
        let events = output.split(separator: "\n").compactMap { try? JSONParser.parse(Array($0.utf8)) }
        #expect(events.contains { $0["item"]?["type"] == "agent_message" }, "\(output.suffix(2000))")
        let rows = try await server.ledger(t.id).filter { $0.endpoint == "responses" && $0.status == 200 }
        #expect(rows.count == 1 && rows.first?.resourceId == seat && rows.first?.routeReason == .passthrough)
        // Metered and governed as the holder's own key.
        #expect(rows.first?.keyId == key.id)
    }
}
