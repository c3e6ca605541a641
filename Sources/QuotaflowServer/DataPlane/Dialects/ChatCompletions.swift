import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// OpenAI Chat Completions: `POST /v1/chat/completions`.
struct ChatCompletions: Dialect {
    var endpoint: String { "chat.completions" }
    var family: ApiFamily { .chat }
    var streamFormat: StreamFormat { .chatCompletions }

    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest {
        let scan = try ParsedRequest.scan(body)
        // A cap the request lacks is set as `max_completion_tokens`: OpenAI's reasoning models refuse `max_tokens`.
        let (model, stream, field, requested) = try ParsedRequest.common(
            body, scan, capFields: ["max_completion_tokens", "max_tokens"], setField: "max_completion_tokens")
        var user = headers[ParsedRequest.userHeader]
        if let u = ParsedRequest.value("user", scan, body), !u.isNull {
            guard let s = u.stringValue else { throw Refusal(.invalidRequest, "'user' must be a string") }
            user = s
        }
        if let messages = scan.member("messages"), !messages.isArray { throw Refusal(.invalidRequest, "'messages' must be an array") }
        var choices: Int64 = 1
        if let n = ParsedRequest.value("n", scan, body), !n.isNull {
            guard let v = n.int64Value, (1...128).contains(v) else { throw Refusal(.invalidRequest, "'n' must be an integer from 1 to 128") }
            choices = v
        }
        let wantsUsage = ParsedRequest.value("stream_options", scan, body)?["include_usage"]?.boolValue ?? false
        return ParsedRequest(
            body: body, scan: scan, model: model, stream: stream, cap: CapField(name: field), requestedMaxTokens: requested,
            user: try ParsedRequest.checkUser(user), addUsageOption: stream && !wantsUsage, estimatedInput: TokenEstimate.input(scan),
            choices: choices)
    }

    func upstream(_ r: RoutableResource, model: String, stream: Bool, client: HTTPFields) -> UpstreamCall {
        UpstreamCall(url: r.baseURL + "/chat/completions", headers: Self.openAIHeaders(r, stream: stream))
    }

    func meter(_ body: ByteBuffer) -> WholeAnswer { Self.meter(body, reader: UsageReader.openAI) }

    func errorBody(_ r: Refusal) -> JSONValue { Self.openAIError(r) }

    /// `{"error": {"message", "type", "param", "code"}}` with OpenAI's type names.
    static func openAIError(_ r: Refusal) -> JSONValue {
        let type: String
        switch r.status {
        case 401: type = "authentication_error"
        case 403: type = "permission_error"
        case 404: type = "not_found_error"
        case 429: type = r.reason == .quotaExceeded ? "insufficient_quota" : "rate_limit_error"
        case 500...: type = "server_error"
        default: type = "invalid_request_error"
        }
        return [
            "error": .compact([
                ("message", .string(r.message)), ("type", .string(type)), ("param", .null), ("code", .string(r.reason.rawValue)),
                ("resets_at", r.resetsAt.map { .string(Timestamp.format($0)) }),
            ])
        ]
    }
}
