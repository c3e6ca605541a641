import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore
import Synchronization

/// What a stub upstream received.
struct Received: Sendable {
    let path: String
    let headers: HTTPFields
    let body: JSONValue
}

/// Request bodies exactly as they arrived.
final class RawBodies: Sendable {
    let items = Mutex<[[UInt8]]>([])
    func append(_ bytes: [UInt8]) { items.withLock { $0.append(bytes) } }
    var last: [UInt8]? { items.withLock { $0.last } }
}

final class Recorder: Sendable {
    let items = Mutex<[Received]>([])

    func record(_ r: Received) { items.withLock { $0.append(r) } }
    var all: [Received] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }
    func count(path: String) -> Int { items.withLock { $0.filter { $0.path == path }.count } }
}

enum Stub {
    static func json(_ v: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(v))))
    }

    static func openAIAnswer(model: String = "gpt-4.1-mini", input: Int64 = 10, output: Int64 = 5, cached: Int64 = 0) -> Response {
        json([
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": .string(model),
            "choices": [["index": 0, "message": ["role": "assistant", "content": "ok"], "finish_reason": "stop"]],
            "usage": [
                "prompt_tokens": .int(input), "completion_tokens": .int(output), "total_tokens": .int(input + output),
                "prompt_tokens_details": ["cached_tokens": .int(cached)],
            ],
        ])
    }

    static func anthropicAnswer(model: String = "claude-haiku-4-5", input: Int64 = 10, output: Int64 = 5) -> Response {
        json([
            "id": "msg_1", "type": "message", "role": "assistant", "model": .string(model), "content": [["type": "text", "text": "ok"]],
            "stop_reason": "end_turn", "usage": ["input_tokens": .int(input), "output_tokens": .int(output)],
        ])
    }

    static func models(_ ids: [String]) -> Response {
        json(["object": "list", "data": .array(ids.map { ["id": .string($0), "object": "model"] })])
    }

    /// Records the request (the verifier's probes are not recorded: tests count the requests
    /// clients sent), then answers with `answer`.
    static func record(_ recorder: Recorder, _ req: Request, path: String) async throws -> JSONValue {
        let bytes = try await req.body.collect(upTo: 16 << 20)
        let body = (try? JSONParser.parse(Array(bytes.readableBytesView))) ?? .null
        if !isProbe(req) { recorder.record(Received(path: path, headers: req.headers, body: body)) }
        return body
    }

    static func isProbe(_ req: Request) -> Bool { req.headers[.userAgent] == "quotaflow-verifier" }

    /// What providers answer to an empty body: the verifier's free check that an endpoint exists.
    static let missingModel = json(
        ["error": ["message": "you must provide a model parameter", "type": "invalid_request_error"]], status: .badRequest)

    /// A stub that lists `models` and answers chat with `answer` after recording.
    static func upstream(
        models: [String] = ["gpt-4.1-mini", "gpt-4.1", "claude-haiku-4-5"], recorder: Recorder = Recorder(),
        chat: @escaping @Sendable (JSONValue, Int) async throws -> Response = { _, _ in openAIAnswer() }
    ) async throws -> StubUpstream {
        let counter = Atomic<Int>(0)
        return try await StubUpstream.start { router in
            router.get("v1/models") { _, _ in Stub.models(models) }
            router.post("v1/chat/completions") { req, _ in
                let body = try await record(recorder, req, path: "chat")
                if isProbe(req) && body["model"] == nil { return missingModel }
                return try await chat(body, counter.wrappingAdd(1, ordering: .relaxed).oldValue)
            }
            // OpenAI keys serve these too; the stub only answers the verifier's checks.
            router.post("v1/responses") { _, _ in missingModel }
            router.post("v1/embeddings") { _, _ in missingModel }
            router.post("v1/messages") { req, _ in
                let body = try await record(recorder, req, path: "messages")
                if isProbe(req) && body["model"] == nil { return missingModel }
                _ = counter.wrappingAdd(1, ordering: .relaxed)
                return anthropicAnswer(model: body["model"]?.stringValue ?? "claude-haiku-4-5")
            }
        }
    }

    /// An OpenAI event stream from `events`, with `gap` between events.
    static func stream(_ events: [String], gap: Duration = .zero, thenFail: Bool = false) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/event-stream"],
            body: ResponseBody { writer in
                for e in events {
                    try await writer.write(ByteBuffer(string: e))
                    if gap > .zero { try await Task.sleep(for: gap) }
                }
                if thenFail { throw CancellationError() }
                try await writer.finish(nil)
            })
    }

    static func chunk(_ content: String) -> String {
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\(content)\"}}],\"usage\":null}\n\n"
    }

    static let usageChunk =
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14}}\n\n"
}
