import Foundation
import NIOHTTP1
import QuotaflowCore
import Testing

@testable import QuotaflowServer

/// The console's actions end to end over real HTTP: each goes through the admin API, changes what the
/// API says it does, and a refusal comes back beside the field with what was typed (never a secret).
@Suite(.scoped) struct ConsoleActionsTests {
    struct World {
        let server: TestServer
        let tenant: TenantFixture
        let resource: String
        let project: String
        let browser: ConsoleClient
    }

    func world() async throws -> World {
        let server = try await TestServer.start()
        let upstream = try await StubUpstream.simulated()
        let tenant = try await TenantFixture.make(server)
        let resource = try await tenant.resource(baseURL: upstream.url + "/v1")
        let project = try await tenant.project(name: "apps")
        let browser = ConsoleClient(server)
        try await browser.signIn(tenant.adminKey)
        _ = try await browser.get("/console/overview")
        return World(server: server, tenant: tenant, resource: resource, project: project, browser: browser)
    }

    @Test func resourcesAreSuspendedResumedAndGivenANewCredentialThatIsNeverShown() async throws {
        let w = try await world()
        let page = "/console/resources/\(w.resource)"
        let detail = try await w.browser.get(page)
        #expect(detail.text.contains("0 in flight"))
        let probes = detail.text.components(separatedBy: "id=\"probes\"")[1].components(separatedBy: "</table>")[0]
        #expect(probes.contains("✓ passed"), "the admission probes are listed")
        #expect(try await w.browser.post(page + "/suspend").status == 303)
        #expect(try await w.tenant.get("/resources/\(w.resource)").json["state"]?.stringValue == "suspended")
        #expect(try await w.browser.get(page).text.contains("Suspend: done."))
        #expect(try await w.browser.post(page + "/resume").status == 303)
        #expect(try await w.tenant.get("/resources/\(w.resource)").json["manual_hold"]?.boolValue == false)
        #expect(try await w.browser.post(page + "/explode").status == 404)

        let empty = try await w.browser.post(page + "/rotate", [("credential", "")])
        #expect(empty.status == 422)
        #expect(empty.text.contains("credential"))
        let secret = "sk-rotated-\(Identifier.random(20))"
        #expect(try await w.browser.post(page + "/rotate", [("credential", secret)]).status == 303)
        let after = try await w.browser.get(page)
        #expect(after.text.contains("credential was replaced"))
        #expect(!after.text.contains(secret))
        #expect(try await w.tenant.get("/resources/\(w.resource)").json["credential_hint"]?.stringValue == credentialHint(secret))
    }

    @Test func aSeatIsIssuedExtendedRotatedAndRevokedAndItsKeyFollows() async throws {
        let w = try await world()
        let expiry = String(Timestamp.format(w.server.clock.nowMs() + 3 * 86_400_000).prefix(10))
        let badDate = try await w.browser.post(
            "/console/seats", [("project_id", w.project), ("holder", "Grace Hopper"), ("expires_at", "next tuesday")])
        #expect(badDate.status == 422)
        #expect(badDate.text.contains("value=\"Grace Hopper\""), "what was typed is kept")
        #expect(badDate.text.contains("must be a date"))
        let issued = try await w.browser.post(
            "/console/seats",
            [
                ("project_id", w.project), ("holder", "Grace Hopper"), ("contact", "grace@example.com"), ("expires_at", expiry),
                ("budget_cap_micros", "12.50"),
            ])
        #expect(issued.status == 303)
        let shown = try await w.browser.get(issued.header("location") ?? "")
        let key = try #require(shown.text.range(of: #"qf_sk_[A-Za-z0-9]+"#, options: .regularExpression).map { String(shown.text[$0]) })
        #expect(shown.text.contains("expires soon"), "three days out stands out")
        #expect(try await w.server.chat(key: key).status == 200)
        let seats = try await w.tenant.get("/projects/\(w.project)/seats")
        let seat = try #require(seats.json["data"]?.arrayValue?.first)
        let seatId = try #require(seat["id"]?.stringValue)
        #expect(seat["budget_cap_micros"]?.int64Value == 12_500_000)
        #expect(seat["expires_at"]?.stringValue == expiry + "T23:59:59Z")

        let later = String(Timestamp.format(w.server.clock.nowMs() + 40 * 86_400_000).prefix(10))
        #expect(try await w.browser.post("/console/seats/\(w.project)/\(seatId)/extend", [("expires_at", later)]).status == 303)
        #expect(try await w.tenant.get("/projects/\(w.project)/seats/\(seatId)").json["expires_at"]?.stringValue == later + "T23:59:59Z")
        let listed = try await w.browser.get("/console/seats?project_id=\(w.project)")
        #expect(!listed.text.contains("expires soon"))

        #expect(try await w.browser.post("/console/seats/\(w.project)/\(seatId)/rotate").status == 303)
        let rotated = try await w.browser.get("/console/seats?project_id=\(w.project)")
        let newKey = try #require(rotated.text.range(of: #"qf_sk_[A-Za-z0-9]+"#, options: .regularExpression).map { String(rotated.text[$0]) })
        #expect(newKey != key)
        #expect(try await w.server.chat(key: newKey).status == 200)

        #expect(try await w.browser.post("/console/seats/\(w.project)/\(seatId)/revoke").status == 303)
        #expect(try await w.server.chat(key: newKey).status == 401)
        let audit = try await w.tenant.get("/audit?action=seat.*")
        let actors = Set(audit.json["data"]?.arrayValue?.compactMap { $0["actor"]?.stringValue } ?? [])
        #expect(actors.count == 1 && actors.first?.hasPrefix("admin_key:") == true)
    }

