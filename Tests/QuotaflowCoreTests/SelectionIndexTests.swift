import Testing

@testable import QuotaflowCore

/// The selection index: the same choices as looking at every resource, at a cost that does not grow
/// with the pool, and in step with catalog changes.
@Suite struct SelectionIndexTests {
    typealias W = AdmissionEngineTests.World
    static let now = AdmissionEngineTests.now

    static func world(_ count: Int, limits: (Int) -> ResourceLimits = { _ in .init() }) -> W {
        var w = W()
        w.resources = (0..<count).map { w.resource("r\($0)", limits: limits($0)) }
        return w
    }

    func admitted(_ o: AdmissionEngine.Outcome) throws -> Admission {
        guard case .admitted(let a) = o else { throw CancellationError() }
        return a
    }

    @Test func aLargePoolIsWalkedNotScanned() throws {
        let w = Self.world(10_000, limits: { _ in ResourceLimits(maxConcurrency: 2) })
        let engine = AdmissionEngine()
        let request = w.request()
        var chosen: Set<String> = []
        for _ in 0..<500 {
            let a = try admitted(engine.admit(request))
            chosen.insert(a.resource.id)
            #expect(engine.lastWalkExamined <= 2)
        }
        // Every request went to an idle resource: the least loaded, ties to the least recently taken.
        #expect(chosen.count == 500)
    }

    @Test func choicesMatchAFullScanUnderChangingLoad() throws {
        var w = Self.world(40, limits: { i in ResourceLimits(maxConcurrency: Int64(1 + i % 4)) })
        for i in stride(from: 0, to: 40, by: 7) { w.resources[i].state = .degraded }
        let engine = AdmissionEngine()
        var held: [Admission] = []
        var seed: UInt64 = 42
        func next(_ n: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(n))
        }
        var now = Self.now
        for step in 0..<2_000 {
            now += 10
            if step % 97 == 0 { _ = engine.cool(resourceId: "r\(next(40))", until: now + 500) }
            if !held.isEmpty, next(3) == 0 {
                let a = held.remove(at: next(held.count))
                engine.release(resourceId: a.resource.id, estimatedTokens: 110, actualTokens: 110, now: now)
                continue
            }
            // The best key any eligible resource has, from every resource's runtime.
            let board = engine.resourceSnapshot()
            let eligible = w.resources.filter { r in
                let rt = board[r.id]
                return (rt?.inFlight ?? 0) < r.limits.maxConcurrency! && (rt?.coolingUntil ?? 0) <= now
            }
            func order(_ r: Resource) -> Routing.Order {
                Routing.Order(
                    atThreshold: false, degraded: r.state == .degraded, urgency: nil,
                    score: Double(board[r.id]?.inFlight ?? 0) / Double(r.limits.maxConcurrency!), marginalRank: 0)
            }
            let best = eligible.map(order).min()
            guard case .admitted(let a) = engine.admit(w.request(at: now)) else {
                #expect(best == nil, "refused at step \(step) although a resource was free")
                continue
            }
            #expect(order(a.resource.resource) == best, "step \(step): chose \(a.resource.id)")
            held.append(a)
        }
    }

    @Test func catalogChangesReachTheIndexWithAndWithoutBeingTold() throws {
        for told in [true, false] {
            var w = Self.world(3)
            let engine = AdmissionEngine()
            let before = w.catalog
            for _ in 0..<3 { _ = try admitted(engine.admit(w.request())) }
            w.resources[0].state = .suspended
            w.resources.append(w.resource("r3"))
            let after = w.catalog
            if told { engine.catalogChanged(old: before, new: after, resourceIds: ["r0", "r3"]) }
            var routed: [String] = []
            for _ in 0..<6 { routed.append(try admitted(engine.admit(w.request())).resource.id) }
            #expect(routed.first == "r3", "told: \(told)")
            #expect(!routed.contains("r0") && Set(routed) == ["r1", "r2", "r3"], "told: \(told)")
        }
    }

    @Test func aSuspendedResourceLeavesTheIndexWhenTheCountStaysTheSame() throws {
        var w = Self.world(3)
        let engine = AdmissionEngine()
        for _ in 0..<3 { _ = try admitted(engine.admit(w.request())) }
        // A catalog built afresh, one resource suspended: no lane grew, and nobody told the engine.
        w.resources[1].state = .suspended
        var routed: Set<String> = []
        for _ in 0..<6 { routed.insert(try admitted(engine.admit(w.request())).resource.id) }
        #expect(routed == ["r0", "r2"])
    }

    @Test func aDegradedHeldSeatCompetesInTheRoutingOrder() throws {
        var w = W()
        w.resources = ["s1", "s2"].map { w.resource($0, kind: .seat, limits: ResourceLimits(rpm: 10), lease: .exclusive) }
        for i in w.resources.indices { w.resources[i].state = .degraded }
        let catalog = w.catalog
        func request(_ holder: String, at now: Int64) -> AdmissionRequest {
            AdmissionRequest(
                catalog: catalog, tenant: w.tenant, chain: catalog.projectChain("team"), key: w.key, model: "m", family: .chat, holder: holder,
                shape: CostShape(inputTokens: 10, outputCap: 100), listPrice: AdmissionEngineTests.price, enforce: true, overage: nil,
                grants: [:], leaseIdleMs: 1_000, now: now)
        }
        let engine = AdmissionEngine()
        let t0 = Self.now
        // "o" uses s2 three times and leaves it; later "h" leases s1 and makes one request.
        for _ in 0..<3 {
            let a = try admitted(engine.admit(request("o", at: t0)))
            #expect(a.resource.id == "s1" || a.resource.id == "s2")
            engine.release(resourceId: a.resource.id, estimatedTokens: 110, actualTokens: 110, now: t0)
        }
        let busy = engine.resourceSnapshot().max { $0.value.routed < $1.value.routed }!.key
        let first = try admitted(engine.admit(request("h", at: t0 + 1_500)))
        #expect(first.resource.id != busy)
        engine.release(resourceId: first.resource.id, estimatedTokens: 110, actualTokens: 110, now: t0 + 1_500)
        // Both degraded; h's seat is still its own (lease not idle) and the less used: h keeps it.
        #expect(try admitted(engine.admit(request("h", at: t0 + 2_000))).resource.id == first.resource.id)
    }

    @Test func aHolderFindsItsOwnSeatAndOthersSkipLeasedSeats() throws {
        var w = W()
        w.resources = (0..<200).map { w.resource("s\($0)", kind: .seat, lease: .exclusive) }
        let engine = AdmissionEngine()
        var seats: [String: String] = [:]
        for i in 0..<150 { seats["h\(i)"] = try admitted(engine.admit(w.request(holder: "h\(i)"))).resource.id }
        #expect(Set(seats.values).count == 150)
        for i in 0..<150 {
            #expect(try admitted(engine.admit(w.request(holder: "h\(i)"))).resource.id == seats["h\(i)"])
        }
        let newcomer = try admitted(engine.admit(w.request(holder: "new")))
        #expect(!seats.values.contains(newcomer.resource.id))
        #expect(engine.lastWalkExamined <= 2)
    }
}
