import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// OpenAI embeddings: `POST /v1/embeddings`, priced per input token, never streamed.
struct Embeddings: Dialect {
    var endpoint: String { "embeddings" }
    var family: ApiFamily { .embeddings }
    var streamFormat: StreamFormat { .chatCompletions }

    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest {
        let scan = try ParsedRequest.scan(body)
        let model = try ParsedRequest.checkModel(ParsedRequest.value("model", scan, body))
        guard let input = scan.member("input"), !input.isNull else { throw Refusal(.invalidRequest, "'input' is required") }
        guard input.isString || input.isArray else {
            throw Refusal(.invalidRequest, "'input' must be a string, an array of strings, or an array of token arrays")
        }
        var user = headers[ParsedRequest.userHeader]
        if let u = ParsedRequest.value("user", scan, body), !u.isNull {
            guard let s = u.stringValue else { throw Refusal(.invalidRequest, "'user' must be a string") }
            user = s
        }
        // Every input token needs at least two bytes of JSON (a digit and a comma, or a character
        // and some of its word), so half the bytes bound token arrays and text alike.
        let tokens = Int64(input.valueRange.count / 2 + 8)
        var parsed = ParsedRequest(
            body: body, scan: scan, model: model, stream: false, cap: CapField(name: ""), requestedMaxTokens: nil,
            user: try ParsedRequest.checkUser(user), estimatedInput: tokens)
        parsed.assumedCap = 0
        return parsed
    }

    func upstream(_ r: RoutableResource, model: String, stream: Bool, client: HTTPFields) -> UpstreamCall {
        UpstreamCall(url: r.baseURL + "/embeddings", headers: Self.openAIHeaders(r, stream: false))
    }

    func meter(_ body: ByteBuffer) -> WholeAnswer { Self.meter(body, reader: UsageReader.openAI) }

    func errorBody(_ r: Refusal) -> JSONValue { ChatCompletions.openAIError(r) }
}

/// Anthropic token counting: `POST /v1/messages/count_tokens`. Free, so it holds no budget and costs
/// nothing, but it is rate limited, goes to an Anthropic resource, and is recorded in the ledger.
struct CountTokens: Dialect {
    var endpoint: String { "messages.count_tokens" }
    var family: ApiFamily { .messages }
    var streamFormat: StreamFormat { .anthropic }
    var isFree: Bool { true }

    func parse(_ body: [UInt8], headers: HTTPFields) throws(Refusal) -> ParsedRequest {
        let scan = try ParsedRequest.scan(body)
        let model = try ParsedRequest.checkModel(ParsedRequest.value("model", scan, body))
        if let messages = scan.member("messages"), !messages.isArray { throw Refusal(.invalidRequest, "'messages' must be an array") }
        return ParsedRequest(
            body: body, scan: scan, model: model, stream: false, cap: CapField(name: ""), requestedMaxTokens: nil,
            user: try ParsedRequest.checkUser(headers[ParsedRequest.userHeader]), estimatedInput: 0)
    }

    func upstream(_ r: RoutableResource, model: String, stream: Bool, client: HTTPFields) -> UpstreamCall {
        UpstreamCall(url: r.baseURL + "/v1/messages/count_tokens", headers: Messages.headers(r, stream: false, client: client))
    }

    func meter(_ body: ByteBuffer) -> WholeAnswer { Self.meter(body) { _ in nil } }

    func errorBody(_ r: Refusal) -> JSONValue { Messages.anthropicError(r) }
}
