import HTTPTypes
import QuotaflowCore

/// A data-plane refusal, answered in the caller's dialect with our reason code (see `Dialect`).
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

    public init(_ reason: ReasonCode, _ message: String, status: Int? = nil, retryAfterSeconds: Int64? = nil, resetsAt: Int64? = nil) {
        self.reason = reason
        self.message = message
        self.status = status ?? reason.httpStatus
        self.retryAfterSeconds = retryAfterSeconds
        self.resetsAt = resetsAt
    }

    /// The data-plane answer for an admission denial.
    init(_ d: Denial) {
        self.init(d.reason, d.message, retryAfterSeconds: d.retryAfterSeconds, resetsAt: d.resetsAt)
    }

    /// Refusals a retry cannot fix carry `x-should-retry: false`, which the official OpenAI and
    /// Anthropic SDKs obey, so clients fail at once instead of sleeping or retrying.
    public var retryable: Bool {
        switch reason {
        case .rateLimited, .noCapacity, .upstreamError, .upstreamTimeout, .clientClosed: return true
        case .quotaExceeded, .modelNotAllowed, .approvalRequired, .keyExpired, .keyRevoked, .invalidKey, .tenantDisabled, .projectArchived,
            .requestTooLarge, .invalidRequest, .responseNotFound, .responseUnavailable:
            return false
        }
    }

    static let reasonHeader = HTTPField.Name("x-quotaflow-reason")!
    static let shouldRetry = HTTPField.Name("x-should-retry")!
    static let resetsAtHeader = HTTPField.Name("x-quotaflow-budget-resets-at")!

    /// Our reason header and the retry hints.
    func addHeaders(to fields: inout HTTPFields) {
        fields[Self.reasonHeader] = reason.rawValue
        if let retryAfterSeconds { fields[.retryAfter] = String(max(1, retryAfterSeconds)) }
        if !retryable { fields[Self.shouldRetry] = "false" }
        if let resetsAt { fields[Self.resetsAtHeader] = Timestamp.format(resetsAt) }
    }
}
