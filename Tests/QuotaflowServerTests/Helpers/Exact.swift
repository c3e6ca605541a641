import NIOHTTP1
import QuotaflowCore
import Testing

/// Models the exact stub answers and prices.
let exactModels = ["exact-model", "fallback-model", "gpt-4.1-mini"]

/// 1 micro-USD per output token, inputs free.
let exactPricing: JSONValue = [
    "entries": [
        ["model": "exact-model", "input_per_mtok_micros": 0, "output_per_mtok_micros": 1_000_000],
        ["model": "fallback-model", "input_per_mtok_micros": 0, "output_per_mtok_micros": 100_000],
        ["model": "gpt-4.1-mini", "input_per_mtok_micros": 400_000, "output_per_mtok_micros": 1_600_000],
    ]
]

/// Upstream whose usage equals the worst case: it produces exactly `max_tokens` output tokens for
/// each of the `n` choices, and the test model's input price is 0, so every admitted request costs
/// exactly what it reserved. With a `gate`, each answer waits until the gate opens.
func exactUpstream(gate: AsyncGate? = nil, recorder: Recorder = Recorder()) async throws -> StubUpstream {
    try await Stub.upstream(models: exactModels, recorder: recorder) { body, _ in
        if let gate { await gate.wait() }
        let n = body["n"]?.int64Value ?? 1
        let out = (body["max_tokens"]?.int64Value ?? body["max_completion_tokens"]?.int64Value ?? 1) * n
        return Stub.openAIAnswer(model: body["model"]?.stringValue ?? "exact-model", input: 7, output: out)
    }
}

extension TenantFixture {
    /// A tenant with exact pricing and one active resource on `upstream`.
    static func exact(
        _ server: TestServer, upstream: StubUpstream, settings: JSONValue? = nil, limits: JSONValue? = nil, models: [String] = exactModels,
        provider: String = "openai"
    ) async throws -> TenantFixture {
        let t = try await TenantFixture.make(server, settings: settings)
        try await t.call(.PUT, "/pricing", exactPricing)
        var extra: [(String, JSONValue)] = []
        if let limits { extra.append(("limits", limits)) }
        try await t.resource(provider: provider, baseURL: upstream.url + (provider == "openai" ? "/v1" : ""), models: models, extra: extra)
        return t
    }
}

extension TestServer {
    /// A chat request for `tokens` output tokens.
    func ask(_ key: String, tokens: Int64 = 100, model: String = "exact-model", user: String? = nil) async throws -> TestResponse {
        var extra: [(String, JSONValue)] = [("max_tokens", .int(tokens))]
        if let user { extra.append(("user", .string(user))) }
        return try await chat(key: key, model: model, extra: extra)
    }
}
