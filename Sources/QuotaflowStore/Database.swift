import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The database: one writer connection and a few readers, SQLite (embedded, the default) or
/// PostgreSQL (`postgres://`, for a fleet). On SQLite, WAL lets readers run alongside the writer. All
/// work runs on a thread pool, never on the event loops, and each connection is used by one thread
/// at a time.
public final class Database: Sendable {
    /// The SQLite file, or the PostgreSQL URL (without password).
    public let path: String
    public let dialect: SQLDialect
    /// Where the PostgreSQL database is (nil on SQLite).
    public let postgres: PostgresLocation?
    let writer: LockedConnection
    let readers: [LockedConnection]
    let nextReader = Atomic<Int>(0)
    /// PostgreSQL: connections for a fleet's shared counters (holds at admission), apart from the
    /// writer and the readers so that admission never waits behind a ledger batch or a report.
    let counters: [LockedConnection]
    let nextCounter = Atomic<Int>(0)
    let threadPool: NIOThreadPool

    /// PostgreSQL connections live on their own loop: a thread that waits for one never holds up a
    /// server loop, and a server loop that (wrongly) waited would not wait on itself.
    static let postgresLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Threads that wait for PostgreSQL: a call mostly waits on the network, so there are more of
    /// them than cores (the shared pool has one per core, and SQLite calls work rather than wait).
    public static let postgresThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 12)
        pool.start()
        return pool
    }()

    public init(path: String, readers readerCount: Int = 2, threadPool: NIOThreadPool = .singleton) throws {
        self.path = path
        self.dialect = .sqlite
        self.postgres = nil
        self.threadPool = threadPool
        writer = LockedConnection(StoreConnection(try SQLiteConnection(path: path)))
        var readers: [LockedConnection] = []
        for _ in 0..<max(1, readerCount) {
            readers.append(LockedConnection(StoreConnection(try SQLiteConnection(path: path))))
        }
        self.readers = readers
        counters = []
    }

    public init(
        postgres location: PostgresLocation, readers readerCount: Int = 3, logger: Logger, threadPool: NIOThreadPool = Database.postgresThreads
    ) throws {
        self.path = location.description
        self.dialect = .postgres
        self.postgres = location
        self.threadPool = threadPool
        let loop = Self.postgresLoops.next()
        writer = LockedConnection(StoreConnection(try PostgresSession(location: location, eventLoop: loop, logger: logger)))
        var readers: [LockedConnection] = []
        for _ in 0..<max(1, readerCount) {
            readers.append(LockedConnection(StoreConnection(try PostgresSession(location: location, eventLoop: loop, logger: logger))))
        }
        self.readers = readers
        var counters: [LockedConnection] = []
        for _ in 0..<4 {
            counters.append(LockedConnection(StoreConnection(try PostgresSession(location: location, eventLoop: loop, logger: logger))))
        }
        self.counters = counters
    }

    /// Runs a hold or a take on one of the shared-counter connections without holding a thread:
    /// the connection takes the query and answers on its event loop (several may be in flight on
    /// one connection). A lost connection is reopened on the thread pool first.
    public func counters(_ statement: FleetStatement) async throws -> [Int64] {
        precondition(!counters.isEmpty, "shared counters are kept on PostgreSQL only")
        let box = counters[nextCounter.wrappingAdd(1, ordering: .relaxed).oldValue % counters.count]
        var prepared = box.mutex.withLock { $0.postgresPrepared(statement.sql) }
        if prepared == nil {
            prepared = try await threadPool.runIfActive { try box.mutex.withLock { try $0.postgresReconnected(statement.sql) } }
        }
        guard let (connection, text, logger) = prepared else { return [] }
        do {
            let result = try await connection.query(PostgresQuery(unsafeSQL: text, binds: PostgresSession.bindings(statement.values)), logger: logger)
                .get()
            return try statement.result(try PostgresSession.rows(result))
        } catch {
            throw statement.error(PostgresSession.storeError(error, sql: statement.sql))
        }
    }

    /// Runs `body` on the writer connection on the thread pool, outside any transaction it does not
    /// open itself: the fleet's upkeep (stranded reservations, idle limiters), which is rare and may
    /// need a transaction of its own (the shared-counter connections carry other requests' statements
    /// in between, so they never hold one open).
    public func fleetUpkeep<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        try await threadPool.runIfActive { try self.writer.mutex.withLock { conn in try body(conn) } }
    }

    /// Opens `location`: a `postgres://` URL (with `password` from the environment or config file,
    /// else a pgpass file), or a SQLite file path.
    public static func open(_ location: String, password: String?, logger: Logger) throws -> Database {
        if PostgresLocation.isURL(location) {
            return try Database(postgres: try PostgresLocation(url: location, password: password), logger: logger)
        }
        return try Database(path: location)
    }

    /// `location` for messages: a PostgreSQL URL without anything after the host that could be a secret.
    public static func redacted(_ location: String) -> String {
        guard PostgresLocation.isURL(location) else { return location }
        return (try? PostgresLocation(url: location, password: nil, environment: [:]).description) ?? "(a postgres:// URL)"
    }

    /// Whether writes may run on a caller's thread without a hand-off (SQLite: a WAL commit takes
    /// tens of microseconds; PostgreSQL: a round trip, which must not hold an event loop).
    public var commitsInline: Bool { dialect == .sqlite }

    /// Runs `body` on the writer connection, on the calling thread (for dedicated threads and start-up).
    public func writeSync<T>(_ body: (StoreConnection) throws -> T) throws -> T {
        try writer.mutex.withLock { conn in try body(conn) }
    }

    /// Runs `body` on the writer connection if no one holds it; `nil` (without waiting) if someone does.
    func writeIfFree<T>(_ body: (StoreConnection) throws -> T) throws -> T? {
        try writer.mutex.withLockIfAvailable { conn in try body(conn) }
    }

    /// Runs `body` on a reader connection, on the calling thread.
    public func readSync<T>(_ body: (StoreConnection) throws -> T) throws -> T {
        let index = nextReader.wrappingAdd(1, ordering: .relaxed).oldValue % readers.count
        return try readers[index].mutex.withLock { conn in try body(conn) }
    }

    /// Runs `body` in a write transaction on the thread pool. A unique constraint that fails
    /// throws `DuplicateName`.
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        do {
            return try await threadPool.runIfActive {
                try self.writeSync { conn in try conn.transaction { try body(conn) } }
            }
        } catch let e where Self.isUniqueViolation(e) {
            throw DuplicateName()
        }
    }

    /// Runs `body` and then `stage` in one write transaction, and `publish` with what `stage` made
    /// after the commit, still holding the writer: publications happen in commit order, and nothing
    /// is published for a write that did not commit.
    public func write<T: Sendable, S>(
        _ body: @escaping @Sendable (StoreConnection) throws -> T, stage: @escaping @Sendable (StoreConnection) throws -> S,
        publish: @escaping @Sendable (S) -> Void
    ) async throws -> T {
        do {
            return try await threadPool.runIfActive { try self.writeSync(body, stage: stage, publish: publish) }
        } catch let e where Self.isUniqueViolation(e) {
            throw DuplicateName()
        }
    }

    /// `write(_:stage:publish:)` on the calling thread.
    public func writeSync<T: Sendable, S>(
        _ body: (StoreConnection) throws -> T, stage: (StoreConnection) throws -> S, publish: (S) -> Void
    ) throws -> T {
        try writer.mutex.withLock { conn in
            let (result, staged) = try conn.transaction { (try body(conn), try stage(conn)) }
            publish(staged)
            return result
        }
    }

    /// Runs `body` on a reader connection on the thread pool (a consistent snapshot inside one transaction).
    public func read<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        try await threadPool.runIfActive {
            try self.readSync { conn in try conn.transaction(immediate: false) { try body(conn) } }
        }
    }

    /// Closes PostgreSQL connections (a later call opens them again); nothing on SQLite.
    public func close() {
        guard dialect == .postgres else { return }
        for c in [writer] + readers + counters { c.mutex.withLock { $0.disconnect() } }
    }

    /// Whether the database answers a trivial query.
    public func ping() async -> Bool {
        (try? await read { conn in try conn.queryOne("SELECT 1 AS one")?.int("one") }) == 1
    }

    public static func isUniqueViolation(_ error: any Error) -> Bool {
        if let e = error as? SQLiteError { return e.isUniqueViolation }
        if let e = error as? PostgresStoreError { return e.isUniqueViolation }
        return false
    }
}

/// A connection and the lock that gives one thread at a time access to it.
final class LockedConnection: Sendable {
    let mutex: Mutex<StoreConnection>

    init(_ connection: StoreConnection) { mutex = Mutex(connection) }
}

/// A write would give two objects the same unique name (or id).
public struct DuplicateName: Error, Sendable {
    public init() {}
}
