import Foundation
import HTTPTypes
import HashTreeCollections
import Hummingbird
import NIOCore
import QuotaflowCore

/// `/console`: the web console. Server-rendered pages over the admin API (called in process as the
/// signed-in admin), one small script for the live overview and copy buttons, and no third-party
/// asset. Sign-in, sign-out and the operator's tenant picker live here; the pages in the extensions.
struct ConsoleController: Sendable {
    let view: ConsoleView
    let sessions: ConsoleSessions
    let api: AdminDispatch
    let flash = ConsoleFlash()
    let state: AppState

    func register(on router: Router<AppRequestContext>) {
        let console = router.group("console").add(middleware: ConsoleMiddleware(view: view))
        console.get { _, _ in Response.redirect(to: "/console/overview", type: .normal) }
        console.get("static/{name}") { request, context in try view.asset(context.parameters.require("name"), request: request) }
        console.get("login", use: loginPage)
        console.post("login", use: login)
        console.post("logout", use: logout)
        console.get("tenants", use: tenants)
        console.post("tenants", use: pickTenant)
        registerOverview(on: console)
        registerResources(on: console)
        registerProjects(on: console)
        registerSeats(on: console)
        registerReports(on: console)
        console.get("**") { _, _ -> Response in throw ProblemError.notFound("page") }
    }

    // MARK: sign-in

    @Sendable func loginPage(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await loginForm(request, context: context, error: nil, status: .ok)
    }

    func loginForm(_ request: Request, context: AppRequestContext, error: String?, status: HTTPResponse.Status) async throws -> Response {
        let token = Identifier.random(32)
        var response = view.page("login", title: "Sign in", session: nil, data: ["login_csrf": token, "error": error ?? false], status: status)
        response.setCookie(sessions.loginCookie(token, request: request, context: context))
        return response
    }

    @Sendable func login(_ request: Request, context: AppRequestContext) async throws -> Response {
        let form = try await request.consoleForm(timeoutMs: state.config.bodyTimeoutMs)
        let expected = request.cookies[ConsoleSessions.loginCookie]?.value ?? ""
        guard sameOrigin(request, context), !expected.isEmpty, SecretDigest.equal(expected, form["csrf"]) else {
            return try await loginForm(request, context: context, error: "The sign-in form had expired. Please try again.", status: .forbidden)
        }
        let opened: (ConsoleSession, id: String)
        do {
            opened = try await sessions.open(token: form["key"])
        } catch let p as ProblemError where p.status == .unauthorized || p.status == .forbidden {
            let message =
                p.status == .unauthorized
                ? "That key is not a live admin key or the operator token." : p.detail.prefix(1).uppercased() + p.detail.dropFirst()
            return try await loginForm(request, context: context, error: message, status: p.status)
        }
        var response = Response.redirect(to: opened.0.tenantId == nil ? "/console/tenants" : "/console/overview", type: .normal)
        response.setCookie(sessions.cookie(opened.id, maxAgeMs: state.config.consoleSessionMs, request: request, context: context))
        response.setCookie(sessions.loginCookie("", request: request, context: context))
        return response
    }

    @Sendable func logout(_ request: Request, context: AppRequestContext) async throws -> Response {
        if let session = try await sessions.current(request) {
            _ = try await checkedForm(request, context, session: session)
            try await sessions.end(session)
        }
        var response = Response.redirect(to: "/console/login", type: .normal)
        response.setCookie(sessions.cookie("", maxAgeMs: 0, request: request, context: context))
        return response
    }

    // MARK: the operator's tenant picker

    @Sendable func tenants(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let session = try await sessions.current(request) else { throw ConsoleRedirect.signIn }
        guard session.identity.isOperator else { return Response.redirect(to: "/console/overview", type: .normal) }
        let list = try await api.call(.get, "/tenants", query: [("limit", "1000")], as: session.identity, context: context)
        return view.page("tenants", title: "Tenants", session: session, data: ["tenants": TemplateData.list(list)])
    }

    @Sendable func pickTenant(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let session = try await sessions.current(request) else { throw ConsoleRedirect.signIn }
        let form = try await checkedForm(request, context, session: session)
        guard session.identity.isOperator else { throw ProblemError.forbidden("only the operator picks a tenant") }
        guard state.catalog.tenants[form["tenant_id"]] != nil else { throw ProblemError.notFound("tenant") }
        try await sessions.pickTenant(session, tenantId: form["tenant_id"])
        return Response.redirect(to: "/console/overview", type: .normal)
    }

    // MARK: helpers for the pages

    /// The session of a page, with the tenant it shows; otherwise to sign-in (or the picker).
    func signedIn(_ request: Request) async throws -> (ConsoleSession, String) {
        guard let session = try await sessions.current(request) else { throw ConsoleRedirect.signIn }
        guard let tenantId = session.tenantId else { throw ConsoleRedirect(to: "/console/tenants") }
        return (session, tenantId)
    }

