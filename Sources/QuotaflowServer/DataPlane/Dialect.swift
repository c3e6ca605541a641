import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// One client-facing API family: how its requests are read, what goes upstream, how its answers
/// are metered, and what its errors look like. Admission, forwarding and the ledger are the same
/// for every dialect; a new API family plugs in here without touching them.
protocol Dialect: Sendable {
    /// The ledger's `endpoint` and the metrics route label.
    var endpoint: String { get }
    /// The API family a resource must serve to take the request.
    var family: ApiFamily { get }
    /// How its event streams are metered.
    var streamFormat: StreamFormat { get }
    /// Token counting and calls on a stored response: no budget is held and nothing is charged,
    /// but rate limits apply and the ledger records them.
    var isFree: Bool { get }
    /// Streams open with events that carry no output yet (`response.created`); they are held back
    /// until output starts, so a failure there can still go to another resource.
    var holdsPreamble: Bool { get }
    /// Reads the fields Quotaflow acts on, without materialising the prompt.
    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest
    /// Where the request goes on `resource`, and with which headers (the resource's credential).
    func upstream(_ resource: RoutableResource, model: String, stream: Bool, client: HTTPFields) -> UpstreamCall
    /// Usage, served model and response id of a whole (non-streaming) answer.
    func meter(_ body: ByteBuffer) -> WholeAnswer
    /// A refusal in this dialect's error shape.
    func errorBody(_ refusal: Refusal) -> JSONValue
}

/// What is sent upstream for one attempt.
struct UpstreamCall: Sendable {
    var method: HTTPMethod = .POST
    var url: String
    var headers: HTTPHeaders
    /// `false` for calls without a body (reading or deleting a stored response).
    var sendsBody = true
}

/// What a whole answer says about its cost.
struct WholeAnswer: Sendable {
    var usage: TokenUsage?
    var model: String?
    /// The id of the response it created (Responses API).
    var responseId: String?
}

extension Dialect {
    var isFree: Bool { false }
    var holdsPreamble: Bool { false }

    /// The HTTP answer for a refusal: the dialect's body, our reason header, and retry hints.
    func response(for refusal: Refusal) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        refusal.addHeaders(to: &fields)
        return Response(
            status: HTTPResponse.Status(code: refusal.status), headers: fields,
            body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(errorBody(refusal)))))
    }

    /// Usage, model and id from a JSON answer's top-level members.
    static func meter(
        _ body: ByteBuffer, usage key: String = "usage", model modelKey: String = "model", id idKey: String? = nil,
        reader: (JSONValue) -> TokenUsage?
    ) -> WholeAnswer {
        body.withUnsafeReadableBytes { buffer -> WholeAnswer in
            guard let scan = try? JSONObjectScan.scan(buffer) else { return WholeAnswer() }
            func string(_ k: String) -> String? { scan.member(k).flatMap { JSONObjectScan.value(of: $0, in: buffer)?.stringValue } }
            var answer = WholeAnswer(model: string(modelKey), responseId: idKey.flatMap(string))
            if let member = scan.member(key), let usage = JSONObjectScan.value(of: member, in: buffer) { answer.usage = reader(usage) }
            return answer
        }
    }

    /// OpenAI-format upstream headers: the resource's key as a bearer token.
    static func openAIHeaders(_ r: RoutableResource, stream: Bool) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add(name: "content-type", value: "application/json")
        h.add(name: "accept", value: stream ? "text/event-stream" : "application/json")
        h.add(name: "user-agent", value: "quotaflow")
        h.add(name: "authorization", value: "Bearer \(r.credential)")
        return h
    }
}

/// Where a request's output cap lives: a top-level member, or a member of a nested object
/// (Gemini's `generationConfig.maxOutputTokens`).
struct CapField: Sendable, Equatable {
    var name: String
    var parent: String?
}

