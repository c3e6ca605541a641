import Foundation
import QuotaflowCore
import Testing

@testable import QuotaflowStore

/// Rows written by an earlier version (a database dumped at schema 0006, before the storage codecs
/// were split from API validation) read back through today's repositories, value for value; and
/// damaged rows fail loudly instead of reading as "no limit".
@Suite struct StoreCompatibilityTests {
    static func fixtureDatabase() throws -> (Database, String) {
        let (db, dir) = try tempDatabase()
        let url = try #require(Bundle.module.url(forResource: "Fixtures/schema-0006", withExtension: "sql"))
        let dump = try String(contentsOf: url, encoding: .utf8)
        // The dump lists tables alphabetically, children before parents: load it without FK checks.
        try db.writeSync { conn in try conn.execute("PRAGMA foreign_keys=OFF;" + dump + "PRAGMA foreign_keys=ON;") }
        try Migrator.bundled().migrate(db, clock: SystemClock(), logger: quiet)
        return (db, dir)
    }

    @Test func everyKindOfRowWrittenAtSchema0006ReadsBack() throws {
        let (db, dir) = try Self.fixtureDatabase()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try db.readSync { conn in try checkEveryRow(conn) }
    }

    /// The checks, in a function of their own rather than inside the `readSync` closure: Swift 6.3.1
    /// miscompiles a closure that follows an `#expect` holding a closure within one enclosing closure.
    func checkEveryRow(_ conn: StoreConnection) throws {
        let tenant = try #require(try conn.allTenants().first)
        #expect(tenant.name == "compat-co")
        #expect(tenant.settings.monthlyLimitMicros == 900_000_000 && tenant.settings.period == PeriodAnchor(day: 5, timeZone: "Europe/Berlin"))
        #expect(tenant.settings.requestLimits == RequestLimits(maxOutputTokens: 4000, maxInputTokens: 100_000, maxCostMicros: 2_000_000))
        #expect(tenant.settings.defaultPrice?.outputPerMTok == 2_000_000 && !tenant.settings.hashEndUsers)
        #expect(tenant.settings.alertThresholds == [50, 80, 100] && tenant.settings.toolCallPriceMicros == 12_000)
        let t = tenant.id
        #expect(try conn.priceEntries(tenantId: t).count == 4)
        #expect(try conn.priceEntries(tenantId: t).first { $0.model == "gpt-4.1*" }?.price.cachedInputPerMTok == 500_000)
        #expect(try conn.pools(tenantId: t).map(\.name) == ["engineering", "spare"])
        let resources = try conn.resources(tenantId: t)
        let key = try #require(resources.first { $0.name == "team-key" })
        // Written at 0006, when cached input defaulted to the input price; the 1-hour write price is the rule.
        #expect(key.costBasis == .perToken(TokenPrice(inputPerMTok: 900_000, outputPerMTok: 1_800_000, cachedInputPerMTok: 900_000)))
        #expect(key.limits.maxConcurrency == 8 && key.limits.monthlySpendCapMicros == 500_000_000)
        #expect(key.limits.windows == [UsageWindow(requests: 500, windowSeconds: 18_000)])
        #expect(key.attestation?.by == "cto@compat.example" && key.allowedUse == "engineering only" && key.state == .active)
        let seat = try #require(resources.first { $0.name == "team-seat" })
        #expect(seat.costBasis == .flatMonthly(feeMicros: 200_000_000) && seat.leaseMode == .exclusive && seat.manualHold)
        #expect(seat.probe == ProbeSettings(completion: true, model: "fast-model", waiver: Waiver(by: "cto", note: "relay")))
        let overflow = try #require(resources.first { $0.kind == .overflow })
        #expect(overflow.creditCapMicros == 100_000_000 && overflow.offerId != nil)
        #expect(try conn.routableResourceRows().allSatisfy { ($0.ciphertext == nil) == ($0.resource.kind == .overflow) })
        #expect(try conn.resourceHealth(id: key.id).consecutiveOK >= 1)
        #expect(try conn.probes(tenantId: t, resourceId: key.id, limit: 10).allSatisfy { $0.trigger == .admission || $0.trigger == .schedule })
        let offers = try conn.offers()
        #expect(offers.first?.price == TokenPrice(inputPerMTok: 3_000_000, outputPerMTok: 6_000_000, cachedInputPerMTok: 3_000_000))
        let projects = try conn.projects(tenantId: t)
        let checkout = try #require(projects.first { $0.name == "checkout" })
        #expect(checkout.parentId == projects.first { $0.name == "division" }?.id)
        #expect(checkout.budget.monthlyCapMicros == 100_000_000 && checkout.budget.rolloverPercent == 20)
        #expect(checkout.budget.overagePolicy == .fallbackModel && checkout.budget.fallback?.capMicros == 10_000_000)
        #expect(checkout.budget.alertThresholds == [50, 90] && checkout.enforcement == .audit && checkout.overflowCapMicros == 50_000_000)
        #expect(checkout.rateLimits == RateLimits(rpm: 100, rpmPerKey: 50, rpmPerUser: 10, tpm: 100_000))
        #expect(checkout.attributes == ["cost_center": "ENG-42", "owner": "ada"])
        let keys = try conn.projectKeys(tenantId: t, projectId: checkout.id)
        #expect(keys.count == 2 && keys.contains { $0.revokedAt != nil })
        #expect(keys.first { $0.name == "svc" }?.allowedModels == ["fast-model", "stream-model"])
        let keyRows = try conn.projectKeysWithDigest()
        #expect(keyRows.filter { $0.key.revokedAt == nil }.count == 2 && keyRows.filter { $0.key.revokedAt != nil }.count == 1)
        let seats = try conn.seats(tenantId: t, projectId: checkout.id)
        #expect(seats.count == 2 && seats.contains { $0.previousValidUntil != nil } && seats.contains { $0.revokedAt != nil })
        #expect(try conn.seatsWithDigests().contains { $0.previousDigest != nil })
        let approvals = try conn.approvals(tenantId: t, status: nil, before: nil, limit: 1000).map(\.approval)
        #expect(approvals.map(\.status).sorted { $0.rawValue < $1.rawValue } == [.approved, .denied, .open])
        let hooks = try conn.webhooks(tenantId: t)
        #expect(Set(hooks.map(\.format)) == [.json, .slack])
        #expect(try conn.deliveries(tenantId: t, webhookId: nil, before: nil, limit: 10).allSatisfy { $0.status == .pending })
        let ledger = try conn.ledger(tenantId: t, filter: .init(), before: nil, limit: 100)
        #expect(ledger.count == 9)
        #expect(ledger.contains { $0.flags.contains(.wouldRefuse(.modelNotAllowed)) })
        #expect(ledger.contains { $0.reason == .approvalRequired } && ledger.contains { $0.stream && $0.status == 200 })
        #expect(ledger.filter { $0.status == 200 }.allSatisfy { $0.usage.input > 0 && $0.costMicros > 0 })
        var charges = 0
        try conn.forEachCharge(since: 0, tenantId: t) { _ in charges += 1 }
        #expect(charges == 9)
        #expect(try conn.auditEntries(tenantId: t, before: nil, limit: 100).count > 20)

    }

