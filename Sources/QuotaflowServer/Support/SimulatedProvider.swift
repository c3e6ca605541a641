import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore

/// A small stand-in for OpenAI and Anthropic: models list, chat completions and messages, with and
/// without streaming, reporting usage. `quotaflow demo` routes to it; tests can start it on port 0.
public struct SimulatedProvider: Sendable {
    public let credential: String
    public let models: [String]
    public let reply: String

    public init(credential: String, models: [String], reply: String = "Hello from the simulated provider, routed by Quotaflow.") {
        self.credential = credential
        self.models = models
        self.reply = reply
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        let provider = self
        router.get("v1/models") { req, _ in
            guard provider.authorized(req) else { return provider.unauthorized(anthropic: req.headers[HTTPField.Name("x-api-key")!] != nil) }
            let data: [JSONValue] = provider.models.map { ["id": .string($0), "object": "model", "type": "model", "display_name": .string($0)] }
            return provider.json(["object": "list", "data": .array(data), "has_more": false])
        }
        router.post("v1/chat/completions") { req, _ in try await provider.chat(req, anthropic: false) }
        router.post("v1/messages") { req, _ in try await provider.chat(req, anthropic: true) }
        router.post("v1/messages/count_tokens") { req, _ in
            guard provider.authorized(req) else { return provider.unauthorized(anthropic: true) }
            let body = try await req.body.collect(upTo: 16 << 20)
            return provider.json(["input_tokens": .int(Int64(max(1, body.readableBytes / 4)))])
        }
        return router
    }

    func authorized(_ req: Request) -> Bool {
        let given = req.headers[HTTPField.Name("x-api-key")!] ?? req.headers[.authorization].map { String($0.dropFirst("Bearer ".count)) }
        return given == credential
    }

    func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(value))))
    }

    func unauthorized(anthropic: Bool) -> Response {
        anthropic
            ? json(["type": "error", "error": ["type": "authentication_error", "message": "invalid x-api-key"]], status: .unauthorized)
            : json(
                ["error": ["message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"]],
                status: .unauthorized)
    }

    func chat(_ req: Request, anthropic: Bool) async throws -> Response {
        guard authorized(req) else { return unauthorized(anthropic: anthropic) }
        let bytes = try await req.body.collect(upTo: 16 << 20)
        guard let body = try? JSONParser.parse(Array(bytes.readableBytesView)), let model = body["model"]?.stringValue else {
            return json(["error": ["message": "invalid JSON body", "type": "invalid_request_error"]], status: .badRequest)
        }
        let stream = body["stream"]?.boolValue ?? false
        let maxTokens = body["max_tokens"]?.int64Value ?? body["max_completion_tokens"]?.int64Value ?? 4096
        let words = reply.split(separator: " ").prefix(Int(max(1, maxTokens))).map(String.init)
        let input = Int64(max(1, bytes.readableBytes / 4))
        let output = Int64(words.count)
        if !stream {
            let text = words.joined(separator: " ")
            if anthropic {
                return json([
                    "id": "msg_sim", "type": "message", "role": "assistant", "model": .string(model),
                    "content": [["type": "text", "text": .string(text)]], "stop_reason": "end_turn", "stop_sequence": .null,
                    "usage": ["input_tokens": .int(input), "output_tokens": .int(output)],
                ])
            }
            return json([
                "id": "chatcmpl-sim", "object": "chat.completion", "created": 1_700_000_000, "model": .string(model),
                "choices": [["index": 0, "message": ["role": "assistant", "content": .string(text)], "finish_reason": "stop"]],
                "usage": ["prompt_tokens": .int(input), "completion_tokens": .int(output), "total_tokens": .int(input + output)],
            ])
        }
        var events: [String] = []
        func data(_ v: JSONValue) -> String { "data: \(JSONWriter.string(v))\n\n" }
        if anthropic {
            func event(_ name: String, _ v: JSONValue) -> String { "event: \(name)\ndata: \(JSONWriter.string(v))\n\n" }
            events.append(
                event(
                    "message_start",
                    [
                        "type": "message_start",
                        "message": [
                            "id": "msg_sim", "type": "message", "role": "assistant", "model": .string(model), "content": [], "stop_reason": .null,
                            "usage": ["input_tokens": .int(input), "output_tokens": 1],
                        ],
                    ]))
            events.append(event("content_block_start", ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]))
            for (i, w) in words.enumerated() {
                events.append(
                    event(
                        "content_block_delta",
                        ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": .string(i == 0 ? w : " " + w)]]))
            }
            events.append(event("content_block_stop", ["type": "content_block_stop", "index": 0]))
            events.append(
                event(
                    "message_delta",
                    [
                        "type": "message_delta", "delta": ["stop_reason": "end_turn", "stop_sequence": .null],
                        "usage": ["output_tokens": .int(output)],
                    ]))
            events.append(event("message_stop", ["type": "message_stop"]))
        } else {
            let includeUsage = body["stream_options"]?["include_usage"]?.boolValue ?? false
            for (i, w) in words.enumerated() {
                events.append(
                    data([
                        "id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": .string(model),
                        "choices": [["index": 0, "delta": ["content": .string(i == 0 ? w : " " + w)], "finish_reason": .null]],
                        "usage": .null,
                    ]))
            }
            events.append(
                data([
                    "id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": .string(model),
                    "choices": [["index": 0, "delta": [:], "finish_reason": "stop"]], "usage": .null,
                ]))
            if includeUsage {
                events.append(
                    data([
                        "id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": .string(model), "choices": [],
                        "usage": ["prompt_tokens": .int(input), "completion_tokens": .int(output), "total_tokens": .int(input + output)],
                    ]))
            }
            events.append("data: [DONE]\n\n")
        }
        let chunks = events
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream"],
            body: ResponseBody { writer in
                for e in chunks { try await writer.write(ByteBuffer(string: e)) }
                try await writer.finish(nil)
            })
    }
}
