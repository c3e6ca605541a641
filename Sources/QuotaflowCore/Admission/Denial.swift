/// Why admission refused a request, in domain terms. The HTTP edge turns it into the caller's
/// dialect (OpenAI, Anthropic, ...) with our reason code.
public struct Denial: Error, Sendable, Equatable {
    public var reason: ReasonCode
    public var message: String
    /// When a retry can help and how soon (rate limits, no capacity).
    public var retryAfterSeconds: Int64?
    /// When the budget period that refused the request ends (quota refusals).
    public var resetsAt: Int64?

    public init(_ reason: ReasonCode, _ message: String, retryAfterSeconds: Int64? = nil, resetsAt: Int64? = nil) {
        self.reason = reason
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
        self.resetsAt = resetsAt
    }
}
