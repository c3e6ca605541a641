import Testing

@testable import QuotaflowCore

/// The admission engine without HTTP: budgets held at every level and settled, the overflow order,
/// seat leases, cooldowns, usage windows and rate limits.
@Suite struct AdmissionEngineTests {
    static let now: Int64 = 1_795_000_000_000
    /// 1 micro-USD per output token, inputs free.
    static let price = TokenPrice(inputPerMTok: 0, outputPerMTok: 1_000_000)

    struct World {
        var tenant = Tenant(id: "t", name: "t", createdAt: 0, updatedAt: 0)
        var projects: [Project] = []
        var resources: [Resource] = []
        var key = DataPlaneKey(
            kind: .projectKey, id: "k", tenantId: "t", projectId: "team", name: "k", allowedModels: [], budgetCapMicros: nil, rpm: nil,
            expiresAt: nil, validUntil: nil)

        init() {
            projects = [
                Project(id: "division", tenantId: "t", name: "division", poolIds: ["pool"]),
                Project(id: "team", tenantId: "t", name: "team", parentId: "division", poolIds: ["pool"]),
            ]
            resources = [resource("r1")]
        }

        func resource(_ id: String, kind: ResourceKind = .apiKey, limits: ResourceLimits = .init(), lease: LeaseMode? = nil) -> Resource {
            Resource(
                id: id, tenantId: "t", poolId: "pool", name: id, kind: kind, provider: .openai, wireFormat: .openai, baseURL: "http://x",
                models: ["m"],
                costBasis: kind == .seat ? .flatMonthly(feeMicros: 1) : .perToken(AdmissionEngineTests.price), limits: limits, leaseMode: lease,
                state: .active)
        }

        var catalog: Catalog {
            Catalog(
                tenants: ["t": tenant], projects: Dictionary(uniqueKeysWithValues: projects.map { ($0.id, $0) }), keys: ["digest": key],
                resourcesByTenant: ["t": resources.map { RoutableResource(resource: $0, credential: "c", baseURL: $0.baseURL, price: nil) }])
        }

        func request(
            output: Int64 = 100, holder: String = "k", overage: (kind: OverageKind, projectId: String)? = nil,
            at now: Int64 = AdmissionEngineTests.now
        )
            -> AdmissionRequest
        {
            let catalog = self.catalog
            return AdmissionRequest(
                catalog: catalog, tenant: tenant, chain: catalog.projectChain("team"), key: key, model: "m", family: .chat, holder: holder,
                shape: CostShape(inputTokens: 10, outputCap: output), listPrice: AdmissionEngineTests.price, enforce: true, overage: overage,
                grants: [:], leaseIdleMs: 60_000, now: now)
        }
    }

