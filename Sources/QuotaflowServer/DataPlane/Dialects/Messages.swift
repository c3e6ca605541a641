import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Anthropic Messages: `POST /v1/messages`. `anthropic-version` and `anthropic-beta` are forwarded as sent.
struct Messages: Dialect {
    var endpoint: String { "messages" }
    var wireFormat: WireFormat { .anthropic }

    static let version = HTTPField.Name("anthropic-version")!
    static let beta = HTTPField.Name("anthropic-beta")!

    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest {
        let scan = try ParsedRequest.scan(body)
        let (model, stream, field, requested) = try ParsedRequest.common(body, scan, capFields: ["max_tokens"], setField: "max_tokens")
        var user = headers[ParsedRequest.userHeader]
        if let meta = ParsedRequest.value("metadata", scan, body), let u = meta["user_id"]?.stringValue { user = u }
        if let messages = scan.member("messages"), !messages.isArray { throw Refusal(.invalidRequest, "'messages' must be an array") }
        var tools = ServerTools.Bounds()
        if let t = ParsedRequest.value("tools", scan, body), !t.isNull {
            do throws(FieldError) { tools = try ServerTools.anthropic(t) } catch {
                throw Refusal(.invalidRequest, "'\(error.field)' \(error.message)")
            }
        }
        return ParsedRequest(
            body: body, scan: scan, model: model, stream: stream, maxTokensField: field, requestedMaxTokens: requested,
            user: try ParsedRequest.checkUser(user), addUsageOption: false, estimatedInput: TokenEstimate.input(scan), choices: 1, tools: tools)
    }

    func upstream(_ r: RoutableResource, stream: Bool, client: HTTPFields) -> (url: String, headers: HTTPHeaders) {
        var h = HTTPHeaders()
        h.add(name: "content-type", value: "application/json")
        h.add(name: "accept", value: stream ? "text/event-stream" : "application/json")
        h.add(name: "user-agent", value: "quotaflow")
        h.add(name: "x-api-key", value: r.credential)
        h.add(name: "anthropic-version", value: client[Self.version] ?? "2023-06-01")
        if let beta = client[Self.beta] { h.add(name: "anthropic-beta", value: beta) }
        return (r.messagesURL, h)
    }

    func usage(of body: ByteBuffer) -> (usage: TokenUsage?, model: String?) { Self.usage(of: body) { UsageReader.anthropic($0) } }

    /// `{"type": "error", "error": {"type", "message"}}` with Anthropic's type names.
    func errorBody(_ r: Refusal) -> JSONValue {
        let type: String
        switch r.status {
        case 401: type = "authentication_error"
        case 403: type = "permission_error"
        case 404: type = "not_found_error"
        case 413: type = "request_too_large"
        case 429: type = "rate_limit_error"
        case 503, 529: type = "overloaded_error"
        case 500...: type = "api_error"
        default: type = "invalid_request_error"
        }
        return [
            "type": "error",
            "error": .compact([
                ("type", .string(type)), ("message", .string(r.message)), ("code", .string(r.reason.rawValue)),
                ("resets_at", r.resetsAt.map { .string(Timestamp.format($0)) }),
            ]),
        ]
    }
}
