import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import QuotaflowTestSupport
import ServiceLifecycle
import Synchronization
import Testing

@testable import QuotaflowServer

/// An HTTP answer, read whole.
struct TestResponse: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue { (try? JSONParser.parse(body)) ?? .null }
    func header(_ name: String) -> String? { headers.first(name: name) }
}

/// Runs a Hummingbird application on 127.0.0.1 port 0 until stopped.
final class RunningApp: Sendable {
    let port: Int
    let group: ServiceGroup
    let task: Task<Void, any Error>

    init(port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.group = group
        self.task = task
    }

    static func start(_ build: (@escaping @Sendable (any Channel) async -> Void) -> any Service, extra: [any Service] = []) async throws -> RunningApp
    {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = build { channel in continuation.yield(channel.localAddress?.port ?? 0) }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let group = ServiceGroup(configuration: .init(services: extra + [service], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await p in stream {
            port = p
            break
        }
        let app = RunningApp(port: port, group: group, task: task)
        TestScope.adopt("a server on port \(port)") { await app.stop() }
        return app
    }

    /// Stops the server and waits for it; stopping twice is harmless. A server still busy after
    /// `limit` (a handler that never ends would hold a graceful shutdown forever) is a test failure,
    /// recorded, and the test goes on rather than hanging the run.
    func stop(limit: Duration = .seconds(20)) async {
        await group.triggerGracefulShutdown()
        let stopped = await finishes(task, within: limit)
        if !stopped {
            task.cancel()
            Issue.record("the server on port \(port) was still busy \(limit) after it was asked to stop")
        }
    }
}

/// A stub upstream whose routes the test writes.
struct StubUpstream: Sendable {
    let app: RunningApp
    var url: String { "http://127.0.0.1:\(app.port)" }

    static func start(_ configure: (Router<BasicRequestContext>) -> Void) async throws -> StubUpstream {
        let router = Router()
        configure(router)
        let app = try await RunningApp.start { onRunning in
            Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: onRunning,
                logger: Logger(label: "stub"))
        }
        return StubUpstream(app: app)
    }

    /// The simulated provider (every dialect, streaming and usage; `usage` fixes what it reports).
    static func simulated(
        credential: String = "sk-upstream-test-credential", models: [String] = ["gpt-4.1-mini", "gpt-4.1", "claude-haiku-4-5"],
        usage: SimulatedUsage? = nil
    )
        async throws -> StubUpstream
    {
        let provider = SimulatedProvider(credential: credential, models: models, usage: usage)
        let router = provider.router()
        let app = try await RunningApp.start { onRunning in
            Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: onRunning,
                logger: Logger(label: "stub"))
        }
        return StubUpstream(app: app)
    }

    func stop() async { await app.stop() }
}

/// A Quotaflow server on loopback with a real SQLite file in a temporary directory.
final class TestServer: Sendable {
    let state: AppState
    let gateway: Gateway
    let app: RunningApp
    let dir: String
    let operatorToken: String

    var base: String { "http://127.0.0.1:\(app.port)" }
    var clock: any WallClock { state.clock }

    static func start(
        engine: StoreEngine = .default, clock: any WallClock = SystemClock(), dir existing: String? = nil, operatorToken: String? = nil,
        resolver: (any HostResolver)? = nil, _ configure: (inout AppConfig) -> Void = { _ in }
    ) async throws -> TestServer {
        if engine == .postgres, let scope = TestScope.current {
            // Each server holds a few connections; the test cluster allows a few hundred. One slot per test,
            // however many servers it starts (replicas, restarts): a test that held a slot and waited for a
            // second one could wait forever on tests doing the same.
            await scope.once("postgres-slot") {
                await ScratchDatabases.servers.acquire()
                scope.atEnd { await ScratchDatabases.servers.release() }
            }
        }
        let (state, gateway, dir, token) = try assemble(
            engine: engine, clock: clock, dir: existing, operatorToken: operatorToken, resolver: resolver, configure)
        let app = try await RunningApp.start { onRunning in
            QuotaflowApp.buildApplication(gateway: gateway, onServerRunning: onRunning)
        }
        let server = TestServer(state: state, gateway: gateway, app: app, dir: dir, operatorToken: token)
        // The app itself is adopted above; this removes the files once it has stopped.
        TestScope.adopt("a Quotaflow server") { await server.stop() }
        return server
    }

