import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Claude on Amazon Bedrock. The client speaks the plain Messages API; the call becomes InvokeModel
/// (`/model/{id}/invoke`, or `/invoke-with-response-stream`) or CountTokens, signed with SigV4:
/// the model moves into the path (mapped to a Bedrock model or inference-profile id), `stream`
/// leaves the body, `anthropic_version: bedrock-2023-05-31` joins it, and the client's
/// `anthropic-beta` header becomes the body's `anthropic_beta`. Streams come back in AWS's binary
/// event-stream framing and are re-emitted as standard Anthropic SSE.
enum Bedrock {
    static let anthropicVersion = "bedrock-2023-05-31"

    /// Rewrites a Messages or token-count call for Bedrock and signs it.
    static func adapt(
        _ call: inout UpstreamCall, body: inout [UInt8], resource r: RoutableResource, endpoint: String, model: String, stream: Bool,
        client: HTTPFields, nowMs: Int64
    ) throws(Refusal) {
        guard let credentials = SigV4.Credentials(credential: r.credential), let cloud = r.resource.cloud else {
            throw Refusal(.upstreamError, "the Bedrock resource's credential is not ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]", status: 502)
        }
        guard var object = (try? JSONParser.parse(body))?.objectMembers else {
            throw Refusal(.invalidRequest, "the request body is not a JSON object")
        }
        object.removeAll { $0.0 == "model" || $0.0 == "stream" }
        setDefault(&object, "anthropic_version", .string(anthropicVersion))
        let betas = (client[Messages.beta] ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        if !betas.isEmpty { setDefault(&object, "anthropic_beta", .strings(betas)) }
        let id = SigV4.encode(cloud.platformModel(model))
        let action: String
        if endpoint == "messages.count_tokens" {
            // CountTokens takes the InvokeModel body, base64-encoded, without max_tokens' requirement.
            action = "count-tokens"
            body = JSONWriter.bytes(["input": ["invokeModel": ["body": .string(Data(JSONWriter.bytes(.object(object))).base64EncodedString())]]])
        } else {
            action = stream ? "invoke-with-response-stream" : "invoke"
            body = JSONWriter.bytes(.object(object))
        }
        guard let target = URLComponents(string: r.baseURL), let host = target.host else {
            throw Refusal(.upstreamError, "the Bedrock resource's base URL is not a URL", status: 502)
        }
        let hostHeader = target.port.map { "\(host):\($0)" } ?? host
        let path = target.percentEncodedPath + "/model/\(id)/\(action)"
        var h = HTTPHeaders()
        h.add(name: "host", value: hostHeader)
        h.add(name: "content-type", value: "application/json")
        h.add(name: "accept", value: stream && action != "count-tokens" ? "application/vnd.amazon.eventstream" : "application/json")
        if stream && action != "count-tokens" { h.add(name: "x-amzn-bedrock-accept", value: "application/json") }
        h.add(name: "user-agent", value: "quotaflow")
        let signed = SigV4.sign(
            method: "POST", host: hostHeader, path: path, headers: [("content-type", "application/json")], body: body, credentials: credentials,
            region: cloud.region, service: "bedrock", nowMs: nowMs)
        for (name, value) in signed { h.add(name: name, value: value) }
        call.url = "\(target.scheme ?? "https")://\(hostHeader)\(path)"
        call.headers = h
    }

    /// Adds `key` to a JSON object unless the client already set it (its value wins, as in the SDKs).
    static func setDefault(_ object: inout [(String, JSONValue)], _ key: String, _ value: JSONValue) {
        if !object.contains(where: { $0.0 == key }) { object.append((key, value)) }
    }

    /// A whole answer in Anthropic's shapes: CountTokens' `inputTokens` as `input_tokens`, and
    /// Bedrock's `{"message": ...}` errors as Anthropic error objects.
    static func answer(_ body: ByteBuffer, status: UInt, headers: HTTPHeaders, endpoint: String) -> ByteBuffer {
        guard let json = try? JSONParser.parse(Array(body.readableBytesView)) else { return body }
        if (200..<300).contains(status) {
            guard endpoint == "messages.count_tokens", let n = json["inputTokens"]?.int64Value else { return body }
            return ByteBuffer(bytes: JSONWriter.bytes(["input_tokens": .int(n)]))
        }
        guard json["type"] == nil, let message = json["message"]?.stringValue ?? json["Message"]?.stringValue else { return body }
        let code = headers.first(name: "x-amzn-errortype").map { String($0.split(separator: ":").first ?? "") } ?? ""
        return ByteBuffer(
            bytes: JSONWriter.bytes(["type": "error", "error": ["type": .string(errorType(code, status: status)), "message": .string(message)]]))
    }

    /// Anthropic's error type for a Bedrock exception name or status.
    static func errorType(_ code: String, status: UInt) -> String {
        switch code.lowercased() {
        case "throttlingexception", "servicequotaexceededexception": return "rate_limit_error"
        case "validationexception": return "invalid_request_error"
        case "accessdeniedexception": return "permission_error"
        case "resourcenotfoundexception": return "not_found_error"
        case "serviceunavailableexception", "modelnotreadyexception": return "overloaded_error"
        default:
            switch status {
            case 400: return "invalid_request_error"
            case 403: return "permission_error"
            case 404: return "not_found_error"
            case 429: return "rate_limit_error"
            default: return "api_error"
            }
        }
    }

    /// One event-stream message as Anthropic SSE: a chunk's decoded `bytes` under its own event type;
    /// an exception as an `error` event (so the stream is metered as broken, never as complete).
    static func sse(_ m: EventStream.Message) -> [UInt8] {
        switch m.headers[":message-type"] {
        case "event":
            guard m.headers[":event-type"] == "chunk", let payload = try? JSONParser.parse(m.payload),
                let encoded = payload["bytes"]?.stringValue, let bytes = Data(base64Encoded: encoded)
            else { return [] }
            let type = (try? JSONParser.parse(Array(bytes)))?["type"]?.stringValue ?? "completion"
            return Array("event: \(type)\ndata: ".utf8) + Array(bytes) + Array("\n\n".utf8)
        default:
            let name = m.headers[":exception-type"] ?? m.headers[":error-code"] ?? "internalServerException"
            let message = (try? JSONParser.parse(m.payload))?["message"]?.stringValue ?? m.headers[":error-message"] ?? name
            let error: JSONValue = ["type": "error", "error": ["type": .string(errorType(name, status: 500)), "message": .string(message)]]
            return Array("event: error\ndata: ".utf8) + JSONWriter.bytes(error) + Array("\n\n".utf8)
        }
    }
}
