import Foundation
import HTTPTypes
import HashTreeCollections
import Hummingbird
import Logging
import NIOCore
import QuotaflowCore
import QuotaflowStore

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
    /// Where stored responses are looked up (the ledger).
    let reads: Database
    /// Whether this replica may serve (see `AppState.serving`).
    let serving: @Sendable () -> Bool

    func register(on router: Router<AppRequestContext>) {
        route(router, "v1/chat/completions", ChatCompletions())
        route(router, "v1/messages", Messages())
        route(router, "v1/messages/count_tokens", CountTokens())
        route(router, "v1/responses", Responses())
        route(router, "v1/responses/compact", Responses(compact: true))
        route(router, "v1/embeddings", Embeddings())
        let openAI = ChatCompletions()
        router.get("v1/responses/{response_id}") { request, context in
            await answer(openAI, context) { try await stored(request, context, .get) }
        }
        router.delete("v1/responses/{response_id}") { request, context in
            await answer(openAI, context) { try await stored(request, context, .delete) }
        }
        router.post("v1/responses/{response_id}/cancel") { request, context in
            await answer(openAI, context) { try await stored(request, context, .cancel) }
        }
        router.get("v1/responses/{response_id}/input_items") { request, context in
            await answer(openAI, context) { try await stored(request, context, .inputItems) }
        }
        let google = Gemini(method: .generate, model: "")
        router.get("v1/models") { request, context in
            // OpenAI, Anthropic and Google (API version v1) share the path: the latter two say who they are.
            let shape = Self.listShape(request)
            return await answer(shape.dialect, context) { try models(request, family: shape) }
        }
        router.get("v1/models/{action}") { request, context in
            let shape = Self.listShape(request)
            return await answer(shape.dialect, context) { try model(request, id: try context.parameters.require("action"), shape: shape) }
        }
        router.get("v1beta/models") { request, context in await answer(google, context) { try models(request, family: .gemini) } }
        router.get("v1beta/models/{action}") { request, context in
            await answer(google, context) { try model(request, id: try context.parameters.require("action"), shape: .gemini) }
        }
        // google-genai defaults to API version v1, Gemini CLI to v1beta; both go upstream as v1beta.
        for version in ["v1", "v1beta"] {
            router.post(RouterPath("\(version)/models/{action}")) { request, context in
                await answer(google, context) {
                    let gemini = try Gemini.route(try context.parameters.require("action"), alt: request.uri.queryParameters["alt"].map(String.init))
                    return try await handle(request, context, gemini, queryKey: true)
                }
            }
        }
    }

    /// Whose model list `GET /v1/models` is asked for: Google's clients send `x-goog-api-key` (or
    /// `?key=`), Anthropic's `anthropic-version` or `x-api-key`.
    static func listShape(_ request: Request) -> ListShape {
        if request.headers[Caller.googleKeyHeader] != nil || request.uri.queryParameters["key"] != nil { return .gemini }
        if request.headers[Messages.version] != nil || request.headers[Caller.apiKeyHeader] != nil { return .anthropic }
        return .openAI
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

    func handle(_ request: Request, _ context: AppRequestContext, _ dialect: some Dialect, queryKey: Bool = false) async throws -> Response {
        let startNanos = DispatchTime.now().uptimeNanoseconds
        guard serving() else {
            throw refusedEarly(
                Refusal(
                    .noCapacity, "this replica has lost its hold on the database and serves nothing it cannot prove; retry", status: 503,
                    retryAfterSeconds: 1),
                context)
        }
        let now = clock.nowMs()
        let caller: Caller
        do { caller = try Caller.authenticate(request, catalog: catalog.current, now: now, queryKey: queryKey) } catch {
            throw refusedEarly(error, context)
        }
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
        var parsed: ParsedRequest
        do { parsed = try dialect.parse(Array(buffer.readableBytesView), headers: request.headers) } catch { throw refusedEarly(error, context) }
        parsed.session = Sessions.identify(parsed, headers: request.headers)
        if dialect.family == .messages, let betas = request.headers[Messages.beta] {
            parsed.betas = betas.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        }
        let pinned = try await parsed.previousResponseId.asyncMap { try await pin($0, caller: caller).resourceId }
        return try await run(dialect, parsed, caller: caller, pinned: pinned, request, context, now: now, startNanos: startNanos)
    }

    /// Admits and forwards a parsed request.
    func run(
        _ dialect: some Dialect, _ parsed: ParsedRequest, caller: Caller, pinned: String?, _ request: Request, _ context: AppRequestContext,
        now: Int64, startNanos: UInt64
    ) async throws -> Response {
        let limits = caller.requestLimits
        let price = caller.catalog.pricing[caller.tenant.id]?.price(for: parsed.model)
        let exchange = Exchange(
            settler: settler, dialect: dialect, caller: caller, parsed: parsed,
            plan: RequestPlan.make(
                parsed, model: parsed.model, outputLimit: limits.maxOutputTokens, free: dialect.isFree, passthrough: caller.passthrough),
            listPrice: price ?? TokenPrice(inputPerMTok: 0, outputPerMTok: 0), requestId: context.requestId,
            userDigest: parsed.user.map { endUsers.digest($0, tenant: caller.tenant) }, startedAt: now, startNanos: startNanos,
            pinnedResourceId: pinned)
        do {
            try await policy.admit(exchange, price: price, limits: limits, now: now)
            return try await forwarder.forward(exchange, client: request.headers, channel: context.channel)
        } catch let refusal as Refusal {
            exchange.refuse(refusal)
            throw refusal
        }
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
