import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QuotaflowCore

/// The provider-compatible endpoints. Each route names its dialect; a request is authenticated,
/// read, admitted and forwarded the same way whatever its dialect, and its errors answer in that
/// dialect's shape.
struct DataPlaneController: Sendable {
    let catalog: any CatalogHolder
    let config: AppConfig
    let clock: any WallClock
    let settler: Settler
    let policy: AdmissionPolicy
    let forwarder: Forwarder
    let endUsers: EndUserDigests

    func register(on router: Router<AppRequestContext>) {
        route(router, "v1/chat/completions", ChatCompletions())
        route(router, "v1/messages", Messages())
        router.get("v1/models") { request, context in
            let dialect: any Dialect = request.headers[Messages.version] != nil ? Messages() : ChatCompletions()
            return await answer(dialect, context) { try models(request, anthropic: dialect is Messages) }
        }
    }

    func route(_ router: Router<AppRequestContext>, _ path: RouterPath, _ dialect: some Dialect) {
        router.post(path) { request, context in await answer(dialect, context) { try await handle(request, context, dialect) } }
    }

    /// Runs a handler and answers any error in the dialect's shape: refusals as they are, anything
    /// else as a 500 naming the request id (and logged), never a bare error.
    func answer(_ dialect: any Dialect, _ context: AppRequestContext, _ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let refusal as Refusal {
            return dialect.response(for: refusal)
        } catch {
            context.logger.error("data plane error", metadata: ["error": "\(String(describing: type(of: error)))"])
            return dialect.response(for: Refusal(.upstreamError, "internal error; quote request id \(context.requestId)", status: 500))
        }
    }

    /// A refusal before there is an exchange (bad key, unreadable body): counted and logged, no ledger row.
    func refusedEarly(_ refusal: Refusal, _ context: AppRequestContext) -> Refusal {
        settler.metrics.refusedBeforeAuth(refusal.reason)
        context.logger.info("refused", metadata: ["status": .stringConvertible(refusal.status), "reason": .string(refusal.reason.rawValue)])
        return refusal
    }

    func handle(_ request: Request, _ context: AppRequestContext, _ dialect: some Dialect) async throws -> Response {
        let startNanos = DispatchTime.now().uptimeNanoseconds
        let now = clock.nowMs()
        let caller: Caller
        do { caller = try Caller.authenticate(request, catalog: catalog.current, now: now) } catch { throw refusedEarly(error, context) }
        let buffer: ByteBuffer
        do {
            buffer = try await BodyReader.read(
                request, limit: config.maxRequestBodyBytes, timeoutMs: config.bodyTimeoutMs, on: context.channel.eventLoop)
        } catch .tooLarge(let limit) {
            throw Refusal(.requestTooLarge, "the request body is larger than \(limit) bytes")
        } catch .tooSlow(let ms) {
            throw Refusal(.invalidRequest, "the request body did not arrive within \(ms) ms", status: 408)
        } catch .malformed(let why) {
            throw Refusal(.invalidRequest, why)
        }
        let parsed: ParsedRequest
        do { parsed = try dialect.parse(Array(buffer.readableBytesView), headers: request.headers) } catch { throw refusedEarly(error, context) }
        let limits = caller.requestLimits
        let price = caller.catalog.pricing[caller.tenant.id]?.price(for: parsed.model)
        let exchange = Exchange(
            settler: settler, dialect: dialect, caller: caller, parsed: parsed,
            plan: RequestPlan.make(parsed, model: parsed.model, outputLimit: limits.maxOutputTokens),
            listPrice: price ?? TokenPrice(inputPerMTok: 0, outputPerMTok: 0), requestId: context.requestId,
            userDigest: parsed.user.map { endUsers.digest($0, tenant: caller.tenant) }, startedAt: now, startNanos: startNanos)
        do {
            try await policy.admit(exchange, price: price, limits: limits, now: now)
            return try await forwarder.forward(exchange, client: request.headers, channel: context.channel)
        } catch let refusal as Refusal {
            exchange.refuse(refusal)
            throw refusal
        }
    }

    /// `GET /v1/models`: the models the caller may use, in OpenAI's shape, or Anthropic's when the
    /// request carries `anthropic-version` (the two share the path).
    func models(_ request: Request, anthropic: Bool) throws -> Response {
        let now = clock.nowMs()
        let caller = try Caller.authenticate(request, catalog: catalog.current, now: now)
        let grants = caller.catalog.grants(for: caller.chain, now: now)
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
        if anthropic {
            let data: [JSONValue] = allowed.map {
                ["type": "model", "id": .string($0), "display_name": .string($0), "created_at": "2025-01-01T00:00:00Z"]
            }
            return JSONResponse.make(["data": .array(data), "has_more": false, "first_id": .string(allowed.first), "last_id": .string(allowed.last)])
        }
        let data: [JSONValue] = allowed.map { ["id": .string($0), "object": "model", "created": 0, "owned_by": "quotaflow"] }
        return JSONResponse.make(["object": "list", "data": .array(data)])
    }
}

/// End-user identifiers, stored as keyed digests when the tenant asks (the default).
struct EndUserDigests: Sendable {
    let key: SymmetricKeyBox

    func digest(_ user: String, tenant: Tenant) -> String {
        guard tenant.settings.hashEndUsers else { return String(user.prefix(128)) }
        return "u_" + String(SecretDigest.keyed("\(tenant.id)\u{0}\(user)", key: key.key).prefix(32))
    }
}
