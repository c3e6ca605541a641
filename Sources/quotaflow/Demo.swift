import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowServer
import QuotaflowStore
import ServiceLifecycle
import UnixSignals

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a throwaway server with a simulated provider, set up a demo tenant, and print how to call it.")

    @Option(help: "Port for Quotaflow (the simulated provider picks a free port).")
    var port: Int = 8080
    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"
    @Option(name: .customLong("log-level"), help: "Log level.")
    var logLevel: String = "warning"

    func run() async throws {
        let logger = LogSetup.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .warning, json: false)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quotaflow-demo-\(Identifier.random(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var config = AppConfig()
        config.host = host
        config.port = port
        config.databasePath = dir.appendingPathComponent("demo.db").path
        config.admissionSpacingMs = 200
        // The simulated provider listens on loopback.
        config.allowPrivateEgress = true
        let operatorToken = SecretKind.operatorToken.generate()
        let state = try QuotaflowApp.bootstrap(
            config: config, clock: SystemClock(), logger: logger, masterKey: nil, masterKeyFile: nil, operatorToken: operatorToken,
            printOperatorToken: { _ in })
        let gateway = try QuotaflowApp.assemble(state: state)
        let providerCredential = "sim-" + Identifier.random(24)
        let provider = SimulatedProvider(
            credential: providerCredential,
            models: ["gpt-4.1-mini", "gpt-4.1", "gpt-5.4", "text-embedding-3-small", "claude-haiku-4-5", "claude-sonnet-4-6", "gemini-2.5-pro"])
        let providerPort = PortBox()
        let quotaflowPort = PortBox()
        let providerApp = Application(
            router: provider.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "simulated-provider"),
            onServerRunning: { providerPort.set($0.localAddress?.port ?? 0) }, logger: logger)
        let app = QuotaflowApp.buildApplication(gateway: gateway) { quotaflowPort.set($0.localAddress?.port ?? 0) }
        let setup = ClosureService {
            let upstream = "http://127.0.0.1:\(await providerPort.wait())"
            let base = "http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(await quotaflowPort.wait())"
            do {
                try await DemoSetup(base: base, operatorToken: operatorToken, upstream: upstream, credential: providerCredential, dir: dir.path).run()
            } catch {
                print("demo setup failed: \(error)")
            }
            try? await gracefulShutdown()
        }
        var groupConfig = ServiceGroupConfiguration(
            services: [providerApp, app, setup], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .seconds(10)
        try await ServiceGroup(configuration: groupConfig).run()
        try? FileManager.default.removeItem(at: dir)
    }
}

/// A value set once by one task and awaited by another.
final class PortBox: Sendable {
    let stream: AsyncStream<Int>
    let continuation: AsyncStream<Int>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: Int.self) }
    func set(_ port: Int) { continuation.yield(port) }
    func wait() async -> Int {
        for await p in stream { return p }
        return 0
    }
}

struct ClosureService: Service {
    let body: @Sendable () async throws -> Void
    init(_ body: @escaping @Sendable () async throws -> Void) { self.body = body }
    func run() async throws { try await body() }
}

/// Creates the demo tenant through the admin API, waits for the verifier, sends one request and prints the tour.
struct DemoSetup {
    let base: String
    let operatorToken: String
    let upstream: String
    let credential: String
    let dir: String