/// The fields of a request the gateway acts on, read without materialising the prompt.
struct ParsedRequest: Sendable {
    let body: [UInt8]
    let scan: JSONObjectScan
    let model: String
    /// The body names the model (Gemini's is in the URL).
    var modelInBody = true
    let stream: Bool
    /// The member that caps output, and its value if sent.
    let cap: CapField
    let requestedMaxTokens: Int64?
    /// The cap assumed, and written into the request, when neither it nor a policy sets one.
    var assumedCap: Int64 = RequestPlan.assumedOutputWithoutCap
    /// The end user, from the body or the `x-quotaflow-user` header.
    let user: String?
    /// A streamed answer must be asked to carry usage (OpenAI `stream_options.include_usage`): the
    /// option is added, and the usage-only chunk the client did not ask for is dropped.
    let addUsageOption: Bool
    let estimatedInput: Int64
    /// Choices per request (OpenAI `n`, Gemini `candidateCount`); each is billed its own output.
    let choices: Int64
    /// Provider-billed tools the request switches on, and their bounds.
    let tools: ServerTools.Bounds
    /// Thinking each choice may add beyond the cap (Gemini).
    var reasoningPerChoice: Int64 = 0
    /// The prompt may be written to the provider's cache (Anthropic `cache_control`).
    var cacheWrite: CostShape.CacheWrite = .none
    /// A stored response the request continues (`previous_response_id`): it must go to the
    /// resource that holds it.
    var previousResponseId: String?
    /// The service tier asked for (OpenAI `service_tier`); `priority` costs twice the list price.
    var serviceTier: String?
    /// The session part of Claude Code's `metadata.user_id`.
    var claudeSession: String?
    /// The conversation it belongs to (see `Sessions`).
    var session: String?
    /// The `anthropic-beta` features asked for (Messages and token counting).
    var betas: [String] = []

    static let userHeader = HTTPField.Name("x-quotaflow-user")!

    init(
        body: [UInt8], scan: JSONObjectScan, model: String, stream: Bool, cap: CapField, requestedMaxTokens: Int64?, user: String?,
        addUsageOption: Bool = false, estimatedInput: Int64, choices: Int64 = 1, tools: ServerTools.Bounds = .init()
    ) {
        self.body = body
        self.scan = scan
        self.model = model
        self.stream = stream
        self.cap = cap
        self.requestedMaxTokens = requestedMaxTokens
        self.user = user
        self.addUsageOption = addUsageOption
        self.estimatedInput = estimatedInput
        self.choices = choices
        self.tools = tools
    }

    /// Validates the body as one JSON object.
    static func scan(_ body: [UInt8]) throws(Refusal) -> JSONObjectScan {
        let scanned: Result<JSONObjectScan, JSONObjectScan.ScanError> = body.withUnsafeBytes { buffer in
            do throws(JSONObjectScan.ScanError) { return .success(try JSONObjectScan.scan(buffer)) } catch { return .failure(error) }
        }
        switch scanned {
        case .success(let s): return s
        case .failure(.notAnObject): throw Refusal(.invalidRequest, "the request body must be a JSON object")
        case .failure(.syntax(let e)): throw Refusal(.invalidRequest, "the request body is not valid JSON: \(e.description)")
        }
    }

    static func value(_ key: String, _ scan: JSONObjectScan, _ body: [UInt8]) -> JSONValue? {
        guard let m = scan.member(key) else { return nil }
        return body.withUnsafeBytes { JSONObjectScan.value(of: m, in: $0) }
    }

    /// A model name as the request gives it (in the body or the URL).
    static func checkModel(_ value: JSONValue?) throws(Refusal) -> String {
        guard let value else { throw Refusal(.invalidRequest, "'model' is required") }
        guard case .string(let model) = value, !model.isEmpty, model.utf8.count <= 200 else {
            throw Refusal(.invalidRequest, "'model' must be a non-empty string of at most 200 bytes")
        }
        return model
    }

    /// `stream` as a boolean (absent and null are `false`).
    static func stream(_ scan: JSONObjectScan, _ body: [UInt8]) throws(Refusal) -> Bool {
        guard let s = value("stream", scan, body), !s.isNull else { return false }
        guard let b = s.boolValue else { throw Refusal(.invalidRequest, "'stream' must be true or false") }
        return b
    }

