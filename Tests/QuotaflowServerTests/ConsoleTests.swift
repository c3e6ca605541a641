import Foundation
import NIOHTTP1
import QuotaflowCore
import Testing

@testable import QuotaflowServer

/// The console over real HTTP: sessions and their cookie, CSRF, isolation, escaping, the security
/// headers, viewer keys, and forms that keep what was typed. The browser tests (Tests/browser)
/// drive the same pages in Chromium.
@Suite(.scoped) struct ConsoleTests {
    static let pages = ["overview", "resources", "projects", "seats", "usage", "ledger", "approvals", "audit"]

    @Test func signInGivesAStrictHttpOnlyCookieAndSignOutEndsTheSessionOnTheServer() async throws {
        let server = try await TestServer.start()
        let tenant = try await TenantFixture.make(server)
        let browser = ConsoleClient(server)
        #expect(try await browser.get("/console/overview").header("location") == "/console/login")
        let signedIn = try await browser.signIn(tenant.adminKey)
        #expect(signedIn.status == 303)
        #expect(signedIn.header("location") == "/console/overview")
        let cookie = try #require(signedIn.headers["set-cookie"].first { $0.hasPrefix("qf_console=") })
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/console"))
        #expect(!cookie.contains("Secure"), "plain http from an untrusted peer")
        #expect(cookie.contains("Max-Age=28800"))
        let overview = try await browser.get("/console/overview")
        #expect(overview.status == 200)
        #expect(!overview.text.contains(tenant.adminKey), "the key never comes back")
        let stolen = browser.cookies
        #expect(try await browser.post("/console/logout").header("location") == "/console/login")
        // The old cookie, replayed after sign-out, opens nothing.
        browser.cookies = stolen
        #expect(try await browser.get("/console/overview").header("location") == "/console/login")
    }

    @Test func theCookieIsSecureOnlyWhenATrustedProxySaysTheBrowserUsedTLS() async throws {
        let trusting = try await TestServer.start { $0.trustedProxies = "127.0.0.1" }
        let t1 = try await TenantFixture.make(trusting)
        let viaProxy = ConsoleClient(trusting)
        _ = try await viaProxy.get("/console/login")
        let secure = try await viaProxy.request(
            .POST, "/console/login", form: [("csrf", viaProxy.csrf), ("key", t1.adminKey)], headers: [("X-Forwarded-Proto", "https")])
        #expect(secure.headers["set-cookie"].first { $0.hasPrefix("qf_console=") }?.contains("Secure") == true)

        let untrusting = try await TestServer.start()
        let t2 = try await TenantFixture.make(untrusting)
        let forged = ConsoleClient(untrusting)
        _ = try await forged.get("/console/login")
        let plain = try await forged.request(
            .POST, "/console/login", form: [("csrf", forged.csrf), ("key", t2.adminKey)], headers: [("X-Forwarded-Proto", "https")])
        #expect(plain.headers["set-cookie"].first { $0.hasPrefix("qf_console=") }?.contains("Secure") == false)
    }

    @Test func behindATrustedProxyTheBrowsersOriginIsTheForwardedHost() async throws {
        let server = try await TestServer.start { $0.trustedProxies = "127.0.0.1" }
        let tenant = try await TenantFixture.make(server)
        let proxied: [(String, String)] = [("Origin", "https://console.example"), ("X-Forwarded-Host", "console.example")]
        let browser = ConsoleClient(server)
        _ = try await browser.get("/console/login")
        let signIn = try await browser.request(.POST, "/console/login", form: [("csrf", browser.csrf), ("key", tenant.adminKey)], headers: proxied)
        #expect(signIn.status == 303)
        _ = try await browser.get("/console/projects")
        #expect(try await browser.post("/console/projects", [("name", "via proxy")], headers: proxied).status == 303)
        let elsewhere = try await browser.post(
            "/console/projects", [("name", "forged")], headers: [("Origin", "https://evil.example"), ("X-Forwarded-Host", "console.example")])
        #expect(elsewhere.status == 403)

        // Without the proxy in trusted_proxies, a forwarded host proves nothing.
        let plain = try await TestServer.start()
        let other = try await TenantFixture.make(plain)
        let direct = ConsoleClient(plain)
        _ = try await direct.get("/console/login")
        let refused = try await direct.request(.POST, "/console/login", form: [("csrf", direct.csrf), ("key", other.adminKey)], headers: proxied)
        #expect(refused.status == 403)
    }

