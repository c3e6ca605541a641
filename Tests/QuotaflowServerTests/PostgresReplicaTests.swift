import Foundation
import HashTreeCollections
import Logging
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import QuotaflowTestSupport
import Testing

@testable import QuotaflowServer

/// Replicas on one PostgreSQL database, in one test process: each a whole server with its own
/// engine, ledger writer and line to the fleet.
@Suite(.enabled(if: ScratchDatabases.postgresURL != nil)) struct PostgresReplicaTests {
    func replicas(
        _ n: Int, clock: any WallClock = SystemClock(), _ configure: @escaping @Sendable (inout AppConfig) -> Void = { _ in }
    ) async throws -> [TestServer] {
        let first = try await TestServer.start(engine: .postgres, clock: clock, configure)
        var out = [first]
        for _ in 1..<n {
            out.append(try await TestServer.start(engine: .postgres, clock: clock, dir: first.dir, operatorToken: first.operatorToken, configure))
        }
        return out
    }

    @Test func oneLeaderAndChangesReachEveryReplicaWithinASecond() async throws {
        try await withTestScope {
            let servers = try await replicas(2)
            let (a, b) = (servers[0], servers[1])
            try await a.eventually("one leader", timeout: .seconds(5)) { [a.state.leads, b.state.leads].filter { $0 }.count == 1 }
            let ready = try await b.request(.GET, "/readyz")
            #expect(ready.status == 200 && ready.json["fleet"]?["connected"] == .bool(true) && ready.json["fleet"]?["catalog_synced"] == .bool(true))

            let upstream = try await exactUpstream()
            let t = try await TenantFixture.exact(a, upstream: upstream)
            let p = try await t.project()
            let key = try await t.key(project: p)
            // Made on a: a key serves on b within a second, and a revoke there is refused on b as fast.
            try await b.eventually("the new key on b", timeout: .seconds(1)) { b.state.catalog.keysById[key.id] != nil }
            #expect(try await b.ask(key.secret).status == 200)
            try await t.call(.POST, "/projects/\(p)/keys/\(key.id)/revoke")
            #expect(try await a.ask(key.secret).status == 401)
            // Timed on b's catalog, not through HTTP: a loaded machine can take a second to answer one request.
            let revoked = ContinuousClock.now
            try await b.eventually("the revoke on b", timeout: .seconds(1)) { b.state.catalog.revoked.values.contains(key.id) }
            #expect(ContinuousClock.now - revoked < .seconds(1))
            #expect(try await b.ask(key.secret).status == 401)
        }
    }

    @Test func budgetsHoldExactlyAcrossReplicas() async throws {
        try await withTestScope {
            let servers = try await replicas(2) { $0.firstByteTimeoutMs = 60_000 }
            let (a, b) = (servers[0], servers[1])
            let gate = AsyncGate()
            let upstream = try await exactUpstream(gate: gate)
            let t = try await TenantFixture.exact(a, upstream: upstream)
            let k = 23
            // Two levels: the parent fits k worst cases, each child could take more alone.
            let parent = try await t.project(name: "division", extra: [("budget", ["monthly_cap_micros": .int(Int64(k) * 100)])])
            let childA = try await t.project(name: "a", extra: [("parent_id", .string(parent)), ("budget", ["monthly_cap_micros": 2_000])])
            let childB = try await t.project(name: "b", extra: [("parent_id", .string(parent)), ("budget", ["monthly_cap_micros": 2_000])])
            let keyA = try await t.key(project: childA)
            let keyB = try await t.key(project: childB)
            try await b.eventually("the keys on b", timeout: .seconds(2)) { b.state.catalog.keysById[keyB.id] != nil }
            let done = Counter()
            let n = 80
            let results = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for i in 0..<n {
                    let server = i % 2 == 0 ? a : b
                    let key = i % 3 == 0 ? keyA.secret : keyB.secret
                    group.addTask {
                        let r = try await server.ask(key)
                        done.add()
                        return r
                    }
                }
                try await a.eventually("every refusal answered", timeout: .seconds(30)) { done.value == n - k }
                await gate.open()
                var out: [TestResponse] = []
                for try await r in group { out.append(r) }
                return out
            }
            #expect(results.filter { $0.status == 200 }.count == k)
            #expect(results.filter { $0.status != 200 }.allSatisfy { $0.status == 429 })
            await b.gateway.ledger.flush()
            let rows = try await a.ledger(t.id)
            #expect(rows.count == n && rows.filter { $0.status == 200 }.map(\.costMicros).reduce(0, +) == Int64(k) * 100)
            // Nothing fits now, on either replica; reconcile on each sees no drift.
            #expect(try await a.ask(keyA.secret).status == 429)
            #expect(try await b.ask(keyB.secret).status == 429)
            for s in [a, b] {
                let r = try await s.request(.POST, "/admin/v1/tenants/\(t.id)/budgets/reconcile", token: s.operatorToken)
                #expect(r.json["drift"]?.arrayValue?.isEmpty == true, "\(r.text)")
            }
        }
    }

    @Test func rateLimitsCountEveryReplicasRequests() async throws {
        try await withTestScope {
            // A clock that stands still: on a loaded machine twelve requests can take longer than the 10 s in which
            // a limit of 6/min earns one more.
            let servers = try await replicas(2, clock: ManualClock(nowMs: Timestamp.parse("2026-11-21T10:00:00Z")!))
            let (a, b) = (servers[0], servers[1])
            let upstream = try await exactUpstream()
            let t = try await TenantFixture.exact(a, upstream: upstream)
            let key = try await t.key(project: try await t.project(), extra: [("rpm", 6)])
            try await b.eventually("the key on b", timeout: .seconds(2)) { b.state.catalog.keysById[key.id] != nil }
            var statuses: [Int] = []
            for i in 0..<12 { statuses.append(try await (i % 2 == 0 ? a : b).ask(key.secret, tokens: 1).status) }
            // Six a minute for the key, whichever replica counts them; each alone would have let six through.
            #expect(statuses.filter { $0 == 200 }.count == 6, "\(statuses)")
            #expect(statuses.filter { $0 != 200 }.allSatisfy { $0 == 429 })
            let refused = try await b.ask(key.secret, tokens: 1)
            #expect(refused.status == 429 && refused.text.contains("across the fleet") || refused.text.contains("rate limit"))
        }
    }

    @Test func anExclusiveSeatIsLeasedToOneHolderAcrossReplicas() async throws {
        try await withTestScope {
            let clock = ManualClock(nowMs: Timestamp.parse("2026-11-21T10:00:00Z")!)
            let servers = try await replicas(2, clock: clock)
            let (a, b) = (servers[0], servers[1])
            let upstream = try await Stub.upstream()
            let t = try await TenantFixture.make(a, settings: ["lease_idle_seconds": 60])
            let seat = try await t.resource(
                kind: "seat", baseURL: upstream.url + "/v1", extra: [("cost_basis", ["type": "flat_monthly", "monthly_fee_micros": 1])])
            let p = try await t.project()
            let alice = try await t.key(project: p)
            let bob = try await t.key(project: p)
            try await b.eventually("the seat and keys on b", timeout: .seconds(2)) {
                b.state.catalog.keysById[bob.id] != nil && b.state.catalog.resourcesById[seat]?.resource.state == .active
            }
            #expect(try await a.chat(key: alice.secret).status == 200)
            // Bob asks another replica: the seat is still Alice's there too.
            #expect(try await b.chat(key: bob.secret).status == 503)
            clock.advance(byMs: 30_000)
            #expect(try await b.chat(key: alice.secret).status == 200)
            #expect(try await a.chat(key: bob.secret).status == 503)
            // A minute idle, fleet-wide: the seat goes to Bob, and Alice waits.
            clock.advance(byMs: 61_000)
            #expect(try await b.chat(key: bob.secret).status == 200)
            #expect(try await a.chat(key: alice.secret).status == 503)
        }
    }

    @Test func aLostLinkStopsServingAndLeadingUntilCaughtUp() async throws {
        try await withTestScope {
            let servers = try await replicas(2)
            let (a, b) = (servers[0], servers[1])
            try await a.eventually("one leader", timeout: .seconds(5)) { [a.state.leads, b.state.leads].filter { $0 }.count == 1 }
            let (leader, other) = a.state.leads ? (a, b) : (b, a)
            let upstream = try await exactUpstream()
            let t = try await TenantFixture.exact(other, upstream: upstream)
            let p = try await t.project()
            let key = try await t.key(project: p)
            try await leader.eventually("the key on the leader", timeout: .seconds(2)) { try await leader.ask(key.secret).status == 200 }

            // The leader's link drops (the server ends its session): it stops leading at once and refuses
            // requests; the other replica takes over within seconds.
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let admin = try Database.open(leader.state.config.databasePath, password: nil, logger: logger)
            defer { admin.close() }
            let cut = try admin.writeSync { conn in
                try conn.query(
                    """
                    SELECT pg_terminate_backend(pid) AS cut FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() \
                    AND objid = \(0x2d72_6570 as Int64) AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """
                ).count
            }
            #expect(cut == 1)
            // Leadership goes with the connection at once (it may reconnect within the second, so readiness is
            // not sampled here: the window can be shorter than one HTTP call on a loaded machine).
            try await leader.eventually("the old leader stops leading", timeout: .seconds(3)) { !leader.state.leads }
            // A revoke made meanwhile (its announcement may be lost) must be applied before the old leader serves again.
            try await t.call(.POST, "/projects/\(p)/keys/\(key.id)/revoke")
            try await other.eventually("the other replica leads", timeout: .seconds(5)) { other.state.leads }
            try await leader.eventually("the old leader serves again", timeout: .seconds(5)) {
                try await leader.request(.GET, "/readyz").status == 200
            }
            #expect(!leader.state.leads)
            // If the old leader caught up before the revoke committed, the revoke reaches it as any change does:
            // within a second (on a loaded machine the test cannot tell which came first).
            try await leader.eventually("the revoke on the old leader", timeout: .seconds(1)) { leader.state.catalog.revoked.values.contains(key.id) }
            #expect(try await leader.ask(key.secret).status == 401)
        }
    }

    @Test func aStoppedReplicasReservationsAreSettledAtTheirWorstCase() async throws {
        try await withTestScope {
            let servers = try await replicas(1) { $0.fleetLeaseMs = 1_000 }
            let a = servers[0]
            let upstream = try await exactUpstream()
            let t = try await TenantFixture.exact(a, upstream: upstream)
            let p = try await t.project(extra: [("budget", ["monthly_cap_micros": 1_000])])
            let key = try await t.key(project: p)
            #expect(try await a.ask(key.secret, tokens: 100).status == 200)
            // A replica that admitted a request for 700 and died: its row never came.
            let period = try #require(a.gateway.engine.counterSnapshot(.project(p))?.period.start)
            try await a.state.db.fleetUpkeep { conn in
                _ = try conn.fleetHold(
                    FleetReservation(
                        id: "rep_gone/req-1", replica: "rep_gone",
                        worst: LedgerCharge(
                            at: 1, tenantId: t.id, projectId: p, keyId: key.id, seatId: nil, resourceId: nil, overflow: false, overage: nil,
                            overageProjectId: nil, costMicros: 700, upstreamCostMicros: 0),
                        wireFormat: .openai, endpoint: "/v1/chat/completions", model: "exact-model"),
                    levels: [FleetLevel(key: "project:\(p)", periodStart: period, limit: 1_000, amount: 700, initial: 100)])
            }
            // Held: 200 more does not fit (100 spent + 700 held).
            #expect(try await a.ask(key.secret, tokens: 250).status == 429)
            try await a.eventually("the reservation settled", timeout: .seconds(10)) {
                try await a.ledger(t.id).contains { $0.flags.contains(.reservationRecovered) }
            }
            let row = try #require(try await a.ledger(t.id).first { $0.flags.contains(.reservationRecovered) })
            #expect(row.requestId == "req-1" && row.costMicros == 700 && row.keyId == key.id)
            // Spent 800 of 1,000: 200 fits, 201 does not; the counters equal the ledger.
            #expect(try await a.ask(key.secret, tokens: 201).status == 429)
            #expect(try await a.ask(key.secret, tokens: 200).status == 200)
            #expect((try await t.call(.POST, "/budgets/reconcile"))["drift"]?.arrayValue?.isEmpty == true)
        }
    }
}
