import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore
import Synchronization
import Testing

@testable import QuotaflowServer

/// Gemini CLI ships only through npm, so its requests are replayed from fixtures taken from its
/// sources (Tests/fixtures/gemini-cli), with its headers, through Quotaflow to a stub that answers the
/// way Google does (CRLF-framed `data:` events, cumulative usage).
@Suite(.scoped) struct GeminiCLIFixtureTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures/gemini-cli/\(name)")
        return Array(try Data(contentsOf: url)).dropLastNewline()
    }

    /// What Gemini CLI 0.56 (on @google/genai 1.30) sends besides the key.
    static let cliHeaders: [(String, String)] = [
        ("content-type", "application/json"), ("user-agent", "GeminiCLI/0.56.0/gemini-2.5-pro (linux; x64; terminal)"),
        ("x-goog-api-client", "google-genai-sdk/1.30.0 gl-node/v22.17.0"),
        ("x-gemini-api-privileged-user-id", "8f14e45f-ceea-467e-9f0c-2f1b8e1d4a11"),
    ]

    /// Google's stream, byte for byte: three chunks, CRLF framing, usage in each.
    static let googleStream =
        #"data: {"candidates": [{"content": {"parts": [{"text": "Found README.md"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 420,"candidatesTokenCount": 3,"totalTokenCount": 523,"thoughtsTokenCount": 100},"modelVersion": "gemini-2.5-pro","responseId": "IZI2acSK"}"#
        + "\r\n\r\n"
        + #"data: {"candidates": [{"content": {"parts": [{"text": " and ARCHITECTURE.md."}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 420,"cachedContentTokenCount": 400,"candidatesTokenCount": 9,"totalTokenCount": 529,"thoughtsTokenCount": 100},"modelVersion": "gemini-2.5-pro","responseId": "IZI2acSK"}"#
        + "\r\n\r\n"

    func stub(_ recorder: Recorder, raw: RawBodies) async throws -> StubUpstream {
        try await StubUpstream.start { router in
            router.get("v1beta/models") { _, _ in Stub.json(["models": [["name": "models/gemini-2.5-pro"]]]) }
            router.post("v1beta/models/{action}") { req, context in
                let bytes = Array(try await req.body.collect(upTo: 1 << 20).readableBytesView)
                let action = try context.parameters.require("action")
                if !Stub.isProbe(req) {
                    raw.append(bytes)
                    recorder.record(Received(path: action, headers: req.headers, body: (try? JSONParser.parse(bytes)) ?? .null))
                }
                if action.hasSuffix(":countTokens") { return Stub.json(["totalTokens": 265]) }
                if action.hasSuffix(":streamGenerateContent") { return Stub.stream([Self.googleStream]) }
                return Stub.json([
                    "candidates": [
                        [
                            "content": ["role": "model", "parts": [["text": #"{"reasoning":"simple","model_choice":"flash"}"#]]],
                            "finishReason": "STOP",
                        ]
                    ],
                    "usageMetadata": ["promptTokenCount": 30, "candidatesTokenCount": 12, "thoughtsTokenCount": 40], "modelVersion": "gemini-2.5-pro",
                ])
            }
        }
    }

    @Test func gatewayModeRequestsRoundTripWithSignaturesAndGoogleFraming() async throws {
        let server = try await TestServer.start()
        let recorder = Recorder()
        let raw = RawBodies()
        let up = try await stub(recorder, raw: raw)
        let t = try await TenantFixture.make(server)
        try await t.resource(provider: "gemini", baseURL: up.url, models: ["gemini-2.5-pro"])
        let key = try await t.key(project: try await t.project())
        let turn = try Self.fixture("stream-turn.json")
        let streamed = try await server.request(
            .POST, "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", raw: turn,
            headers: Self.cliHeaders + [("x-goog-api-key", key.secret)])
        // The client gets Google's bytes as they were: no comments, no event names, CRLF framing kept.
        #expect(streamed.status == 200 && streamed.text == Self.googleStream)
        #expect(streamed.header("content-type") == "text/event-stream")
        let sent = try #require(recorder.all.last)
        let original = try JSONParser.parse(turn)
        // Everything but the output cap goes as sent, thought signatures included.
        #expect(sent.body["contents"] == original["contents"] && sent.body["tools"] == original["tools"])
        #expect(sent.body["systemInstruction"] == original["systemInstruction"])
        #expect(sent.body["generationConfig"]?["thinkingConfig"] == original["generationConfig"]?["thinkingConfig"])
        // The cap written leaves room for the 8,192 thinking tokens the CLI allows.
        #expect(sent.body["generationConfig"]?["maxOutputTokens"] == .int(RequestPlan.assumedOutputWithoutCap + 8192))
        #expect(sent.headers[HTTPField.Name("x-goog-api-key")!] == "sk-upstream-test-credential")
        // A request that already caps output goes byte for byte.
        let helper = try Self.fixture("json-helper.json")
        let json = try await server.request(
            .POST, "/v1beta/models/gemini-2.5-pro:generateContent", raw: helper, headers: Self.cliHeaders + [("x-goog-api-key", key.secret)])
        #expect(json.status == 200 && raw.last == helper)
        // Gateway mode with the key in a custom Authorization header and an empty x-goog-api-key.
        let counted = try await server.request(
            .POST, "/v1beta/models/gemini-2.5-pro:countTokens", raw: try Self.fixture("count-tokens.json"),
            headers: Self.cliHeaders + [("x-goog-api-key", ""), ("authorization", "Bearer \(key.secret)")])
        #expect(counted.status == 200 && counted.json["totalTokens"] == 265)
        let rows = try await server.ledger(t.id)
        #expect(rows.map(\.endpoint) == ["gemini.generate_content", "gemini.generate_content", "gemini.count_tokens"])
        // The last snapshot: 420 prompt (400 cached), 9 candidates + 100 thoughts.
        #expect(rows[0].usage == TokenUsage(input: 420, output: 109, cachedInput: 400, reasoning: 100))
        #expect(rows[1].usage == TokenUsage(input: 30, output: 52, reasoning: 40))
        #expect(rows.allSatisfy { $0.status == 200 } && rows[2].costMicros == 0)
    }
}

extension Array where Element == UInt8 {
    /// Without the file's trailing newline.
    func dropLastNewline() -> [UInt8] { last == 0x0A ? Array(dropLast()) : self }
}
