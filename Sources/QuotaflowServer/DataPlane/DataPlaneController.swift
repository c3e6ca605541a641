import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// The OpenAI- and Anthropic-compatible endpoints.
struct DataPlaneController {
    let runtime: Runtime
    var state: AppState { runtime.state }

    func register(on router: Router<AppRequestContext>) {
        router.post("v1/chat/completions") { req, ctx in try await chat(req, ctx, format: .openai, endpoint: "chat.completions") }
        router.post("v1/messages") { req, ctx in try await chat(req, ctx, format: .anthropic, endpoint: "messages") }
        router.get("v1/models", use: models)
    }

    static let userHeader = HTTPField.Name("x-quotaflow-user")!

    /// A refusal before there is an exchange (bad key, unreadable body): counted and logged, no ledger row.
    func refusedEarly(_ refusal: Refusal, _ context: AppRequestContext) -> Refusal {
        runtime.metrics.refusedBeforeAuth(refusal.reason)
        context.logger.info("refused", metadata: ["status": .stringConvertible(refusal.status), "reason": .string(refusal.reason.rawValue)])
        return refusal
    }

    // MARK: chat

    func chat(_ request: Request, _ context: AppRequestContext, format: WireFormat, endpoint: String) async throws -> Response {
        let startNanos = DispatchTime.now().uptimeNanoseconds
        let now = state.clock.nowMs()
        let caller: Caller
        do { caller = try Caller.authenticate(request, catalog: state.catalog, now: now) } catch {
            throw refusedEarly(error, context)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await BodyReader.read(
                request, limit: state.config.maxRequestBodyBytes, timeoutMs: state.config.bodyTimeoutMs, on: context.channel.eventLoop)
        } catch .tooLarge(let limit) {
            throw Refusal(.requestTooLarge, "the request body is larger than \(limit) bytes")
        } catch .tooSlow(let ms) {
            throw Refusal(.invalidRequest, "the request body did not arrive within \(ms) ms", status: 408)
        } catch .malformed(let why) {
            throw Refusal(.invalidRequest, why)
        }
        let parsed: ParsedRequest
        do {
            parsed = try ParsedRequest.parse(
                Array(buffer.readableBytesView), format: format, userHeader: request.headers[Self.userHeader])
        } catch {
            throw refusedEarly(error, context)
        }
        let userDigest = parsed.user.map { runtime.userDigest($0, tenant: caller.tenant) }
        let limits = caller.requestLimits
        let price = caller.catalog.pricing[caller.tenant.id]?.price(for: parsed.model)
        let plan = RequestPlan.make(parsed, model: parsed.model, outputLimit: limits.maxOutputTokens)
        let exchange = Exchange(
            runtime: runtime, caller: caller, parsed: parsed, plan: plan, listPrice: price ?? TokenPrice(inputPerMTok: 0, outputPerMTok: 0),
            requestId: context.requestId, endpoint: endpoint, userDigest: userDigest, startedAt: now, startNanos: startNanos)
        do {
            try await admit(exchange, price: price, limits: limits, now: now)
            return try await forward(exchange, request: request, context: context)
        } catch let refusal as Refusal {
            exchange.refuse(refusal)
            throw refusal
        }
    }

