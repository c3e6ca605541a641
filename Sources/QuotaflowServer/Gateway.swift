import Logging
import NIOCore
import NIOPosix
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle
import Synchronization

/// The assembled pieces of a running Quotaflow, built once by `QuotaflowApp.assemble`: the
/// admission engine, the ledger writer, the upstream clients, the state writer and the workers.
/// It holds no logic of its own; `App+build.swift` wires the routes to the pieces they need.
public final class Gateway: Sendable {
    public let state: AppState
    let engine: AdmissionEngine
    let ledger: LedgerWriter
    let clients: UpstreamClients
    let connections: ConnectionRegistry
    let metrics: Metrics
    let writer: StateWriter
    let alerts: Alerts
    let verifier: Verifier
    let counters: Counters
    let windows: WindowRecorder
    let oauth: OAuthCredentials
    /// In a fleet, the budgets shared by every replica.
    let fleet: FleetBudgets?
    let migrationsAppliedFlag: Atomic<Bool>
    /// The console's templates and files, read at start (a missing bundle is a startup error).
    let consoleView: ConsoleView

    init(state: AppState, resolver: any HostResolver) throws {
        self.state = state
        consoleView = try ConsoleView()
        let engine = AdmissionEngine()
        let metrics = Metrics()
        let alerts = Alerts(state: state, engine: engine, metrics: metrics)
        let clients = UpstreamClients(config: state.config, resolver: resolver, clock: state.clock)
        let writer = StateWriter(state: state)
        let fleet = state.fleet.map { FleetBudgets(db: state.db, engine: engine, replicaId: $0.replicaId) }
        self.fleet = fleet
        var settleShared: (@Sendable (StoreConnection, [LedgerWriter.Item]) throws -> [CounterSpend])?
        if let fleet { settleShared = { conn, items in try fleet.settle(conn, items) } }
        let ledger = LedgerWriter(
            db: state.db, logger: state.logger, maxBatch: state.config.ledgerBatchSize, inTransaction: settleShared
        ) { items, micros, fleetSpend in
            // Counters move only after the ledger commits; then thresholds are checked.
            alerts.check(engine.settle(items.compactMap { item in item.settlement.map { ($0, item.entry.at) } }, fleetSpend: fleetSpend))
            metrics.ledgerBatch(items.count, commitMicros: micros)
        }
        self.engine = engine
        self.metrics = metrics
        self.alerts = alerts
        self.clients = clients
        self.writer = writer
        self.ledger = ledger
        self.connections = ConnectionRegistry()
        let oauth = OAuthCredentials(state: state, clients: clients, writer: writer)
        self.oauth = oauth
        self.verifier = Verifier(state: state, engine: engine, writer: writer, clients: clients, metrics: metrics, oauth: oauth)
        self.counters = Counters(engine: engine, ledger: ledger, state: state)
        self.windows = WindowRecorder(engine: engine, writer: writer, metrics: metrics, persistMs: state.config.windowPersistMs)
        if let saved = try? state.db.readSync({ conn in try conn.allWindows() }) { windows.restore(saved) }
        let applied = (try? Migrator.bundled(for: state.db).appliedVersion(state.db)) == (try? Migrator.bundled(for: state.db).latestVersion)
        self.migrationsAppliedFlag = Atomic(applied)
        try counters.recomputeNow()
        let counters = self.counters
        state.onPublish { old, new, changes in
            engine.catalogChanged(old: old, new: new, resourceIds: new.changedResources)
            counters.catalogChanged(old: old, new: new, changes: changes)
        }
    }

    public var migrationsApplied: Bool { migrationsAppliedFlag.load(ordering: .relaxed) }

    /// Background services in start order. They stop in reverse, after the HTTP server has drained:
    /// the workers first, then the state writer (which drains its queue), the ledger (which commits
    /// its queue), and the upstream clients last.
    public var services: [any Service] {
        [
            ClosureService(name: "http-client") { [clients, state] in
                try? await gracefulShutdown()
                await clients.shutdown()
                // Last of all: PostgreSQL connections are closed rather than left to time out, and the
                // replica leaves the fleet (its leader's lock, if it held it, goes at once).
                state.fleet?.depart()
                state.db.close()
            },
            FleetService(state: state, ledger: ledger, engine: engine),
            ClosureService(name: "ledger") { [ledger] in
                try? await gracefulShutdown()
                await ledger.shutdown()
            },
            writer,
            ClosureService(name: "windows") { [windows, state] in
                // Writes coalesced window changes; the last ones at shutdown, before the state writer drains.
                let wake = Wakeup()
                await withGracefulShutdownHandler {
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        await wake.wait(untilMs: state.clock.nowMs() + state.config.windowPersistMs, clock: state.clock)
                        windows.flush(catalog: state.catalog, now: state.clock.nowMs())
                    }
                } onGracefulShutdown: {
                    wake.poke()
                }
                windows.flush(catalog: state.catalog, now: state.clock.nowMs())
            },
            VerifierService(verifier: verifier, enabled: state.config.verifierEnabled),
            ClosureService(name: "oauth") { [oauth, state] in
                // Refreshes access tokens before they expire, so requests rarely wait for one.
                let wake = Wakeup()
                await withGracefulShutdownHandler {
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        await oauth.refreshDue(state.catalog)
                        await wake.wait(untilMs: state.clock.nowMs() + max(1_000, state.config.oauthRefreshMarginMs / 4), clock: state.clock)
                    }
                } onGracefulShutdown: {
                    wake.poke()
                }
            },
            OutboxService(state: state, clients: clients, metrics: metrics, wake: alerts.wake),
            MaintenanceService(state: state, engine: engine, writer: writer, clients: clients),
        ]
    }

    // MARK: data-plane pieces

    var settler: Settler {
        Settler(
            engine: engine, ledger: ledger, metrics: metrics, accessLog: AccessLog(logger: state.logger), clock: state.clock, logger: state.logger,
            fleet: fleet)
    }

    var policy: AdmissionPolicy {
        AdmissionPolicy(
            engine: engine, approvals: Approvals(writer: writer, alerts: alerts, clock: state.clock),
            windowPolicy: WindowPolicy(
                threshold: Double(state.config.windowThresholdPercent) / 100, graceMs: state.config.windowGraceMs), fleet: fleet)
    }

    var forwarder: Forwarder {
        let answers = Answers(engine: engine, clock: state.clock)
        return Forwarder(
            config: state.config, clock: state.clock, upstream: UpstreamCaller(clients: clients, connections: connections, logger: state.logger),
            policy: policy, cooldowns: Cooldowns(engine: engine, writer: writer, metrics: metrics, clock: state.clock), verifier: verifier,
            metrics: metrics, answers: answers, relay: StreamRelay(answers: answers, clock: state.clock, totalTimeoutMs: state.config.totalTimeoutMs),
            windows: windows, oauth: oauth)
    }
}

/// A service made of a closure.
struct ClosureService: Service, CustomStringConvertible {
    let name: String
    let body: @Sendable () async throws -> Void
    init(name: String, _ body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.body = body
    }
    func run() async throws { try await body() }
    var description: String { name }
}

/// Reads the current catalog snapshot.
protocol CatalogHolder: Sendable {
    var current: Catalog { get }
}

extension AppState: CatalogHolder {
    var current: Catalog { catalog }
}