    @Test func aBadKeyAndAStaleSignInFormAreRefusedAndTheSessionExpires() async throws {
        let clock = ManualClock(nowMs: 1_790_000_000_000)
        let server = try await TestServer.start(clock: clock) { $0.consoleSessionMs = 60_000 }
        let tenant = try await TenantFixture.make(server)
        let browser = ConsoleClient(server)
        let wrong = try await browser.signIn("qf_ak_not-a-key-at-all")
        #expect(wrong.status == 401)
        #expect(wrong.text.contains("not a live admin key"))
        _ = try await browser.get("/console/login")
        let noToken = try await browser.request(.POST, "/console/login", form: [("key", tenant.adminKey)])
        #expect(noToken.status == 403)
        #expect(try await browser.signIn(tenant.adminKey).status == 303)
        #expect(try await browser.get("/console/overview").status == 200)
        clock.advance(byMs: 61_000)
        #expect(try await browser.get("/console/overview").header("location") == "/console/login")
    }

    @Test func formsWithoutTheSessionsTokenOrFromAnotherOriginChangeNothing() async throws {
        let server = try await TestServer.start()
        let tenant = try await TenantFixture.make(server)
        let browser = ConsoleClient(server)
        try await browser.signIn(tenant.adminKey)
        _ = try await browser.get("/console/projects")
        let missing = try await browser.request(.POST, "/console/projects", form: [("name", "sneaky")])
        #expect(missing.status == 403)
        #expect(missing.text.contains("security token"))
        let wrong = try await browser.request(.POST, "/console/projects", form: [("csrf", "x" + browser.csrf), ("name", "sneaky")])
        #expect(wrong.status == 403)
        let crossSite = try await browser.post("/console/projects", [("name", "sneaky")], headers: [("Origin", "https://evil.example")])
        #expect(crossSite.status == 403)
        #expect(try await tenant.get("/projects").json["data"]?.arrayValue?.isEmpty == true)
        let fine = try await browser.post("/console/projects", [("name", "fine")])
        #expect(fine.status == 303)
        #expect(try await tenant.get("/projects").json["data"]?.arrayValue?.count == 1)
    }

    @Test func anotherTenantsIdsAnswer404AndItsObjectsAreUntouched() async throws {
        let server = try await TestServer.start()
        let mine = try await TenantFixture.make(server)
        let theirs = try await TenantFixture.make(server)
        let project = try await theirs.project()
        let key = try await theirs.key(project: project)
        let browser = ConsoleClient(server)
        try await browser.signIn(mine.adminKey)
        _ = try await browser.get("/console/overview")
        #expect(try await browser.get("/console/projects/\(project)").status == 404)
        #expect(try await browser.post("/console/projects/\(project)/keys/\(key.id)/revoke").status == 404)
        #expect(try await browser.post("/console/projects/\(project)", [("name", "taken")]).status == 404)
        let resource = try await theirs.resource(baseURL: "http://127.0.0.1:9/v1", waitActive: false)
        #expect(try await browser.get("/console/resources/\(resource)").status == 404)
        #expect(try await browser.post("/console/resources/\(resource)/suspend").status == 404)
        #expect(try await browser.post("/console/resources/\(resource)/rotate", [("credential", "sk-mine-now-1234567890")]).status == 404)
        #expect(try await theirs.get("/resources/\(resource)").json["manual_hold"]?.boolValue == false)
        let seat = try await theirs.call(.POST, "/projects/\(project)/seats", ["holder": "theirs", "duration_seconds": 86_400])
        let seatId = try #require(seat["id"]?.stringValue)
        #expect(try await browser.post("/console/seats", [("project_id", project), ("holder", "intruder")]).status == 404)
        #expect(try await browser.post("/console/seats/\(project)/\(seatId)/revoke").status == 404)
        #expect(try await browser.post("/console/seats/\(project)/\(seatId)/extend", [("expires_at", "2030-01-01")]).status == 404)
        #expect(try await theirs.get("/projects/\(project)/seats/\(seatId)").json["state"]?.stringValue == "active")
        #expect(try await theirs.get("/projects/\(project)/seats").json["data"]?.arrayValue?.count == 1)
        let still = try await theirs.get("/projects/\(project)/keys/\(key.id)")
        #expect(still.json["state"]?.stringValue == "active")
        #expect(still.json["tenant_id"]?.stringValue == theirs.id)
        // A path that tries to climb out of the tenant stays a console 404.
        #expect(try await browser.get("/console/projects/..%2F..%2Ftenants").status == 404)
    }

