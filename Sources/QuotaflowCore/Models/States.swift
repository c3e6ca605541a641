/// How an overage policy admitted a request whose project budget did not fit. It decides which
/// counters the request is charged to (`Charging`), so it is a type, never a string.
public enum OverageKind: String, Sendable, CaseIterable {
    /// Rewritten to the project's cheaper fallback model, charged to the fallback cap.
    case fallback
    /// Served by metered overflow credit, charged to the overflow caps instead of the budgets.
    case overflow
}

/// What a ledger row says about how its request went, beyond status and reason.
public enum LedgerFlag: Sendable, Hashable, CustomStringConvertible {
    /// Audit enforcement: a limit would have refused this request.
    case wouldRefuse(ReasonCode)
    /// Admitted by the `fallback_model` overage policy.
    case fallback
    /// The client closed the connection before the answer ended.
    case clientClosed
    /// The request was dropped without being finished (settled when its exchange was released).
    case abandoned
    /// Usage never arrived for an answer that ran to its end: the reserved worst case was charged.
    case usageMissing
    /// The answer broke off: the charge is the reported parts or the input estimate plus the output seen.
    case usageEstimated
    /// The upstream sent an error event in the middle of a stream.
    case streamError
    /// The stream ended without its terminal event.
    case streamUnterminated
    /// The stream was cut by the network.
    case streamInterrupted
    /// The stream exceeded the total time limit.
    case streamTimeout
    /// The answer's body broke off or grew too large after its head arrived.
    case upstreamBodyFailed
    /// The upstream answered with a redirect, which is never followed.
    case upstreamRedirect
    /// Every resource that could serve was refused by the provider and failed its re-probe.
    case resourceRefused
    /// The platform's content filter stopped the output or refused the prompt (Azure OpenAI).
    case contentFiltered
    /// The replica that admitted the request stopped before its row was written: another replica
    /// settled its reservation at the worst case.
    case reservationRecovered

    public var rawValue: String {
        switch self {
        case .wouldRefuse(let reason): return "would_refuse:" + reason.rawValue
        case .fallback: return "fallback"
        case .clientClosed: return "client_closed"
        case .abandoned: return "abandoned"
        case .usageMissing: return "usage_missing"
        case .usageEstimated: return "usage_estimated"
        case .streamError: return "stream_error"
        case .streamUnterminated: return "stream_unterminated"
        case .streamInterrupted: return "stream_interrupted"
        case .streamTimeout: return "stream_timeout"
        case .upstreamBodyFailed: return "upstream_body_failed"
        case .upstreamRedirect: return "upstream_redirect"
        case .resourceRefused: return "resource_refused"
        case .contentFiltered: return "content_filtered"
        case .reservationRecovered: return "reservation_recovered"
        }
    }

    public var description: String { rawValue }

    static let simple: [String: LedgerFlag] = Dictionary(
        uniqueKeysWithValues: [
            LedgerFlag.fallback, .clientClosed, .abandoned, .usageMissing, .usageEstimated, .streamError, .streamUnterminated,
            .streamInterrupted, .streamTimeout, .upstreamBodyFailed, .upstreamRedirect, .resourceRefused, .contentFiltered,
            .reservationRecovered,
        ].map { ($0.rawValue, $0) })

    public init?(rawValue: String) {
        if let flag = Self.simple[rawValue] {
            self = flag
        } else if rawValue.hasPrefix("would_refuse:"), let reason = ReasonCode(rawValue: String(rawValue.dropFirst(13))) {
            self = .wouldRefuse(reason)
        } else {
            return nil
        }
    }
}

/// Where a webhook delivery stands in the outbox.
public enum DeliveryStatus: String, Sendable, CaseIterable {
    case pending, delivered, failed
}

/// The body a webhook receives.
public enum WebhookFormat: String, Sendable, CaseIterable {
    /// A signed JSON event: id, type, created_at, tenant_id, data.
    case json
    /// `{"text": ...}` for a Slack incoming webhook.
    case slack
}

/// One rate limiter: what it counts and for whom.
public enum LimiterKey: Hashable, Sendable {
    /// Requests of one key or seat.
    case key(String)
    /// Requests across a project.
    case project(String)
    /// Requests of one end user within a project.
    case user(projectId: String, user: String)
    /// Tokens across a project.
    case projectTokens(String)

    /// A stable name (the fleet's shared limiters are keyed by it).
    public var name: String {
        switch self {
        case .key(let id): "key:\(id)"
        case .project(let id): "project:\(id)"
        case .user(let projectId, let user): "user:\(projectId):\(user)"
        case .projectTokens(let id): "project_tokens:\(id)"
        }
    }
}