    /// Model, per-request and rate checks, then budget holds and a resource (with overage policies).
    func admit(_ x: Exchange, price: TokenPrice?, limits: RequestLimits, now: Int64) async throws {
        let caller = x.caller
        let parsed = x.parsed
        let enforce = caller.enforce
        var flags: [LedgerFlag] = []
        func fail(_ r: Refusal) throws {
            if enforce { throw r }
            flags.append(.wouldRefuse(r.reason))
        }
        let grants = runtime.grants(project: caller.chain, now: now)
        if !caller.allows(model: parsed.model, grantedModels: grants.models) {
            try fail(Refusal(.modelNotAllowed, "model '\(parsed.model.prefix(100))' is not allowed for this key"))
        }
        guard var listPrice = price else {
            throw Refusal(
                .modelNotAllowed, "no price is known for model '\(parsed.model.prefix(100))'; an admin must add it to the pricing table")
        }
        var plan = x.plan
        try check(plan, parsed: parsed, price: listPrice, limits: limits, fail: fail)
        // Rate limits: per key, per project, per user, and project tokens.
        var checks: [RateCheck] = []
        let project = caller.project
        if let rpm = caller.key.rpm ?? project.rateLimits.rpmPerKey {
            checks.append(.init(key: .key(caller.key.id), limit: rpm, cost: 1, what: "the request rate limit of this key (\(rpm)/min)"))
        }
        for p in caller.chain {
            if let rpm = p.rateLimits.rpm {
                checks.append(.init(key: .project(p.id), limit: rpm, cost: 1, what: "the request rate limit of project '\(p.name)' (\(rpm)/min)"))
            }
        }
        if let rpm = project.rateLimits.rpmPerUser, let user = x.userDigest {
            checks.append(.init(key: .user(projectId: project.id, user: user), limit: rpm, cost: 1, what: "the per-user request rate limit (\(rpm)/min)"))
        }
        let tokens = plan.shape.worstTokens
        var tokenCharges: [(LimiterKey, Int64, Int64)] = []
        for p in caller.chain {
            if let tpm = p.rateLimits.tpm {
                checks.append(.init(key: .projectTokens(p.id), limit: tpm, cost: tokens, what: "the token rate limit of project '\(p.name)' (\(tpm)/min)"))
                tokenCharges.append((.projectTokens(p.id), tpm, tokens))
            }
        }
        if !checks.isEmpty {
            switch runtime.engine.rateLimit(checks, now: now, enforce: enforce) {
            case .failure(let denial): throw Refusal(denial)
            case .success(let auditFlags): flags += auditFlags
            }
        }
        x.mutable.withLock { m in
            m.rateCharged = tokenCharges.map { (key: $0.0, limit: $0.1, tokens: $0.2) }
            m.flags = flags
        }
        // Budgets and a resource.
        var overage: (kind: OverageKind, projectId: String)?
        while true {
            let input = engineInput(x, plan: plan, price: listPrice, overage: overage, enforce: enforce, budgetGrants: grants.budget, now: now)
            switch runtime.engine.admit(input) {
            case .admitted(let a):
                x.mutable.withLock { m in
                    m.admission = a
                    m.plan = plan
                    m.listPrice = listPrice
                    m.overage = overage
                    m.flags += a.flags
                    if overage?.kind == .fallback { m.flags.append(.fallback) }
                }
                return
            case .denied(let denial):
                throw Refusal(denial)
            case .overBudget(let projectId, let detail, let periodEnd):
                guard overage == nil, let p = caller.catalog.projects[projectId] else {
                    throw Refusal(.quotaExceeded, detail, resetsAt: periodEnd)
                }
                switch p.budget.overagePolicy {
                case .reject:
                    throw Refusal(.quotaExceeded, detail, resetsAt: periodEnd)
                case .approval:
                    let approvalId = try await runtime.openApproval(caller: caller, projectId: projectId, model: parsed.model, detail: detail)
                    throw Refusal(
                        .approvalRequired,
                        "\(detail). An approval request (\(approvalId)) was opened; an admin can grant a temporary increase")
                case .fallbackModel:
                    guard let fb = p.budget.fallback, let fbPrice = caller.catalog.pricing[caller.tenant.id]?.price(for: fb.model) else {
                        throw Refusal(.quotaExceeded, detail, resetsAt: periodEnd)
                    }
                    let cap = [limits.maxOutputTokens, fb.maxOutputTokens].compactMap { $0 }.min()
                    plan = RequestPlan.make(parsed, model: fb.model, outputLimit: cap)
                    listPrice = fbPrice
                    try check(plan, parsed: parsed, price: listPrice, limits: limits, fail: fail)
                    overage = (kind: .fallback, projectId: projectId)
                case .overflow:
                    guard caller.project.overflowAllowed else { throw Refusal(.quotaExceeded, detail, resetsAt: periodEnd) }
                    overage = (kind: .overflow, projectId: projectId)
                }
            }
        }
    }