    @Test func damagedRowsFailInsteadOfLiftingLimits() throws {
        let (db, dir) = try Self.fixtureDatabase()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A project whose budget lost its required members must not read as "no budget cap".
        try db.writeSync { conn in
            try conn.execute(
                """
                UPDATE projects SET policy_json = '{"overflow_allowed":false,"budget":{"monthly_cap_micros":"lots"},\
                "request_limits":{},"rate_limits":{}}' WHERE name = 'checkout'
                """)
        }
        #expect(throws: StorageError.self) { try db.readSync { conn in try conn.allProjects() } }
        // Settings that are not JSON at all, and an unknown state.
        try db.writeSync { conn in
            try conn.execute("UPDATE tenants SET settings_json = 'not json'")
            try conn.execute("UPDATE resources SET state = 'melted' WHERE name = 'team-key'")
        }
        #expect(throws: StorageError.self) { try db.readSync { conn in try conn.allTenants() } }
        #expect(throws: StorageError.self) { try db.readSync { conn in try conn.routableResourceRows() } }
        // Extra members written by a newer version are tolerated.
        try db.writeSync { conn in
            let t = try #require(try conn.query("SELECT id FROM tenants").first).string("id")
            var tenant = Tenant(id: t, name: "compat-co", createdAt: 1, updatedAt: 1)
            tenant.settings.monthlyLimitMicros = 7
            try conn.updateTenant(tenant)
            try conn.execute("UPDATE tenants SET settings_json = json_set(settings_json, '$.from_the_future', 1)")
        }
        #expect(try db.readSync { conn in try conn.allTenants() }.first?.settings.monthlyLimitMicros == 7)
    }
}
