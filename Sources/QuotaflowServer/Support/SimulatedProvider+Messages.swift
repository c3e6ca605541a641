import Hummingbird
import QuotaflowCore

/// Anthropic Messages and the Gemini API on the simulated provider.
extension SimulatedProvider {
    func anthropicUsage(_ u: SimulatedUsage, output: Int64) -> JSONValue {
        [
            "input_tokens": .int(u.input), "cache_read_input_tokens": .int(u.cached), "cache_creation_input_tokens": .int(u.writes),
            "cache_creation": ["ephemeral_5m_input_tokens": .int(u.cacheWrite5m), "ephemeral_1h_input_tokens": .int(u.cacheWrite1h)],
            "output_tokens": .int(output), "server_tool_use": ["web_search_requests": .int(u.webSearches)],
        ]
    }

    func messages(_ req: Request) async throws -> Response {
        guard authorized(req) else { return unauthorized(.anthropic) }
        guard let (body, model, size) = try await read(req, .anthropic) else { return badRequest(anthropic: true) }
        let words = words(cap: body["max_tokens"]?.int64Value ?? 4096)
        let u = tokens(inputBytes: size, outputWords: words.count)
        let thinking = body["thinking"]?["type"]?.stringValue.map { $0 != "disabled" } ?? false
        let text = words.joined(separator: " ")
        // Thinking is billed as output; Anthropic counts it in `output_tokens`.
        let output = u.output + u.reasoning
        guard body["stream"]?.boolValue ?? false else {
            var content: [JSONValue] = []
            if thinking {
                content.append(["type": "thinking", "thinking": "Considering the request.", "signature": "EqQBCgIYAhIM-simulated-signature"])
            }
            content.append(["type": "text", "text": .string(text)])
            return json([
                "id": "msg_sim", "type": "message", "role": "assistant", "model": .string(model), "content": .array(content),
                "stop_reason": "end_turn", "stop_sequence": .null, "usage": anthropicUsage(u, output: output),
            ])
        }
        var events: [String] = []
        func emit(_ name: String, _ members: [(String, JSONValue)]) {
            events.append(Self.event(name, .object([("type", .string(name))] + members)))
        }
        var start = anthropicUsage(u, output: 1)
        start = .object((start.objectMembers ?? []).filter { $0.0 != "server_tool_use" })
        emit(
            "message_start",
            [
                (
                    "message",
                    [
                        "id": "msg_sim", "type": "message", "role": "assistant", "model": .string(model), "content": [], "stop_reason": .null,
                        "stop_sequence": .null, "usage": start,
                    ]
                )
            ])
        var index: Int64 = 0
        if thinking {
            emit("content_block_start", [("index", .int(index)), ("content_block", ["type": "thinking", "thinking": "", "signature": ""])])
            emit("content_block_delta", [("index", .int(index)), ("delta", ["type": "thinking_delta", "thinking": "Considering the request."])])
            emit(
                "content_block_delta",
                [("index", .int(index)), ("delta", ["type": "signature_delta", "signature": "EqQBCgIYAhIM-simulated-signature"])])
            emit("content_block_stop", [("index", .int(index))])
            index += 1
            emit("content_block_start", [("index", .int(index)), ("content_block", ["type": "redacted_thinking", "data": "EmwKAhgBEgy-redacted"])])
            emit("content_block_stop", [("index", .int(index))])
            index += 1
        }
        emit("content_block_start", [("index", .int(index)), ("content_block", ["type": "text", "text": ""])])
        for (i, w) in words.enumerated() {
            emit("content_block_delta", [("index", .int(index)), ("delta", ["type": "text_delta", "text": .string(i == 0 ? w : " " + w)])])
        }
        emit("content_block_stop", [("index", .int(index))])
        emit(
            "message_delta",
            [("delta", ["stop_reason": "end_turn", "stop_sequence": .null]), ("usage", anthropicUsage(u, output: output))])
        emit("message_stop", [])
        return stream(events)
    }

    func geminiModels(_ req: Request) -> Response {
        guard authorized(req) else { return unauthorized(.google) }
        let list: [JSONValue] = models.map {
            ["name": .string("models/" + $0), "displayName": .string($0), "supportedGenerationMethods": ["generateContent", "countTokens"]]
        }
        return json(["models": .array(list)])
    }

    /// `POST /v1beta/models/{model}:{method}`.
    func gemini(_ req: Request, action: String) async throws -> Response {
        guard authorized(req) else { return unauthorized(.google) }
        let parts = action.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return json(["error": ["code": 404, "message": "not found", "status": "NOT_FOUND"]], status: .notFound) }
        let (model, method) = (parts[0], parts[1])
        let bytes = try await req.body.collect(upTo: 16 << 20)
        guard let body = try? JSONParser.parse(Array(bytes.readableBytesView)), body["contents"] != nil else {
            return json(["error": ["code": 400, "message": "contents is not specified", "status": "INVALID_ARGUMENT"]], status: .badRequest)
        }
        if method == "countTokens" { return json(["totalTokens": .int(Int64(max(1, bytes.readableBytes / 4)))]) }
        let candidates = max(1, body["generationConfig"]?["candidateCount"]?.int64Value ?? 1)
        let words = words(cap: body["generationConfig"]?["maxOutputTokens"]?.int64Value ?? 4096)
        let u = tokens(inputBytes: bytes.readableBytes, outputWords: words.count)
        func metadata(output: Int64) -> JSONValue {
            [
                "promptTokenCount": .int(u.input + u.cached + u.writes), "cachedContentTokenCount": .int(u.cached),
                "candidatesTokenCount": .int(output * candidates), "thoughtsTokenCount": .int(u.reasoning),
                "totalTokenCount": .int(u.input + u.cached + u.writes + output * candidates + u.reasoning),
            ]
        }
        func chunk(_ text: String, finish: Bool, output: Int64) -> JSONValue {
            let list: [JSONValue] = (0..<candidates).map { i in
                .compact([
                    ("content", ["role": "model", "parts": [["text": .string(text)]]]), ("index", .int(i)),
                    ("finishReason", finish ? .string("STOP") : nil),
                ])
            }
            return ["candidates": .array(list), "usageMetadata": metadata(output: output), "modelVersion": .string(model), "responseId": "gem_sim"]
        }
        guard method == "streamGenerateContent" else {
            guard method == "generateContent" else {
                return json(["error": ["code": 404, "message": "method not found", "status": "NOT_FOUND"]], status: .notFound)
            }
            return json(chunk(words.joined(separator: " "), finish: true, output: u.output))
        }
        // Google frames its events with CRLF, and every chunk carries the usage so far.
        let events = words.enumerated().map { i, w in
            "data: "
                + JSONWriter.string(chunk(i == 0 ? w : " " + w, finish: i == words.count - 1, output: i == words.count - 1 ? u.output : Int64(i + 1)))
                + "\r\n\r\n"
        }
        return stream(events)
    }
}