    /// Per-request limits on input size and worst-case cost.
    func check(_ plan: RequestPlan, parsed: ParsedRequest, price: TokenPrice, limits: RequestLimits, fail: (Refusal) throws -> Void) throws {
        if let maxInput = limits.maxInputTokens, parsed.estimatedInput > maxInput {
            try fail(
                Refusal(
                    .requestTooLarge, "the input is estimated at \(parsed.estimatedInput) tokens, over the limit of \(maxInput) per request"))
        }
        if let maxCost = limits.maxCostMicros {
            let worst = plan.shape.worstCost(at: price)
            if worst > maxCost {
                try fail(
                    Refusal(
                        .requestTooLarge,
                        "the worst-case cost of this request (\(Money.format(worst)) for \(parsed.estimatedInput) input tokens and \(plan.shape.explanation) of \(plan.model)) is over the per-request limit of \(Money.format(maxCost)); lower max_tokens"
                    ))
            }
        }
    }

    func engineInput(
        _ x: Exchange, plan: RequestPlan, price: TokenPrice, overage: (kind: OverageKind, projectId: String)?, enforce: Bool,
        budgetGrants: [String: Int64], now: Int64
    ) -> AdmissionRequest {
        AdmissionRequest(
            catalog: x.caller.catalog, tenant: x.caller.tenant, chain: x.caller.chain, key: x.caller.key, model: plan.model,
            wireFormat: x.parsed.format, holder: x.caller.holder(userDigest: x.userDigest), shape: plan.shape, listPrice: price, enforce: enforce, overage: overage, grants: budgetGrants,
            leaseIdleMs: x.caller.tenant.settings.leaseIdleSeconds * 1000, now: now)
    }

    // MARK: forwarding

    static let retryable: Set<UInt> = [408, 429, 500, 502, 503, 504, 529]