    @Test func anApprovalRefusedForABadGrantKeepsTheFormAndADenialIsRecorded() async throws {
        let w = try await world()
        let capped = try await w.tenant.project(extra: [("budget", ["monthly_cap_micros": 1, "overage_policy": "approval"])])
        let key = try await w.tenant.key(project: capped)
        #expect(try await w.server.chat(key: key.secret).status == 403)
        try await w.server.eventually("the approval request") {
            try await w.tenant.get("/approvals?status=open").json["data"]?.arrayValue?.count == 1
        }
        let id = try #require(try await w.tenant.get("/approvals?status=open").json["data"]?.arrayValue?.first?["id"]?.stringValue)
        let page = try await w.browser.get("/console/approvals")
        #expect(page.text.contains("data-approve=\"\(id)\""))
        let bad = try await w.browser.post("/console/approvals/\(id)/approve", [("grant_micros", "ten"), ("note", "launch week")])
        #expect(bad.status == 422)
        #expect(bad.text.contains("value=\"launch week\""))
        #expect(try await w.browser.post("/console/approvals/\(id)/deny", [("note", "not this month")]).status == 303)
        let denied = try await w.tenant.get("/approvals/\(id)").json
        #expect(denied["status"]?.stringValue == "denied")
        #expect(denied["note"]?.stringValue == "not this month")
        #expect(try await w.browser.get("/console/approvals?status=denied").text.contains("not this month"))
    }

    @Test func usageLedgerAndAuditShowTheTrafficAndTheCSVIsTheAPIs() async throws {
        let w = try await world()
        let key = try await w.tenant.key(project: w.project)
        #expect(try await w.server.chat(key: key.secret).status == 200)
        let live = try await w.browser.get("/console/overview/live")
        #expect(live.status == 200)
        #expect(!live.text.contains("<html"), "a fragment, for the page to swap in")
        #expect(live.text.contains("data-project=\"\(w.project)\""))
        #expect(live.header("etag") != nil)
        // Nothing changed: no body. (The part also moves with time, forecasts and idle shares, and says the
        // minute it was drawn, so a pair of fetches that straddles a change is tried again.)
        var etag = ""
        try await w.server.eventually("an unchanged live part to answer 304") {
            etag = try await w.browser.get("/console/overview/live").header("etag") ?? ""
            let same = try await w.browser.request(.GET, "/console/overview/live", headers: [("If-None-Match", etag)])
            return same.status == 304 && same.body.isEmpty
        }
        #expect(try await w.server.chat(key: key.secret).status == 200)
        try await w.server.eventually("the live part to change") {
            try await w.browser.request(.GET, "/console/overview/live", headers: [("If-None-Match", etag)]).status == 200
        }
        let usage = try await w.browser.get("/console/usage?group_by=model")
        #expect(usage.text.contains("gpt-4.1-mini"))
        #expect(usage.text.contains("<svg class=\"chart\""))
        let csv = try await w.browser.get("/console/usage.csv?group_by=model")
        #expect(csv.header("content-type")?.hasPrefix("text/csv") == true)
        #expect(csv.header("content-disposition")?.contains("attachment") == true)
        #expect(csv.text.hasPrefix("model,cost_center,requests"))
        #expect(try await w.browser.get("/console/usage?from=yesterday").status == 400)
        let ledger = try await w.browser.get("/console/ledger?model=gpt-4.1-mini")
        #expect(ledger.text.contains("gpt-4.1-mini"))
        #expect(!ledger.text.contains("Hello"), "no content is stored, so none is shown")
        #expect(ledger.text.contains(">apps</td>"), "the project by its name")
        #expect(try await w.browser.get("/console/ledger?status=abc").status == 400)
        let audit = try await w.browser.get("/console/audit?action=console.*")
        #expect(audit.text.contains("console.sign_in"))
        #expect(audit.text.contains("root <span class=\"muted\">(admin_key:"), "the acting key by name")
    }

