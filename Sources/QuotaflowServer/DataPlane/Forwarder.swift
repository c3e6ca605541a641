import AsyncHTTPClient
import Hummingbird
import NIOCore
import NIOHTTP1
import QuotaflowCore

/// Sends an admitted request upstream and tries the next eligible resource when one fails before
/// anything reached the client: a 408/429/5xx or a failed connection cools the resource with the
/// evidence; a 401/403 or a missing route re-probes it (only a failed probe takes it out of
/// service); a 404 about the model cools that model there. Everything else is the client's answer.
struct Forwarder: Sendable {
    let config: AppConfig
    let clock: any WallClock
    let upstream: UpstreamCaller
    let policy: AdmissionPolicy
    let cooldowns: Cooldowns
    let verifier: Verifier
    let metrics: Metrics
    let answers: Answers
    let relay: StreamRelay
    let windows: WindowRecorder
    let oauth: OAuthCredentials

    static let retryable: Set<UInt> = [408, 429, 500, 502, 503, 504, 529]

    func forward(_ x: Exchange, client: HTTPFields, channel: any Channel) async throws -> Response {
        var lastFailure: Refusal?
        /// Answers that refused a resource's credential or route, each with its re-probe.
        var refusals: [(UpstreamAnswer, Task<ProbeOutcome?, Never>)] = []
        /// An OAuth token the provider refused on this resource: one refresh and one retry per resource.
        var refusedToken: (resourceId: String, token: String)?
        var refreshedFor: Set<String> = []
        /// Ends the request with `refusal` unless another resource can take it.
        func failOver(_ refusal: Refusal, attempt: Int) async throws {
            lastFailure = refusal
            if attempt < config.maxAttempts, await policy.retry(x, now: clock.nowMs()) { return }
            await x.finish(.init(status: refusal.status, reason: refusal.reason))
            throw refusal
        }
        while true {
            guard let admission = x.admission else { throw lastFailure ?? Refusal(.noCapacity, "no resource is available") }
            let resource = admission.resource
            let plan = x.plan
            let attempt = x.nextAttempt()
            var call = x.dialect.upstream(resource, model: plan.model, stream: x.parsed.stream, client: client)
            var body = plan.body
            let bedrock = resource.resource.provider == .bedrock
            if bedrock {
                try Bedrock.adapt(
                    &call, body: &body, resource: resource, endpoint: x.dialect.endpoint, model: plan.model, stream: x.parsed.stream, client: client,
                    nowMs: clock.nowMs())
                // AWS may echo a signed header back (a signature mismatch lists them): the session token too.
                if let keys = SigV4.Credentials(credential: resource.credential) {
                    x.useSecret(keys.secretAccessKey)
                    if let token = keys.sessionToken { x.useSecret(token) }
                }
            } else if resource.resource.provider == .azure {
                try Azure.adapt(&call, body: &body, resource: resource, endpoint: x.dialect.endpoint, model: plan.model)
            } else if resource.resource.provider == .vertex {
                try Vertex.adapt(&call, body: &body, resource: resource, endpoint: x.dialect.endpoint, model: plan.model, stream: x.parsed.stream)
            }
            let passthrough = resource.resource.leaseMode == .passthrough
            if passthrough {
                call.headers = Passthrough.headers(client, stream: x.parsed.stream)
                if let token = client[.authorization] { x.useSecret(token) }
            }
            let holder = passthrough ? x.caller.key.id : ""
            var oauthToken: String?
            if resource.resource.oauth != nil {
                do {
                    let token = try await oauth.token(for: resource, rejected: refusedToken?.resourceId == resource.id ? refusedToken?.token : nil)
                    oauthToken = token
                    x.useSecret(token)
                    for name in ["authorization", "x-api-key", "x-goog-api-key", "api-key"] { call.headers.remove(name: name) }
                    call.headers.add(name: "authorization", value: "Bearer \(token)")
                } catch {
                    cooldowns.cool(
                        resource, until: clock.nowMs() + config.defaultCooldownMs, status: nil, evidence: [("oauth", "\(error)")],
                        cause: "no OAuth access token")
                    try await failOver(Refusal(.upstreamError, "the resource's OAuth token could not be refreshed", status: 502), attempt: attempt)
                    continue
                }
            }
            let sentAt = clock.nowMs()
            // A stream's head arrives first and its body is relayed; other answers are read whole in one call.
            var streamed: HTTPClientResponse?
            var answer: UpstreamAnswer
            do throws(UpstreamFailure) {
                if x.parsed.stream {
                    var request = HTTPClientRequest(url: call.url)
                    request.method = call.method
                    request.headers = call.headers
                    if call.sendsBody { request.body = .bytes(ByteBuffer(bytes: body)) }
                    let response = try await upstream.stream(request, resource: resource, channel: channel, timeoutMs: config.firstByteTimeoutMs)
                    streamed = response
                    answer = UpstreamAnswer(status: response.status.code, headers: response.headers, body: nil)
                } else {
                    answer = try await upstream.fetch(
                        call, resource: resource, body: body, channel: channel, timeoutMs: config.firstByteTimeoutMs,
                        totalMs: config.totalTimeoutMs, limit: config.maxUpstreamResponseBytes)
                }
            } catch .cancelled {
                await x.finish(.init(status: 499, reason: .clientClosed, extraFlags: [.clientClosed], brokeOff: true))
                throw Refusal(.clientClosed, "the client closed the connection")
            } catch {
                let (why, refusal): (String, Refusal)
                switch error {
                case .egressDenied(let reason):
                    why = "the upstream address is not allowed: \(reason)"
                    refusal = Refusal(.upstreamError, "the resource's upstream address is refused by the egress policy", status: 502)
                case .timedOut:
                    why = "no answer within \(config.firstByteTimeoutMs) ms"
                    refusal = Refusal(.upstreamTimeout, "the upstream did not answer: \(why)")
                default:
                    why = "connection failed"
                    refusal = Refusal(.upstreamError, "the upstream did not answer: \(why)")
                }
                metrics.upstreamFailure(resource.resource.provider)
                cooldowns.cool(resource, until: clock.nowMs() + config.defaultCooldownMs, status: nil, evidence: [("error", why)], cause: why)
                try await failOver(refusal, attempt: attempt)
                continue
            }
            x.markFirstByte()
            let report = windows.observe(resource.resource, holder: holder, headers: answer.headers, now: clock.nowMs())
            metrics.upstreamLatency(resource.resource.provider, micros: (clock.nowMs() - sentAt) * 1000)
            if let error = answer.bodyError {
                if error is CancellationError || upstream.connections.isGone(channel) {
                    await x.finish(.init(status: 499, reason: .clientClosed, extraFlags: [.clientClosed], brokeOff: true))
                    throw Refusal(.clientClosed, "the client closed the connection")
                }
                await x.finish(.init(status: 502, reason: .upstreamError, extraFlags: [.upstreamBodyFailed], brokeOff: true))
                let tooLarge = error is NIOTooManyBytesError
                throw Refusal(
                    .upstreamError,
                    tooLarge ? "the upstream answer is larger than \(config.maxUpstreamResponseBytes) bytes" : "the upstream answer broke off",
                    status: 502)
            }
            // Bedrock answers a quota limit as 400 ServiceQuotaExceededException: a limit, not the client's error.
            let status: UInt =
                bedrock && answer.status == 400
                    && (answer.headers.first(name: "x-amzn-errortype")?.hasPrefix("ServiceQuotaExceededException") ?? false) ? 429 : answer.status
            // A 429's cause: a usage window's reset, a stated reset, or neither (see RateLimitCause).
            let limit = status == 429 ? RateLimitCause.of(report, headers: answer.headers, now: clock.nowMs(), config: config) : nil
            if let limit {
                let now = clock.nowMs()
                windows.limitHit(resource.resource, holder: holder, report: report, until: limit.until, cause: limit.cause, now: now)
                if passthrough {
                    // The holder's own plan is at its limit: only their use of it cools, and they see the provider's answer.
                    _ = policy.engine.coolHolder(resourceId: resource.id, holder: holder, until: limit.until, now: now)
                    if let streamed {
                        answer = UpstreamAnswer(
                            status: status, headers: answer.headers, body: (try? await streamed.body.collect(upTo: 1 << 20)) ?? ByteBuffer())
                    }
                    return await answers.complete(x, answer: answer)
                }
            }
            if Self.retryable.contains(status) {
                // Nothing has reached the client yet: record the evidence, cool the resource, try the next one.
                if let streamed { _ = try? await streamed.body.collect(upTo: 1 << 20) }
                let now = clock.nowMs()
                let cooling: RateLimitCause
                if let limit {
                    cooling = limit
                } else {
                    let info = RateLimitInfo.parse(answer.headers.map { ($0.name, $0.value) }, nowMs: now)
                    let until = min(info.resetAt ?? now + config.defaultCooldownMs, now + config.maxCooldownMs)
                    cooling = RateLimitCause(until: until, cause: "\(status) from upstream", evidence: info.evidence)
                }
                cooldowns.cool(
                    resource, until: max(cooling.until, now + 1000), status: Int(status), evidence: cooling.evidence, cause: cooling.cause)
                let refusal =
                    status == 429
                    ? Refusal(
                        .noCapacity, "every eligible resource is rate limited upstream",
                        retryAfterSeconds: policy.engine.retryAfterSeconds(policy.request(for: x, now: clock.nowMs())))
                    : Refusal(.upstreamError, "the upstream answered \(status)", status: 502)
                try await failOver(refusal, attempt: attempt)
                continue
            }
            // Bedrock streams in AWS's event-stream framing: re-emitted as the SSE the client expects.
            let eventStream = bedrock && (answer.headers.first(name: "content-type")?.contains("vnd.amazon.eventstream") ?? false)
            if eventStream { answer.headers.replaceOrAdd(name: "content-type", value: "text/event-stream") }
            if let streamed, (200..<300).contains(status),
                answer.headers.first(name: "content-type")?.lowercased().contains("text/event-stream") ?? false
            {
                let source = UpstreamBody(streamed.body, eventStream: eventStream)
                guard x.dialect.holdsPreamble else { return relay.response(status: status, headers: answer.headers, source: source, exchange: x) }
                // Nothing is sent until output starts: a failure before that goes to another resource.
                let opening = await Preamble.read(source, format: x.dialect.streamFormat, clock: clock, until: sentAt + config.firstByteTimeoutMs)
                switch opening {
                case .output:
                    return relay.response(status: status, headers: answer.headers, source: source, exchange: x)
                case .clientGone,
                    .broken where upstream.connections.isGone(channel):
                    await x.finish(.init(status: 499, reason: .clientClosed, extraFlags: [.clientClosed], brokeOff: true))
                    throw Refusal(.clientClosed, "the client closed the connection")
                default:
                    break
                }
                let (refusal, evidence, rateLimited) = opening.failure(firstByteTimeoutMs: config.firstByteTimeoutMs)
                let now = clock.nowMs()
                cooldowns.cool(
                    resource, until: now + config.defaultCooldownMs, status: rateLimited ? 429 : nil, evidence: evidence, cause: refusal.message)
                try await failOver(refusal, attempt: attempt)
                continue
            }
            // Anything else is read whole (a stream was asked for but a plain answer came back, say).
            if let streamed {
                answer = UpstreamAnswer(
                    status: status, headers: answer.headers,
                    body: (try? await streamed.body.collect(upTo: config.maxUpstreamResponseBytes)) ?? ByteBuffer())
            }
            if bedrock, let b = answer.body { answer.body = Bedrock.answer(b, status: status, headers: answer.headers, endpoint: x.dialect.endpoint) }
            if (300..<400).contains(status) {
                // Redirects are never followed: one could carry the resource's credential anywhere.
                await x.finish(.init(status: 502, reason: .upstreamError, extraFlags: [.upstreamRedirect]))
                throw Refusal(.upstreamError, "the upstream answered \(status) (a redirect); redirects are not followed", status: 502)
            }
            if status == 401, let token = oauthToken, !refreshedFor.contains(resource.id), attempt < config.maxAttempts {
                // The provider refused the access token: refresh it once and retry on the same resource.
                if let streamed { _ = try? await streamed.body.collect(upTo: 1 << 20) }
                refusedToken = (resource.id, token)
                refreshedFor.insert(resource.id)
                continue
            }
            if status == 401 || status == 403 || status == 404 {
                let body = answer.body.map { Array($0.readableBytesView) } ?? []
                switch UpstreamRefusal.classify(status: Int(status), body: body) {
                case .credential, .route:
                    // Perhaps the resource's credential or route, perhaps this request: re-probe the resource
                    // at once and meanwhile try another. Only a failed probe takes it out of service.
                    let verifier = self.verifier
                    refusals.append((answer, Task { await verifier.recheck(resource) }))
                    if attempt < config.maxAttempts, await policy.retry(x, now: clock.nowMs()) { continue }
                    for (refused, recheck) in refusals.reversed() where await recheck.value?.ok ?? true {
                        // The resource is fine: the refusal was about this request, and reaches the client verbatim.
                        return await answers.complete(x, answer: refused)
                    }
                    let failure = Refusal(
                        .upstreamError,
                        "the provider refused the credential or address of every resource that could serve this request; they failed their "
                            + "re-verification and are out of service until an admin fixes them", status: 502)
                    await x.finish(.init(status: failure.status, reason: failure.reason, extraFlags: [.resourceRefused]))
                    throw failure
                case .model:
                    cooldowns.coolModel(resource, model: plan.model, evidence: body)
                    if attempt < config.maxAttempts, await policy.retry(x, now: clock.nowMs()) { continue }
                case .request:
                    break
                }
            }
            return await answers.complete(x, answer: answer)
        }
    }
}
