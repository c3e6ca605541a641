import HTTPTypes
import HashTreeCollections
import Hummingbird
import QuotaflowCore

/// An authenticated data-plane caller and the policy that applies to it (a class: it is passed around a lot).
final class Caller: Sendable {
    let catalog: Catalog
    let key: DataPlaneKey
    let tenant: Tenant
    /// The key's project and its ancestors, innermost first.
    let chain: [Project]
    /// The client sent its holder's own subscription token (and the Quotaflow key in
    /// `x-quotaflow-key`): only a passthrough seat may take the request, with that token.
    let passthrough: Bool

    init(catalog: Catalog, key: DataPlaneKey, tenant: Tenant, chain: [Project], passthrough: Bool = false) {
        self.catalog = catalog
        self.key = key
        self.tenant = tenant
        self.chain = chain
        self.passthrough = passthrough
    }

    var project: Project { chain[0] }

    /// Audit mode anywhere up the chain (or on the tenant) records instead of refusing.
    var enforce: Bool {
        if tenant.settings.enforcement == .audit { return false }
        for p in chain {
            if let e = p.enforcement { return e == .enforce }
        }
        return true
    }

    /// Project limits tightened by the tenant's global limits and every ancestor's.
    var requestLimits: RequestLimits {
        var limits = tenant.settings.requestLimits
        for p in chain { limits = limits.tightened(by: p.requestLimits) }
        return limits
    }

    static let apiKeyHeader = HTTPField.Name("x-api-key")!
    static let googleKeyHeader = HTTPField.Name("x-goog-api-key")!
    /// The Quotaflow key of a passthrough request, whose `Authorization` carries the holder's own subscription token.
    static let passthroughKeyHeader = HTTPField.Name("x-quotaflow-key")!

    /// Finds the key from `Authorization: Bearer`, `x-api-key` or `x-goog-api-key` (and, for the
    /// Gemini API, `?key=`) and checks it is usable. The first non-empty one counts: Gemini CLI sends
    /// an empty `x-goog-api-key` when the key travels in a custom `Authorization` header. With
    /// `x-quotaflow-key`, the key is that header's and the request is a passthrough: its
    /// `Authorization` is the holder's own subscription token, which must be there.
    static func authenticate(
        _ request: Request, catalog: Catalog, now: Int64, queryKey: Bool = false, passthroughToken: Bool = true
    ) throws(Refusal) -> Caller {
        let passthroughKey = request.headers[passthroughKeyHeader]?.trimmingWhitespace()
        let candidates: [String?] =
            passthroughKey.map { [$0] } ?? [
                request.bearerToken, request.headers[apiKeyHeader]?.trimmingWhitespace(), request.headers[googleKeyHeader]?.trimmingWhitespace(),
                queryKey ? request.uri.queryParameters["key"].map(String.init) : nil,
            ]
        guard let token = candidates.compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw Refusal(.invalidKey, "send your Quotaflow key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'")
        }
        if passthroughToken, passthroughKey != nil {
            if (request.headers[.authorization] ?? "").trimmingWhitespace().isEmpty {
                throw Refusal(
                    .invalidKey,
                    "a request with x-quotaflow-key passes your own subscription through: send its token in Authorization, as your client does")
            }
            // Whatever rides in the provider's own headers goes upstream: never a Quotaflow key.
            for value in [request.bearerToken, request.headers[apiKeyHeader], request.headers[googleKeyHeader]].compactMap({ $0 }) {
                let digest = SecretDigest.of(value.trimmingWhitespace())
                if catalog.keys[digest] != nil || catalog.revoked[digest] != nil {
                    throw Refusal(
                        .invalidRequest,
                        "a Quotaflow key goes in x-quotaflow-key only; Authorization carries your own subscription token, which goes to the provider")
                }
            }
        }
        guard token.utf8.count <= 256 else { throw Refusal(.invalidKey, "the key is not valid") }
        let digest = SecretDigest.of(token)
        guard let key = catalog.keys[digest] else {
            if catalog.revoked[digest] != nil { throw Refusal(.keyRevoked, "this key was revoked; ask your admin for a new one") }
            throw Refusal(.invalidKey, "the key is not valid")
        }
        if let until = key.validUntil, now >= until {
            throw Refusal(.keyExpired, "this key was rotated and its grace period has ended; use the new key")
        }
        if let expires = key.expiresAt, now >= expires {
            throw Refusal(.keyExpired, "this seat expired at \(Timestamp.format(expires)); ask your admin to extend it")
        }
        guard let tenant = catalog.tenants[key.tenantId], tenant.status == .active else {
            throw Refusal(.tenantDisabled, "this organisation's access is disabled")
        }
        let chain = catalog.projectChain(key.projectId)
        guard let project = chain.first, project.tenantId == tenant.id else { throw Refusal(.invalidKey, "the key is not valid") }
        guard chain.allSatisfy({ $0.status == .active }) else {
            throw Refusal(.projectArchived, "project '\(project.name)' is archived")
        }
        return Caller(catalog: catalog, key: key, tenant: tenant, chain: chain, passthrough: passthroughKey != nil)
    }

    /// Whether `model` is allowed by the key's own list, and by every project up the chain or by an
    /// approval's grant. A grant widens the projects' lists, never a key's or seat's own.
    func allows(model: String, grantedModels: Set<String>) -> Bool {
        guard ModelPattern.allowed(model, by: key.allowedModels) else { return false }
        if grantedModels.contains(where: { ModelPattern.matches(pattern: $0, model) }) { return true }
        return chain.allSatisfy { ModelPattern.allowed(model, by: $0.allowedModels) }
    }

    /// The holder of an exclusive seat lease: the key, or a user within the key.
    func holder(userDigest: String?) -> String {
        userDigest.map { "\(key.id)/\($0)" } ?? key.id
    }
}
