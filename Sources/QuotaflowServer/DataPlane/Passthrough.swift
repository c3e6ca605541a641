import HTTPTypes
import NIOHTTP1
import QuotaflowCore

/// A passthrough request carries the holder's own subscription token and goes out with the
/// client's own headers, unchanged: Quotaflow never rewrites `User-Agent`, never adds another
/// client's identifiers, and stores no credential. Dropped: hop-by-hop headers, the length
/// (recomputed), `accept-encoding` (the answer must be readable to meter it) and Quotaflow's own
/// `x-quotaflow-*` headers, which include the holder's Quotaflow key.
enum Passthrough {
    static let dropped: Set<String> = [
        "host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
        "proxy-connection", "accept-encoding", "expect",
    ]

    static func headers(_ client: HTTPFields, stream: Bool) -> HTTPHeaders {
        var h = HTTPHeaders()
        for field in client {
            let name = field.name.canonicalName
            if dropped.contains(name) || name.hasPrefix("x-quotaflow-") { continue }
            h.add(name: field.name.rawName, value: field.value)
        }
        if !h.contains(name: "content-type") { h.add(name: "content-type", value: "application/json") }
        return h
    }
}

/// Why a 429 cools a credential, and until when. A usage window that refuses gives its own reset,
/// taken as it is even days away; `Retry-After` and `x-ratelimit-*` resets are capped at
/// `max_cooldown_ms`; a 429 with neither is not taken for a window limit (providers send it for
/// other reasons, a disabled organisation among them) and cools for the default time.
struct RateLimitCause: Sendable {
    var until: Int64
    var cause: String
    var evidence: [(String, String)]

    static func of(_ report: WindowReport, headers: HTTPHeaders, now: Int64, config: AppConfig) -> RateLimitCause {
        let info = RateLimitInfo.parse(headers.map { ($0.name, $0.value) }, nowMs: now)
        let evidence = report.evidence + info.evidence.filter { e in !report.evidence.contains { $0.0 == e.0 } }
        if let until = report.limitedUntil, until > now {
            let windows = report.readings.filter { $0.rejected || $0.utilization >= 1 }.map(\.label)
            let named = windows.isEmpty ? "a usage window" : "usage window " + windows.joined(separator: ", ")
            return RateLimitCause(until: until, cause: "429: \(named) is used up until \(Timestamp.format(until))", evidence: evidence)
        }
        if let reset = info.resetAt {
            return RateLimitCause(until: min(reset, now + config.maxCooldownMs), cause: "429 from upstream (rate limit)", evidence: evidence)
        }
        return RateLimitCause(
            until: now + config.defaultCooldownMs, cause: "429 without reset headers (not taken for a window limit)", evidence: evidence)
    }
}
