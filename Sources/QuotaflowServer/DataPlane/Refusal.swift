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
    /// When the budget period that refused the request ends (quota refusals): sent as
    /// `x-quotaflow-budget-resets-at` and in the body, never as `Retry-After`, because SDKs would
    /// sleep until then.
    public var resetsAt: Int64?
    public var headers: [(String, String)] = []

    public init(_ reason: ReasonCode, _ message: String, status: Int? = nil, retryAfterSeconds: Int64? = nil, resetsAt: Int64? = nil) {
        self.reason = reason
        self.message = message
        self.status = status ?? reason.httpStatus
        self.retryAfterSeconds = retryAfterSeconds
        self.resetsAt = resetsAt
    }

    /// Refusals a retry cannot fix carry `x-should-retry: false`, which the official OpenAI and
    /// Anthropic SDKs obey, so clients fail at once instead of sleeping or retrying.
    public var retryable: Bool {
        switch reason {
        case .rateLimited, .noCapacity, .upstreamError, .upstreamTimeout, .clientClosed: return true
        case .quotaExceeded, .modelNotAllowed, .approvalRequired, .keyExpired, .keyRevoked, .invalidKey, .tenantDisabled, .projectArchived,
            .requestTooLarge, .invalidRequest:
            return false
        }
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
        let resets: JSONValue? = resetsAt.map { .string(Timestamp.format($0)) }
        switch format {
        case .openai:
            return [
                "error": .compact([
                    ("message", .string(message)), ("type", .string(openAIType)), ("param", .null), ("code", .string(reason.rawValue)),
                    ("resets_at", resets),
                ])
            ]
        case .anthropic:
            return [
                "type": "error",
                "error": .compact([
                    ("type", .string(anthropicType)), ("message", .string(message)), ("code", .string(reason.rawValue)), ("resets_at", resets),
                ]),
            ]
        }
    }

    public func response(format: WireFormat) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[HTTPField.Name("x-quotaflow-reason")!] = reason.rawValue
        if let retryAfterSeconds { fields[.retryAfter] = String(max(1, retryAfterSeconds)) }
        if !retryable { fields[HTTPField.Name("x-should-retry")!] = "false" }
        if let resetsAt { fields[HTTPField.Name("x-quotaflow-budget-resets-at")!] = Timestamp.format(resetsAt) }
        for (name, value) in headers {
            if let n = HTTPField.Name(name) { fields[n] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: JSONWriter.bytes(body(format: format)))))
    }
}

extension Refusal {
    /// The data-plane answer for an admission denial.
    init(_ d: Denial) {
        self.init(d.reason, d.message, retryAfterSeconds: d.retryAfterSeconds, resetsAt: d.resetsAt)
    }
}
