import QuotaflowCore

/// The fields of a chat request the gateway acts on, read without materialising the prompt.
struct ParsedRequest: Sendable {
    let format: WireFormat
    let body: [UInt8]
    let scan: JSONObjectScan
    let model: String
    let stream: Bool
    /// `max_tokens` or `max_completion_tokens` (OpenAI), `max_tokens` (Anthropic), if sent.
    let maxTokensField: String
    let requestedMaxTokens: Int64?
    /// The end user: OpenAI `user`, Anthropic `metadata.user_id`, or the `x-quotaflow-user` header.
    let user: String?
    /// Whether an OpenAI client asked for `stream_options.include_usage` itself.
    let clientWantsUsage: Bool
    let estimatedInput: Int64
    /// Choices per request (OpenAI `n`); each is billed its own output.
    let choices: Int64
    /// Provider-billed tools the request switches on (Anthropic web search and fetch).
    let tools: ServerTools.Bounds

    static func parse(_ body: [UInt8], format: WireFormat, userHeader: String?) throws(Refusal) -> ParsedRequest {
        let scanned: Result<JSONObjectScan, JSONObjectScan.ScanError> = body.withUnsafeBytes { buffer in
            do throws(JSONObjectScan.ScanError) { return .success(try JSONObjectScan.scan(buffer)) } catch { return .failure(error) }
        }
        let scan: JSONObjectScan
        switch scanned {
        case .success(let s): scan = s
        case .failure(.notAnObject): throw Refusal(.invalidRequest, "the request body must be a JSON object")
        case .failure(.syntax(let e)): throw Refusal(.invalidRequest, "the request body is not valid JSON: \(e.description)")
        }
        func value(_ key: String) -> JSONValue? {
            guard let m = scan.member(key) else { return nil }
            return body.withUnsafeBytes { JSONObjectScan.value(of: m, in: $0) }
        }
        guard let modelValue = value("model") else { throw Refusal(.invalidRequest, "'model' is required") }
        guard case .string(let model) = modelValue, !model.isEmpty, model.utf8.count <= 200 else {
            throw Refusal(.invalidRequest, "'model' must be a non-empty string of at most 200 bytes")
        }
        var stream = false
        if let s = value("stream"), !s.isNull {
            guard let b = s.boolValue else { throw Refusal(.invalidRequest, "'stream' must be true or false") }
            stream = b
        }
        var field = "max_tokens"
        var requested: Int64?
        for name in format == .openai ? ["max_completion_tokens", "max_tokens"] : ["max_tokens"] {
            guard let v = value(name), !v.isNull else { continue }
            guard let n = v.int64Value, n >= 1, n <= 100_000_000 else {
                throw Refusal(.invalidRequest, "'\(name)' must be a positive integer")
            }
            field = name
            requested = n
            break
        }
        var user = userHeader
        if format == .openai, let u = value("user"), !u.isNull {
            guard let s = u.stringValue else { throw Refusal(.invalidRequest, "'user' must be a string") }
            user = s
        } else if format == .anthropic, let meta = value("metadata"), let u = meta["user_id"]?.stringValue {
            user = u
        }
        if let u = user, u.utf8.count > 256 { throw Refusal(.invalidRequest, "the end-user identifier must be at most 256 bytes") }
        if let messages = scan.member("messages"), !messages.isArray {
            throw Refusal(.invalidRequest, "'messages' must be an array")
        }
        let wantsUsage = value("stream_options")?["include_usage"]?.boolValue ?? false
        var choices: Int64 = 1
        if format == .openai, let n = value("n"), !n.isNull {
            guard let v = n.int64Value, (1...128).contains(v) else { throw Refusal(.invalidRequest, "'n' must be an integer from 1 to 128") }
            choices = v
        }
        var tools = ServerTools.Bounds()
        if format == .anthropic, let t = value("tools"), !t.isNull {
            do throws(FieldError) { tools = try ServerTools.anthropic(t) } catch { throw Refusal(.invalidRequest, "'\(error.field)' \(error.message)") }
        }
        return ParsedRequest(
            format: format, body: body, scan: scan, model: model, stream: stream, maxTokensField: field, requestedMaxTokens: requested,
            user: user?.isEmpty == true ? nil : user, clientWantsUsage: wantsUsage, estimatedInput: TokenEstimate.input(scan), choices: choices,
            tools: tools)
    }
}

/// What will be sent upstream: the model, the output cap, and the body with our changes spliced in.
struct RequestPlan: Sendable {
    var model: String
    /// The output tokens each choice may produce (clamped), used for the worst case.
    var outputCap: Int64
    /// Everything that multiplies the request's cost: the worst case comes from here.
    var shape: CostShape
    /// Whether the cap was set or lowered by policy (so the body must carry it).
    var capEnforced: Bool
    var body: [UInt8]
    var addedUsageOption: Bool

    /// Output tokens assumed for the worst case when neither the request nor a policy caps them.
    static let assumedOutputWithoutCap: Int64 = 8192

    static func make(_ p: ParsedRequest, model: String, outputLimit: Int64?) -> RequestPlan {
        var cap = p.requestedMaxTokens ?? outputLimit ?? assumedOutputWithoutCap
        var enforced = false
        if let limit = outputLimit, cap > limit || p.requestedMaxTokens == nil {
            cap = limit
            enforced = true
        }
        var splice = JSONSplice()
        if model != p.model { splice.set("model", .string(model)) }
        if enforced { splice.set(p.maxTokensField, .int(cap)) }
        var added = false
        if p.format == .openai && p.stream && !p.clientWantsUsage {
            splice.set("stream_options", ["include_usage": true])
            added = true
        }
        // A web tool without max_uses gets one, so its fees are bounded.
        if let tools = p.tools.rewritten { splice.set("tools", tools) }
        let body = splice.isEmpty ? p.body : p.body.withUnsafeBytes { splice.apply(to: $0, scan: p.scan) }
        let shape = CostShape(
            inputTokens: p.estimatedInput, outputCap: cap, choices: p.choices, toolCalls: p.tools.toolCalls,
            toolInputTokens: p.tools.toolInputTokens)
        return RequestPlan(model: model, outputCap: cap, shape: shape, capEnforced: enforced, body: body, addedUsageOption: added)
    }
}