    /// A state-changing post: signed in, same origin, the session's CSRF token, and not a viewer.
    func signedInPost(_ request: Request, _ context: AppRequestContext) async throws -> (ConsoleSession, String, ConsoleForm) {
        let (session, tenantId) = try await signedIn(request)
        let form = try await checkedForm(request, context, session: session)
        guard session.canWrite else { throw ProblemError.forbidden("this admin key is a viewer key: it can read, not change; ask for an admin key") }
        return (session, tenantId, form)
    }

    func checkedForm(_ request: Request, _ context: AppRequestContext, session: ConsoleSession) async throws -> ConsoleForm {
        let form = try await request.consoleForm(timeoutMs: state.config.bodyTimeoutMs)
        guard sameOrigin(request, context), SecretDigest.equal(form["csrf"], session.csrf) else {
            throw ProblemError.forbidden("the form's security token is missing or stale; reload the page and try again")
        }
        return form
    }

    /// A browser's `Origin` (when sent) must be this server: the `Host` it reached, or, from a trusted proxy, the
    /// `X-Forwarded-Host` the browser used. A cross-site fetch is refused.
    func sameOrigin(_ request: Request, _ context: AppRequestContext) -> Bool {
        if request.headers[.secFetchSite] == "cross-site" { return false }
        guard let origin = request.headers[.origin] else { return true }
        var hosts = [request.head.authority].compactMap { $0 }
        if sessions.isTrustedPeer(context), let forwarded = request.headers[.xForwardedHost] {
            hosts += forwarded.split(separator: ",").prefix(1).map { String($0).trimmingWhitespace() }
        }
        return hosts.contains { origin == "http://\($0)" || origin == "https://\($0)" }
    }

    func tenantName(_ id: String) -> String { state.catalog.tenants[id]?.name ?? id }

    /// Names for ids an API answer carried, read from the published catalog and only for the page's tenant; an id
    /// the catalog no longer holds (a revoked key) stays an id.
    func projectName(_ id: String, tenant: String) -> String {
        guard let p = state.catalog.projects[id], p.tenantId == tenant else { return id }
        return p.name
    }

    func keyName(_ id: String, tenant: String) -> String {
        guard let k = state.catalog.keysById[id], k.tenantId == tenant else { return id }
        return k.name
    }

    func resourceName(_ id: String, tenant: String) -> String {
        guard let r = state.catalog.resourcesById[id], r.resource.tenantId == tenant else { return id }
        return r.resource.name
    }

    /// An admin API call for the page's tenant: `path` follows `/tenants/{id}`.
    func get(
        _ path: String, _ query: [(String, String)] = [], session: ConsoleSession, tenant: String, context: AppRequestContext
    )
        async throws -> JSONValue
    {
        try await api.call(.get, "/tenants/\(AdminDispatch.segment(tenant))" + path, query: query, as: session.identity, context: context)
    }

    func send(
        _ method: HTTPRequest.Method, _ path: String, body: JSONValue? = nil, session: ConsoleSession, tenant: String, context: AppRequestContext
    ) async throws -> JSONValue {
        try await api.call(method, "/tenants/\(AdminDispatch.segment(tenant))" + path, body: body, as: session.identity, context: context)
    }

    /// A page with its one-time message, if the last action left one.
    func page(
        _ template: String, title: String, session: ConsoleSession, tenant: String, data: [String: Any], status: HTTPResponse.Status = .ok
    )
        -> Response
    {
        var data = data
        if let m = flash.take(for: session, now: state.clock.nowMs()) {
            data["flash"] = ["notice": m.notice, "secret": m.secret ?? false, "secret_label": m.secretLabel ?? ""] as [String: Any]
        }
        return view.page(template, title: title, session: session, tenantName: tenantName(tenant), data: data, status: status)
    }

    /// After a change: a notice (and maybe a secret to show once) on the next page.
    func done(_ to: String, _ notice: String, session: ConsoleSession, secretLabel: String? = nil, secret: String? = nil) -> Response {
        flash.put(.init(notice: notice, secretLabel: secretLabel, secret: secret, at: state.clock.nowMs()), for: session)
        return Response.redirect(to: to, type: .normal)
    }

    /// The query parameters of a console page that are passed on to the API as they are.
    static func passOn(_ request: Request, _ names: [String]) -> [(String, String)] {
        names.compactMap { name in request.uri.queryParameters.get(name).flatMap { $0.isEmpty ? nil : (name, $0) } }
    }
}

/// Where a page sends a browser that is not signed in (or has not picked a tenant).
struct ConsoleRedirect: Error {
    let to: String
    static let signIn = ConsoleRedirect(to: "/console/login")
}

extension HTTPField.Name {
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
    static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
}