    @Test func everyPageIsEscapedAndServedUnderTheStrictPolicy() async throws {
        let server = try await TestServer.start()
        let tenant = try await TenantFixture.make(server, name: "<script>alert('t')</script>")
        let project = try await tenant.project(name: "<img src=x onerror=alert(1)>")
        _ = try await tenant.key(project: project)
        let browser = ConsoleClient(server)
        try await browser.signIn(tenant.adminKey)
        for page in Self.pages + ["projects/\(project)"] {
            let r = try await browser.get("/console/" + page)
            #expect(r.status == 200, "\(page): \(r.text.prefix(300))")
            let csp = r.header("content-security-policy") ?? ""
            #expect(csp.contains("script-src 'self'") && csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"))
            #expect(r.header("x-frame-options") == "DENY")
            #expect(!r.text.contains("<script>alert"), "\(page)")
            #expect(!r.text.contains("<img src=x"), "\(page)")
            #expect(!r.text.contains(" style="), "\(page) has an inline style")
            #expect(r.text.range(of: #"<script(?![^>]*\bsrc=)"#, options: .regularExpression) == nil, "\(page) has an inline script")
            // An event-handler attribute in any tag (quoted attribute values, where escaped names live, are skipped).
            let handler = #"<[a-zA-Z]+(\s+[a-zA-Z-]+(="[^"]*")?)*\s+on[a-z]+="#
            #expect(r.text.range(of: handler, options: .regularExpression) == nil, "\(page) has an inline handler")
        }
        let projects = try await browser.get("/console/projects")
        #expect(projects.text.contains("&lt;img src=x onerror=alert(1)&gt;"))
        let missing = try await browser.get("/console/no-such-page")
        #expect(missing.status == 404)
        #expect(missing.header("content-type")?.hasPrefix("text/html") == true)
        #expect(missing.header("content-security-policy") != nil)
        let css = try await browser.get("/console/static/console.css")
        #expect(css.header("content-type") == "text/css; charset=utf-8")
        let again = try await browser.request(.GET, "/console/static/console.css", headers: [("If-None-Match", css.header("etag") ?? "")])
        #expect(again.status == 304)
    }

    @Test func aViewerSeesNoWriteActionAndEveryPostIsRefused() async throws {
        let server = try await TestServer.start()
        let tenant = try await TenantFixture.make(server)
        let project = try await tenant.project()
        let viewerKey = try #require(try await tenant.call(.POST, "/admin-keys", ["name": "finance", "scope": "viewer"])["key"]?.stringValue)
        let browser = ConsoleClient(server)
        try await browser.signIn(viewerKey)
        for page in Self.pages + ["projects/\(project)"] {
            let r = try await browser.get("/console/" + page)
            #expect(r.status == 200)
            let posts = r.text.components(separatedBy: "method=\"post\"").count - 1
            #expect(posts == 1, "\(page) shows \(posts - 1) write forms to a viewer")
        }
        let refused = try await browser.post("/console/projects", [("name", "viewer-made")])
        #expect(refused.status == 403)
        #expect(try await browser.post("/console/projects/\(project)/keys", [("name", "k")]).status == 403)
        #expect(try await tenant.get("/projects/\(project)/keys").json["data"]?.arrayValue?.isEmpty == true)
    }

