import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore
import Synchronization

/// A small stand-in for OpenAI, Anthropic and Google: model lists, Chat Completions, Responses
/// (with stored responses), embeddings, Messages with token counting, and the Gemini API, with
/// and without streaming, each reporting usage in its own convention and with its real event
/// sequence. `quotaflow demo` routes to it; tests start it on port 0.
public struct SimulatedProvider: Sendable {
    public let credential: String
    public let models: [String]
    public let reply: String
    /// When set, every answer reports exactly these token kinds (for checking the ledger's sums).
    public let usage: SimulatedUsage?
    let stored = StoredResponses()

    public init(
        credential: String, models: [String], reply: String = "Hello from the simulated provider, routed by Quotaflow.",
        usage: SimulatedUsage? = nil
    ) {
        self.credential = credential
        self.models = models
        self.reply = reply
        self.usage = usage
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        let provider = self
        router.get("v1/models") { req, _ in
            guard provider.authorized(req) else { return provider.unauthorized(.anthropic, anthropic: req.headers[Self.apiKey] != nil) }
            let data: [JSONValue] = provider.models.map { ["id": .string($0), "object": "model", "type": "model", "display_name": .string($0)] }
            return provider.json(["object": "list", "data": .array(data), "has_more": false])
        }
        router.post("v1/chat/completions") { req, _ in try await provider.chat(req) }
        router.post("v1/messages") { req, _ in try await provider.messages(req) }
        router.post("v1/messages/count_tokens") { req, _ in
            guard provider.authorized(req) else { return provider.unauthorized(.anthropic, anthropic: true) }
            let body = try await req.body.collect(upTo: 16 << 20)
            guard (try? JSONParser.parse(Array(body.readableBytesView)))?["model"] != nil else { return provider.badRequest(anthropic: true) }
            return provider.json(["input_tokens": .int(Int64(max(1, body.readableBytes / 4)))])
        }
        router.post("v1/embeddings") { req, _ in try await provider.embeddings(req) }
        router.post("v1/responses") { req, _ in try await provider.responses(req, compact: false) }
        router.post("v1/responses/compact") { req, _ in try await provider.responses(req, compact: true) }
        router.get("v1/responses/{id}") { req, context in provider.storedResponse(req, try context.parameters.require("id"), delete: false) }
        router.delete("v1/responses/{id}") { req, context in provider.storedResponse(req, try context.parameters.require("id"), delete: true) }
        router.get("v1/responses/{id}/input_items") { req, context in provider.inputItems(req, try context.parameters.require("id")) }
        router.post("v1/responses/{id}/cancel") { req, _ in
            guard provider.authorized(req) else { return provider.unauthorized(.openAI) }
            return provider.json(
                ["error": ["message": "Only responses created with background=true can be cancelled.", "type": "invalid_request_error"]],
                status: .badRequest)
        }
        router.get("v1beta/models") { req, _ in provider.geminiModels(req) }
        router.post("v1beta/models/{action}") { req, context in try await provider.gemini(req, action: try context.parameters.require("action")) }
        return router
    }

    static let apiKey = HTTPField.Name("x-api-key")!
    static let googleKey = HTTPField.Name("x-goog-api-key")!

    func authorized(_ req: Request) -> Bool {
        let given =
            req.headers[Self.apiKey] ?? req.headers[Self.googleKey] ?? req.headers[.authorization].map { String($0.dropFirst("Bearer ".count)) }
        return given == credential
    }

    func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(value))))
    }

    enum Shape { case openAI, anthropic, google }

    func unauthorized(_ shape: Shape, anthropic: Bool = false) -> Response {
        if anthropic || shape == .anthropic {
            return json(["type": "error", "error": ["type": "authentication_error", "message": "invalid x-api-key"]], status: .unauthorized)
        }
        if shape == .google {
            return json(
                ["error": ["code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"]],
                status: .badRequest)
        }
        return json(
            ["error": ["message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"]], status: .unauthorized)
    }

    /// What providers answer to a body without a model (the verifier's empty probe, say).
    func badRequest(anthropic: Bool = false) -> Response {
        anthropic
            ? json(["type": "error", "error": ["type": "invalid_request_error", "message": "model: Field required"]], status: .badRequest)
            : json(
                ["error": ["message": "you must provide a model parameter", "type": "invalid_request_error", "param": .null, "code": .null]],
                status: .badRequest)
    }

    /// The request's JSON body and model, or the answer to a bad one.
    func read(_ req: Request, _ shape: Shape) async throws -> (JSONValue, String, Int)? {
        let bytes = try await req.body.collect(upTo: 16 << 20)
        guard let body = try? JSONParser.parse(Array(bytes.readableBytesView)), let model = body["model"]?.stringValue else { return nil }
        return (body, model, bytes.readableBytes)
    }

    /// The reply's words, cut at `cap`.
    func words(cap: Int64) -> [String] { reply.split(separator: " ").prefix(Int(max(1, cap))).map(String.init) }

    /// The usage to report: the configured one, or the request's size and the reply's words.
    func tokens(inputBytes: Int, outputWords: Int) -> SimulatedUsage {
        usage ?? SimulatedUsage(input: Int64(max(1, inputBytes / 4)), output: Int64(outputWords))
    }

    func stream(_ events: [String]) -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/event-stream"],
            body: ResponseBody { writer in
                for e in events { try await writer.write(ByteBuffer(string: e)) }
                try await writer.finish(nil)
            })
    }

    static func data(_ v: JSONValue) -> String { "data: \(JSONWriter.string(v))\n\n" }
    static func event(_ name: String, _ v: JSONValue) -> String { "event: \(name)\ndata: \(JSONWriter.string(v))\n\n" }
}

/// Token kinds a simulated answer reports; each dialect states them in its own convention.
public struct SimulatedUsage: Sendable, Equatable {
    /// Input neither read from nor written to a cache.
    public var input: Int64
    public var cached: Int64
    public var cacheWrite5m: Int64
    public var cacheWrite1h: Int64
    /// Visible output.
    public var output: Int64
    /// Thinking.
    public var reasoning: Int64
    /// Provider-billed web searches.
    public var webSearches: Int64

    public init(
        input: Int64, cached: Int64 = 0, cacheWrite5m: Int64 = 0, cacheWrite1h: Int64 = 0, output: Int64, reasoning: Int64 = 0, webSearches: Int64 = 0
    ) {
        self.input = input
        self.cached = cached
        self.cacheWrite5m = cacheWrite5m
        self.cacheWrite1h = cacheWrite1h
        self.output = output
        self.reasoning = reasoning
        self.webSearches = webSearches
    }

    var writes: Int64 { cacheWrite5m + cacheWrite1h }
}

/// Responses created with `store` (the API's default), for `GET`, `DELETE` and follow-ups.
final class StoredResponses: Sendable {
    let items = Mutex<[String: (response: JSONValue, input: JSONValue)]>([:])
    let counter = Atomic<Int>(0)

    func nextId() -> String { "resp_sim\(counter.wrappingAdd(1, ordering: .relaxed).newValue)" }
}
