import HTTPTypes
import Hummingbird
import NIOCore
import QuotaflowCore

/// A data-plane refusal, answered in the caller's provider shape with our reason code.
/// Messages never contain a key.
public struct Refusal: Error, Sendable {
    public let reason: ReasonCode
    public let message: String
    public let status: Int
    public var retryAfterSeconds: Int64?
    public var headers: [(String, String)] = []

    public init(_ reason: ReasonCode, _ message: String, status: Int? = nil, retryAfterSeconds: Int64? = nil) {
        self.reason = reason
        self.message = message
        self.status = status ?? reason.httpStatus
        self.retryAfterSeconds = retryAfterSeconds
    }

    var openAIType: String {
        switch status {
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 429: return reason == .quotaExceeded ? "insufficient_quota" : "rate_limit_error"
        case 500...: return "server_error"
        default: return "invalid_request_error"
        }
    }

    var anthropicType: String {
        switch status {
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 413: return "request_too_large"
        case 429: return "rate_limit_error"
        case 503, 529: return "overloaded_error"
        case 500...: return "api_error"
        default: return "invalid_request_error"
        }
    }

    public func body(format: WireFormat) -> JSONValue {
        switch format {
        case .openai:
            return ["error": ["message": .string(message), "type": .string(openAIType), "param": .null, "code": .string(reason.rawValue)]]
        case .anthropic:
            return ["type": "error", "error": ["type": .string(anthropicType), "message": .string(message), "code": .string(reason.rawValue)]]
        }
    }

    public func response(format: WireFormat) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[HTTPField.Name("x-quotaflow-reason")!] = reason.rawValue
        if let retryAfterSeconds { fields[.retryAfter] = String(max(1, retryAfterSeconds)) }
        for (name, value) in headers {
            if let n = HTTPField.Name(name) { fields[n] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(body(format: format)))))
    }
}