    /// A gateway over a real database (a SQLite file in a temporary directory, or a new PostgreSQL
    /// database), with the settings tests use. A directory given again reopens its SQLite file.
    static func assemble(
        engine: StoreEngine = .default, clock: any WallClock = SystemClock(), dir existing: String? = nil, operatorToken: String? = nil,
        resolver: (any HostResolver)? = nil, database: String? = nil, _ configure: (inout AppConfig) -> Void = { _ in }
    ) throws -> (AppState, Gateway, dir: String, operatorToken: String) {
        var config = AppConfig()
        let dir: String
        var masterKey: String?
        // A restart (`dir` again) reopens the same database: the SQLite file in it, or the PostgreSQL
        // database it names.
        let pointer = "/postgres-url"
        if let existing {
            dir = existing
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            config.databasePath = (try? String(contentsOfFile: dir + pointer, encoding: .utf8)) ?? dir + "/quotaflow.db"
        } else {
            (config.databasePath, dir) = try ScratchDatabases.location(engine)
            if engine == .postgres { try config.databasePath.write(toFile: dir + pointer, atomically: true, encoding: .utf8) }
        }
        if let database { config.databasePath = database }
        if PostgresLocation.isURL(config.databasePath) { masterKey = Self.postgresMasterKey }
        config.port = 0
        config.admissionProbes = 1
        config.admissionSpacingMs = 0
        // A failed admission probe rejects the resource: with the whole suite running at once on two cores, a
        // stub can take seconds to answer one.
        config.probeTimeoutMs = 10_000
        config.firstByteTimeoutMs = 5_000
        config.stallTimeoutMs = 5_000
        config.shutdownGraceMs = 2_000
        // Stub upstreams listen on loopback.
        config.allowPrivateEgress = true
        configure(&config)
        let token = operatorToken ?? SecretKind.operatorToken.generate()
        var logger = Logger(label: "quotaflow-test")
        logger.logLevel = .critical
        let state = try QuotaflowApp.bootstrap(
            config: config, clock: clock, logger: logger, masterKey: masterKey, masterKeyFile: nil, operatorToken: token,
            printOperatorToken: { _ in })
        let gateway = try QuotaflowApp.assemble(state: state, resolver: resolver ?? SystemResolver())
        return (state, gateway, dir, token)
    }

    /// Replicas on PostgreSQL take the master key from the environment; tests share one.
    static let postgresMasterKey = CredentialCipher.generateEncodedKey()

    init(state: AppState, gateway: Gateway, app: RunningApp, dir: String, operatorToken: String) {
        self.state = state
        self.gateway = gateway
        self.app = app
        self.dir = dir
        self.operatorToken = operatorToken
    }

    func stop(removeFiles: Bool = true) async {
        await app.stop()
        if removeFiles { try? FileManager.default.removeItem(atPath: dir) }
    }

    // MARK: HTTP

    func request(
        _ method: HTTPMethod, _ path: String, body: JSONValue? = nil, raw: [UInt8]? = nil, token: String? = nil, headers: [(String, String)] = [],
        timeout: TimeAmount = .seconds(30)
    ) async throws -> TestResponse {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(body)))
        } else if let raw {
            request.body = .bytes(ByteBuffer(bytes: raw))
        }
        let response = try await TestClients.wide.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: Array(bytes.readableBytesView))
    }

    /// An admin call as the operator (or `token`), expecting a 2xx, returning the JSON.
    @discardableResult
    func admin(
        _ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil, token: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    )
        async throws -> JSONValue
    {
        let r = try await request(method, "/admin/v1" + path, body: body, token: token ?? operatorToken)
        #expect((200..<300).contains(r.status), "\(method) \(path) -> \(r.status): \(r.text)", sourceLocation: sourceLocation)
        return r.json
    }

    func chat(
        key: String, model: String = "gpt-4.1-mini", extra: [(String, JSONValue)] = [], headers: [(String, String)] = []
    ) async throws -> TestResponse {
        var body: [(String, JSONValue)] = [("model", .string(model)), ("messages", [["role": "user", "content": "Hello"]])]
        body += extra
        return try await request(.POST, "/v1/chat/completions", body: .object(body), token: key, headers: headers)
    }

    func messages(key: String, model: String = "claude-haiku-4-5", extra: [(String, JSONValue)] = []) async throws -> TestResponse {
        var body: [(String, JSONValue)] = [
            ("model", .string(model)), ("max_tokens", 64), ("messages", [["role": "user", "content": "Hello"]]),
        ]
        body += extra
        return try await request(.POST, "/v1/messages", body: .object(body), headers: [("x-api-key", key), ("anthropic-version", "2023-06-01")])
    }

    /// Waits (in real time) until `condition` holds.
    func eventually(
        _ what: String, timeout: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
    )
        async throws
    {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
    }

    /// All ledger rows of a tenant, oldest first.
    func ledger(_ tenantId: String) async throws -> [LedgerEntry] {
        await gateway.ledger.flush()
        return try await state.db.read { conn in
            try conn.ledger(tenantId: tenantId, filter: .init(), before: nil, limit: 100_000).reversed()
        }
    }
}

enum TestClients {
    /// A client with room for hundreds of concurrent connections (the shared one allows 8 per host).
    static let wide: HTTPClient = {
        var config = HTTPClient.Configuration()
        config.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }()
}

extension StoreEngine {
    /// The engine a server test uses unless it names one: SQLite, or PostgreSQL for the whole suite
    /// with `QUOTAFLOW_TEST_ENGINE=postgres` (a full run on PostgreSQL; CI runs the chosen subset).
    static var `default`: StoreEngine {
        ProcessInfo.processInfo.environment["QUOTAFLOW_TEST_ENGINE"] == "postgres" && ScratchDatabases.postgresURL != nil ? .postgres : .sqlite
    }
}
