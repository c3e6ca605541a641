import HTTPTypes
import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// Resolves the bearer token of an admin call to the operator or a tenant admin.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let state: AppState

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.bearerToken else { throw ProblemError.unauthorized }
        // In a fleet, an admin sees every change committed anywhere before the call, whichever
        // replica the load balancer picked (a tenant made on one is at once usable on another).
        try await state.catchUp()
        let identity = try await Self.identify(token: token, state: state)
        try Self.checkScope(identity, method: request.method)
        var context = context
        context.identity = identity
        return try await next(request, context)
    }

    /// Who a token is: the operator, or a live admin key of an enabled tenant. The console's
    /// sign-in asks the same question.
    static func identify(token: String, state: AppState) async throws -> AdminIdentity {
        guard !token.isEmpty, token.utf8.count <= 256 else { throw ProblemError.unauthorized }
        let digest = SecretDigest.of(token)
        if SecretDigest.equal(digest, state.operatorDigest) { return .operatorToken }
        let key = try await state.db.read { conn in try conn.adminKey(digest: digest) }
        guard let key else { throw ProblemError.unauthorized }
        guard state.catalog.tenants[key.tenantId]?.status == .active else {
            throw ProblemError.forbidden("this tenant is disabled; ask the operator to enable it")
        }
        return .tenantAdmin(tenantId: key.tenantId, keyId: key.id, scope: key.scope)
    }

    /// A viewer reads; every other method changes something (or, for a policy plan, asks to).
    static func checkScope(_ identity: AdminIdentity, method: HTTPRequest.Method) throws {
        if identity.isViewer, method != .get, method != .head {
            throw ProblemError.forbidden("this admin key is a viewer key: it can read, not change; ask for an admin key")
        }
    }
}

extension Request {
    /// The token of `Authorization: Bearer <token>`.
    var bearerToken: String? {
        guard let header = headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1]).trimmingWhitespace()
    }
}

extension AppRequestContext {
    var admin: AdminIdentity {
        get throws {
            guard let identity else { throw ProblemError.unauthorized }
            return identity
        }
    }

    func requireOperator() throws {
        guard try admin.isOperator else { throw ProblemError.forbidden("this call needs the operator token, not a tenant admin key") }
    }

    /// The `{tenant_id}` of the path, if the caller may see that tenant. Other tenants answer 404,
    /// exactly like tenants that do not exist.
    func tenantScope(_ catalog: any CatalogHolder) throws -> String {
        let tenantId = try parameters.require("tenant_id")
        switch try admin {
        case .operatorToken:
            guard catalog.current.tenants[tenantId] != nil else { throw ProblemError.notFound("tenant '\(tenantId.prefix(64))'") }
        case .tenantAdmin(let own, _, _):
            guard own == tenantId else { throw ProblemError.notFound("tenant '\(tenantId.prefix(64))'") }
        }
        return tenantId
    }
}