    @Test func anOAuthResourceTakesNewOAuthSecretsWriteOnly() async throws {
        let w = try await world()
        let oauth = OAuthStub()
        let stub = try await oauth.start()
        let created = try await w.tenant.call(
            .POST, "/resources",
            [
                "pool_id": .string(w.tenant.poolId), "name": "org-oauth", "kind": "api_key", "provider": "openai_compatible",
                "base_url": .string(stub.url + "/v1"), "models": ["gpt-4.1-mini"], "attestation": TenantFixture.attestation,
                "oauth": [
                    "token_url": .string(stub.url + "/oauth/token"), "client_id": "qf-client", "client_secret": "cs-very-secret",
                    "refresh_token": "rt-1",
                ],
            ])
        let id = try #require(created["id"]?.stringValue)
        let page = try await w.browser.get("/console/resources/\(id)")
        #expect(page.text.contains("name=\"oauth.refresh_token\"") && !page.text.contains("name=\"credential\""))
        let empty = try await w.browser.post("/console/resources/\(id)/rotate", [("oauth.refresh_token", ""), ("oauth.client_secret", "")])
        #expect(empty.status == 422)
        #expect(empty.text.contains("refresh_token"))
        let rotated = try await w.browser.post("/console/resources/\(id)/rotate", [("oauth.refresh_token", "rt-fresh-secret")])
        #expect(rotated.status == 303)
        let after = try await w.browser.get("/console/resources/\(id)")
        #expect(after.text.contains("credential was replaced") && !after.text.contains("rt-fresh-secret"))
        let audit = try await w.tenant.get("/audit?target_id=\(id)")
        #expect(!audit.text.contains("rt-fresh-secret"))
    }

    @Test func resourcePagesKeepTheirFiltersAndEncodeTheCursor() async throws {
        let server = try await TestServer.start { $0.verifierEnabled = false }
        let tenant = try await TenantFixture.make(server)
        let other = try #require(try await tenant.call(.POST, "/pools", ["name": "other"])["id"]?.stringValue)
        for i in 0..<101 {
            try await tenant.resource(name: String(format: "r&d #%03d", i), baseURL: "http://127.0.0.1:9/v1", waitActive: false)
        }
        try await tenant.resource(name: "elsewhere", baseURL: "http://127.0.0.1:9/v1", pool: other, waitActive: false)
        let browser = ConsoleClient(server)
        try await browser.signIn(tenant.adminKey)
        let first = try await browser.get("/console/resources?pool_id=\(tenant.poolId)")
        #expect(first.text.contains("selected>main</option>"))
        let link = try #require(first.text.range(of: #"href="(/console/resources\?[^"]+)" id="next-page""#, options: .regularExpression))
        let href = String(first.text[link]).components(separatedBy: "\"")[1].replacingOccurrences(of: "&amp;", with: "&")
        #expect(href.contains("pool_id=\(tenant.poolId)"))
        let second = try await browser.get(href)
        #expect(second.status == 200)
        #expect(second.text.contains("r&amp;d #100"))
        #expect(!second.text.contains("elsewhere"), "the filter survives the page turn")
        #expect(!second.text.contains("r&amp;d #000"))
    }

    @Test func aHolderNamedLikeAScriptIsInertInTheUsageCharts() async throws {
        let w = try await world()
        let seat = try await w.tenant.call(
            .POST, "/projects/\(w.project)/seats", ["holder": "<script>alert(1)</script>", "duration_seconds": 86_400])
        #expect(try await w.server.chat(key: try #require(seat["key"]?.stringValue)).status == 200)
        let usage = try await w.browser.get("/console/usage?group_by=holder")
        #expect(usage.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!usage.text.contains("<script>alert"))
    }

    @Test func hugeAndMalformedFormsAnswer4xxAndTheServerCarriesOn() async throws {
        let w = try await world()
        let huge = try await w.browser.post("/console/projects", [("name", String(repeating: "x", count: 300_000))])
        #expect(huge.status == 413)
        #expect(huge.header("content-type")?.hasPrefix("text/html") == true)
        let garbled = try await w.browser.request(.POST, "/console/projects", form: nil, headers: [("content-type", "text/plain")])
        #expect(garbled.status == 403)
        let broken = try await w.browser.post("/console/projects", [("name", "%zz%"), ("budget.rollover_percent", "1e9")])
        #expect(broken.status == 422)
        #expect(try await w.browser.get("/console/projects/prj_unknown").status == 404)
        #expect(try await w.browser.get("/console/overview").status == 200)
        #expect(try await w.tenant.get("/projects").json["data"]?.arrayValue?.count == 1)
    }
}