    func call(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil, token: String? = nil) async throws -> JSONValue {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(token ?? operatorToken)")
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(body)))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let value = (try? JSONParser.parse(Array(bytes.readableBytesView))) ?? .null
        guard (200..<300).contains(response.status.code) else {
            throw StartupError("\(method) \(path) answered \(response.status.code): \(JSONWriter.string(value))")
        }
        return value
    }

    func run() async throws {
        let attestation: JSONValue = ["by": "demo", "at": .string(Timestamp.format(SystemClock().nowMs())), "note": "simulated provider"]
        let tenant = try await call(.POST, "/admin/v1/tenants", ["name": "Demo Co"])
        let t = tenant["id"]!.stringValue!
        let pool = try await call(.POST, "/admin/v1/tenants/\(t)/pools", ["name": "engineering", "description": "demo pool"])
        let p = pool["id"]!.stringValue!
        let costBasis: JSONValue = ["type": "flat_monthly", "monthly_fee_micros": 20_000_000]
        let seatLimits: JSONValue = ["max_concurrency": 4, "rpm": 60]
        let seatBody: JSONValue = [
            "pool_id": .string(p), "name": "team-seat", "kind": "seat", "provider": "openai", "base_url": .string(upstream + "/v1"),
            "credential": .string(credential), "models": .strings(["gpt-4.1-mini", "gpt-4.1", "gpt-5.4", "text-embedding-3-small"]),
            "owner": "demo admin",
            "attestation": attestation, "cost_basis": costBasis, "limits": seatLimits,
        ]
        let seat = try await call(.POST, "/admin/v1/tenants/\(t)/resources", seatBody)
        let keyLimits: JSONValue = ["max_concurrency": 8]
        let keyBody: JSONValue = [
            "pool_id": .string(p), "name": "anthropic-key", "kind": "api_key", "provider": "anthropic", "base_url": .string(upstream),
            "credential": .string(credential), "models": .strings(["claude-haiku-4-5", "claude-sonnet-4-6"]), "owner": "demo admin",
            "attestation": attestation, "limits": keyLimits,
        ]
        let key = try await call(.POST, "/admin/v1/tenants/\(t)/resources", keyBody)
        let geminiBody: JSONValue = [
            "pool_id": .string(p), "name": "gemini-key", "kind": "api_key", "provider": "gemini", "base_url": .string(upstream),
            "credential": .string(credential), "models": .strings(["gemini-2.5-pro"]), "owner": "demo admin", "attestation": attestation,
        ]
        let gemini = try await call(.POST, "/admin/v1/tenants/\(t)/resources", geminiBody)
        // The seeded list prices, plus the model the coding agents use.
        var entries = try await call(.GET, "/admin/v1/tenants/\(t)/pricing")["data"]?.arrayValue ?? []
        entries.append(["model": "gpt-5.4", "input_per_mtok_micros": 1_250_000, "output_per_mtok_micros": 10_000_000])
        _ = try await call(.PUT, "/admin/v1/tenants/\(t)/pricing", ["entries": .array(entries)])
        let budget: JSONValue = ["monthly_cap_micros": 50_000_000]
        let attributes: JSONValue = ["cost_center": "ENG-1"]
        let projectBody: JSONValue = ["name": "demo-app", "pool_ids": .strings([p]), "budget": budget, "attributes": attributes]
        let project = try await call(.POST, "/admin/v1/tenants/\(t)/projects", projectBody)
        let projectId = project["id"]!.stringValue!
        let issued = try await call(.POST, "/admin/v1/tenants/\(t)/projects/\(projectId)/keys", ["name": "demo key"])
        let apiKey = issued["key"]!.stringValue!
        // Wait for the verifier to admit both resources.
        for id in [seat["id"]!.stringValue!, key["id"]!.stringValue!, gemini["id"]!.stringValue!] {
            for _ in 0..<100 {
                let r = try await call(.GET, "/admin/v1/tenants/\(t)/resources/\(id)")
                if r["state"]?.stringValue == "active" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        // One routed request, then its ledger row.
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(apiKey)")
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"Hello"}]}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 1 << 20)
        let ledger = try await call(.GET, "/admin/v1/tenants/\(t)/ledger?limit=1")
        let row = ledger["data"]?.arrayValue?.first ?? .null
        Output.line(
            """

            Quotaflow demo is running (a throwaway database in \(dir)).

              Base URL:        \(base)/v1
              Project key:     \(apiKey)
              Operator token:  \(operatorToken)
              Tenant:          \(t)   (pool 'engineering': an OpenAI-format seat, an Anthropic key, a Gemini key)

            A first routed request answered \(response.status.code):
              \(String(buffer: answer).prefix(160))
            and its ledger row:
              resource \(row["resource_id"]?.stringValue ?? "?"), model \(row["model_served"]?.stringValue ?? "?"), \
            \(row["tokens_in"]?.int64Value ?? 0) tokens in, \(row["tokens_out"]?.int64Value ?? 0) out, cost \(row["cost_micros"]?.int64Value ?? 0) micro-USD

            Try it with curl:

              curl \(base)/v1/chat/completions \\
                -H "Authorization: Bearer \(apiKey)" -H "Content-Type: application/json" \\
                -d '{"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Hello"}]}'

            or with the OpenAI Python SDK (pip install openai):

              python3 -c 'from openai import OpenAI; c = OpenAI(base_url="\(base)/v1", api_key="\(apiKey)"); \
            print(c.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hello"}]).choices[0].message.content)'

            or with the Anthropic Python SDK (pip install anthropic):

              python3 -c 'import anthropic; c = anthropic.Anthropic(base_url="\(base)", api_key="\(apiKey)"); \
            print(c.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]).content[0].text)'

            the Responses API (what Codex speaks) and the Gemini API (pip install google-genai):

              python3 -c 'from openai import OpenAI; c = OpenAI(base_url="\(base)/v1", api_key="\(apiKey)"); \
            print(c.responses.create(model="gpt-5.4", input="Hello").output_text)'
              python3 -c 'from google import genai; c = genai.Client(api_key="\(apiKey)", http_options={"base_url": "\(base)"}); \
            print(c.models.generate_content(model="gemini-2.5-pro", contents="Hello").text)'

            or a coding agent:

              Codex:       QUOTAFLOW_KEY=\(apiKey) codex exec --skip-git-repo-check -m gpt-5.4 -c model_provider=quotaflow \
                             -c 'model_providers.quotaflow={name="Quotaflow",base_url="\(base)/v1",env_key="QUOTAFLOW_KEY",wire_api="responses"}' "Hello"
              Claude Code: ANTHROPIC_BASE_URL=\(base) ANTHROPIC_AUTH_TOKEN=\(apiKey) claude -p "Hello" --model claude-sonnet-4-6
              Gemini CLI:  GOOGLE_GEMINI_BASE_URL=\(base) GEMINI_API_KEY=\(apiKey) gemini -m gemini-2.5-pro -p "Hello"

            The ledger:  curl -H "Authorization: Bearer \(operatorToken)" \(base)/admin/v1/tenants/\(t)/ledger

            Press Ctrl-C to stop.
            """)
        // Keep serving until interrupted.
        try? await gracefulShutdown()
    }
}