    func forward(_ x: Exchange, request: Request, context: AppRequestContext) async throws -> Response {
        let config = state.config
        var lastFailure: Refusal?
        /// Answers that refused a resource's credential or route, each with its re-probe.
        var refusals: [(UpstreamAnswer, Task<ProbeOutcome?, Never>)] = []
        while true {
            guard let admission = x.admission else { throw Refusal(.noCapacity, "no resource is available") }
            let resource = admission.resource
            let plan = x.plan
            x.mutable.withLock { $0.attempts += 1 }
            let attempt = x.mutable.withLock { $0.attempts }
            let url = Self.url(resource, format: x.parsed.format)
            let headers = Self.headers(resource, format: x.parsed.format, stream: x.parsed.stream, client: request.headers)
            let sentAt = state.clock.nowMs()
            // A stream's head arrives first and its body is relayed; other answers are read whole in one call.
            var streamed: HTTPClientResponse?
            let head: UpstreamAnswer
            do {
                if x.parsed.stream {
                    var upstream = HTTPClientRequest(url: url)
                    upstream.method = .POST
                    upstream.headers = headers
                    upstream.body = .bytes(ByteBuffer(bytes: plan.body))
                    let response = try await runtime.execute(
                        upstream, resource: resource, channel: context.channel, timeoutMs: config.firstByteTimeoutMs)
                    streamed = response
                    head = UpstreamAnswer(status: response.status.code, headers: response.headers, body: nil)
                } else {
                    head = try await runtime.fetch(
                        url: url, resource: resource, headers: headers, body: plan.body, channel: context.channel, timeoutMs: config.firstByteTimeoutMs,
                        limit: config.maxUpstreamResponseBytes)
                }
            } catch is CancellationError {
                await x.finish(.init(status: 499, reason: .clientClosed, usage: nil, servedModel: nil, extraFlags: [.clientClosed], brokeOff: true))
                throw Refusal(.clientClosed, "the client closed the connection")
            } catch let denied as UpstreamClients.Denied {
                // The resource's address is refused by the egress policy: it cannot serve anyone.
                let why = "the upstream address is not allowed: \(denied.description)"
                runtime.coolDown(resource, until: state.clock.nowMs() + config.defaultCooldownMs, status: nil, evidence: [("egress", why)], cause: why)
                lastFailure = Refusal(.upstreamError, "the resource's upstream address is refused by the egress policy", status: 502)
                if attempt < config.maxAttempts, retry(x) { continue }
                await x.finish(.init(status: lastFailure!.status, reason: lastFailure!.reason, usage: nil, servedModel: nil))
                throw lastFailure!
            } catch {
                let timedOut = "\(error)".lowercased().contains("deadline") || "\(error)".lowercased().contains("timeout")
                let why = timedOut ? "no answer within \(config.firstByteTimeoutMs) ms" : "connection failed"
                runtime.metrics.upstreamFailure(resource.resource.provider)
                runtime.coolDown(resource, until: state.clock.nowMs() + config.defaultCooldownMs, status: nil, evidence: [("error", why)], cause: why)
                lastFailure = Refusal(timedOut ? .upstreamTimeout : .upstreamError, "the upstream did not answer: \(why)")
                if attempt < config.maxAttempts, retry(x) { continue }
                await x.finish(.init(status: lastFailure!.status, reason: lastFailure!.reason, usage: nil, servedModel: nil))
                throw lastFailure!
            }
            x.markFirstByte()
            runtime.metrics.upstreamLatency(resource.resource.provider, micros: (state.clock.nowMs() - sentAt) * 1000)
            if let error = head.bodyError {
                if error is CancellationError || runtime.connections.isGone(context.channel) {
                    await x.finish(.init(status: 499, reason: .clientClosed, usage: nil, servedModel: nil, extraFlags: [.clientClosed], brokeOff: true))
                    throw Refusal(.clientClosed, "the client closed the connection")
                }
                await x.finish(
                    .init(status: 502, reason: .upstreamError, usage: nil, servedModel: nil, extraFlags: [.upstreamBodyFailed], brokeOff: true))
                let tooLarge = error is NIOTooManyBytesError
                throw Refusal(
                    .upstreamError,
                    tooLarge ? "the upstream answer is larger than \(config.maxUpstreamResponseBytes) bytes" : "the upstream answer broke off", status: 502)
            }
            let status = head.status
            if Self.retryable.contains(status) {
                // Nothing has reached the client yet: record the evidence, cool the resource, try the next one.
                let headers = head.headers.map { ($0.name, $0.value) }
                if let streamed { _ = try? await streamed.body.collect(upTo: 1 << 20) }
                let info = RateLimitInfo.parse(headers, nowMs: state.clock.nowMs())
                let now = state.clock.nowMs()
                let until = min(info.resetAt ?? now + config.defaultCooldownMs, now + config.maxCooldownMs)
                runtime.coolDown(
                    resource, until: max(until, now + 1000), status: Int(status), evidence: info.evidence,
                    cause: "\(status) from upstream")
                lastFailure =
                    status == 429
                    ? Refusal(
                        .noCapacity, "every eligible resource is rate limited upstream",
                        retryAfterSeconds: runtime.engine.retryAfterSeconds(engineInput(x, now: state.clock.nowMs())))
                    : Refusal(.upstreamError, "the upstream answered \(status)", status: 502)
                if attempt < config.maxAttempts, retry(x) { continue }
                await x.finish(.init(status: lastFailure!.status, reason: lastFailure!.reason, usage: nil, servedModel: nil))
                throw lastFailure!
            }
            if let streamed, (200..<300).contains(status),
                head.headers.first(name: "content-type")?.lowercased().contains("text/event-stream") ?? false
            {
                return StreamRelay(exchange: x, runtime: runtime).response(streamed, context: context)
            }
            // Anything else is read whole (a stream was asked for but a plain answer came back, say).
            var answer = head
            if let streamed {
                answer = UpstreamAnswer(
                    status: status, headers: head.headers, body: (try? await streamed.body.collect(upTo: config.maxUpstreamResponseBytes)) ?? ByteBuffer())
            }
            if (300..<400).contains(status) {
                // Redirects are never followed: one could carry the resource's credential anywhere.
                await x.finish(.init(status: 502, reason: .upstreamError, usage: nil, servedModel: nil, extraFlags: [.upstreamRedirect]))
                throw Refusal(.upstreamError, "the upstream answered \(status) (a redirect); redirects are not followed", status: 502)
            }
            if status == 401 || status == 403 || status == 404 {
                let body = answer.body.map { Array($0.readableBytesView) } ?? []
                switch UpstreamRefusal.classify(status: Int(status), body: body) {
                case .credential, .route:
                    // Perhaps the resource's credential or route, perhaps this request: re-probe the resource
                    // at once and meanwhile try another. Only a failed probe takes it out of service.
                    let verifier = runtime.verifier
                    refusals.append((answer, Task { await verifier.recheck(resource) }))
                    if attempt < config.maxAttempts, retry(x) { continue }
                    for (refused, recheck) in refusals.reversed() where await recheck.value?.ok ?? true {
                        // The resource is fine: the refusal was about this request, and reaches the client verbatim.
                        return await complete(x, answer: refused)
                    }
                    let failure = Refusal(
                        .upstreamError,
                        "the provider refused the credential or address of every resource that could serve this request; they failed their "
                            + "re-verification and are out of service until an admin fixes them", status: 502)
                    await x.finish(.init(status: failure.status, reason: failure.reason, usage: nil, servedModel: nil, extraFlags: [.resourceRefused]))
                    throw failure
                case .model:
                    runtime.coolModel(resource, model: x.plan.model, evidence: body)
                    if attempt < config.maxAttempts, retry(x) { continue }
                case .request:
                    break
                }
            }
            return await complete(x, answer: answer)
        }
    }