    /// An output cap's value, if sent: a positive integer.
    static func capValue(_ name: String, _ value: JSONValue?) throws(Refusal) -> Int64? {
        guard let v = value, !v.isNull else { return nil }
        guard let n = v.int64Value, n >= 1, n <= 100_000_000 else { throw Refusal(.invalidRequest, "'\(name)' must be a positive integer") }
        return n
    }

    /// `model` (required), `stream`, and the first output-cap field present of `capFields` (the
    /// cap is set in `setField` when none is).
    static func common(
        _ body: [UInt8], _ scan: JSONObjectScan, capFields: [String], setField: String
    ) throws(Refusal)
        -> (model: String, stream: Bool, field: String, requested: Int64?)
    {
        let model = try checkModel(value("model", scan, body))
        let stream = try stream(scan, body)
        for name in capFields {
            if let n = try capValue(name, value(name, scan, body)) { return (model, stream, name, n) }
        }
        return (model, stream, setField, nil)
    }

    static func checkUser(_ user: String?) throws(Refusal) -> String? {
        if let u = user, u.utf8.count > 256 { throw Refusal(.invalidRequest, "the end-user identifier must be at most 256 bytes") }
        return user?.isEmpty == true ? nil : user
    }
}

/// What will be sent upstream: the model, the output cap, and the body with our changes spliced in.
struct RequestPlan: Sendable {
    var model: String
    /// The output tokens each choice may produce (clamped), used for the worst case.
    var outputCap: Int64
    /// Everything that multiplies the request's cost: the worst case comes from here.
    var shape: CostShape
    /// Whether the cap was set or lowered (so the body carries it).
    var capEnforced: Bool
    var body: [UInt8]
    var addedUsageOption: Bool

    /// Output tokens assumed for the worst case, and written into the request, when neither the
    /// request nor a policy caps them: a request is never sent with an unbounded output.
    static let assumedOutputWithoutCap: Int64 = 8192

    /// `passthrough`: the holder's own subscription, whose backend may refuse fields it did not send
    /// (ChatGPT's Codex backend refuses `max_output_tokens`): no assumed cap or tool bound is written,
    /// only an admin's output limit and what metering needs. The worst case still assumes the cap.
    static func make(_ p: ParsedRequest, model: String, outputLimit: Int64?, free: Bool = false, passthrough: Bool = false) -> RequestPlan {
        if free {
            return RequestPlan(
                model: model, outputCap: 0, shape: CostShape(inputTokens: 0, outputCap: 0), capEnforced: false, body: p.body, addedUsageOption: false)
        }
        var cap = p.requestedMaxTokens ?? outputLimit ?? p.assumedCap
        var enforced = p.requestedMaxTokens == nil && !passthrough
        if let limit = outputLimit, cap > limit {
            cap = limit
            enforced = true
        }
        var splice = JSONSplice()
        if model != p.model && p.modelInBody { splice.set("model", .string(model)) }
        if enforced && !p.cap.name.isEmpty {
            if let parent = p.cap.parent {
                var members = ParsedRequest.value(parent, p.scan, p.body)?.objectMembers ?? []
                members.removeAll { $0.0 == p.cap.name }
                members.append((p.cap.name, .int(cap)))
                splice.set(parent, .object(members))
            } else {
                splice.set(p.cap.name, .int(cap))
            }
        }
        if p.addUsageOption { splice.set("stream_options", ["include_usage": true]) }
        // A web tool without max_uses gets one, and hosted tools get max_tool_calls, so their fees are bounded.
        if !passthrough, let tools = p.tools.rewritten { splice.set("tools", tools) }
        if !passthrough, let calls = p.tools.setMaxToolCalls { splice.set("max_tool_calls", .int(calls)) }
        let body = splice.isEmpty ? p.body : p.body.withUnsafeBytes { splice.apply(to: $0, scan: p.scan) }
        let shape = CostShape(
            inputTokens: p.estimatedInput, outputCap: cap, choices: p.choices, toolCalls: p.tools.toolCalls, toolInputTokens: p.tools.toolInputTokens,
            reasoningPerChoice: p.reasoningPerChoice, cacheWrite: p.cacheWrite)
        return RequestPlan(model: model, outputCap: cap, shape: shape, capEnforced: enforced, body: body, addedUsageOption: p.addUsageOption)
    }
}
