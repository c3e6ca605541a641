import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle

/// Builds the server. The executable and the tests call the same functions.
public enum QuotaflowApp {
    /// Opens the database, applies migrations, resolves secrets and loads the catalog.
    public static func bootstrap(
        config: AppConfig, clock: any WallClock, logger: Logger, masterKey: String?, masterKeyFile: String?, operatorToken: String?,
        databasePassword: String? = nil, printOperatorToken: (String) -> Void
    ) throws -> AppState {
        // The console's files ship beside the binary; without them, stop before touching the database.
        guard ConsoleView.bundledAssets() != nil else { throw ConsoleView.missing }
        let db: Database
        do {
            db = try Database.open(config.databasePath, password: databasePassword, logger: logger)
        } catch {
            throw StartupError("cannot open the database \(Database.redacted(config.databasePath)): \(error)")
        }
        let migrator = try Migrator.bundled(for: db)
        try migrator.migrate(db, clock: clock, logger: logger)
        let cipher = try Secrets.masterKey(db: db, explicitKey: masterKey, keyFile: masterKeyFile, logger: logger)
        let digest = try Secrets.operatorTokenDigest(db: db, explicitToken: operatorToken, printNewToken: printOperatorToken)
        let fleet = try db.fleetLink(replicaId: "rep_" + Identifier.random(10), heartbeatMs: config.fleetHeartbeatMs, logger: logger)
        let state = AppState(config: config, db: db, clock: clock, cipher: cipher, operatorDigest: digest, logger: logger, fleet: fleet)
        try Secrets.backfillCredentialDigests(db: db, cipher: cipher)
        // In a fleet: connected (and listening) before the whole catalog is read, so no change is missed.
        if let fleet, !fleet.tick().connected { throw StartupError("cannot reach the fleet's database \(Database.redacted(config.databasePath))") }
        let connection = fleet?.connection
        try state.reloadCatalogSync()
        if let fleet, let connection { fleet.caughtUp(connection: connection) }
        return state
    }

    /// Assembles the engine, ledger, clients and workers of a server.
    public static func assemble(state: AppState, resolver: any HostResolver = SystemResolver()) throws -> Gateway {
        try Gateway(state: state, resolver: resolver)
    }

    /// The whole route table: health and metrics, the admin API, and the data plane. Each controller
    /// gets the pieces it uses.
    public static func buildRouter(gateway g: Gateway) -> Router<AppRequestContext> {
        let state = g.state
        let router = Router(context: AppRequestContext.self)
        let routes = RouteIndex()
        router.add(middleware: ErrorMiddleware(routes: routes))
        OperationsController(state: state, gateway: g).register(on: router)
        registerAdmin(on: router.group("admin/v1").add(middleware: AdminAuthMiddleware(state: state)), gateway: g)
        // The console calls the same admin routes in process, as its signed-in admin.
        let inProcess = Router(context: AppRequestContext.self)
        registerAdmin(on: inProcess.group("admin/v1").add(middleware: PresetIdentityMiddleware()), gateway: g)
        ConsoleController(
            view: g.consoleView, sessions: ConsoleSessions(state: state), api: AdminDispatch(responder: inProcess.buildResponder()), state: state
        ).register(on: router)
        DataPlaneController(
            catalog: state, config: state.config, clock: state.clock, settler: g.settler, policy: g.policy, forwarder: g.forwarder,
            endUsers: EndUserDigests(key: state.userDigestKey), reads: state.db, serving: { [state] in state.serving }
        ).register(on: router)
        HolderUsage(catalog: state, engine: g.engine, clock: state.clock, ledger: g.ledger).register(on: router)
        routes.load(router.routes.map { (path: $0.path.description, method: $0.method) })
        return router
    }

    /// Every admin API controller, on the group given (the public one, or the console's in-process one).
    static func registerAdmin(on admin: RouterGroup<AppRequestContext>, gateway g: Gateway) {
        let state = g.state
        let env = AdminEnvironment(state: state)
        let cipher = state.cipher
        TenantsController(env: env).register(on: admin)
        AdminKeysController(env: env).register(on: admin)
        PricingController(env: env).register(on: admin)
        PoolsController(env: env).register(on: admin)
        ResourcesController(env: env, cipher: cipher, egress: g.clients, oauth: g.oauth).register(on: admin)
        ResourceHealthController(env: env, verifier: g.verifier, engine: g.engine).register(on: admin)
        WindowsController(env: env).register(on: admin)
        ProjectsController(env: env).register(on: admin)
        ProjectKeysController(env: env).register(on: admin)
        SeatsController(env: env, engine: g.engine, ledger: g.ledger).register(on: admin)
        BudgetsController(env: env, engine: g.engine, ledger: g.ledger, alerts: g.alerts).register(on: admin)
        ApprovalsController(env: env).register(on: admin)
        WebhooksController(env: env, cipher: cipher, alerts: g.alerts, clients: g.clients).register(on: admin)
        PolicyController(
            env: env, cipher: cipher, resources: ResourcesController(env: env, cipher: cipher, egress: g.clients, oauth: g.oauth), clients: g.clients,
            maxBodyBytes: state.config.maxPolicyBodyBytes
        ).register(on: admin)
        LedgerController(env: env, ledger: g.ledger).register(on: admin)
        UsageReportsController(env: env, ledger: g.ledger).register(on: admin)
        CapacityReportsController(env: env, engine: g.engine, ledger: g.ledger).register(on: admin)
        AuditController(env: env).register(on: admin)
        OffersController(env: env, cipher: cipher).register(on: admin)
    }

    /// The HTTP application with the gateway's background services.
    public static func buildApplication(
        gateway: Gateway, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let state = gateway.state
        let router = buildRouter(gateway: gateway)
        let registry = gateway.connections
        return Application(
            router: router,
            server: HTTPServerBuilder { responder in
                LoopBoundHTTP1Channel(
                    inner: HTTP1Channel(
                        responder: responder,
                        configuration: .init(
                            additionalChannelHandlers: [ConnectionWatchHandler(registry: registry)],
                            idleTimeout: .milliseconds(state.config.clientIdleTimeoutMs))))
            },
            configuration: .init(address: .hostname(state.config.host, port: state.config.port), serverName: "quotaflow"),
            services: gateway.services, onServerRunning: onServerRunning, logger: state.logger)
    }
}