    /// The engine's view of this request as it stands (model, price and overage after admission).
    func engineInput(_ x: Exchange, now: Int64) -> AdmissionRequest {
        let m = x.mutable.withLock { $0 }
        return engineInput(
            x, plan: m.plan, price: m.listPrice, overage: m.overage, enforce: x.caller.enforce,
            budgetGrants: runtime.grants(project: x.caller.chain, now: now).budget, now: now)
    }

    /// Frees the failed resource and picks another; `false` when none is left.
    func retry(_ x: Exchange) -> Bool {
        guard var a = x.admission else { return false }
        let m = x.mutable.withLock { $0 }
        runtime.engine.release(resourceId: a.resource.id, estimatedTokens: m.plan.shape.worstTokens, actualTokens: 0, now: state.clock.nowMs())
        let input = engineInput(
            x, plan: m.plan, price: m.listPrice, overage: m.overage, enforce: x.caller.enforce,
            budgetGrants: runtime.grants(project: x.caller.chain, now: state.clock.nowMs()).budget, now: state.clock.nowMs())
        let found = runtime.engine.reselect(&a, request: input)
        x.mutable.withLock { $0.admission = a }
        return found
    }

    /// A non-streaming answer, read whole: meter it, commit the row, then answer (with the
    /// resource's credential redacted from whatever the upstream echoed).
    func complete(_ x: Exchange, answer: UpstreamAnswer) async -> Response {
        let redactor = x.admission?.resource.redactor ?? .none
        var body = answer.body ?? ByteBuffer()
        if let scrubbed = body.withUnsafeReadableBytes({ redactor.redacted($0) }) { body = ByteBuffer(bytes: scrubbed) }
        let status = Int(answer.status)
        var usage: TokenUsage?
        var served: String?
        if (200..<300).contains(status) {
            (usage, served) = Self.usage(of: body, format: x.parsed.format)
        }
        let ok = (200..<300).contains(status)
        await x.finish(.init(status: status, reason: ok ? nil : .upstreamError, usage: usage, servedModel: served))
        var headers = HTTPFields()
        headers[.contentType] = answer.headers.first(name: "content-type") ?? "application/json"
        runtime.addBudgetHeaders(&headers, exchange: x)
        if let upstreamId = answer.headers.first(name: "x-request-id") ?? answer.headers.first(name: "request-id") {
            headers[HTTPField.Name("x-upstream-request-id")!] = redactor.redact(upstreamId)
        }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: body))
    }

    static func usage(of body: ByteBuffer, format: WireFormat) -> (TokenUsage?, String?) {
        body.withUnsafeReadableBytes { buffer -> (TokenUsage?, String?) in
            guard let scan = try? JSONObjectScan.scan(buffer) else { return (nil, nil) }
            let model = scan.member("model").flatMap { JSONObjectScan.value(of: $0, in: buffer)?.stringValue }
            guard let member = scan.member("usage"), let usage = JSONObjectScan.value(of: member, in: buffer) else { return (nil, model) }
            switch format {
            case .openai: return (UsageReader.openAI(usage), model)
            case .anthropic: return (UsageReader.anthropic(usage), model)
            }
        }
    }

    static func url(_ r: RoutableResource, format: WireFormat) -> String {
        format == .openai ? r.chatURL : r.messagesURL
    }

    static func headers(_ r: RoutableResource, format: WireFormat, stream: Bool, client: HTTPFields) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add(name: "content-type", value: "application/json")
        h.add(name: "accept", value: stream ? "text/event-stream" : "application/json")
        h.add(name: "user-agent", value: "quotaflow")
        switch format {
        case .openai:
            h.add(name: "authorization", value: "Bearer \(r.credential)")
        case .anthropic:
            h.add(name: "x-api-key", value: r.credential)
            h.add(name: "anthropic-version", value: client[HTTPField.Name("anthropic-version")!] ?? "2023-06-01")
            if let beta = client[HTTPField.Name("anthropic-beta")!] { h.add(name: "anthropic-beta", value: beta) }
        }
        return h
    }

    // MARK: models

    @Sendable func models(_ request: Request, context: AppRequestContext) async throws -> Response {
        let now = state.clock.nowMs()
        let caller = try Caller.authenticate(request, catalog: state.catalog, now: now)
        let grants = runtime.grants(project: caller.chain, now: now)
        let pools = Set(caller.project.poolIds)
        let pricing = caller.catalog.pricing[caller.tenant.id]?.entries.map(\.model).filter { !$0.contains("*") } ?? []
        var names = Set<String>()
        for r in caller.catalog.resourcesByTenant[caller.tenant.id] ?? [] where pools.contains(r.resource.poolId) && r.resource.state.isRoutable {
            if r.resource.kind == .overflow && !caller.project.overflowAllowed { continue }
            for pattern in r.resource.models {
                if pattern.contains("*") {
                    for m in pricing where ModelPattern.matches(pattern: pattern, m) { names.insert(m) }
                } else {
                    names.insert(pattern)
                }
            }
        }
        let allowed = names.filter { caller.allows(model: $0, grantedModels: grants.models) }.sorted()
        if request.headers[HTTPField.Name("anthropic-version")!] != nil {
            let data: [JSONValue] = allowed.map {
                ["type": "model", "id": .string($0), "display_name": .string($0), "created_at": "2025-01-01T00:00:00Z"]
            }
            return JSONResponse.make([
                "data": .array(data), "has_more": false, "first_id": .string(allowed.first), "last_id": .string(allowed.last),
            ])
        }
        let data: [JSONValue] = allowed.map { ["id": .string($0), "object": "model", "created": 0, "owned_by": "quotaflow"] }
        return JSONResponse.make(["object": "list", "data": .array(data)])
    }
}

/// The status, headers and (for non-streaming answers) body of an upstream response.
struct UpstreamAnswer: Sendable {
    let status: UInt
    let headers: HTTPHeaders
    let body: ByteBuffer?
    /// Why the body could not be read after the head arrived.
    var bodyError: (any Error)? = nil
}

