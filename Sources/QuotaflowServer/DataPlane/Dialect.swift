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
    /// The API family a resource must speak to take the request, and the stream format to meter.
    var wireFormat: WireFormat { get }
    /// Reads the fields Quotaflow acts on, without materialising the prompt.
    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest
    /// Where the request goes on `resource`, and with which headers (the resource's credential).
    func upstream(_ resource: RoutableResource, stream: Bool, client: HTTPFields) -> (url: String, headers: HTTPHeaders)
    /// Usage and served model of a whole (non-streaming) answer.
    func usage(of body: ByteBuffer) -> (usage: TokenUsage?, model: String?)
    /// A refusal in this dialect's error shape.
    func errorBody(_ refusal: Refusal) -> JSONValue
}

extension Dialect {
    /// The HTTP answer for a refusal: the dialect's body, our reason header, and retry hints.
    func response(for refusal: Refusal) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        refusal.addHeaders(to: &fields)
        return Response(
            status: HTTPResponse.Status(code: refusal.status), headers: fields,
            body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(errorBody(refusal)))))
    }

    /// Usage and model from a JSON answer's top-level `usage` and `model` members.
    static func usage(of body: ByteBuffer, reader: (JSONValue) -> TokenUsage?) -> (usage: TokenUsage?, model: String?) {
        body.withUnsafeReadableBytes { buffer -> (TokenUsage?, String?) in
            guard let scan = try? JSONObjectScan.scan(buffer) else { return (nil, nil) }
            let model = scan.member("model").flatMap { JSONObjectScan.value(of: $0, in: buffer)?.stringValue }
            guard let member = scan.member("usage"), let usage = JSONObjectScan.value(of: member, in: buffer) else { return (nil, model) }
            return (reader(usage), model)
        }
    }
}

/// The fields of a request the gateway acts on, read without materialising the prompt.
struct ParsedRequest: Sendable {
    let body: [UInt8]
    let scan: JSONObjectScan
    let model: String
    let stream: Bool
    /// The member that caps output (`max_tokens`, `max_completion_tokens`, ...), and its value if sent.
    let maxTokensField: String
    let requestedMaxTokens: Int64?
    /// The end user, from the body or the `x-quotaflow-user` header.
    let user: String?
    /// A streamed answer must be asked to carry usage (OpenAI `stream_options.include_usage`): the
    /// option is added, and the usage-only chunk the client did not ask for is dropped.
    let addUsageOption: Bool
    let estimatedInput: Int64
    /// Choices per request (OpenAI `n`); each is billed its own output.
    let choices: Int64
    /// Provider-billed tools the request switches on (Anthropic web search and fetch).
    let tools: ServerTools.Bounds

    static let userHeader = HTTPField.Name("x-quotaflow-user")!

    /// Validates the body as one JSON object and reads `model`, `stream` and the output cap.
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

    /// `model` (required), `stream`, and the first output-cap field present of `capFields` (the
    /// cap is set in `setField` when none is).
    static func common(
        _ body: [UInt8], _ scan: JSONObjectScan, capFields: [String], setField: String
    ) throws(Refusal)
        -> (model: String, stream: Bool, field: String, requested: Int64?)
    {
        guard let modelValue = value("model", scan, body) else { throw Refusal(.invalidRequest, "'model' is required") }
        guard case .string(let model) = modelValue, !model.isEmpty, model.utf8.count <= 200 else {
            throw Refusal(.invalidRequest, "'model' must be a non-empty string of at most 200 bytes")
        }
        var stream = false
        if let s = value("stream", scan, body), !s.isNull {
            guard let b = s.boolValue else { throw Refusal(.invalidRequest, "'stream' must be true or false") }
            stream = b
        }
        for name in capFields {
            guard let v = value(name, scan, body), !v.isNull else { continue }
            guard let n = v.int64Value, n >= 1, n <= 100_000_000 else { throw Refusal(.invalidRequest, "'\(name)' must be a positive integer") }
            return (model, stream, name, n)
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
        if p.addUsageOption { splice.set("stream_options", ["include_usage": true]) }
        // A web tool without max_uses gets one, so its fees are bounded.
        if let tools = p.tools.rewritten { splice.set("tools", tools) }
        let body = splice.isEmpty ? p.body : p.body.withUnsafeBytes { splice.apply(to: $0, scan: p.scan) }
        let shape = CostShape(
            inputTokens: p.estimatedInput, outputCap: cap, choices: p.choices, toolCalls: p.tools.toolCalls, toolInputTokens: p.tools.toolInputTokens)
        return RequestPlan(model: model, outputCap: cap, shape: shape, capEnforced: enforced, body: body, addedUsageOption: p.addUsageOption)
    }
}
