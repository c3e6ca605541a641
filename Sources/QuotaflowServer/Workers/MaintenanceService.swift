import Logging
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle

/// Periodic housekeeping: marks expired seats (audited), drops idle rate-limiter state, and shuts
/// down upstream clients whose pinned address was replaced.
struct MaintenanceService: Service {
    let state: AppState
    let engine: AdmissionEngine
    let writer: StateWriter
    let clients: UpstreamClients
    static let intervalMs: Int64 = 30_000

    func run() async throws {
        let wake = Wakeup()
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await sweep()
                await wake.wait(untilMs: state.clock.nowMs() + Self.intervalMs, clock: state.clock)
            }
        } onGracefulShutdown: {
            wake.poke()
        }
    }

    func sweep() async {
        let now = state.clock.nowMs()
        engine.pruneLimiters(now: now)
        await clients.sweep()
        // The rest changes shared rows: once per fleet, by the leader.
        guard state.leads else { return }
        if state.fleet != nil {
            do {
                try await state.db.fleetUpkeep { conn in try conn.pruneFleetLimiters(now: now) }
            } catch {
                state.logger.error("pruning the fleet's rate limiters failed", metadata: ["error": "\(error)"])
            }
        }
        do {
            _ = try await expireSeats(now: now)
        } catch {
            state.logger.error("seat sweep failed", metadata: ["error": "\(error)"])
        }
        // Window history is kept for a year and a month (reports span at most that in practice).
        let cutoff = now - Self.windowHistoryMs
        writer.submit("window history retention") { conn in try conn.pruneWindowHistory(before: cutoff, batch: 10_000) }
    }

    static let windowHistoryMs: Int64 = 400 * 86_400_000

    /// Marks seats past their expiry and audits each exactly once; returns how many this call marked.
    func expireSeats(now: Int64) async throws -> Int {
        let due = try await state.db.read { conn in try conn.seatsToExpire(now: now) }
        guard !due.isEmpty else { return 0 }
        return try await writer.perform("seat expiry", republish: true) { conn -> Int in
            var marked = 0
            for seat in due where try conn.markSeatExpired(tenantId: seat.tenantId, id: seat.id, at: now) {
                marked += 1
                try conn.appendAudit(
                    AuditEntry(
                        tenantId: seat.tenantId, at: now, actor: "system:seat-sweep", action: "seat.expire", targetType: "seat", targetId: seat.id,
                        summary: ["holder": .string(seat.holder), "expires_at": .string(Timestamp.format(seat.expiresAt))]))
            }
            return marked
        }
    }
}
