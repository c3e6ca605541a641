import Foundation
import HTTPTypes
import HashTreeCollections
import Hummingbird
import NIOCore
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// A signed-in console user: who acts (the same identity the admin API knows), which tenant the
/// pages show, and the token every form must carry.
struct ConsoleSession: Sendable {
    let digest: String
    let identity: AdminIdentity
    /// The tenant shown; nil while the operator has not picked one.
    let tenantId: String?
    let csrf: String
    /// Who is signed in, as the header shows it.
    var label = "operator"

    var canWrite: Bool { !identity.isViewer }
}

/// Console sign-ins, kept in the database by the digest of a random id: HttpOnly, SameSite=Strict
/// cookies, Secure behind a trusted TLS proxy, ended by expiry, sign-out, a revoked key or a
/// disabled tenant.
struct ConsoleSessions: Sendable {
    static let cookie = "qf_console"
    static let loginCookie = "qf_console_login"
    static let path = "/console"

    let state: AppState
    let trustedProxies: Set<String>

    init(state: AppState) {
        self.state = state
        trustedProxies = Set(state.config.trustedProxies.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty })
    }

    /// Signs in with the operator token or a tenant admin key: the API's own check.
    func open(token: String) async throws -> (ConsoleSession, id: String) {
        let identity = try await AdminAuthMiddleware.identify(token: token, state: state)
        let id = Identifier.random(43)
        let now = state.clock.nowMs()
        let (keyId, operatorDigest, tenantId, scope): (String?, String?, String?, AdminScope)
        switch identity {
        case .operatorToken: (keyId, operatorDigest, tenantId, scope) = (nil, state.operatorDigest, nil, .admin)
        case .tenantAdmin(let tenant, let key, let keyScope): (keyId, operatorDigest, tenantId, scope) = (key, nil, tenant, keyScope)
        }
        let row = ConsoleSessionRow(
            idDigest: SecretDigest.of(id), keyId: keyId, operatorDigest: operatorDigest, tenantId: tenantId, csrf: Identifier.random(32),
            createdAt: now, expiresAt: now + state.config.consoleSessionMs, scope: scope)
        let signIn = AuditEntry(
            tenantId: row.tenantId, at: now, actor: identity.actor, action: "console.sign_in", targetType: "console_session", targetId: "")
        try await state.db.write { conn in
            try conn.insertConsoleSession(row)
            try conn.appendAudit(signIn)
        }
        return (ConsoleSession(digest: row.idDigest, identity: identity, tenantId: row.tenantId, csrf: row.csrf), id)
    }

    /// The session of this request, checked again in full: not expired, its key not revoked, its
    /// tenant enabled, the operator token not changed.
    func current(_ request: Request) async throws -> ConsoleSession? {
        guard let id = request.cookies[Self.cookie]?.value, !id.isEmpty, id.utf8.count <= 100 else { return nil }
        let digest = SecretDigest.of(id)
        let now = state.clock.nowMs()
        guard let row = try await state.db.read({ conn in try conn.consoleSession(digest: digest, now: now) }) else { return nil }
        let identity: AdminIdentity
        if let keyId = row.keyId, let tenantId = row.tenantId {
            guard state.catalog.tenants[tenantId]?.status == .active else { return nil }
            identity = .tenantAdmin(tenantId: tenantId, keyId: keyId, scope: row.scope)
        } else if let op = row.operatorDigest, SecretDigest.equal(op, state.operatorDigest) {
            identity = .operatorToken
        } else {
            return nil
        }
        let tenant = row.tenantId.flatMap { state.catalog.tenants[$0] != nil ? $0 : nil }
        var session = ConsoleSession(digest: digest, identity: identity, tenantId: tenant, csrf: row.csrf)
        if row.keyId != nil { session.label = "\(row.keyName) (\(row.scope.rawValue) key)" }
        return session
    }

    func pickTenant(_ session: ConsoleSession, tenantId: String) async throws {
        try await state.db.write { conn in try conn.setConsoleSessionTenant(digest: session.digest, tenantId: tenantId) }
    }

    func end(_ session: ConsoleSession) async throws {
        let signOut = AuditEntry(
            tenantId: session.tenantId, at: state.clock.nowMs(), actor: session.identity.actor, action: "console.sign_out",
            targetType: "console_session", targetId: "")
        try await state.db.write { conn in
            try conn.deleteConsoleSession(digest: session.digest)
            try conn.appendAudit(signOut)
        }
    }

    /// The session cookie; `maxAge: 0` clears it.
    func cookie(_ value: String, maxAgeMs: Int64, request: Request, context: AppRequestContext) -> Cookie {
        Cookie(
            name: Self.cookie, value: value, maxAge: Int(maxAgeMs / 1000), path: Self.path, secure: isTLS(request, context: context),
            httpOnly: true, sameSite: .strict)
    }

    /// The short-lived cookie of the sign-in form's double-submit token.
    func loginCookie(_ value: String, request: Request, context: AppRequestContext) -> Cookie {
        Cookie(
            name: Self.loginCookie, value: value, maxAge: value.isEmpty ? 0 : 1800, path: Self.path, secure: isTLS(request, context: context),
            httpOnly: true, sameSite: .strict)
    }

    /// The request came from a proxy named in `trusted_proxies`.
    func isTrustedPeer(_ context: AppRequestContext) -> Bool {
        guard !trustedProxies.isEmpty, let peer = context.channel.remoteAddress?.ipAddress else { return false }
        return trustedProxies.contains(peer)
    }

    /// True when a trusted proxy says the browser reached it over TLS.
    func isTLS(_ request: Request, context: AppRequestContext) -> Bool {
        guard isTrustedPeer(context) else { return false }
        return request.headers[.xForwardedProto]?.lowercased().split(separator: ",").first.map { String($0).trimmingWhitespace() } == "https"
    }
}

/// One-time messages for the next page of a session: a notice, or a secret shown exactly once (a
/// new key). Held in memory only, for a few minutes; reading one removes it.
final class ConsoleFlash: Sendable {
    struct Message: Sendable {
        var notice: String
        var secretLabel: String?
        var secret: String?
        var at: Int64
    }

    private let messages = Mutex<[String: Message]>([:])
    static let lifetimeMs: Int64 = 300_000
    static let capacity = 10_000

    func put(_ m: Message, for session: ConsoleSession) {
        messages.withLock { all in
            if all.count >= Self.capacity { all = all.filter { m.at - $0.value.at < Self.lifetimeMs } }
            // Still full of live messages: the oldest makes room (a new key must never go unshown).
            if all.count >= Self.capacity, let oldest = all.min(by: { $0.value.at < $1.value.at })?.key { all.removeValue(forKey: oldest) }
            all[session.digest] = m
        }
    }

    func take(for session: ConsoleSession, now: Int64) -> Message? {
        messages.withLock { all in
            guard let m = all.removeValue(forKey: session.digest), now - m.at < Self.lifetimeMs else { return nil }
            return m
        }
    }
}

extension HTTPField.Name {
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
}
