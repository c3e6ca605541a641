import Hummingbird
import QuotaflowCore
import Synchronization

/// OpenAI's APIs on the simulated provider: Chat Completions, Responses (stored, compact) and
/// embeddings.
extension SimulatedProvider {
    func chat(_ req: Request) async throws -> Response {
        guard authorized(req) else { return unauthorized(.openAI) }
        guard let (body, model, size) = try await read(req, .openAI) else { return badRequest() }
        let cap = body["max_completion_tokens"]?.int64Value ?? body["max_tokens"]?.int64Value ?? 4096
        let words = words(cap: cap)
        let u = tokens(inputBytes: size, outputWords: words.count)
        let usage: JSONValue = [
            "prompt_tokens": .int(u.input + u.cached + u.writes), "completion_tokens": .int(u.output + u.reasoning),
            "total_tokens": .int(u.input + u.cached + u.writes + u.output + u.reasoning),
            "prompt_tokens_details": ["cached_tokens": .int(u.cached)], "completion_tokens_details": ["reasoning_tokens": .int(u.reasoning)],
        ]
        guard body["stream"]?.boolValue ?? false else {
            return json([
                "id": "chatcmpl-sim", "object": "chat.completion", "created": 1_700_000_000, "model": .string(model),
                "choices": [
                    ["index": 0, "message": ["role": "assistant", "content": .string(words.joined(separator: " "))], "finish_reason": "stop"]
                ],
                "usage": usage,
            ])
        }
        func chunk(_ delta: JSONValue, finish: JSONValue = .null) -> String {
            Self.data([
                "id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": .string(model),
                "choices": [["index": 0, "delta": delta, "finish_reason": finish]], "usage": .null,
            ])
        }
        var events = words.enumerated().map { i, w in chunk(["content": .string(i == 0 ? w : " " + w)]) }
        events.append(chunk([:], finish: "stop"))
        if body["stream_options"]?["include_usage"]?.boolValue ?? false {
            events.append(
                Self.data([
                    "id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": .string(model), "choices": [],
                    "usage": usage,
                ]))
        }
        events.append("data: [DONE]\n\n")
        return stream(events)
    }

    func embeddings(_ req: Request) async throws -> Response {
        guard authorized(req) else { return unauthorized(.openAI) }
        guard let (body, model, size) = try await read(req, .openAI) else { return badRequest() }
        let inputs = body["input"]?.arrayValue?.count ?? 1
        let tokens = usage?.input ?? Int64(max(1, size / 4))
        let data: [JSONValue] = (0..<inputs).map { i in
            ["object": "embedding", "index": .int(Int64(i)), "embedding": [.double(0.125), .double(-0.25), .double(0.5)]]
        }
        return json([
            "object": "list", "data": .array(data), "model": .string(model), "usage": ["prompt_tokens": .int(tokens), "total_tokens": .int(tokens)],
        ])
    }

