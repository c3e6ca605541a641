import Logging
import NIOPosix
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle

/// A replica's part in the fleet (PostgreSQL only; on SQLite it waits for shutdown, since a service
/// that returns would stop the whole group):
/// - every second it heartbeats, and takes the leader's lock if no one holds it;
/// - on each announced catalog change, and every second, it applies the changes other replicas
///   made; after a new connection it catches up before it serves again (announcements sent
///   meanwhile are lost);
/// - while it leads, it settles reservations left by replicas that stopped heartbeating, at their
///   worst case, each with a flagged ledger row.
struct FleetService: Service, CustomStringConvertible {
    let state: AppState
    let ledger: LedgerWriter
    let engine: AdmissionEngine
    var description: String { "fleet" }

    func run() async throws {
        guard let link = state.fleet else {
            try? await gracefulShutdown()
            return
        }
        let realTime = SystemClock()
        await withGracefulShutdownHandler {
            var status = FleetLink.Status(connected: link.isConnected, leader: link.isLeader, fresh: false)
            var lastTick: Int64 = 0
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let now = realTime.nowMs()
                if now - lastTick >= state.config.fleetHeartbeatMs || !status.connected {
                    lastTick = now
                    let previous = status
                    status = (try? await blocking { link.tick() }) ?? FleetLink.Status(connected: false, leader: false, fresh: false)
                    report(previous, status)
                }
                if status.connected {
                    // Caught up before serving again after a new connection; kept current otherwise.
                    let connection = link.connection
                    do {
                        try await blocking { try state.syncCatalogSync() }
                        link.caughtUp(connection: connection)
                    } catch {
                        state.logger.error("cannot read the fleet's catalog changes", metadata: ["error": "\(error)"])
                    }
                }
                if status.leader { await recoverStranded() }
                await state.fleetWake.wait(untilMs: lastTick + state.config.fleetHeartbeatMs, clock: realTime)
            }
        } onGracefulShutdown: {
            state.fleetWake.poke()
        }
    }

    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Database.postgresThreads.runIfActive(body)
    }

    func report(_ before: FleetLink.Status, _ now: FleetLink.Status) {
        if before.connected != now.connected {
            if now.connected {
                state.logger.notice("connected to the fleet's database again; catching up on catalog changes before serving")
            } else {
                state.logger.error("lost the connection to the fleet's database; refusing requests until it is back")
            }
        }
        if before.leader != now.leader {
            state.logger.notice(now.leader ? "leading the fleet: running the verifier, outbox and maintenance" : "no longer leading the fleet")
        }
    }

    /// Settles, at their worst case, the reservations of replicas that stopped heartbeating.
    func recoverStranded() async {
        let leaseMs = state.config.fleetLeaseMs
        let db = state.db
        do {
            let stranded = try await db.fleetUpkeep { conn in try conn.fleetStranded(leaseMs: leaseMs) }
            for r in stranded where state.leads {
                let catalog = state.catalog
                let now = state.clock.nowMs()
                let w = r.worst
                var entry = LedgerEntry(
                    requestId: String(r.id.split(separator: "/", maxSplits: 1).last ?? Substring(r.id)), at: now, startedAt: w.at,
                    tenantId: w.tenantId, projectId: w.projectId, wireFormat: r.wireFormat, endpoint: r.endpoint, modelRequested: r.model,
                    status: 502)
                entry.take(w)
                entry.reservedMicros = w.costMicros
                entry.reason = .upstreamError
                entry.flags = [.reservationRecovered, .usageEstimated]
                let chain = catalog.projectChain(w.projectId).map(\.id)
                let charges = Charging.charges(w.facts(chain: chain), cost: w.costMicros, upstream: w.upstreamCostMicros)
                let levels = FleetBudgets.charges(charges, at: now, engine: engine, catalog: catalog, tenantId: w.tenantId, projectId: w.projectId)
                let row = entry
                let recovered = try await db.fleetUpkeep { conn in try conn.fleetRecover(r.id, entry: row, charges: levels) }
                if recovered {
                    state.logger.warning(
                        "settled a reservation left by a stopped replica at its worst case",
                        metadata: ["request_id": "\(r.id)", "replica": "\(r.replica)", "worst_micros": "\(w.costMicros)"])
                }
            }
            try await db.fleetUpkeep { conn in try conn.fleetForgetGone(leaseMs: leaseMs) }
        } catch {
            state.logger.error("recovering stranded reservations failed", metadata: ["error": "\(error)"])
        }
    }
}
