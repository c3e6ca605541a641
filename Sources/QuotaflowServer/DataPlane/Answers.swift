import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Writes upstream answers to clients: a whole answer after its row is committed, and the headers
/// every answer carries (the budget left, the request rate limit, the upstream's request id). The
/// resource's credential is redacted from whatever the upstream echoed.
struct Answers: Sendable {
    let engine: AdmissionEngine
    let clock: any WallClock

    static let budgetRemaining = HTTPField.Name("x-quotaflow-budget-remaining-micros")!
    static let limitRequests = HTTPField.Name("x-quotaflow-ratelimit-limit-requests")!
    static let remainingRequests = HTTPField.Name("x-quotaflow-ratelimit-remaining-requests")!
    static let upstreamRequestId = HTTPField.Name("x-upstream-request-id")!

    /// A non-streaming answer, read whole: meter it, commit the row, then answer.
    func complete(_ x: Exchange, answer: UpstreamAnswer) async -> Response {
        let redactor = x.redactor
        var body = answer.body ?? ByteBuffer()
        if let scrubbed = body.withUnsafeReadableBytes({ redactor.redacted($0) }) { body = ByteBuffer(bytes: scrubbed) }
        let status = Int(answer.status)
        let ok = (200..<300).contains(status)
        let whole = ok ? x.dialect.meter(body) : WholeAnswer()
        let filtered = x.admission?.resource.resource.provider == .azure && Azure.filtered(Array(body.readableBytesView))
        await x.finish(
            .init(
                status: status, reason: ok ? nil : .upstreamError, usage: whole.usage, servedModel: whole.model,
                extraFlags: filtered ? [.contentFiltered] : [], responseId: whole.responseId))
        var headers = HTTPFields()
        headers[.contentType] = answer.headers.first(name: "content-type") ?? "application/json"
        addHeaders(&headers, exchange: x, upstream: answer.headers, redactor: redactor)
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: body))
    }

    /// The budget left (when a budget caps the request), the tightest request rate limit (when one
    /// applies) and the upstream's request id.
    func addHeaders(_ headers: inout HTTPFields, exchange: Exchange, upstream: HTTPHeaders, redactor: SecretRedactor) {
        if let upstreamId = upstream.first(name: "x-request-id") ?? upstream.first(name: "request-id") {
            headers[Self.upstreamRequestId] = redactor.redact(upstreamId)
        }
        // A shared credential's windows are nobody's business but the pool's: they reach a client only
        // in passthrough, where they are the holder's own plan.
        if exchange.caller.passthrough {
            for h in upstream where WindowHeaders.isWindowHeader(h.name.lowercased()) {
                if let name = HTTPField.Name(h.name) { headers.append(HTTPField(name: name, value: h.value)) }
            }
        }
        guard let a = exchange.admission else { return }
        if let remaining = a.budgetRemaining { headers[Self.budgetRemaining] = String(max(0, remaining)) }
        let now = clock.nowMs()
        let caller = exchange.caller
        var best: (left: Int64, limit: Int64)?
        if let rpm = caller.key.rpm ?? caller.project.rateLimits.rpmPerKey {
            best = (engine.remaining(limiter: .key(caller.key.id), limit: rpm, now: now), rpm)
        }
        if let rpm = caller.project.rateLimits.rpm {
            let left = engine.remaining(limiter: .project(caller.project.id), limit: rpm, now: now)
            if best == nil || left < best!.left { best = (left, rpm) }
        }
        if let best {
            headers[Self.limitRequests] = String(best.limit)
            headers[Self.remainingRequests] = String(best.left)
        }
    }
}
