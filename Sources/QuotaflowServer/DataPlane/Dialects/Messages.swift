import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Anthropic Messages: `POST /v1/messages`. `anthropic-version` and `anthropic-beta` are forwarded as sent.
struct Messages: Dialect {
    var endpoint: String { "messages" }
    var family: ApiFamily { .messages }
    var streamFormat: StreamFormat { .anthropic }

    static let version = HTTPField.Name("anthropic-version")!
    static let beta = HTTPField.Name("anthropic-beta")!

    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest {
        let scan = try ParsedRequest.scan(body)
        let (model, stream, field, requested) = try ParsedRequest.common(body, scan, capFields: ["max_tokens"], setField: "max_tokens")
        var user = headers[ParsedRequest.userHeader]
        var session: String?
        if let meta = ParsedRequest.value("metadata", scan, body), let u = meta["user_id"]?.stringValue {
            (user, session) = Sessions.claudeUserId(u)
        }
        if let messages = scan.member("messages"), !messages.isArray { throw Refusal(.invalidRequest, "'messages' must be an array") }
        var tools = ServerTools.Bounds()
        if let t = ParsedRequest.value("tools", scan, body), !t.isNull {
            do throws(FieldError) { tools = try ServerTools.anthropic(t) } catch {
                throw Refusal(.invalidRequest, "'\(error.field)' \(error.message)")
            }
        }
        var parsed = ParsedRequest(
            body: body, scan: scan, model: model, stream: stream, cap: CapField(name: field), requestedMaxTokens: requested,
            user: try ParsedRequest.checkUser(user), estimatedInput: TokenEstimate.input(scan), tools: tools)
        parsed.cacheWrite = Self.cacheWrite(body)
        parsed.claudeSession = session
        return parsed
    }

    /// Whether the request marks anything for the prompt cache, and the longest lifetime it asks
    /// for: the worst case then prices the whole prompt as written at that rate.
    static func cacheWrite(_ body: [UInt8]) -> CostShape.CacheWrite {
        guard JSONBytes.containsKey("cache_control", in: body) else { return .none }
        return JSONBytes.containsMember("ttl", string: "1h", in: body) ? .oneHour : .fiveMinutes
    }

    func upstream(_ r: RoutableResource, model: String, stream: Bool, client: HTTPFields) -> UpstreamCall {
        UpstreamCall(url: r.baseURL + "/v1/messages", headers: Self.headers(r, stream: stream, client: client))
    }

    /// Anthropic upstream headers: the resource's key, and the client's API version and betas as sent.
    static func headers(_ r: RoutableResource, stream: Bool, client: HTTPFields) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add(name: "content-type", value: "application/json")
        h.add(name: "accept", value: stream ? "text/event-stream" : "application/json")
        h.add(name: "user-agent", value: "quotaflow")
        h.add(name: "x-api-key", value: r.credential)
        h.add(name: "anthropic-version", value: client[Self.version] ?? "2023-06-01")
        if let beta = client[Self.beta] { h.add(name: "anthropic-beta", value: beta) }
        return h
    }

    func meter(_ body: ByteBuffer) -> WholeAnswer { Self.meter(body) { UsageReader.anthropic($0) } }

    func errorBody(_ r: Refusal) -> JSONValue { Self.anthropicError(r) }

    /// `{"type": "error", "error": {"type", "message"}}` with Anthropic's type names.
    static func anthropicError(_ r: Refusal) -> JSONValue {
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
