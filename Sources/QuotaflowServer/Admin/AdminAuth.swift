import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// Resolves the bearer token of an admin call to the operator or a tenant admin.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let state: AppState

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.bearerToken, !token.isEmpty, token.utf8.count <= 256 else { throw ProblemError.unauthorized }
        let digest = SecretDigest.of(token)
        var context = context
        if SecretDigest.equal(digest, state.operatorDigest) {
            context.identity = .operatorToken
        } else {
            let key = try await state.db.read { conn in try conn.adminKey(digest: digest) }
            guard let key else { throw ProblemError.unauthorized }
            guard state.catalog.tenants[key.tenantId]?.status == .active else {
                throw ProblemError.forbidden("this tenant is disabled; ask the operator to enable it")
            }
            context.identity = .tenantAdmin(tenantId: key.tenantId, keyId: key.id, scope: key.scope)
            // A viewer reads; every other method changes something (or, for a policy plan, asks to).
            if key.scope == .viewer, request.method != .get, request.method != .head {
                throw ProblemError.forbidden("this admin key is a viewer key: it can read, not change; ask for an admin key")
            }
        }
        return try await next(request, context)
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