    /// `POST /v1/responses` and `/v1/responses/compact`.
    func responses(_ req: Request, compact: Bool) async throws -> Response {
        guard authorized(req) else { return unauthorized(.openAI) }
        guard let (body, model, size) = try await read(req, .openAI) else { return badRequest() }
        if let previous = body["previous_response_id"]?.stringValue, stored.items.withLock({ $0[previous] }) == nil {
            return json(
                [
                    "error": [
                        "message": .string("Previous response with id '\(previous)' not found."), "type": "invalid_request_error",
                        "param": "previous_response_id",
                    ]
                ],
                status: .badRequest)
        }
        let words = words(cap: body["max_output_tokens"]?.int64Value ?? 4096)
        let u = tokens(inputBytes: size, outputWords: words.count)
        let id = compact ? "cmp_sim" : stored.nextId()
        let usage: JSONValue = [
            "input_tokens": .int(u.input + u.cached + u.writes), "input_tokens_details": ["cached_tokens": .int(u.cached)],
            "output_tokens": .int(u.output + u.reasoning), "output_tokens_details": ["reasoning_tokens": .int(u.reasoning)],
            "total_tokens": .int(u.input + u.cached + u.writes + u.output + u.reasoning),
        ]
        var items: [JSONValue] = []
        if u.reasoning > 0 || body["include"]?.arrayValue?.contains(.string("reasoning.encrypted_content")) == true {
            items.append(["id": "rs_sim", "type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-simulated-encrypted-reasoning"])
        }
        for i in 0..<Int(u.webSearches) {
            items.append(["id": .string("ws_sim\(i)"), "type": "web_search_call", "status": "completed", "action": ["type": "search", "query": "q"]])
        }
        let text = words.joined(separator: " ")
        let message: JSONValue = [
            "id": "msg_sim", "type": "message", "status": "completed", "role": "assistant",
            "content": [["type": "output_text", "text": .string(text), "annotations": []]],
        ]
        if compact {
            return json([
                "id": .string(id), "object": "response.compaction", "created_at": 1_700_000_000,
                "output": [["id": "cmp_item_sim", "type": "compaction", "encrypted_content": "gAAAAB-simulated-compaction"]], "usage": usage,
            ])
        }
        func response(_ status: String, output: [JSONValue], usage: JSONValue) -> JSONValue {
            [
                "id": .string(id), "object": "response", "created_at": 1_700_000_000, "status": .string(status), "model": .string(model),
                "output": .array(output), "usage": usage, "store": body["store"] ?? true, "error": .null, "incomplete_details": .null,
                "previous_response_id": body["previous_response_id"] ?? .null,
            ]
        }
        let final = response("completed", output: items + [message], usage: usage)
        if body["store"]?.boolValue ?? true { stored.items.withLock { $0[id] = (final, body["input"] ?? .null) } }
        guard body["stream"]?.boolValue ?? false else { return json(final) }
        var events: [String] = []
        var sequence: Int64 = 0
        func emit(_ type: String, _ members: [(String, JSONValue)]) {
            events.append(Self.event(type, .object([("type", .string(type)), ("sequence_number", .int(sequence))] + members)))
            sequence += 1
        }
        emit("response.created", [("response", response("in_progress", output: [], usage: .null))])
        emit("response.in_progress", [("response", response("in_progress", output: [], usage: .null))])
        for (index, item) in items.enumerated() {
            emit("response.output_item.added", [("output_index", .int(Int64(index))), ("item", item)])
            emit("response.output_item.done", [("output_index", .int(Int64(index))), ("item", item)])
        }
        let at = JSONValue.int(Int64(items.count))
        emit(
            "response.output_item.added",
            [("output_index", at), ("item", ["id": "msg_sim", "type": "message", "status": "in_progress", "role": "assistant", "content": []])])
        let empty: JSONValue = ["type": "output_text", "text": "", "annotations": []]
        emit("response.content_part.added", [("item_id", "msg_sim"), ("output_index", at), ("content_index", 0), ("part", empty)])
        for (i, w) in words.enumerated() {
            emit(
                "response.output_text.delta",
                [("item_id", "msg_sim"), ("output_index", at), ("content_index", 0), ("delta", .string(i == 0 ? w : " " + w))])
        }
        emit("response.output_text.done", [("item_id", "msg_sim"), ("output_index", at), ("content_index", 0), ("text", .string(text))])
        emit(
            "response.content_part.done",
            [
                ("item_id", "msg_sim"), ("output_index", at), ("content_index", 0),
                ("part", ["type": "output_text", "text": .string(text), "annotations": []]),
            ])
        emit("response.output_item.done", [("output_index", at), ("item", message)])
        emit("response.completed", [("response", final)])
        return stream(events)
    }

    func storedResponse(_ req: Request, _ id: String, delete: Bool) -> Response {
        guard authorized(req) else { return unauthorized(.openAI) }
        let found = stored.items.withLock { items -> JSONValue? in
            guard let item = items[id] else { return nil }
            if delete { items[id] = nil }
            return item.response
        }
        guard let found else {
            return json(
                [
                    "error": [
                        "message": .string("Response with id '\(id)' not found."), "type": "invalid_request_error", "param": .null, "code": .null,
                    ]
                ],
                status: .notFound)
        }
        return json(delete ? ["id": .string(id), "object": "response.deleted", "deleted": true] : found)
    }

    func inputItems(_ req: Request, _ id: String) -> Response {
        guard authorized(req) else { return unauthorized(.openAI) }
        guard let input = stored.items.withLock({ $0[id]?.input }) else {
            return json(["error": ["message": .string("Response with id '\(id)' not found."), "type": "invalid_request_error"]], status: .notFound)
        }
        let items: [JSONValue] =
            input.arrayValue
            ?? [
                [
                    "id": "msg_in", "type": "message", "role": "user",
                    "content": [["type": "input_text", "text": input.stringValue.map(JSONValue.string) ?? ""]],
                ]
            ]
        return json(["object": "list", "data": .array(items), "first_id": "msg_in", "last_id": "msg_in", "has_more": false])
    }
}
