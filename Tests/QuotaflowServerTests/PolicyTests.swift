import AsyncHTTPClient
import Foundation
import HashTreeCollections
import NIOHTTP1
import QuotaflowCore
import QuotaflowPolicyFile
import QuotaflowStore
import Testing

@testable import QuotaflowServer

/// Policy as code through the real API: the seed's example applied and read back, idempotency,
/// export round-trips, prune, all-or-nothing applies, error positions and no secret in any output.
@Suite(.scoped) struct PolicyTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var example: String { (try? String(contentsOf: root.appendingPathComponent("deploy/policy.example.yaml"), encoding: .utf8)) ?? "" }

    static let secrets: [String: String] = [
        "ANTHROPIC_API_KEY": "sk-ant-api03-policy-test-anthropic-credential",
        "OPENAI_API_KEY": "sk-proj-policy-test-openai-credential-000",
        "SLACK_ENGINEERING_WEBHOOK": "https://hooks.slack.com/services/T0000/B0000/engineeringsecretpath",
        "SLACK_SUPPORT_WEBHOOK": "https://hooks.slack.com/services/T0000/B0001/supportsecretpath",
    ]

    /// 2026-12-01T00:00:00Z: the example's seat expires within the tenant's limit whatever today is.
    static func clock() -> ManualClock { ManualClock(nowMs: 1_796_083_200_000) }

    static func source(_ env: [String: String] = secrets) -> SecretSource {
        SecretSource(environment: env) { path in throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
    }

    struct Answer {
        let status: Int
        let json: JSONValue
        let text: String
        let file: PolicyFile
    }

    /// What the CLI does: read the file here (resolving references), send the document.
    static func send(
        _ server: TestServer, tenant: String, _ yaml: String, env: [String: String] = secrets, dryRun: Bool = false, prune: Bool = false
    ) async throws -> Answer {
        let file = try PolicyFile.read(yaml, file: "policy.yaml", secrets: source(env))
        let body: JSONValue = .object([
            ("policy", file.document), ("dry_run", .bool(dryRun)), ("prune", .bool(prune)),
            ("source", .object([("file", "policy.yaml"), ("digest", .string(file.digest))])),
        ])
        let r = try await server.request(.POST, "/admin/v1/tenants/\(tenant)/policy", body: body, token: server.operatorToken)
        return Answer(status: r.status, json: r.json, text: r.text, file: file)
    }

    static func tenant(_ server: TestServer, name: String = "oolyx-demo") async throws -> String {
        try #require(try await server.admin(.POST, "/tenants", ["name": .string(name)])["id"]?.stringValue)
    }

    static func byName(_ list: JSONValue, _ name: String, key: String = "name") -> JSONValue? {
        list["data"]?.arrayValue?.first { $0[key]?.stringValue == name }
    }

    @Test func theSeedExampleIsAppliedAndEveryValueReadsBackThroughTheAPI() async throws {
        let server = try await TestServer.start(clock: Self.clock()) { $0.verifierEnabled = false }
        let t = try await Self.tenant(server)
        let plan = try await Self.send(server, tenant: t, Self.example, dryRun: true)
        #expect(plan.status == 200, "\(plan.text)")
        #expect(plan.json["applied"] == .bool(false))
        #expect(plan.json["summary"]?["create"] == .int(14))
        // A plan changes nothing.
        #expect(try await server.admin(.GET, "/tenants/\(t)/projects")["data"]?.arrayValue?.isEmpty == true)

        let applied = try await Self.send(server, tenant: t, Self.example)
        #expect(applied.status == 200, "\(applied.text)")
        #expect(applied.json["applied"] == .bool(true))
        let issued = applied.json["issued"]?.arrayValue ?? []
        #expect(issued.map { $0["kind"]?.stringValue } == ["key", "seat"])

        let tenant = try await server.admin(.GET, "/tenants/\(t)")
        let settings = try #require(tenant["settings"])
        #expect(settings["monthly_limit_micros"] == .int(25_000_000_000))
        #expect(settings["request_limits"] == ["max_output_tokens": 16_384, "max_input_tokens": 200_000, "max_cost_micros": 5_000_000])

        let pricing = try await server.admin(.GET, "/tenants/\(t)/pricing")
        let opus = try #require(Self.byName(pricing, "claude-opus-4", key: "model"))
        #expect(opus["input_per_mtok_micros"] == .int(5_000_000) && opus["output_per_mtok_micros"] == .int(25_000_000))
        let mini = try #require(Self.byName(pricing, "gpt-4.1-mini", key: "model"))
        #expect(mini["input_per_mtok_micros"] == .int(400_000) && mini["output_per_mtok_micros"] == .int(1_600_000))

        let pools = try await server.admin(.GET, "/tenants/\(t)/pools")
        let pool = try #require(Self.byName(pools, "main")?["id"]?.stringValue)
        let resources = try await server.admin(.GET, "/tenants/\(t)/resources")
        let anthropic = try #require(Self.byName(resources, "anthropic-team"))
        #expect(anthropic["pool_id"]?.stringValue == pool && anthropic["provider"] == "anthropic")
        #expect(anthropic["models"] == ["claude-opus-4", "claude-sonnet-4", "claude-haiku-3.5"])
        #expect(anthropic["credential_hint"]?.stringValue == "…" + String(Self.secrets["ANTHROPIC_API_KEY"]!.suffix(4)))
        #expect(Self.byName(resources, "openai-team")?["base_url"] == "https://api.openai.com/v1")

        let projects = try await server.admin(.GET, "/tenants/\(t)/projects")
        let eng = try #require(Self.byName(projects, "engineering"))
        #expect(eng["attributes"] == ["display_name": "Engineering Team"])
        #expect(eng["pool_ids"] == .array([.string(pool)]))
        #expect(eng["allowed_models"] == ["claude-opus-4", "claude-sonnet-4", "claude-haiku-3.5", "gpt-4.1"])
        let budget = try #require(eng["budget"])
        #expect(budget["monthly_cap_micros"] == .int(8_000_000_000))
        #expect(budget["rollover_percent"] == 25 && budget["alert_thresholds"] == [50, 75, 90])
        #expect(budget["overage_policy"] == "fallback_model")
        #expect(budget["fallback"] == ["model": "claude-haiku-3.5", "max_output_tokens": 1024, "cap_micros": 800_000_000])
        #expect(eng["request_limits"] == ["max_output_tokens": 4096, "max_input_tokens": 128_000, "max_cost_micros": 2_500_000])
        #expect(eng["rate_limits"] == ["rpm": 200, "rpm_per_user": 30, "tpm": 500_000])
        let marketing = try #require(Self.byName(projects, "marketing"))
        #expect(marketing["budget"]?["monthly_cap_micros"] == .int(2_500_000_000) && marketing["budget"]?["rollover_percent"] == 0)
        #expect(marketing["budget"]?["overage_policy"] == "reject")
        #expect(marketing["request_limits"]?["max_cost_micros"] == .int(1_000_000))
        let support = try #require(Self.byName(projects, "customer-support"))
        #expect(support["budget"]?["rollover_percent"] == 15 && support["budget"]?["alert_thresholds"] == [60, 85, 95])
        #expect(support["budget"]?["fallback"] == ["model": "gpt-4.1-mini", "max_output_tokens": 512, "cap_micros": 150_000_000])
        #expect(support["request_limits"]?["max_cost_micros"] == .int(250_000) && support["rate_limits"]?["rpm"] == 300)

        let engId = try #require(eng["id"]?.stringValue)
        let keys = try await server.admin(.GET, "/tenants/\(t)/projects/\(engId)/keys")
        let ci = try #require(Self.byName(keys, "ci-pipeline"))
        #expect(ci["budget_cap_micros"] == .int(500_000_000) && ci["rpm"] == 60)
        let seats = try await server.admin(.GET, "/tenants/\(t)/projects/\(engId)/seats")
        let dana = try #require(Self.byName(seats, "dana@contractor.example", key: "holder"))
        #expect(dana["expires_at"] == "2027-03-31T00:00:00Z" && dana["budget_cap_micros"] == .int(300_000_000) && dana["note"] == "Q1 migration")
        let webhooks = try await server.admin(.GET, "/tenants/\(t)/webhooks")
        let hooks = webhooks["data"]?.arrayValue ?? []
        #expect(hooks.count == 2 && hooks.allSatisfy { $0["format"] == "slack" })
        #expect(hooks.contains { $0["project_id"]?.stringValue == engId && $0["url"]?.stringValue == Self.secrets["SLACK_ENGINEERING_WEBHOOK"] })

        // The issued key works on the data plane at once (it is in the published catalog).
        let key = try #require(issued.first?["key"]?.stringValue)
        #expect(server.state.catalog.keys[SecretDigest.of(key)]?.name == "ci-pipeline")

        // Idempotent: the same file plans nothing and applies nothing.
        let again = try await Self.send(server, tenant: t, Self.example)
        #expect(again.json["changes"] == .array([]) && again.json["applied"] == .bool(false))
        // Audited as one change set with the file's digest.
        let audit = try await server.admin(.GET, "/tenants/\(t)/audit")
        let entries = (audit["data"]?.arrayValue ?? []).filter { $0["action"] == "policy.apply" }
        #expect(entries.count == 1)
        #expect(entries.first?["summary"]?["source"]?["digest"]?.stringValue == applied.file.digest)
    }

    @Test func exportThenApplyPlansNothingAndNoOutputHoldsASecret() async throws {
        let server = try await TestServer.start(clock: Self.clock()) { $0.verifierEnabled = false }
        let t = try await Self.tenant(server)
        let applied = try await Self.send(server, tenant: t, Self.example)
        #expect(applied.status == 200, "\(applied.text)")
        let exported = try await server.admin(.GET, "/tenants/\(t)/policy")
        let (yaml, variables) = PolicyExport.yaml(try #require(exported["policy"]))
        #expect(
            Set(variables) == [
                "QF_MAIN_ANTHROPIC_TEAM_CREDENTIAL", "QF_MAIN_OPENAI_TEAM_CREDENTIAL", "QF_ENGINEERING_ALERT_1", "QF_CUSTOMER_SUPPORT_ALERT_1",
            ])
        let env = [
            "QF_MAIN_ANTHROPIC_TEAM_CREDENTIAL": Self.secrets["ANTHROPIC_API_KEY"]!,
            "QF_MAIN_OPENAI_TEAM_CREDENTIAL": Self.secrets["OPENAI_API_KEY"]!,
            "QF_ENGINEERING_ALERT_1": Self.secrets["SLACK_ENGINEERING_WEBHOOK"]!,
            "QF_CUSTOMER_SUPPORT_ALERT_1": Self.secrets["SLACK_SUPPORT_WEBHOOK"]!,
        ]
        let plan = try await Self.send(server, tenant: t, yaml, env: env, dryRun: true)
        #expect(plan.status == 200, "\(plan.text)")
        #expect(plan.json["changes"] == .array([]), "\(PolicyPlanText.render(plan.json))")

        // A rotated credential is seen through its keyed digest, and shown only as changed.
        var rotated = env
        rotated["QF_MAIN_OPENAI_TEAM_CREDENTIAL"] = "sk-proj-policy-test-rotated-credential-111"
        let rotation = try await Self.send(server, tenant: t, yaml, env: rotated, dryRun: true)
        let change = try #require(rotation.json["changes"]?.arrayValue?.first)
        #expect(change["name"] == "openai-team" && change["fields"] == [["field": "credential", "secret": true, "changed": true]])

        // No secret anywhere: plans, their text, the export (JSON and YAML) and the audit log.
        let audit = try await server.admin(.GET, "/tenants/\(t)/audit")
        let outputs = [
            applied.text, PolicyPlanText.render(applied.json), plan.text, rotation.text, PolicyPlanText.render(rotation.json),
            JSONWriter.string(exported), yaml, JSONWriter.string(audit),
        ]
        for secret in Array(Self.secrets.values) + [rotated["QF_MAIN_OPENAI_TEAM_CREDENTIAL"]!] {
            #expect(!outputs.contains { $0.contains(secret) }, "a secret leaked")
        }
        for path in ["engineeringsecretpath", "supportsecretpath"] { #expect(!outputs.contains { $0.contains(path) }) }
    }

    @Test func objectsMissingFromTheFileStayUnlessPruneRetiresThem() async throws {
        let server = try await TestServer.start(clock: Self.clock()) { $0.verifierEnabled = false }
        let t = try await Self.tenant(server)
        let applied = try await Self.send(server, tenant: t, Self.example)
        let key = try #require(applied.json["issued"]?.arrayValue?.first?["key"]?.stringValue)
        // Drop the marketing workspace, the CI key and the OpenAI resource.
        var lines = Self.example.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex(of: "  marketing:"))
        let end = try #require(lines.firstIndex(of: "  customer-support:"))
        lines.removeSubrange(start..<end)
        lines.removeAll { $0.contains("ci-pipeline") || $0.hasPrefix("    keys:") }
        let openai = try #require(lines.firstIndex(of: "      openai-team:"))
        lines.removeSubrange(openai..<(openai + 8))
        let smaller = lines.joined(separator: "\n").replacingOccurrences(of: "      - gpt-4.1\n", with: "")
        let kept = try await Self.send(server, tenant: t, smaller, dryRun: true)
        #expect(kept.status == 200, "\(kept.text)")
        #expect(kept.json["changes"]?.arrayValue?.allSatisfy { $0["action"] != "archive" && $0["action"] != "revoke" } == true)

        let pruned = try await Self.send(server, tenant: t, smaller, prune: true)
        #expect(pruned.status == 200, "\(pruned.text)")
        let retired = (pruned.json["changes"]?.arrayValue ?? []).filter { $0["action"] != "update" }.map {
            "\($0["action"]?.stringValue ?? "") \($0["kind"]?.stringValue ?? "") \($0["name"]?.stringValue ?? "")"
        }
        #expect(
            Set(retired.filter { !$0.hasPrefix("delete price") }) == [
                "archive project marketing", "revoke key ci-pipeline", "revoke resource openai-team",
            ])
        // The tenant's starting price entries that the file does not list go too: with prune the file is the whole table.
        let prices = retired.filter { $0.hasPrefix("delete price") }
        #expect(!prices.isEmpty && !prices.contains { $0.hasSuffix(" gpt-4.1-mini") || $0.hasSuffix(" claude-opus-4") })
        let projects = try await server.admin(.GET, "/tenants/\(t)/projects")
        #expect(Self.byName(projects, "marketing")?["status"] == "archived")
        #expect(Self.byName(try await server.admin(.GET, "/tenants/\(t)/resources"), "openai-team")?["state"] == "revoked")
        let r = try await server.chat(key: key)
        #expect(r.status == 401 && r.text.contains("key_revoked"))
        // Pruning again changes nothing; bringing marketing back unarchives it.
        #expect(try await Self.send(server, tenant: t, smaller, prune: true).json["changes"] == .array([]))
        let back = try await Self.send(server, tenant: t, Self.example, dryRun: true)
        #expect(back.json["changes"]?.arrayValue?.contains { $0["name"] == "marketing" && $0["action"] == "update" } == true)
    }

    @Test func aFailingApplyLeavesNothingChanged() async throws {
        let server = try await TestServer.start(clock: Self.clock()) { $0.verifierEnabled = false }
        let t = try await Self.tenant(server)
        let pool = try #require(try await server.admin(.POST, "/tenants/\(t)/pools", ["name": "main"])["id"]?.stringValue)
        // A resource named like one the file adds, revoked: its name stays taken, which only the
        // insert inside the transaction finds out.
        let r = try await server.admin(
            .POST, "/tenants/\(t)/resources",
            [
                "pool_id": .string(pool), "name": "openai-team", "kind": "api_key", "provider": "openai", "base_url": "https://api.openai.com/v1",
                "credential": "sk-proj-previous-credential-0000000", "models": ["gpt-4.1"], "owner": "platform team",
                "attestation": ["by": "it-admin@company.com", "at": "2026-11-01T00:00:00Z"],
            ])
        try await server.admin(.POST, "/tenants/\(t)/resources/\(try #require(r["id"]?.stringValue))/revoke")
        let before = try await server.admin(.GET, "/tenants/\(t)/policy")
        let auditBefore = try await server.admin(.GET, "/tenants/\(t)/audit")
        let answer = try await Self.send(server, tenant: t, Self.example)
        #expect(answer.status == 409, "\(answer.text)")
        #expect(answer.json["detail"]?.stringValue?.contains("nothing was applied") == true)
        #expect(try await server.admin(.GET, "/tenants/\(t)/policy") == before)
        #expect(try await server.admin(.GET, "/tenants/\(t)/audit") == auditBefore)
        #expect(server.state.catalog.projects(ofTenant: t).isEmpty)
        // A file with a mistake in its last workspace changes nothing either, and the server stays up.
        let broken = Self.example.replacingOccurrences(of: "      model: gpt-4.1-mini", with: "      model: no-such-model")
        let invalid = try await Self.send(server, tenant: t, broken.replacingOccurrences(of: "name: openai-team", with: "name: openai-team"))
        #expect(invalid.status == 422)
        #expect(try await server.admin(.GET, "/tenants/\(t)/policy") == before)
        #expect((try await server.request(.GET, "/healthz")).status == 200)
    }

    /// Ten kinds of mistake, each placed at its line and column and named by its field as written.
    @Test func errorsNameTheLineTheColumnAndTheField() async throws {
        let server = try await TestServer.start(clock: Self.clock()) { $0.verifierEnabled = false }
        let t = try await Self.tenant(server)
        let base = Self.example
        func position(of needle: String, in text: String) -> (Int, Int) {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for (i, line) in lines.enumerated() {
                if let r = line.range(of: needle) { return (i + 1, line.distance(from: line.startIndex, to: r.lowerBound) + 1) }
            }
            return (0, 0)
        }
        /// (what to replace, with what, the text the error points at and how far into it, the field, part of the message)
        let cases: [(String, String, String, Int, String, String)] = [
            (
                "    per_request:\n      max_output_tokens: 4096", "    per_requests:\n      max_output_tokens: 4096", "per_requests", 0,
                "workspaces.engineering.per_requests", "unknown key"
            ),
            ("max_output_tokens: 4096", "max_output_tokens: lots", "lots", 0, "workspaces.engineering.per_request.max_output_tokens", "whole number"),
            (
                "monthly_limit_usd: 8000.00", "monthly_limit_usd: 8000.0000001", "8000.0000001", 0, "workspaces.engineering.budget.monthly_limit_usd",
                "6 decimals"
            ),
            (
                "          webhook: \"${SLACK_SUPPORT_WEBHOOK}\"",
                "          webhook: \"${SLACK_SUPPORT_WEBHOOK}\"\n        - type: email\n          recipients: [a@b.c]",
                "email", 0, "workspaces.customer-support.budget.alert_channels[1].type", "not delivered"
            ),
            (
                "credential: ${OPENAI_API_KEY}", "credential: sk-literal-secret-in-the-file", "sk-literal", 0,
                "pools.main.resources.openai-team.credential", "never live in the file"
            ),
            (
                "credential: ${OPENAI_API_KEY}", "credential: ${UNSET_VARIABLE}", "${UNSET", 0, "pools.main.resources.openai-team.credential",
                "not set"
            ),
            (
                "    pools: [main]                       # added\n    budget:\n      monthly_limit_usd: 8000.00",
                "    pools: [mian]\n    budget:\n      monthly_limit_usd: 8000.00",
                "mian", 0, "workspaces.engineering.pools[0]", "no pool 'mian'"
            ),
            ("    display_name: \"Customer Support\"", "    display_name: \"Customer Support\"\n    parent: engineering", "", 0, "", "cycle"),
            (
                "      - gpt-4.1-mini\n    per_request:\n      max_output_tokens: 8192",
                "      - gpt-9-mini\n    per_request:\n      max_output_tokens: 8192",
                "gpt-9-mini", 0, "workspaces.marketing.allowed_models[2]", "missing from the pricing table"
            ),
            (
                "requests_per_minute: 200", "requests_per_minute: 0", "requests_per_minute: 0", 21,
                "workspaces.engineering.rate_limits.requests_per_minute", "between"
            ),
        ]
        let cycleText = base.replacingOccurrences(
            of: "    display_name: \"Engineering Team\"", with: "    display_name: \"Engineering Team\"\n    parent: customer-support"
        ).replacingOccurrences(of: cases[7].0, with: cases[7].1)
        for (i, (from, to, at, shift, field, message)) in cases.enumerated() {
            let text = i == 7 ? cycleText : base.replacingOccurrences(of: from, with: to)
            #expect(text != base, "case \(i) changed nothing")
            var error: PolicyFileError?
            do {
                let answer = try await Self.send(server, tenant: t, text, dryRun: true)
                #expect(answer.status == 422, "case \(i): \(answer.text)")
                let detail = answer.json["detail"]?.stringValue ?? ""
                let f = answer.json["field"]?.stringValue
                error = answer.file.error(
                    field: f, message: f.map { detail.hasPrefix($0 + ": ") ? String(detail.dropFirst($0.count + 2)) : detail } ?? detail)
            } catch let e as PolicyFileError {
                error = e
            }
            let e = try #require(error, "case \(i) found no error")
            #expect(e.file == "policy.yaml")
            #expect(e.message.contains(message), "case \(i): \(e)")
            if i == 7 {
                // The cycle is reported at one of its two parent lines.
                #expect(e.field.hasSuffix(".parent"), "case \(i): \(e)")
                let lines = [position(of: "parent: customer-support", in: text).0, position(of: "parent: engineering", in: text).0]
                #expect(lines.contains(e.line), "case \(i): \(e)")
                continue
            }
            let (line, column) = position(of: at, in: text)
            #expect(e.field == field, "case \(i): \(e)")
            #expect(e.line == line && e.column == column + shift, "case \(i): \(e), expected \(line):\(column + shift)")
        }
    }

    /// A hierarchy in any order, with roots among the file's projects and the tenant's, and its export.
    @Test func aHierarchyAppliesInAnyOrderAndExportsBack() async throws {
        let server = try await TestServer.start(clock: Self.clock()) { $0.verifierEnabled = false }
        let t = try await Self.tenant(server)
        try await server.admin(.POST, "/tenants/\(t)/projects", ["name": "existing-root"])
        let yaml = """
            tenant: oolyx-demo
            workspaces:
              team-a: {parent: division, budget: {monthly_limit_usd: 100}}
              division: {budget: {monthly_limit_usd: 500}}
              team-b: {parent: existing-root}
            """
        let applied = try await Self.send(server, tenant: t, yaml)
        #expect(applied.status == 200, "\(applied.text)")
        let projects = try await server.admin(.GET, "/tenants/\(t)/projects")
        let division = try #require(Self.byName(projects, "division"))
        #expect(division["parent_id"] == .null)
        #expect(Self.byName(projects, "team-a")?["parent_id"] == division["id"])
        #expect(Self.byName(projects, "team-b")?["parent_id"] == Self.byName(projects, "existing-root")?["id"])
        let exported = try await server.admin(.GET, "/tenants/\(t)/policy")
        let (text, _) = PolicyExport.yaml(try #require(exported["policy"]))
        #expect(text.contains("parent: division"))
        #expect(try await Self.send(server, tenant: t, text, dryRun: true).json["changes"] == .array([]))
    }

    @Test func moneyIsReadExactlyFromTheScalarsText() throws {
        for (text, micros) in [
            ("8000.00", Int64(8_000_000_000)), ("\"8000.00\"", 8_000_000_000), ("'0.1'", 100_000), ("2.5", 2_500_000), ("0.000001", 1),
            ("19.99", 19_990_000),
        ] {
            let file = try PolicyFile.read("global:\n  monthly_limit_usd: \(text)\n", file: "p.yaml", secrets: Self.source())
            #expect(file.document["settings"]?["monthly_limit_micros"] == .int(micros), "\(text)")
        }
        for bad in ["8000.0000001", "1e3", "-5", "8,000.00", "0x10", ".5", "5.", "true"] {
            #expect(throws: PolicyFileError.self, "\(bad)") {
                try PolicyFile.read("global:\n  monthly_limit_usd: \(bad)\n", file: "p.yaml", secrets: Self.source())
            }
        }
        #expect(DecimalUSD.text(8_000_000_000) == "8000.00" && DecimalUSD.text(1) == "0.000001" && DecimalUSD.text(1_562_500) == "1.5625")
        // Secrets from a file are read on this machine.
        let fromFile = SecretSource(environment: [:]) { path in path == "openai.key" ? "sk-from-a-file-credential\n" : "" }
        let doc = try PolicyFile.read(
            "pools:\n  p:\n    resources:\n      r:\n        credential: {credential_file: openai.key}\n", file: "p.yaml", secrets: fromFile)
        #expect(doc.document["pools"]?.arrayValue?.first?["resources"]?.arrayValue?.first?["credential"] == "sk-from-a-file-credential")
        // A YAML syntax error and a duplicated key are placed too.
        #expect(throws: PolicyFileError.self) { try PolicyFile.read("global: [\n", file: "p.yaml", secrets: Self.source()) }
        do {
            _ = try PolicyFile.read("global:\n  max_output_tokens: 1\n  max_output_tokens: 2\n", file: "p.yaml", secrets: Self.source())
            Issue.record("a duplicated key was accepted")
        } catch {
            #expect(error.line >= 2 && error.message.contains("max_output_tokens"), "\(error)")
        }
    }
}
