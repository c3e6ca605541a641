import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// OpenAI Responses: `POST /v1/responses` (Codex's only wire API) and `POST /v1/responses/compact`.
///
/// The body goes upstream as sent (`store`, `include`, encrypted reasoning items, unknown tool types
/// and `client_metadata` untouched) apart from what bounds its cost: `max_output_tokens`, which
/// includes reasoning, and `max_tool_calls` when hosted tools that bill per call are on. A request
/// that continues a stored response (`previous_response_id`) goes to the resource that holds it.
struct Responses: Dialect {
    /// `/responses` or `/responses/compact`.
    var compact = false

    var endpoint: String { compact ? "responses.compact" : "responses" }
    var family: ApiFamily { .responses }
    var streamFormat: StreamFormat { .responses }
    var holdsPreamble: Bool { true }

    /// Output assumed (and written as `max_output_tokens`) when nothing caps it: reasoning counts
    /// against the cap, and an agent's turn that runs out of it fails, so it is generous.
    static let assumedCap: Int64 = 32_768

    static let notInput: Set<String> = [
        "model", "stream", "max_output_tokens", "user", "metadata", "store", "include", "reasoning", "text", "prompt_cache_key",
        "prompt_cache_retention", "client_metadata", "service_tier", "parallel_tool_calls", "tool_choice", "truncation", "background",
        "previous_response_id", "temperature", "top_p", "max_tool_calls", "safety_identifier", "stream_options",
    ]

    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest {
        let scan = try ParsedRequest.scan(body)
        let model = try ParsedRequest.checkModel(ParsedRequest.value("model", scan, body))
        let stream = compact ? false : try ParsedRequest.stream(scan, body)
        if let b = ParsedRequest.value("background", scan, body), b.boolValue == true {
            throw Refusal(
                .invalidRequest,
                "background responses are not offered through the pool: their usage arrives after the request has ended, and a request "
                    + "runs here only when it can be metered; send it without 'background'")
        }
        if let c = ParsedRequest.value("conversation", scan, body), !c.isNull {
            throw Refusal(
                .invalidRequest,
                "'conversation' ids live in one provider account and the pool cannot tell which; carry the state in 'input' or use "
                    + "'previous_response_id'")
        }
        var previous: String?
        if let p = ParsedRequest.value("previous_response_id", scan, body), !p.isNull {
            guard let id = p.stringValue, !id.isEmpty, id.utf8.count <= 200 else {
                throw Refusal(.invalidRequest, "'previous_response_id' must be a response id")
            }
            previous = id
        }
        var user = headers[ParsedRequest.userHeader]
        for field in ["safety_identifier", "user"] {
            if let u = ParsedRequest.value(field, scan, body), !u.isNull {
                guard let s = u.stringValue else { throw Refusal(.invalidRequest, "'\(field)' must be a string") }
                user = s
            }
        }
        let requested = compact ? nil : try ParsedRequest.capValue("max_output_tokens", ParsedRequest.value("max_output_tokens", scan, body))
        var tools = ServerTools.Bounds()
        if let t = ParsedRequest.value("tools", scan, body), !t.isNull {
            do throws(FieldError) {
                tools = try ServerTools.responses(t, maxToolCalls: ParsedRequest.value("max_tool_calls", scan, body))
            } catch {
                throw Refusal(.invalidRequest, "'\(error.field)' \(error.message)")
            }
        }
        // A compaction has no output cap to set: its worst case assumes the generous one.
        var parsed = ParsedRequest(
            body: body, scan: scan, model: model, stream: stream, cap: CapField(name: compact ? "" : "max_output_tokens"),
            requestedMaxTokens: requested, user: try ParsedRequest.checkUser(user),
            estimatedInput: TokenEstimate.input(scan, ignoring: Self.notInput),
            tools: compact ? .init() : tools)
        parsed.assumedCap = Self.assumedCap
        parsed.previousResponseId = previous
        parsed.serviceTier = ParsedRequest.value("service_tier", scan, body)?.stringValue
        return parsed
    }

    func upstream(_ r: RoutableResource, model: String, stream: Bool, client: HTTPFields) -> UpstreamCall {
        UpstreamCall(url: r.baseURL + (compact ? "/responses/compact" : "/responses"), headers: Self.headers(r, stream: stream, client: client))
    }

    static let openAIBeta = HTTPField.Name("openai-beta")!

    static func headers(_ r: RoutableResource, stream: Bool, client: HTTPFields) -> HTTPHeaders {
        var h = openAIHeaders(r, stream: stream)
        if let beta = client[openAIBeta] { h.add(name: "openai-beta", value: beta) }
        return h
    }

    func meter(_ body: ByteBuffer) -> WholeAnswer {
        var answer = Self.meter(body, id: "id", reader: UsageReader.responses)
        // Hosted tool calls are billed per call and are not in `usage`: count them in the output.
        if answer.usage != nil {
            let calls = body.withUnsafeReadableBytes { buffer -> Int64 in
                guard let scan = try? JSONObjectScan.scan(buffer), let member = scan.member("output") else { return 0 }
                return UsageReader.hostedToolCalls(JSONObjectScan.value(of: member, in: buffer))
            }
            answer.usage?.serverToolCalls = calls
        }
        return answer
    }

    func errorBody(_ r: Refusal) -> JSONValue { ChatCompletions.openAIError(r) }
}

/// Calls on a stored response: `GET`/`DELETE /v1/responses/{id}`, `POST .../{id}/cancel` and
/// `GET .../{id}/input_items`. They go to the resource that created the response, are free, and
/// are recorded in the ledger.
struct StoredResponse: Dialect {
    enum Action: String, Sendable {
        case get = "responses.get"
        case delete = "responses.delete"
        case cancel = "responses.cancel"
        case inputItems = "responses.input_items"
    }

    let action: Action
    let responseId: String
    /// The client's query string, passed on (`include[]`, `limit`, `after`, `order`).
    let query: String
    /// The model the response was created with (for the ledger and the allow-list).
    let model: String

    var endpoint: String { action.rawValue }
    var family: ApiFamily { .responses }
    var streamFormat: StreamFormat { .responses }
    var isFree: Bool { true }

    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest {
        let empty = Array("{}".utf8)
        let scan = try ParsedRequest.scan(empty)
        var parsed = ParsedRequest(
            body: empty, scan: scan, model: model, stream: false, cap: CapField(name: ""), requestedMaxTokens: nil,
            user: headers[ParsedRequest.userHeader],
            estimatedInput: 0)
        parsed.previousResponseId = responseId
        return parsed
    }

    func upstream(_ r: RoutableResource, model: String, stream: Bool, client: HTTPFields) -> UpstreamCall {
        var path = r.baseURL + "/responses/" + Self.escaped(responseId)
        var method: HTTPMethod = .GET
        switch action {
        case .get: break
        case .delete: method = .DELETE
        case .cancel:
            path += "/cancel"
            method = .POST
        case .inputItems: path += "/input_items"
        }
        if !query.isEmpty { path += "?" + query }
        return UpstreamCall(method: method, url: path, headers: Responses.headers(r, stream: false, client: client), sendsBody: false)
    }

    func meter(_ body: ByteBuffer) -> WholeAnswer { WholeAnswer() }

    func errorBody(_ r: Refusal) -> JSONValue { ChatCompletions.openAIError(r) }

    /// A response id as one path segment (ids are `resp_` and letters, but the client sends it).
    static func escaped(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? id
    }
}
