import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/resources`: upstream capacity in the tenant's pools.
struct ResourcesController {
    let env: AdminEnvironment
    let cipher: CredentialCipher
    let egress: UpstreamClients
    let oauth: OAuthCredentials

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/resources", use: create)
        admin.get("tenants/{tenant_id}/resources", use: list)
        admin.get("tenants/{tenant_id}/resources/{resource_id}", use: get)
        admin.patch("tenants/{tenant_id}/resources/{resource_id}", use: update)
        admin.post("tenants/{tenant_id}/resources/{resource_id}/suspend", use: suspend)
        admin.post("tenants/{tenant_id}/resources/{resource_id}/resume", use: resume)
        admin.post("tenants/{tenant_id}/resources/{resource_id}/revoke", use: revoke)
        admin.post("tenants/{tenant_id}/resources/{resource_id}/rotate-credential", use: rotate)
    }

    static let writable: Set<String> = [
        "pool_id", "name", "provider", "wire_format", "families", "base_url", "models", "owner", "attestation", "allowed_use", "cost_basis",
        "limits", "lease_mode", "plan", "probe", "credit_cap_micros", "cloud",
    ]

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let body = try await env.body(request)
        let pools = try await env.reads.read { conn in try conn.pools(tenantId: tenantId) }
        let who = try context.admin
        let new = try await prepare(body, tenantId: tenantId, pools: pools, who: who)
        try await env.changes.write { conn in
            try new.insert(conn)
            try env.audit(conn, who, tenant: tenantId, "resource.create", "resource", new.resource.id, Rep.resource(new.resource))
        }
        return JSONResponse.make(Rep.resource(new.resource), status: .created)
    }

    /// A resource ready to insert: validated, its secrets sealed, its digest kept.
    struct NewResource: Sendable {
        let resource: Resource
        let ciphertext: [UInt8]?
        let oauth: OAuthRow?
        let digest: String?

        func insert(_ conn: StoreConnection) throws {
            try conn.insertResource(resource, ciphertext: ciphertext)
            if let oauth { try conn.insertOAuth(oauth) }
            if let digest { try conn.setCredentialDigest(resourceId: resource.id, digest) }
        }
    }

    /// Reads and checks a new resource from a body (the API's and a policy file's), sealing its secrets.
    func prepare(_ body: ObjectReader, tenantId: String, pools: [Pool], who: AdminIdentity) async throws -> NewResource {
        let now = env.now
        var resource = Resource(
            id: Identifier.make("res"), tenantId: tenantId, poolId: "", name: "", kind: .apiKey, provider: .openai, wireFormat: .openai,
            baseURL: "", models: [], state: .pending, stateReason: "waiting for the health verifier", stateChangedAt: now,
            createdAt: now, updatedAt: now)
        var credential: String?
        var offer: OverflowOffer?
        var oauthSecrets: OAuthSecrets?
        try validating {
            try body.rejectUnknown(Self.writable.union(["kind", "credential", "offer_id", "oauth"]))
            resource.kind = try body.required("kind", Field.enumeration(ResourceKind.self))
            if resource.kind == .overflow {
                if body["credential"] != nil { throw FieldError("credential", "overflow resources use the operator's offer credential") }
                let offerId = try body.required("offer_id", Field.string(maxLength: 64))
                guard let found = env.catalog.current.offers[offerId], found.active else {
                    throw FieldError("offer_id", "no active overflow offer '\(offerId)'")
                }
                offer = found
                resource.offerId = offerId
            } else {
                if body["offer_id"] != nil { throw FieldError("offer_id", "applies to overflow resources only") }
                if let oauth = try body.optional("oauth", OAuthSecrets.converter) {
                    if body["credential"] != nil {
                        throw FieldError("credential", "an OAuth resource gets its access tokens from its token endpoint")
                    }
                    resource.oauth = oauth.settings
                    oauthSecrets = oauth
                } else if !Self.isPassthrough(body, kind: resource.kind) {
                    credential = try body.required("credential", Self.credentialField)
                }
            }
            try read(body, into: &resource, tenantId: tenantId, pools: pools, offer: offer)
            try Self.checkTerms(resource)
            if let credential { try Self.checkCredential(credential, provider: resource.provider) }
            if resource.leaseMode == .passthrough, let c = body["credential"], !c.isNull {
                throw FieldError("credential", "a passthrough seat stores no credential: each holder's client sends its own subscription token")
            }
        }
        // A Vertex AI resource's credential is a service account key: its tokens are minted with the
        // JWT-bearer grant and refreshed like any OAuth credential; the key file is the stored secret.
        var vertexAccount: String?
        var vertexKey: String?
        if resource.provider == .vertex, let key = credential {
            let account: ServiceAccount
            do { account = try ServiceAccount(json: key) } catch {
                throw ProblemError.invalid("credential", "the service account key \(error.description)")
            }
            resource.oauth = OAuthSettings(tokenURL: account.tokenURI, clientId: account.clientEmail, grant: .jwtBearer, scope: ServiceAccount.scope)
            oauthSecrets = OAuthSecrets(settings: resource.oauth!, clientSecret: key, refreshToken: nil)
            vertexAccount = account.clientEmail
            vertexKey = key
            credential = nil
        }
        var ciphertext: [UInt8]?
        if let credential {
            resource.credentialHint = Self.hint((credential, resource.provider))
            ciphertext = try cipher.seal(credential, context: "resource:\(resource.id)")
        } else if let offer {
            resource.credentialHint = offer.credentialHint
        }
        resource.egressExempt = who.isOperator && resource.kind != .overflow
        if !who.isOperator && resource.kind != .overflow { try await checkEgress(resource) }
        if let oauth = resource.oauth, !who.isOperator {
            do { try await egress.validate(oauth.tokenURL) } catch {
                throw ProblemError.invalid("oauth.token_url", "\(error.description); tenant resources must use the provider's public address")
            }
        }
        if resource.leaseMode == .passthrough { resource.credentialHint = "passthrough" }
        let oauthRow = try oauthSecrets.map { s in
            resource.credentialHint = credentialHint(vertexAccount ?? s.refreshToken ?? s.clientSecret ?? "")
            return OAuthRow(
                resourceId: resource.id, tenantId: tenantId,
                refreshCiphertext: try s.refreshToken.map { try cipher.seal($0, context: "oauth-refresh:\(resource.id)") },
                clientSecretCiphertext: try s.clientSecret.map { try cipher.seal($0, context: "oauth-secret:\(resource.id)") }, updatedAt: now)
        }
        let digest = (credential ?? vertexKey).map(cipher.digest)
        return NewResource(resource: resource, ciphertext: ciphertext, oauth: oauthRow, digest: digest)
    }

    /// A tenant admin's base URL must not point at an address the egress policy refuses.
    func checkEgress(_ r: Resource) async throws {
        do { try await egress.validate(r.baseURL) } catch {
            throw ProblemError.invalid("base_url", "\(error.description); tenant resources must use the provider's public address")
        }
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let q = request.query
        let filter = StoreConnection.ResourceFilter(
            poolId: try q.string("pool_id", maxLength: 64), kind: try q.enumeration("kind", ResourceKind.self),
            state: try q.enumeration("state", ResourceState.self), provider: try q.enumeration("provider", Provider.self),
            after: try q.string("cursor", maxLength: 200), limit: try q.limit + 1)
        let rows = try await env.reads.read { conn in try conn.resources(tenantId: tenantId, filter: filter) }
        let page = Array(rows.prefix(try q.limit))
        return JSONResponse.list(page.map(Rep.resource), nextCursor: rows.count > page.count ? page.last?.name : nil)
    }

    func load(_ tenantId: String, _ id: String) async throws -> Resource {
        guard let r = try await env.reads.read({ conn in try conn.resource(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("resource '\(id.prefix(64))'")
        }
        return r
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        return JSONResponse.make(Rep.resource(try await load(tenantId, try context.parameters.require("resource_id"))))
    }

    static func writableJSON(_ r: Resource) -> JSONValue {
        let full = Rep.resource(r).objectMembers ?? []
        var members = full.filter { writable.contains($0.0) && !$0.1.isNull }
        if r.kind == .overflow {
            members.removeAll { ["provider", "wire_format", "families", "base_url", "models", "cost_basis"].contains($0.0) }
        }
        return .object(members)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let current = try await load(tenantId, try context.parameters.require("resource_id"))
        guard current.state != .revoked else { throw ProblemError.conflict("the resource is revoked; revoked resources cannot change") }
        let body = try await env.body(request)
        if body["credential"] != nil {
            throw ProblemError.invalid("credential", "change a credential with POST .../rotate-credential")
        }
        for field in ["kind", "state", "offer_id"] where body[field] != nil {
            throw ProblemError.invalid(field, "cannot be changed; create a new resource instead")
        }
        let pools = try await env.reads.read { conn in try conn.pools(tenantId: tenantId) }
        var updated = current
        let offer = current.offerId.flatMap { env.catalog.current.offers[$0] }
        try validating {
            var base = Self.writableJSON(current)
            // A new provider or wire format brings its own default families unless the patch names them.
            if (body["provider"] != nil || body["wire_format"] != nil) && body["families"] == nil {
                base = .object((base.objectMembers ?? []).filter { $0.0 != "families" })
            }
            let merged = try ObjectReader(JSONMergePatch.apply(.object(body.members), to: base))
            try merged.rejectUnknown(Self.writable)
            try read(merged, into: &updated, tenantId: tenantId, pools: pools, offer: offer)
            // Resources from before plans existed keep working; a change of terms is checked.
            if updated.leaseMode != current.leaseMode || updated.plan != current.plan || updated.attestation != current.attestation {
                try Self.checkTerms(updated)
            }
        }
        let now = env.now
        updated.updatedAt = now
        let upstreamChanged =
            updated.baseURL != current.baseURL || updated.provider != current.provider || updated.wireFormat != current.wireFormat
            || updated.families != current.families
        let restart = upstreamChanged && !updated.manualHold
        if restart {
            updated.state = .pending
            updated.stateReason = "the upstream changed; waiting for the health verifier"
            updated.stateChangedAt = now
            updated.coolingUntil = nil
        }
        let who = try context.admin
        if upstreamChanged || body["base_url"] != nil {
            updated.egressExempt = who.isOperator
            if !who.isOperator { try await checkEgress(updated) }
        }
        try await env.changes.write { [updated] conn in
            try conn.updateResource(updated)
            if restart { try conn.restartVerification(id: updated.id) }
            try env.audit(
                conn, who, tenant: tenantId, "resource.update", "resource", updated.id, Rep.diff(Rep.resource(current), Rep.resource(updated)))
        }
        return JSONResponse.make(Rep.resource(updated))
    }

    /// Applies a manual state change and audits it.
    func transition(
        _ request: Request, _ context: AppRequestContext, action: String,
        _ change: @escaping @Sendable (inout Resource, String) throws -> Void
    ) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let id = try context.parameters.require("resource_id")
        let b = try await env.optionalBody(request)
        let note = try validating { () throws -> String in
            guard let b else { return "" }
            try b.rejectUnknown(["reason"])
            return try b.optional("reason", Field.text) ?? ""
        }
        let who = try context.admin
        let now = env.now
        let result = try await env.changes.write { conn -> Resource? in
            guard var r = try conn.resource(tenantId: tenantId, id: id) else { return nil }
            let before = r.state
            try change(&r, note.isEmpty ? "by \(who.actor)" : "by \(who.actor): \(note)")
            r.stateChangedAt = before == r.state ? r.stateChangedAt : now
            r.updatedAt = now
            try conn.updateResource(r)
            if r.state == .pending && before != .pending { try conn.restartVerification(id: r.id) }
            try env.audit(
                conn, who, tenant: tenantId, "resource.\(action)", "resource", id,
                ["from": .string(before.rawValue), "to": .string(r.state.rawValue), "reason": .string(note)])
            return r
        }
        guard let result else { throw ProblemError.notFound("resource '\(id.prefix(64))'") }
        return JSONResponse.make(Rep.resource(result))
    }

    @Sendable func suspend(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await transition(request, context, action: "suspend") { r, why in
            guard r.state != .revoked else { throw ProblemError.conflict("the resource is revoked") }
            r.manualHold = true
            r.state = .suspended
            r.stateReason = "suspended \(why)"
        }
    }

    @Sendable func resume(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await transition(request, context, action: "resume") { r, why in
            guard r.state != .revoked else { throw ProblemError.conflict("the resource is revoked; revoke is final") }
            guard r.manualHold else { throw ProblemError.conflict("the resource was not suspended by a person; nothing to resume") }
            r.manualHold = false
            r.state = .pending
            r.coolingUntil = nil
            r.stateReason = "resumed \(why); waiting for the health verifier"
        }
    }

    @Sendable func revoke(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await transition(request, context, action: "revoke") { r, why in
            r.state = .revoked
            r.stateReason = "revoked \(why)"
        }
    }
}