    func admitted(_ o: AdmissionEngine.Outcome, sourceLocation: SourceLocation = #_sourceLocation) throws -> Admission {
        guard case .admitted(let a) = o else {
            Issue.record("expected admission, got \(o)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
        return a
    }

    @Test func holdsTheWorstCaseAtEveryLevelAndSettlesTheActualCost() throws {
        var w = World()
        w.tenant.settings.monthlyLimitMicros = 10_000
        w.projects[0].budget.monthlyCapMicros = 5_000
        w.projects[1].budget.monthlyCapMicros = 1_000
        w.key = DataPlaneKey(
            kind: .projectKey, id: "k", tenantId: "t", projectId: "team", name: "k", allowedModels: [], budgetCapMicros: 700, rpm: nil,
            expiresAt: nil, validUntil: nil)
        w.resources = [w.resource("r1", limits: ResourceLimits(monthlySpendCapMicros: 900))]
        let engine = AdmissionEngine()
        let a = try admitted(engine.admit(w.request()))
        #expect(a.worstCase == 100 && a.upstreamWorstCase == 100)
        #expect(Set(a.reservation.holds.map(\.0)) == [.key("k"), .project("team"), .project("division"), .tenant("t"), .resource("r1")])
        #expect(a.budgetRemaining == 600)
        for key in [BudgetKey.key("k"), .project("team"), .project("division"), .tenant("t"), .resource("r1")] {
            #expect(engine.counterSnapshot(key)?.reserved == 100)
        }
        #expect(engine.reservationsHeld == 1)
        let settled = engine.settle([(Settlement(reservation: a.reservation, charges: Charging.charges(a.facts, cost: 40, upstream: 40)), Self.now)])
        #expect(settled.count == 5)
        for key in [BudgetKey.key("k"), .project("team"), .project("division"), .tenant("t"), .resource("r1")] {
            #expect(engine.counterSnapshot(key)?.reserved == 0 && engine.counterSnapshot(key)?.spent == 40)
        }
        #expect(engine.reservationsHeld == 0)
    }

    @Test func aParentCapFitsExactlyKWorstCases() throws {
        var w = World()
        w.projects[0].budget.monthlyCapMicros = 350
        let engine = AdmissionEngine()
        for _ in 0..<3 { _ = try admitted(engine.admit(w.request())) }
        guard case .overBudget(let projectId, let detail, _) = engine.admit(w.request()) else {
            Issue.record("the fourth must not fit")
            return
        }
        #expect(projectId == "division" && detail.contains("$0.000050 left"))
        // A smaller request still fits the 50 left.
        _ = try admitted(engine.admit(w.request(output: 50)))
    }

    @Test func overflowIsUsedOnlyWhenNothingOwnedIsEligibleAndAllowed() throws {
        var w = World()
        w.resources = [w.resource("owned", limits: ResourceLimits(maxConcurrency: 1)), w.resource("spill", kind: .overflow)]
        w.resources[1].creditCapMicros = 150
        let engine = AdmissionEngine()
        #expect(try admitted(engine.admit(w.request())).resource.id == "owned")
        guard case .denied(let d) = engine.admit(w.request()) else { return #expect(Bool(false)) }
        #expect(d.reason == .noCapacity && d.message.contains("overflow is not enabled"))
        w.projects[1].overflowAllowed = true
        let spill = try admitted(engine.admit(w.request()))
        #expect(spill.resource.id == "spill" && spill.facts.overflow)
        #expect(spill.reservation.holds.contains { $0.0 == .overflowCredit("spill") })
        // The credit cap (150) leaves no room for another 100.
        guard case .denied = engine.admit(w.request()) else { return #expect(Bool(false)) }
    }

    @Test func reselectionMovesTheUpstreamHoldAndKeepsTheBudgetHolds() throws {
        var w = World()
        w.resources = [w.resource("a"), w.resource("b")]
        w.projects[1].budget.monthlyCapMicros = 1_000
        let engine = AdmissionEngine()
        var a = try admitted(engine.admit(w.request()))
        let first = a.resource.id
        engine.release(resourceId: first, estimatedTokens: 110, actualTokens: 0, now: Self.now)
        #expect(engine.reselect(&a, request: w.request()))
        #expect(a.resource.id != first && a.tried.count == 2)
        #expect(engine.counterSnapshot(.resource(first))?.reserved == 0 && engine.counterSnapshot(.resource(a.resource.id))?.reserved == 100)
        #expect(engine.counterSnapshot(.project("team"))?.reserved == 100)
        #expect(!engine.reselect(&a, request: w.request()))
    }

    @Test func anExclusiveSeatStaysWithItsHolderUntilIdle() throws {
        var w = World()
        w.resources = [w.resource("seat", kind: .seat, lease: .exclusive)]
        let engine = AdmissionEngine()
        let alice = try admitted(engine.admit(w.request(holder: "alice")))
        engine.release(resourceId: "seat", estimatedTokens: 110, actualTokens: 110, now: Self.now)
        guard case .denied(let d) = engine.admit(w.request(holder: "bob", at: Self.now + 1_000)) else { return #expect(Bool(false)) }
        // Free when the lease has been idle for a minute.
        #expect(d.retryAfterSeconds == 59)
        #expect(try admitted(engine.admit(w.request(holder: "alice", at: Self.now + 2_000))).resource.id == alice.resource.id)
        engine.release(resourceId: "seat", estimatedTokens: 110, actualTokens: 110, now: Self.now + 2_000)
        _ = try admitted(engine.admit(w.request(holder: "bob", at: Self.now + 62_000)))
    }

    @Test func cooldownsModelCooldownsAndWindowsSayWhenRoomReturns() throws {
        var w = World()
        w.resources = [w.resource("r1", limits: ResourceLimits(windows: [UsageWindow(requests: 2, windowSeconds: 3_600)]))]
        let engine = AdmissionEngine()
        _ = try admitted(engine.admit(w.request()))
        _ = try admitted(engine.admit(w.request()))
        guard case .denied(let full) = engine.admit(w.request()) else { return #expect(Bool(false)) }
        #expect(full.retryAfterSeconds == 3_600)
        let other = AdmissionEngine()
        #expect(other.cool(resourceId: "r1", until: Self.now + 90_000))
        #expect(!other.cool(resourceId: "r1", until: Self.now + 10_000))
        guard case .denied(let cooling) = other.admit(w.request()) else { return #expect(Bool(false)) }
        #expect(cooling.retryAfterSeconds == 90)
        other.clearCooling(resourceId: "r1")
        #expect(other.coolModel(resourceId: "r1", model: "m", until: Self.now + 30_000, forgetBefore: Self.now))
        guard case .denied(let model) = other.admit(w.request()) else { return #expect(Bool(false)) }
        #expect(model.retryAfterSeconds == 30)
    }

    @Test func rateLimitsTakeAllOrNothingAndAuditOnlyRecords() {
        let engine = AdmissionEngine()
        let checks = [RateCheck(key: .key("k"), limit: 2, cost: 1, what: "key"), RateCheck(key: .project("p"), limit: 1, cost: 1, what: "project")]
        #expect((try? engine.rateLimit(checks, now: Self.now, enforce: true).get()) == [])
        guard case .failure(let d) = engine.rateLimit(checks, now: Self.now, enforce: true) else { return #expect(Bool(false)) }
        #expect(d.reason == .rateLimited && d.retryAfterSeconds == 60)
        // The key's unit was given back when the project refused.
        #expect(engine.remaining(limiter: .key("k"), limit: 2, now: Self.now) == 1)
        #expect((try? engine.rateLimit(checks, now: Self.now, enforce: false).get()) == [.wouldRefuse(.rateLimited)])
        guard
            case .failure(let big) = engine.rateLimit(
                [RateCheck(key: .projectTokens("p"), limit: 10, cost: 50, what: "tokens")], now: Self.now, enforce: true)
        else { return #expect(Bool(false)) }
        #expect(big.reason == .requestTooLarge)
    }
}
