import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Google's Generative Language API, as Gemini CLI and the google-genai SDKs speak it:
/// `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` and
/// `:countTokens`. The model is in the path; the key comes as `x-goog-api-key` or `?key=`.
///
/// Usage is `usageMetadata` (cumulative in every stream chunk). The cost multipliers are
/// `candidateCount`, `generationConfig.maxOutputTokens` (set when missing, with room for thinking)
/// and thinking, reserved on top of the cap: `thinkingConfig.thinkingBudget` when the request sets
/// one. Thinking may be counted twice in the reservation (inside and beside the cap), never missed.
struct Gemini: Dialect {
    enum Method: String, Sendable {
        case generate = "generateContent"
        case stream = "streamGenerateContent"
        case countTokens
    }

    let method: Method
    let model: String

    var endpoint: String {
        switch method {
        case .generate, .stream: return "gemini.generate_content"
        case .countTokens: return "gemini.count_tokens"
        }
    }
    var family: ApiFamily { .gemini }
    var streamFormat: StreamFormat { .gemini }
    var isFree: Bool { method == .countTokens }

    /// Thinking reserved per candidate when the request sets no budget (the largest default budget
    /// of Google's thinking models).
    static let assumedThinking: Int64 = 32_768
    static let notInput: Set<String> = ["generationConfig", "safetySettings", "cachedContent", "toolConfig", "labels", "serviceTier"]

    /// The dialect for `POST /v1beta/models/{model}:{method}`.
    static func route(_ action: String, alt: String?) throws(Refusal) -> Gemini {
        guard let colon = action.lastIndex(of: ":") else {
            throw Refusal(.invalidRequest, "expected /v1beta/models/{model}:{method}", status: 404)
        }
        let model = String(action[..<colon])
        guard let method = Method(rawValue: String(action[action.index(after: colon)...])) else {
            throw Refusal(
                .invalidRequest,
                "'\(action[action.index(after: colon)...].prefix(40))' is not offered; use generateContent, streamGenerateContent or countTokens",
                status: 404)
        }
        if method == .stream, alt != "sse" { throw Refusal(.invalidRequest, "streamGenerateContent is offered with ?alt=sse only") }
        return Gemini(method: method, model: model)
    }

    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest {
        let scan = try ParsedRequest.scan(body)
        let model = try ParsedRequest.checkModel(.string(self.model))
        if method == .countTokens {
            var parsed = ParsedRequest(
                body: body, scan: scan, model: model, stream: false, cap: CapField(name: ""), requestedMaxTokens: nil,
                user: try ParsedRequest.checkUser(headers[ParsedRequest.userHeader]), estimatedInput: 0)
            parsed.modelInBody = false
            return parsed
        }
        if let contents = scan.member("contents"), !contents.isArray { throw Refusal(.invalidRequest, "'contents' must be an array") }
        let config = ParsedRequest.value("generationConfig", scan, body)
        if let config, !config.isNull, config.objectMembers == nil { throw Refusal(.invalidRequest, "'generationConfig' must be an object") }
        let requested = try ParsedRequest.capValue("generationConfig.maxOutputTokens", config?["maxOutputTokens"])
        var candidates: Int64 = 1
        if let n = config?["candidateCount"], !n.isNull {
            guard let v = n.int64Value, (1...8).contains(v) else {
                throw Refusal(.invalidRequest, "'generationConfig.candidateCount' must be an integer from 1 to 8")
            }
            candidates = v
        }
        var thinking = Self.assumedThinking
        if let budget = config?["thinkingConfig"]?["thinkingBudget"], !budget.isNull {
            guard let b = budget.int64Value, b >= -1 else {
                throw Refusal(.invalidRequest, "'generationConfig.thinkingConfig.thinkingBudget' must be an integer")
            }
            if b >= 0 { thinking = b }
        }
        var tools = ServerTools.Bounds()
        if let t = ParsedRequest.value("tools", scan, body), !t.isNull {
            do throws(FieldError) { tools = try ServerTools.gemini(t) } catch { throw Refusal(.invalidRequest, "'\(error.field)' \(error.message)") }
        }
        var parsed = ParsedRequest(
            body: body, scan: scan, model: model, stream: method == .stream, cap: CapField(name: "maxOutputTokens", parent: "generationConfig"),
            requestedMaxTokens: requested, user: try ParsedRequest.checkUser(headers[ParsedRequest.userHeader]),
            estimatedInput: TokenEstimate.input(scan, ignoring: Self.notInput), choices: candidates, tools: tools)
        parsed.modelInBody = false
        parsed.reasoningPerChoice = thinking
        // Some models count thinking inside maxOutputTokens: a cap written for a request without one
        // leaves room for the thinking budget on top of the assumed output, so no answer starves.
        parsed.assumedCap = RequestPlan.assumedOutputWithoutCap + thinking
        return parsed
    }

    func upstream(_ r: RoutableResource, model: String, stream: Bool, client: HTTPFields) -> UpstreamCall {
        var h = HTTPHeaders()
        h.add(name: "content-type", value: "application/json")
        h.add(name: "user-agent", value: "quotaflow")
        h.add(name: "x-goog-api-key", value: r.credential)
        let suffix = method == .stream ? ":streamGenerateContent?alt=sse" : ":" + method.rawValue
        return UpstreamCall(url: r.baseURL + "/v1beta/models/" + StoredResponse.escaped(model) + suffix, headers: h)
    }

    func meter(_ body: ByteBuffer) -> WholeAnswer {
        Self.meter(body, usage: "usageMetadata", model: "modelVersion", id: "responseId", reader: UsageReader.gemini)
    }

    func errorBody(_ r: Refusal) -> JSONValue { Self.googleError(r) }

    /// `{"error": {"code", "message", "status", "details"}}` (google.rpc.Status). Refusals a retry
    /// cannot fix carry a daily `QuotaFailure`, which Gemini CLI treats as final; a pool at capacity
    /// carries `RetryInfo` instead.
    static func googleError(_ r: Refusal) -> JSONValue {
        let status: String
        switch r.status {
        case 401: status = "UNAUTHENTICATED"
        case 403: status = "PERMISSION_DENIED"
        case 404: status = "NOT_FOUND"
        case 408, 504: status = "DEADLINE_EXCEEDED"
        case 409: status = "ABORTED"
        case 429: status = "RESOURCE_EXHAUSTED"
        case 499: status = "CANCELLED"
        case 501: status = "UNIMPLEMENTED"
        case 502, 503: status = "UNAVAILABLE"
        case 500...: status = "INTERNAL"
        default: status = "INVALID_ARGUMENT"
        }
        var details: [JSONValue] = [
            [
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": .string(r.reason.rawValue.uppercased()), "domain": "quotaflow",
                "metadata": .compact([("code", .string(r.reason.rawValue)), ("resets_at", r.resetsAt.map { .string(Timestamp.format($0)) })]),
            ]
        ]
        if r.status == 429 {
            if r.retryable, let seconds = r.retryAfterSeconds {
                details.append(["@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": .string("\(seconds)s")])
            } else {
                details.append([
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [["quotaId": .string("QuotaflowBudgetPerDay"), "description": .string(r.message)]],
                ])
            }
        }
        return ["error": ["code": .int(Int64(r.status)), "message": .string(r.message), "status": .string(status), "details": .array(details)]]
    }
}
