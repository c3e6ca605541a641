import AsyncHTTPClient
import Foundation
import HashTreeCollections
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import Synchronization

/// OAuth access tokens for organisation resources (the shared piece that provider OAuth, Vertex
/// service accounts and Entra use): the token in use, refreshed before it expires.
///
/// One refresh at a time per credential: in this process a single in-flight task that every caller
/// awaits; across processes a claim on the credential's row at its version (a compare-and-swap),
/// so two processes never spend one refresh token — the loser waits for the winner's new version.
/// The result (a rotated refresh token included) is written atomically, encrypted, and only if the
/// version and the claim are still this process's. A failed refresh backs off (30 s doubling to 30
/// min, no tight loop), degrades the resource and then suspends it, with the evidence. Tokens never
/// appear in a response, a log line or an error message.
final class OAuthCredentials: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct Cached: Sendable {
        var token: String
        var expiresAt: Int64?
        var version: Int64
    }

    let state: AppState
    let clients: UpstreamClients
    let writer: StateWriter
    /// This process, for claims.
    let owner = Identifier.make("proc")
    let cache = Mutex<[String: Cached]>([:])
    let inFlight = Mutex<[String: Task<Cached, any Error>]>([:])
    /// Refreshes performed by this process (tests and metrics read it).
    let refreshes = Atomic<Int>(0)

    static let waitForOtherMs: Int64 = 15_000
    static let suspendAfterFailures: Int64 = 3

    init(state: AppState, clients: UpstreamClients, writer: StateWriter) {
        self.state = state
        self.clients = clients
        self.writer = writer
    }

    var margin: Int64 { state.config.oauthRefreshMarginMs }
    /// A claim outlives the token call's deadline with room to store its result, so no other process
    /// can claim the same version while this one may still spend its refresh token.
    var claimMs: Int64 { 2 * state.config.probeTimeoutMs + 15_000 }

    /// The access token to send now. Refreshed first when it expires within the margin, or when
    /// `rejected` is the token the provider just refused (one refresh, then the caller retries once).
    func token(for r: RoutableResource, rejected: String? = nil) async throws -> String {
        let now = state.clock.nowMs()
        let cached = cache.withLock { $0[r.id] }
        if let c = cached, !c.token.isEmpty, c.token != rejected, (c.expiresAt ?? Int64.max) - margin > now { return c.token }
        do {
            // A refresh joined in flight may have started before `now` (the background loop's): what
            // it returns must still be good for the margin from the caller's time, or one more is run.
            let got = try await refresh(r, rejected: rejected)
            if (got.expiresAt ?? Int64.max) - margin > now { return got.token }
            return try await refresh(r, rejected: rejected).token
        } catch {
            // A refresh ahead of expiry failed: the token in hand still works until it expires.
            if let c = cached, !c.token.isEmpty, c.token != rejected, (c.expiresAt ?? Int64.max) > now { return c.token }
            throw error
        }
    }

    /// Joins the refresh in flight for `r`, or starts one.
    func refresh(_ r: RoutableResource, rejected: String? = nil) async throws -> Cached {
        let task = inFlight.withLock { map -> Task<Cached, any Error> in
            if let t = map[r.id] { return t }
            let t = Task { () throws -> Cached in
                defer { _ = self.inFlight.withLock { $0.removeValue(forKey: r.id) } }
                return try await self.obtain(r, rejected: rejected)
            }
            map[r.id] = t
            return t
        }
        return try await task.value
    }

    /// Adopts a token another process (or an earlier run) stored, or claims the row and refreshes.
    func obtain(_ r: RoutableResource, rejected: String?) async throws -> Cached {
        let id = r.id
        let deadline = state.clock.nowMs() + Self.waitForOtherMs
        while true {
            let now = state.clock.nowMs()
            guard let row = try await state.db.read({ conn in try conn.oauth(resourceId: id) }) else {
                throw Failure(description: "the resource has no OAuth credential")
            }
            if let stored = try usable(row, rejected: rejected, now: now) { return remember(id, stored) }
            if let next = row.nextAttemptAt, next > now {
                throw Failure(description: "the last token refresh failed (\(row.lastError)); the next attempt is at \(Timestamp.format(next))")
            }
            let (owner, claimMs) = (self.owner, self.claimMs)
            let claimed = try await state.db.write { conn in
                try conn.claimOAuthRefresh(resourceId: id, version: row.version, owner: owner, until: now + claimMs, now: now)
            }
            if claimed { return try await spend(r, row: row) }
            // Another process is refreshing: wait for its new version.
            guard now < deadline else { throw Failure(description: "another process is refreshing the token and has not finished") }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The stored access token, if it is good for longer than the margin and not the rejected one.
    func usable(_ row: OAuthRow, rejected: String?, now: Int64) throws -> Cached? {
        guard let c = row.accessCiphertext, let expires = row.accessExpiresAt, expires - margin > now else { return nil }
        let token = try state.cipher.open(c, context: "oauth-access:\(row.resourceId)")
        guard token != rejected else { return nil }
        return Cached(token: token, expiresAt: expires, version: row.version)
    }

    func remember(_ id: String, _ c: Cached) -> Cached {
        cache.withLock { map in
            if let old = map[id], old.version > c.version { return }
            map[id] = c
        }
        return c
    }

    /// Spends the refresh token (the claim is held) and stores what the endpoint returned.
    func spend(_ r: RoutableResource, row: OAuthRow) async throws -> Cached {
        guard let settings = r.resource.oauth else { throw Failure(description: "the resource is not an OAuth resource") }
        let id = r.id
        let cipher = state.cipher
        var form: [(String, String)] = [("grant_type", settings.grant.rawValue), ("client_id", settings.clientId)]
        do {
            if settings.grant == .jwtBearer {
                // A service account: the secret is its key file, and the grant a JWT signed with its key.
                guard let c = row.clientSecretCiphertext else { throw Failure(description: "no service account key is stored") }
                let account = try ServiceAccount(json: try cipher.open(c, context: "oauth-secret:\(id)"))
                form = [("grant_type", ServiceAccount.grantType), ("assertion", try account.assertion(nowMs: state.clock.nowMs()))]
            } else if let c = row.clientSecretCiphertext {
                form.append(("client_secret", try cipher.open(c, context: "oauth-secret:\(id)")))
            }
            if settings.grant == .refreshToken {
                guard let c = row.refreshCiphertext else { throw Failure(description: "no refresh token is stored") }
                form.append(("refresh_token", try cipher.open(c, context: "oauth-refresh:\(id)")))
            }
        } catch {
            return try await failed(r, row: row, error: "the stored OAuth secrets cannot be decrypted", permanent: true)
        }
        if !settings.scope.isEmpty, settings.grant != .jwtBearer { form.append(("scope", settings.scope)) }
        refreshes.add(1, ordering: .relaxed)
        let answer: (status: UInt, body: ByteBuffer)
        do {
            let http = try await clients.client(for: URLTarget(settings.tokenURL), checked: !r.resource.egressExempt, use: .whole)
            var request = HTTPClientRequest(url: settings.tokenURL)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
            request.headers.add(name: "accept", value: "application/json")
            request.headers.add(name: "user-agent", value: "quotaflow")
            request.body = .bytes(ByteBuffer(string: Self.formEncode(form)))
            let response = try await http.execute(request, deadline: .now() + .milliseconds(state.config.probeTimeoutMs))
            answer = (response.status.code, try await response.body.collect(upTo: 1 << 20))
        } catch let denied as UpstreamClients.Denied {
            return try await failed(r, row: row, error: "the token endpoint's address is refused: \(denied.description)", permanent: true)
        } catch {
            return try await failed(r, row: row, error: "the token endpoint could not be reached", permanent: false)
        }
        let json = try? JSONParser.parse(Array(answer.body.readableBytesView))
        guard (200..<300).contains(answer.status), let access = json?["access_token"]?.stringValue, !access.isEmpty else {
            // Only the OAuth error code and status are kept: descriptions may echo what was sent.
            let code = json?["error"]?.stringValue.map { String($0.prefix(60)) } ?? "no access_token in the answer"
            let permanent = ["invalid_grant", "invalid_client", "unauthorized_client", "unsupported_grant_type"].contains(code)
            return try await failed(r, row: row, error: "the token endpoint answered \(answer.status): \(code)", permanent: permanent)
        }
        let now = state.clock.nowMs()
        let expiresIn = json?["expires_in"]?.int64Value ?? json?["expires_in"]?.stringValue.flatMap { Int64($0) } ?? 3600
        let expiresAt = now + max(1, expiresIn) * 1000
        let rotated = json?["refresh_token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let result = OAuthRefreshResult(
            accessCiphertext: try cipher.seal(access, context: "oauth-access:\(id)"), expiresAt: expiresAt,
            refreshCiphertext: try rotated.map { try cipher.seal($0, context: "oauth-refresh:\(id)") })
        let (owner, version) = (self.owner, row.version)
        let stored = try await state.db.write { conn in
            // The claim lapsed but nobody moved the version: the rotated refresh token must still be kept.
            try conn.storeOAuthRefresh(resourceId: id, version: version, owner: owner, result: result, now: now)
                || conn.storeOAuthRefresh(resourceId: id, version: version, owner: nil, result: result, now: now)
        }
        if !stored {
            state.logger.error("an OAuth refresh result could not be stored: another process refreshed first", metadata: ["resource": "\(id)"])
        }
        if row.failures > 0 { recovered(r) }
        return remember(id, Cached(token: access, expiresAt: expiresAt, version: version + 1))
    }

    /// Records a failed refresh, backs off, and degrades or suspends the resource with the evidence.
    func failed(_ r: RoutableResource, row: OAuthRow, error: String, permanent: Bool) async throws -> Cached {
        let now = state.clock.nowMs()
        let failures = row.failures + 1
        let backoff = min(30_000 * (Int64(1) << min(failures - 1, 6)), 1_800_000)
        let (id, tenantId, owner, version) = (r.id, r.resource.tenantId, self.owner, row.version)
        try await state.db.write { conn in
            try conn.failOAuthRefresh(resourceId: id, version: version, owner: owner, error: error, nextAttemptAt: now + backoff, now: now)
        }
        let expired = row.accessExpiresAt.map { $0 <= now } ?? false
        let suspend = permanent || expired || failures >= Self.suspendAfterFailures
        writer.submit("OAuth refresh failure of \(id)", republish: true) { conn in
            guard var res = try conn.resource(tenantId: tenantId, id: id), res.state != .revoked, res.state != .rejected else { return }
            let before = res.state
            let to: ResourceState = suspend ? .suspended : (res.state == .active ? .degraded : res.state)
            res.state = to
            res.stateReason = "OAuth token refresh failed \(failures) time(s): \(error)" + (suspend ? "; update its OAuth secrets to resume" : "")
            res.stateChangedAt = now
            res.updatedAt = now
            try conn.updateResource(res)
            try conn.appendAudit(
                AuditEntry(
                    tenantId: tenantId, at: now, actor: "system:oauth", action: "resource.state", targetType: "resource", targetId: id,
                    summary: [
                        "from": .string(before.rawValue), "to": .string(to.rawValue), "cause": .string(error), "failures": .int(failures),
                        "next_attempt_at": .string(Timestamp.format(now + backoff)),
                    ]))
        }
        throw Failure(description: "the OAuth token could not be refreshed: \(error)")
    }

    /// A refresh succeeded after failures: a degraded resource is in service again.
    func recovered(_ r: RoutableResource) {
        let (id, tenantId, now) = (r.id, r.resource.tenantId, state.clock.nowMs())
        writer.submit("OAuth refresh recovered on \(id)", republish: true) { conn in
            guard var res = try conn.resource(tenantId: tenantId, id: id), res.state == .degraded, res.stateReason.hasPrefix("OAuth") else { return }
            res.state = .active
            res.stateReason = "OAuth token refreshed"
            res.stateChangedAt = now
            res.updatedAt = now
            try conn.updateResource(res)
        }
    }

    /// Refreshes every OAuth resource whose token expires within the margin (the worker's sweep).
    func refreshDue(_ catalog: Catalog) async {
        let now = state.clock.nowMs()
        for r in catalog.resourcesByTenant.values.joined() where r.resource.oauth != nil && r.resource.state != .revoked && !r.resource.manualHold {
            if let c = cache.withLock({ $0[r.id] }), (c.expiresAt ?? Int64.max) - margin > now { continue }
            do { _ = try await token(for: r) } catch {
                state.logger.notice("OAuth refresh not done", metadata: ["resource": "\(r.id)", "why": "\(error)"])
            }
        }
    }

    /// An admin wrote new secrets: forget the cached token.
    func forget(_ resourceId: String) { _ = cache.withLock { $0.removeValue(forKey: resourceId) } }

    static func formEncode(_ pairs: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return pairs.map { k, v in
            "\(k.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")=\(v.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }.joined(separator: "&")
    }
}