    @Test func revokingTheAdminKeyEndsItsConsoleSessions() async throws {
        let server = try await TestServer.start()
        let tenant = try await TenantFixture.make(server)
        let second = try await tenant.call(.POST, "/admin-keys", ["name": "second"])
        let browser = ConsoleClient(server)
        try await browser.signIn(try #require(second["key"]?.stringValue))
        #expect(try await browser.get("/console/overview").status == 200)
        try await tenant.call(.POST, "/admin-keys/\(try #require(second["id"]?.stringValue))/revoke")
        #expect(try await browser.get("/console/overview").header("location") == "/console/login")
    }

    @Test func aRefusedFormKeepsWhatWasTypedAndNamesTheField() async throws {
        let server = try await TestServer.start()
        let tenant = try await TenantFixture.make(server)
        let browser = ConsoleClient(server)
        try await browser.signIn(tenant.adminKey)
        _ = try await browser.get("/console/projects")
        let badMoney = try await browser.post("/console/projects", [("name", "Research & Dev"), ("budget.monthly_cap_micros", "lots")])
        #expect(badMoney.status == 422)
        #expect(badMoney.text.contains("value=\"Research &amp; Dev\""))
        #expect(badMoney.text.contains("must be an amount in US dollars"))
        let badRollover = try await browser.post("/console/projects", [("name", "R&D"), ("budget.rollover_percent", "500")])
        #expect(badRollover.status == 422)
        let apiSays = try await tenant.server.request(
            .POST, "/admin/v1/tenants/\(tenant.id)/projects", body: ["name": "x", "budget": ["rollover_percent": 500]], token: tenant.adminKey)
        let message = try #require(apiSays.json["detail"]?.stringValue).components(separatedBy: ": ").dropFirst().joined(separator: ": ")
        #expect(badRollover.text.contains(message), "the API's own message, beside the field")
        let badModel = try await browser.post("/console/projects", [("name", "R&D"), ("allowed_models", "gpt-4.1, has space")])
        #expect(badModel.status == 422)
        let beside = badModel.text.components(separatedBy: "id=\"p-models\"")[1].components(separatedBy: "id=\"p-rpm\"")[0]
        #expect(beside.contains("class=\"error\""), "a list item's error shows beside the list's field")
        let fallback = try await browser.post("/console/projects", [("name", "R&D"), ("budget.overage_policy", "fallback_model")])
        #expect(fallback.status == 422)
        #expect(
            fallback.text.components(separatedBy: "id=\"p-fallback-model\"")[1].components(separatedBy: "id=\"p-fallback-cap\"")[0].contains(
                "class=\"error\""))
        let withFallback = try await browser.post(
            "/console/projects",
            [
                ("name", "R&D"), ("budget.overage_policy", "fallback_model"), ("budget.fallback.model", "gpt-4.1-mini"),
                ("budget.fallback.cap_micros", "5"),
            ])
        #expect(withFallback.status == 303)
        let created = try #require(try await tenant.get("/projects").json["data"]?.arrayValue?.first)
        #expect(created["budget"]?["fallback"]?["cap_micros"]?.int64Value == 5_000_000)
        // Emptying both fallback fields in an edit removes the fallback (and with it that policy is refused: the API's rule).
        let id = try #require(created["id"]?.stringValue)
        let cleared = try await browser.post(
            "/console/projects/\(id)",
            [("name", "R&D"), ("budget.overage_policy", "reject"), ("budget.fallback.model", ""), ("budget.fallback.cap_micros", "")])
        #expect(cleared.status == 303)
        #expect(try await tenant.get("/projects/\(id)").json["budget"]?["fallback"] == nil)
    }

    @Test func aNewKeyIsShownOnceThenGoneAndTheOperatorPicksATenant() async throws {
        let server = try await TestServer.start()
        let tenant = try await TenantFixture.make(server)
        let project = try await tenant.project(name: "apps")
        let browser = ConsoleClient(server)
        let signedIn = try await browser.signIn(server.operatorToken)
        #expect(signedIn.header("location") == "/console/tenants")
        #expect(try await browser.get("/console/overview").header("location") == "/console/tenants")
        _ = try await browser.get("/console/tenants")
        #expect(try await browser.post("/console/tenants", [("tenant_id", tenant.id)]).status == 303)
        _ = try await browser.get("/console/projects/\(project)")
        let issued = try await browser.post("/console/projects/\(project)/keys", [("name", "ci")])
        #expect(issued.status == 303)
        let shown = try await browser.get("/console/projects/\(project)")
        let secret = try #require(shown.text.range(of: #"qf_pk_[A-Za-z0-9]+"#, options: .regularExpression).map { String(shown.text[$0]) })
        #expect(try await server.chat(key: secret).status != 401)
        let reloaded = try await browser.get("/console/projects/\(project)")
        #expect(!reloaded.text.contains(secret))
        let audit = try await tenant.get("/audit?action=key.create")
        #expect(audit.json["data"]?.arrayValue?.first?["actor"]?.stringValue == "operator")
    }
}
