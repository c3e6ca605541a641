import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// A resource's credential: how it is checked and hinted, and `POST .../rotate-credential` (a new
/// static credential, new OAuth secrets, or a new service account key).
extension ResourcesController {
    /// The hint people recognise a credential by: its last four characters, or for an AWS key pair
    /// the access key id's (the secret and the session token are never part of it).
    static func hint(_ c: (credential: String, provider: Provider)) -> String {
        if c.provider == .bedrock, let keys = SigV4.Credentials(credential: c.credential) { return credentialHint(keys.accessKeyId) }
        return credentialHint(c.credential)
    }

    /// A Bedrock credential is an AWS access key pair (and a session token for temporary credentials).
    static func checkCredential(_ credential: String, provider: Provider) throws {
        if provider == .bedrock, SigV4.Credentials(credential: credential) == nil {
            throw FieldError(
                "credential", "a Bedrock credential is ACCESS_KEY_ID:SECRET_ACCESS_KEY, or ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN")
        }
    }

    /// Whether a create body asks for a passthrough seat (its plan is personal, or it says so).
    static func isPassthrough(_ b: ObjectReader, kind: ResourceKind) -> Bool {
        if case .string("passthrough") = b["lease_mode"] { return true }
        if b["lease_mode"] == nil || b["lease_mode"]?.isNull == true, kind == .seat, case .object(let plan) = b["plan"] {
            return plan.contains { $0.0 == "kind" && $0.1 == .string("personal") }
        }
        return false
    }

    @Sendable func rotate(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let id = try context.parameters.require("resource_id")
        let body = try await env.body(request)
        let current = try await load(tenantId, id)
        guard current.kind != .overflow else { throw ProblemError.conflict("overflow resources use the operator's offer credential") }
        guard current.state != .revoked else { throw ProblemError.conflict("the resource is revoked") }
        guard current.leaseMode != .passthrough else {
            throw ProblemError.conflict("a passthrough seat stores no credential: each holder's client sends its own")
        }
        // An OAuth resource takes new secrets (a refresh token, a client secret); others a new credential.
        var credential: String?
        var secrets: (refresh: String?, clientSecret: String?)?
        var account: ServiceAccount?
        try validating {
            if current.provider == .vertex {
                // A new service account key: its account and token endpoint replace the old ones.
                try body.rejectUnknown(["credential"])
                let key = try body.required("credential", Self.credentialField)
                do throws(ServiceAccount.Invalid) { account = try ServiceAccount(json: key) } catch {
                    throw FieldError("credential", "the service account key \(error.description)")
                }
                secrets = (nil, key)
            } else if current.oauth != nil {
                try body.rejectUnknown(["oauth"])
                let o = try body.required("oauth") { value, name in try ObjectReader(value, path: name) }
                try o.rejectUnknown(["refresh_token", "client_secret"])
                let s = (
                    try o.optional("refresh_token", Field.string(maxLength: 8192)), try o.optional("client_secret", Field.string(maxLength: 4096))
                )
                if s.0 == nil && s.1 == nil { throw FieldError("oauth", "give a new refresh_token or client_secret") }
                secrets = s
            } else {
                try body.rejectUnknown(["credential"])
                credential = try body.required("credential", Self.credentialField)
                try Self.checkCredential(credential!, provider: current.provider)
            }
        }
        let ciphertext = try credential.map { try cipher.seal($0, context: "resource:\(id)") }
        let digest = (credential ?? (current.provider == .vertex ? secrets?.clientSecret : nil)).map(cipher.digest)
        let refreshCiphertext = try secrets?.refresh.map { try cipher.seal($0, context: "oauth-refresh:\(id)") }
        let secretCiphertext = try secrets?.clientSecret.map { try cipher.seal($0, context: "oauth-secret:\(id)") }
        let hint = Self.hint(
            credential.map { ($0, current.provider) } ?? (account?.clientEmail ?? secrets?.refresh ?? secrets?.clientSecret ?? "", .openai))
        let who = try context.admin
        let now = env.now
        var updated = current
        updated.credentialHint = hint
        if let account {
            updated.oauth = OAuthSettings(tokenURL: account.tokenURI, clientId: account.clientEmail, grant: .jwtBearer, scope: ServiceAccount.scope)
            if !who.isOperator {
                do { try await egress.validate(account.tokenURI) } catch {
                    throw ProblemError.invalid("credential", "the key's token_uri \(error.description)")
                }
            }
        }
        updated.updatedAt = now
        if !current.manualHold {
            updated.state = .pending
            updated.stateReason = "credential rotated; waiting for the health verifier"
            updated.stateChangedAt = now
            updated.coolingUntil = nil
        }
        try await env.changes.write { [updated] conn in
            try conn.updateResource(updated)
            if updated.state == .pending { try conn.restartVerification(id: id) }
            if let ciphertext {
                try conn.setResourceCredential(tenantId: tenantId, id: id, ciphertext: ciphertext, hint: hint, digest: digest, at: now)
            } else {
                try conn.replaceOAuthSecrets(resourceId: id, refreshCiphertext: refreshCiphertext, clientSecretCiphertext: secretCiphertext, now: now)
                try conn.setResourceCredential(tenantId: tenantId, id: id, ciphertext: [], hint: hint, digest: digest, at: now)
            }
            try env.audit(
                conn, who, tenant: tenantId, "resource.rotate_credential", "resource", id,
                ["credential_hint": .string(hint), "state": .string(updated.state.rawValue)])
        }
        oauth.forget(id)
        return JSONResponse.make(Rep.resource(updated))
    }
}
