import AsyncHTTPClient
import Hummingbird
import HTTPTypes
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
        printOperatorToken: (String) -> Void
    ) throws -> AppState {
        let db: Database
        do {
            db = try Database(path: config.databasePath)
        } catch {
            throw StartupError("cannot open the database at \(config.databasePath): \(error)")
        }
        let migrator = try Migrator.bundled()
        try migrator.migrate(db, clock: clock, logger: logger)
        let cipher = try Secrets.masterKey(db: db, explicitKey: masterKey, keyFile: masterKeyFile, logger: logger)
        let digest = try Secrets.operatorTokenDigest(db: db, explicitToken: operatorToken, printNewToken: printOperatorToken)
        let state = AppState(config: config, db: db, clock: clock, cipher: cipher, operatorDigest: digest, logger: logger)
        try state.reloadCatalogSync()
        return state
    }

    /// The router: health endpoints, the admin API and the data plane.
    public static func buildRouter(state: AppState, runtime: Runtime) -> Router<AppRequestContext> {
        let router = Router(context: AppRequestContext.self)
        let routes = RouteIndex()
        router.add(middleware: ErrorMiddleware(routes: routes))
        router.get("healthz") { _, _ in JSONResponse.make(["status": "ok"]) }
        router.get("readyz") { _, _ in
            let ready = await state.db.ping() && runtime.migrationsApplied
            return JSONResponse.make(
                ["status": .string(ready ? "ready" : "not_ready"), "database": .bool(ready)], status: ready ? .ok : .serviceUnavailable)
        }
        let kit = AdminKit(state: state)
        let admin = router.group("admin/v1").add(middleware: AdminAuthMiddleware(state: state))
        TenantsController(kit: kit).register(on: admin)
        PoolsController(kit: kit).register(on: admin)
        ResourcesController(kit: kit, egress: runtime.clients).register(on: admin)
        ProjectsController(kit: kit).register(on: admin)
        AuditController(kit: kit).register(on: admin)
        OffersController(kit: kit).register(on: admin)
        runtime.registerRoutes(router: router, admin: admin, kit: kit)
        routes.load(router.routes.map { (path: $0.path.description, method: $0.method) })
        return router
    }

    /// The HTTP application with the runtime's background services.
    public static func buildApplication(
        state: AppState, runtime: Runtime, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = buildRouter(state: state, runtime: runtime)
        let registry = runtime.connections
        return Application(
            router: router,
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [ConnectionWatchHandler(registry: registry)],
                    idleTimeout: .milliseconds(state.config.clientIdleTimeoutMs))),
            configuration: .init(address: .hostname(state.config.host, port: state.config.port), serverName: "quotaflow"),
            services: runtime.services, onServerRunning: onServerRunning, logger: state.logger)
    }
}
